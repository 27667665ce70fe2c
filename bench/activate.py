"""Activate at scale: the cost per secret at 1,000, 10,000 and 20,000 secrets, side by side
with plain `age -d` of the same bundle in one run.

Run from the repository root:  .venv/bin/python -m bench.activate [--sizes 1000,10000,20000]
Add ``--compare-src OTHER/src`` to time another checkout's aux-secrets in the same run
(interleaved, same bundles), e.g. the commit before a change.

For each size N: a manifest of N secrets (plain backend) in a temporary --root, N bundles
sealed to the host key, then ``aux-secrets activate --bundle FILE --root ROOT`` as a process
(interpreter start, manifest parse, age decrypt, signature, decode, seal, commit, audit
entry). Each run is a first activation into an empty store, so every secret is "changed"
and gets an audit fingerprint (the worst case). The reference is ``age -d -i KEY`` of the
same bundle.
The CPU time (user + system of the process and its children) is reported beside the wall
time: it moves much less when other work shares the cores. ``CPU per secret`` is the
whole activate divided by N; ``CPU per added secret`` is the cost of each secret added
since the previous size, which must not grow with N if nothing is quadratic.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from aux_secrets.adapters.bundle_age import seal_bundle
from aux_secrets.core.bundle import (
    OPEN_NOT_AFTER,
    OPEN_NOT_BEFORE,
    BundlePayload,
    BundleSecret,
    BundleSlot,
    encode_payload,
)
from aux_secrets.core.bundle_sign import sign_payload

HOST = "bench1"
SIGNER_SEED = b"\x02" * 32
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def aux_argv(src: str | None) -> tuple[list[str], dict[str, str]]:
    """How to run aux-secrets (this checkout, or the one at ``src``) and its environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    if src is not None:
        env["PYTHONPATH"] = src
    return [sys.executable, "-m", "aux_secrets"], env


def run(argv: Sequence[str], env: dict[str, str] | None = None) -> bytes:
    done = subprocess.run(list(argv), capture_output=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


def make_root(work: Path, count: int) -> tuple[Path, Path]:
    """A host root with an ssh host key and an N-secret manifest at its default path."""
    root = work / f"root-{count}"
    (root / "etc/ssh").mkdir(parents=True)
    (root / "etc/aux-secrets").mkdir()
    key = root / "etc/ssh/ssh_host_ed25519_key"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    secrets = {
        f"app{i // 100}/secret-{i}": {"source": {"derive": {"realm": f"bench/{i}"}}}
        for i in range(count)
    }
    doc = {"version": 1, "host": HOST, "settings": {"backend": "plain"}, "secrets": secrets}
    (root / "etc/aux-secrets/manifest.json").write_text(json.dumps(doc))
    return root, key


def make_bundle(key: Path, count: int, serial: int) -> bytes:
    """A signed bundle for all N secrets with fresh values (every secret changes)."""
    payload = BundlePayload(
        host=HOST,
        serial=serial,
        created=AT,
        bundle_id=uuid.uuid4().hex,
        fingerprint_key=os.urandom(32),
        secrets={
            f"app{i // 100}/secret-{i}": BundleSecret(
                slots=(
                    BundleSlot(
                        "current",
                        "fixed",
                        OPEN_NOT_BEFORE,
                        OPEN_NOT_AFTER,
                        os.urandom(12).hex().encode(),
                    ),
                )
            )
            for i in range(count)
        },
    )
    envelope = sign_payload(SIGNER_SEED, encode_payload(payload))
    return seal_bundle(envelope, [key.with_suffix(".pub").read_text()])


def timed(argv: Sequence[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    run(argv, env)
    return time.perf_counter() - start


def cpu_timed(argv: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the process and its children: user + system). The
    CPU time moves much less than the wall time when other work shares the cores."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = timed(argv, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,20000")
    parser.add_argument("--repeat", type=int, default=3, help="runs per size (best is kept)")
    parser.add_argument("--compare-src", help="another checkout's src/ to time alongside")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    tools = {"aux-secrets": aux_argv(None)}
    if args.compare_src:
        tools["compared"] = aux_argv(args.compare_src)
    results: dict[str, dict[int, list[float]]] = {t: {n: [] for n in sizes} for t in tools}
    cpu: dict[str, dict[int, list[float]]] = {t: {n: [] for n in sizes} for t in tools}
    age: dict[int, list[float]] = {n: [] for n in sizes}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="aux-bench-activate-") as tmp:
        work = Path(tmp)
        for count in sizes:
            root, key = make_root(work, count)
            serial = 0
            for _ in range(args.repeat):
                for tool, (base, env) in tools.items():  # interleaved: same load for both
                    serial += 1
                    # A first activation each time, into an empty store: every secret is
                    # changed, and both tools start from the same state.
                    shutil.rmtree(root / "var/lib/aux-secrets", ignore_errors=True)
                    bundle = work / f"b-{count}-{serial}.age"
                    bundle.write_bytes(make_bundle(key, count, serial))
                    argv = [*base, "activate", "--bundle", str(bundle), "--root", str(root)]
                    wall, used = cpu_timed(argv, env)
                    results[tool][count].append(wall)
                    cpu[tool][count].append(used)
                    age[count].append(
                        timed(["age", "-d", "-i", str(key), "-o", "/dev/null", str(bundle)])
                    )
                    bundle.unlink()
            loads.append(os.getloadavg()[0])
    print(
        f"# activate at scale ({platform.platform()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()})"
    )
    print(f"# best of {args.repeat} per size; load average {min(loads):.1f} to {max(loads):.1f}")
    print(
        "| tool | secrets | activate, wall (best, range) | age -d | ratio | CPU (best) "
        "| CPU per secret | CPU per added secret |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for tool in tools:
        previous: tuple[int, float] | None = None
        for count in sizes:
            runs = results[tool][count]
            best = min(runs)
            used = min(cpu[tool][count])
            age_best = min(age[count])
            added = ""
            if previous is not None:
                added = f"{(used - previous[1]) / (count - previous[0]) * 1e6:.1f} µs"
            print(
                f"| {tool} | {count:,} | {best:.3f} s ({min(runs):.2f}-{max(runs):.2f}) "
                f"| {age_best:.3f} s | {best / age_best:.0f}x | {used:.3f} s "
                f"| {used / count * 1e6:.1f} µs | {added} |"
            )
            previous = (count, used)


if __name__ == "__main__":
    main()
