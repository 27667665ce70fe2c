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
from aux_secrets.core.manifest import parse_manifest

HOST = "bench1"
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
    bundle.write_bytes(seal_bundle(encode_payload(payload), [key.with_suffix(".pub").read_text()]))
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


def cli_install(root: Path, manifest: Path) -> float:
    argv = [*_aux(), "install", "--root", str(root), "--manifest", str(manifest), "--json"]
    argv += ["--at", "2026-11-22T12:00:00Z"]
    out: list[bytes] = []
    elapsed = _timed(lambda: out.append(_run(argv)))
    report = json.loads(out[0])
    return elapsed, report  # type: ignore[return-value]


def api_install(root: Path, manifest: Path) -> tuple[float, Recorder, int]:
    parsed = parse_manifest(manifest.read_bytes(), filename=str(manifest))
    store = LocalStore(parsed.settings, root)
    rec = Recorder()
    result: list[object] = []
    elapsed = _timed(
        lambda: result.append(
            install(parsed, store, root=root, at=AT, requester=rec, audit=store.audit)  # type: ignore[arg-type]
        )
    )
    return elapsed, rec, len(result[0].result.plan.changed)  # type: ignore[attr-defined]


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
    args = parser.parse_args()
    count = args.count
    with tempfile.TemporaryDirectory(prefix="aux-bench-install-") as tmp:
        work = Path(tmp)
        root, manifest, calls, mounted = setup(work, count)
        try:
            first, report = cli_install(root, manifest)
            assert len(report["appeared"]) == count, "first install must place every secret"
            assert len(report["tryRestart"]) == min(50, count)
            again, report2 = cli_install(root, manifest)
            assert report2["tryRestart"] == [] and report2["tryReloadOrRestart"] == []
            assert report2["changed"] == [] and report2["appeared"] == []
            calls_after = calls.read_text().splitlines()
            assert len(calls_after) == 1, f"no-change install asked for units: {calls_after}"
            # The Python API, no interpreter start: a fresh tree, then a no-change re-run.
            for leftover in ("aux-secrets", "aux-secrets.d"):
                _run(["rm", "-rf", str(root / "run" / leftover)])
            api_first, _, _ = api_install(root, manifest)
            api_again, rec, changed = api_install(root, manifest)
            assert rec.calls == [] and changed == 0
            reference = baseline(work, root, count)
        finally:
            if mounted:
                subprocess.run(["umount", "-l", str(root / "run")], check=False)
    where = "tmpfs" if mounted else "disk (tmpfs could not be mounted)"
    print(f"# install benchmark, {count} secrets, systemd-creds (host key), run/ on {where}")
    print(f"# {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    rows = [
        ("first install (process)", first, 1.0),
        ("no-change re-install (process)", again, 0.5),
        ("first install (API)", api_first, 1.0),
        ("no-change re-install (API)", api_again, 0.5),
    ]
    print(f"{'case':<34}{'seconds':>9}{'target':>8}{'vs per-secret decrypt':>24}")
    for name, seconds, target in rows:
        ok = "ok" if seconds < target else "MISSED"
        print(
            f"{name:<34}{seconds:>9.3f}{target:>6.1f} {ok:<3}{reference / seconds:>18.1f}x faster"
        )
    print(f"{f'reference: {count} x systemd-creds decrypt':<34}{reference:>9.3f}")
    print("no-change re-install asked for 0 restarts and 0 reloads")


if __name__ == "__main__":
    main()
