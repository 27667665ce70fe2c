"""Installer benchmark: 1,000 secrets from a systemd-creds local store, side by side with
per-secret credentials (one `systemd-creds decrypt` per secret) in one run.

Run from the repository root, as root:
    .venv/bin/python -m bench.install [--count 1000] [--repeat 3] [--compare-src OTHER/src]

Measures, into temporary --roots whose run/ is a tmpfs (as /run is on a real host) and,
in the same run, roots whose run/ is on the disk:
- first install: `aux-secrets install` as a process (what the boot unit runs) and the
  same work through the Python API (no interpreter start);
- a no-change re-install (process and API), which must ask for zero restarts;
- the fsync and fdatasync calls of each (`strace -f -c`), which seconds on a shared
  machine do not show reliably;
- with --compare-src, the same for another checkout (the commit before a change), in
  its own roots, interleaved with this one;
- the reference: N separate `systemd-creds decrypt` calls, which is what sealing every
  secret as its own credential costs at each install, before writing any file.
Every run checks its result (files present, units asked for) and aborts on a mismatch.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
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


AUX = [sys.executable, "-m", "aux_secrets"]


def aux_env(src: str | None) -> dict[str, str]:
    """The environment that runs this checkout's aux-secrets, or the one at ``src``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    if src is not None:
        env["PYTHONPATH"] = src
    return env


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


def setup(
    work: Path, count: int, tmpfs: bool, env: dict[str, str]
) -> tuple[Path, Path, Path, bool]:
    root = work
    (root / "etc/ssh").mkdir(parents=True)
    (root / "run").mkdir()
    mounted = tmpfs and (
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
            *AUX,
            "activate",
            "--bundle",
            str(bundle),
            "--root",
            str(root),
            "--manifest",
            str(manifest),
        ],
        env=env,
    )
    return root, manifest, calls, mounted


def fresh(root: Path) -> None:
    for leftover in ("aux-secrets", "aux-secrets.d"):
        _run(["rm", "-rf", str(root / "run" / leftover)])


def install_argv(root: Path, manifest: Path) -> list[str]:
    argv = [*AUX, "install", "--root", str(root), "--manifest", str(manifest), "--json"]
    return [*argv, "--at", "2026-11-22T12:00:00Z"]


def cli_install(root: Path, manifest: Path, env: dict[str, str]) -> tuple[float, dict[str, object]]:
    out: list[bytes] = []
    elapsed = _timed(lambda: out.append(_run(install_argv(root, manifest), env=env)))
    report: dict[str, object] = json.loads(out[0])
    return elapsed, report


def fsyncs(root: Path, manifest: Path, env: dict[str, str], work: Path) -> int:
    """fsync + fdatasync calls of one install process (strace -f -c), children included."""
    log = work / "strace.txt"
    argv = ["strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", str(log)]
    _run([*argv, *install_argv(root, manifest)], env=env)
    calls = 0
    for line in log.read_text().splitlines():
        fields = line.split()
        if fields and fields[-1] in ("fsync", "fdatasync") and re.fullmatch(r"\d+", fields[3]):
            calls += int(fields[3])
    return calls


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


@dataclass
class Case:
    """One tool (this checkout or the compared one) on one placement of run/."""

    tool: str
    env: dict[str, str]
    tmpfs: bool
    root: Path = Path()
    manifest: Path = Path()
    calls: Path = Path()
    mounted: bool = False
    first: list[float] = field(default_factory=list)
    again: list[float] = field(default_factory=list)
    fsync_first: int = 0
    fsync_again: int = 0
    generations: tuple[object, object] = (None, None)

    @property
    def where(self) -> str:
        return "tmpfs" if self.mounted else "disk"


def measure(case: Case, count: int, work: Path) -> None:
    """One first install and one no-change re-install, timed and checked."""
    fresh(case.root)
    seconds, report = cli_install(case.root, case.manifest, case.env)
    assert len(report["appeared"]) == count, "first install must place every secret"  # type: ignore[arg-type]
    assert len(report["tryRestart"]) == min(50, count)  # type: ignore[arg-type]
    case.first.append(seconds)
    seconds, report = cli_install(case.root, case.manifest, case.env)
    assert report["tryRestart"] == [] and report["tryReloadOrRestart"] == []
    assert report["changed"] == [] and report["appeared"] == []
    case.again.append(seconds)
    case.generations = (report["previous"], report["generation"])


def count_fsyncs(case: Case, work: Path) -> None:
    fresh(case.root)
    case.fsync_first = fsyncs(case.root, case.manifest, case.env, work)
    case.fsync_again = fsyncs(case.root, case.manifest, case.env, work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3, help="best of N for each case")
    parser.add_argument("--compare-src", help="another checkout's src/, measured alongside")
    args = parser.parse_args()
    count, repeat = args.count, args.repeat
    if shutil.which("strace") is None:
        raise SystemExit("strace is not installed: apt-get install strace")
    tools = [("aux-secrets", aux_env(None))]
    if args.compare_src:
        tools.append(("compared", aux_env(args.compare_src)))
    cases = [Case(t, env, tmpfs) for tmpfs in (True, False) for t, env in tools]
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="aux-bench-install-") as tmp:
        work = Path(tmp)
        try:
            for i, case in enumerate(cases):
                case.root, case.manifest, case.calls, case.mounted = setup(
                    work / f"root{i}", count, case.tmpfs, case.env
                )
            for _ in range(repeat):
                for case in cases:  # interleaved: every case sees the same load
                    measure(case, count, work)
            for case in cases:
                calls_after = case.calls.read_text().splitlines()
                assert len(calls_after) == repeat, f"no-change install asked: {calls_after}"
                count_fsyncs(case, work)
            api_first, api_again = [], []
            here = cases[0]
            for _ in range(repeat):
                fresh(here.root)
                api_first.append(api_phases(here.root, here.manifest)[0])
                phases, rec, changed = api_phases(here.root, here.manifest)
                assert rec.calls == [] and changed == 0
                api_again.append(phases)
            floor = min(_timed(lambda: _run([*AUX, "--help"])) for _ in range(repeat))
            loads.append(os.getloadavg()[0])
            reference = baseline(work, here.root, count)
            loads.append(os.getloadavg()[0])
        finally:
            for case in cases:
                if case.mounted:
                    subprocess.run(["umount", "-l", str(case.root / "run")], check=False)
    print(f"# install benchmark, {count} secrets, systemd-creds (host key)")
    print(f"# {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"# best of {repeat}, interleaved; load average {min(loads):.1f} to {max(loads):.1f}")
    print(f"# reference: {count} x systemd-creds decrypt = {reference:.3f} s")
    print(
        "| tool | run/ on | first install | no-change re-install | no-change vs reference "
        "| fsyncs first / no-change | no-change generation |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for c in cases:
        first, again = min(c.first), min(c.again)
        print(
            f"| {c.tool} | {c.where} | {first:.3f} s ({first:.2f}-{max(c.first):.2f}) "
            f"| {again:.3f} s ({again:.2f}-{max(c.again):.2f}) | {reference / again:.0f}x faster "
            f"| {c.fsync_first} / {c.fsync_again} | {c.generations[0]} -> {c.generations[1]} |"
        )
    print(f"process floor: aux-secrets --help {floor:.3f} s")
    print("every no-change re-install asked for 0 restarts and 0 reloads")
    for label, runs in (("first install", api_first), ("no-change re-install", api_again)):
        print(f"API phases ({here.tool}, {here.where}), {label}:")
        for phase, seconds in best(runs).items():
            print(f"  {phase:<38}{seconds:>9.3f}")


if __name__ == "__main__":
    main()
