"""Installer benchmark: 1,000 secrets from a systemd-creds local store, side by side with
per-secret credentials (one `systemd-creds decrypt` per secret) in one run.

Run from the repository root, as root:  .venv/bin/python bench/install.py [--count 1000]

Measures, into a temporary --root whose run/ is a tmpfs (as /run is on a real host; a
plain directory if tmpfs cannot be mounted):
- first install: `aux-secrets install` as a process (what the boot unit runs) and the
  same work through the Python API (no interpreter start);
- a no-change re-install (process and API), which must ask for zero restarts;
- the reference: N separate `systemd-creds decrypt` calls, which is what sealing every
  secret as its own credential costs at each install, before writing any file.
Every run checks its result (files present, units asked for) and aborts on a mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from aux_secrets.adapters.bundle_age import seal_bundle
from aux_secrets.adapters.installer import install
from aux_secrets.adapters.localstore import LocalStore, credentials_env
from aux_secrets.core.bundle import (
    OPEN_NOT_AFTER,
    OPEN_NOT_BEFORE,
    BundlePayload,
    BundleSecret,
    BundleSlot,
    encode_payload,
)
from aux_secrets.core.bundle_sign import sign_payload
from aux_secrets.core.manifest import parse_manifest

HOST = "bench1"
BENCH_SIGNER_SEED = b"\x01" * 32  # a fixed bundle signer; the host trusts it on first use
AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _aux() -> list[str]:
    exe = Path(sys.executable).with_name("aux-secrets")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "aux_secrets"]


def _run(argv: list[str], **kwargs: object) -> bytes:
    done = subprocess.run(argv, capture_output=True, check=False, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {done.stderr.decode(errors='replace')}")
    out: bytes = done.stdout
    return out


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def request(self, verb: str, units: object) -> None:
        self.calls.append((verb, tuple(units)))  # type: ignore[arg-type]


def setup(work: Path, count: int) -> tuple[Path, Path, Path, bool]:
    root = work / "root"
    (root / "etc/ssh").mkdir(parents=True)
    (root / "run").mkdir()
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256m,mode=0755", "tmpfs", str(root / "run")],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    key = root / "etc/ssh/ssh_host_ed25519_key"
    _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    recorder = work / "systemctl"
    calls = work / "calls.log"
    recorder.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    recorder.chmod(0o755)
    secrets = {
        f"app{i // 100}/secret-{i}": {
            "source": {"derive": {"realm": f"bench/{i}"}},
            "restartUnits": [f"svc{i % 50}.service"],
        }
        for i in range(count)
    }
    manifest = work / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "version": 1,
                "host": HOST,
                "settings": {"systemctl": [str(recorder)], "group": "root"},
                "secrets": secrets,
            }
        )
    )
    payload = BundlePayload(
        host=HOST,
        serial=1,
        created=AT,
        bundle_id=uuid.uuid4().hex,
        fingerprint_key=os.urandom(32),
        secrets={
            name: BundleSecret(
                slots=(
                    BundleSlot(
                        "current",
                        "fixed",
                        OPEN_NOT_BEFORE,
                        OPEN_NOT_AFTER,
                        os.urandom(24).hex().encode(),
                    ),
                )
            )
            for name in secrets
        },
    )
    bundle = work / "bundle.age"
    envelope = sign_payload(BENCH_SIGNER_SEED, encode_payload(payload))
    bundle.write_bytes(seal_bundle(envelope, [key.with_suffix(".pub").read_text()]))
    _run(
        [
            *_aux(),
            "activate",
            "--bundle",
            str(bundle),
            "--root",
            str(root),
            "--manifest",
            str(manifest),
        ]
    )
    return root, manifest, calls, mounted


def fresh(root: Path) -> None:
    for leftover in ("aux-secrets", "aux-secrets.d"):
        _run(["rm", "-rf", str(root / "run" / leftover)])


def cli_install(root: Path, manifest: Path) -> tuple[float, dict[str, object]]:
    argv = [*_aux(), "install", "--root", str(root), "--manifest", str(manifest), "--json"]
    argv += ["--at", "2026-11-22T12:00:00Z"]
    out: list[bytes] = []
    elapsed = _timed(lambda: out.append(_run(argv)))
    report: dict[str, object] = json.loads(out[0])
    return elapsed, report


class Loaded:
    def __init__(self, payload: object) -> None:
        self.payload = payload

    def load(self) -> object:
        return self.payload


def api_phases(root: Path, manifest: Path) -> tuple[dict[str, float], Recorder, int]:
    """One install through the API, timed by phase: manifest, store (one decrypt), the rest."""
    phases: dict[str, float] = {}
    data = manifest.read_bytes()
    parsed: list[object] = []
    phases["parse manifest"] = _timed(
        lambda: parsed.append(parse_manifest(data, filename=str(manifest)))
    )
    m = parsed[0]
    store = LocalStore(m.settings, root)  # type: ignore[attr-defined]
    payload: list[object] = []
    phases["open local store"] = _timed(lambda: payload.append(store.load()))
    rec = Recorder()
    result: list[object] = []
    phases["select, render, write, swap"] = _timed(
        lambda: result.append(
            install(m, Loaded(payload[0]), root=root, at=AT, requester=rec, audit=store.audit)  # type: ignore[arg-type]
        )
    )
    return phases, rec, len(result[0].result.plan.changed)  # type: ignore[attr-defined]


def best(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: min(r[k] for r in runs) for k in runs[0]}


def baseline(work: Path, root: Path, count: int) -> float:
    """N separate systemd-creds decrypt calls: one per secret, as per-secret credentials need."""
    env = credentials_env(root)
    env["SYSTEMD_LOG_LEVEL"] = "err"
    creds = work / "creds"
    creds.mkdir()
    for i in range(count):
        _run(
            [
                "systemd-creds",
                "encrypt",
                "--with-key=host",
                f"--name=s{i}",
                "-",
                str(creds / f"s{i}.cred"),
            ],
            input=os.urandom(24).hex().encode(),
            env=env,
        )

    def decrypt_all() -> None:
        for i in range(count):
            _run(
                ["systemd-creds", "decrypt", f"--name=s{i}", str(creds / f"s{i}.cred"), "-"],
                env=env,
            )

    return _timed(decrypt_all)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for each case")
    args = parser.parse_args()
    count, repeat = args.count, args.repeat
    with tempfile.TemporaryDirectory(prefix="aux-bench-install-") as tmp:
        work = Path(tmp)
        root, manifest, calls, mounted = setup(work, count)
        try:
            firsts, agains = [], []
            for _ in range(repeat):
                fresh(root)
                seconds, report = cli_install(root, manifest)
                assert len(report["appeared"]) == count, "first install must place every secret"  # type: ignore[arg-type]
                assert len(report["tryRestart"]) == min(50, count)  # type: ignore[arg-type]
                firsts.append(seconds)
                seconds, report = cli_install(root, manifest)
                assert report["tryRestart"] == [] and report["tryReloadOrRestart"] == []
                assert report["changed"] == [] and report["appeared"] == []
                agains.append(seconds)
            calls_after = calls.read_text().splitlines()
            assert len(calls_after) == repeat, f"no-change install asked for units: {calls_after}"
            api_first, api_again = [], []
            for _ in range(repeat):
                fresh(root)
                api_first.append(api_phases(root, manifest)[0])
                phases, rec, changed = api_phases(root, manifest)
                assert rec.calls == [] and changed == 0
                api_again.append(phases)
            floor = min(_timed(lambda: _run([*_aux(), "--help"])) for _ in range(repeat))
            reference = baseline(work, root, count)
        finally:
            if mounted:
                subprocess.run(["umount", "-l", str(root / "run")], check=False)
    where = "tmpfs" if mounted else "disk (tmpfs could not be mounted)"
    print(f"# install benchmark, {count} secrets, systemd-creds (host key), run/ on {where}")
    print(f"# {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"# best of {repeat}; load average {os.getloadavg()[0]:.1f}")
    print(f"{'case':<40}{'seconds':>9}{'target':>8}{'vs per-secret decrypt':>24}")
    rows = [
        ("first install (aux-secrets process)", min(firsts), 1.0),
        ("no-change re-install (process)", min(agains), 0.5),
        ("first install (Python API)", sum(best(api_first).values()), 1.0),
        ("no-change re-install (Python API)", sum(best(api_again).values()), 0.5),
    ]
    for name, seconds, target in rows:
        ok = "ok" if seconds < target else "over"
        print(
            f"{name:<40}{seconds:>9.3f}{target:>6.1f} {ok:<4}{reference / seconds:>17.1f}x faster"
        )
    print(f"{f'reference: {count} x systemd-creds decrypt':<40}{reference:>9.3f}")
    print(f"{'process floor: aux-secrets --help':<40}{floor:>9.3f}")
    print("no-change re-install asked for 0 restarts and 0 reloads")
    for label, runs in (("first install", api_first), ("no-change re-install", api_again)):
        print(f"API phases, {label}:")
        for phase, seconds in best(runs).items():
            print(f"  {phase:<38}{seconds:>9.3f}")


if __name__ == "__main__":
    main()
