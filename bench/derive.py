"""Deriver benchmarks, side by side with the Debian gokey binary in one run.

Run from the repository root:  .venv/bin/python bench/derive.py [--count 1000] [--rsa-realms 3]

Measures end to end (process start included on both sides):
- N seeded passwords: one `aux-secrets derive --batch` (legacy and v2 seed mode) against N
  `gokey -s SEED` invocations (gokey 0.1.2 only has the legacy seed format);
- N unseeded passwords: one `aux-secrets derive --batch --no-seed` against N `gokey` runs;
- rsa2048 and rsa4096 for several realms: one `aux-secrets derive` process per key against
  one `gokey -u` per key, plus the core API alone (no process start);
- wall time of `aux-secrets --help` and of a single `aux-secrets derive`.
Every aux-secrets output is compared with gokey's; a mismatch aborts the run.
"""

from __future__ import annotations

import argparse
import functools
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

PASSWORD = "benchmark master password"


def _aux() -> list[str]:
    exe = Path(sys.executable).with_name("aux-secrets")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "aux_secrets"]


def _run(argv: Sequence[str], stdin: bytes | None = None) -> bytes:
    done = subprocess.run(list(argv), input=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed: {done.stderr.decode(errors='replace')}")
    return done.stdout


def _timed(fn: Callable[[], bytes]) -> tuple[float, bytes]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _best_of(n: int, fn: Callable[[], bytes]) -> float:
    return min(_timed(fn)[0] for _ in range(n))


def _batch_values(out: bytes) -> list[str]:
    return [json.loads(line)["value"] for line in out.splitlines() if line.strip()]


def bench_passwords(
    gokey: str, work: Path, count: int, seeded: bool, mode: str = "legacy"
) -> dict[str, float]:
    pwfile, seed = work / "pw", work / "seed.bin"
    realms = [f"bench-{i}.example.org" for i in range(count)]
    batch = work / "batch.jsonl"
    batch.write_text("".join(json.dumps({"realm": r}) + "\n" for r in realms))
    source = ["--seed", str(seed), "--seed-mode", mode] if seeded else ["--no-seed"]
    argv = [
        *_aux(),
        "derive",
        "--batch",
        str(batch),
        "--scheme",
        "gokey",
        "--password-file",
        str(pwfile),
        *source,
    ]
    ours_s, ours_out = _timed(lambda: _run(argv))

    def gokey_all() -> bytes:
        outs = []
        for realm in realms:
            cmd = [gokey, "-P", str(pwfile), f"-r={realm}", "-t", "pass"]
            outs.append(_run([*cmd, "-s", str(seed)] if seeded else cmd))
        return b"\n".join(outs)

    def core() -> bytes:
        from aux_secrets.core.derive import DeriveRequest, derive
        from aux_secrets.core.gokey import GokeySeeded, GokeyUnseeded

        password = pwfile.read_bytes().strip()
        scheme = (
            GokeySeeded(password, seed.read_bytes(), "legacy" if mode == "legacy" else "v2")
            if seeded
            else GokeyUnseeded(password)
        )
        return b"\n".join(derive(scheme, DeriveRequest(r)) for r in realms)

    gokey_s, gokey_out = _timed(gokey_all)
    core_s, core_out = _timed(core)
    if _batch_values(ours_out) != core_out.decode().split("\n"):
        raise SystemExit("batch outputs differ from the core API's")
    if mode == "legacy" and core_out != gokey_out:
        raise SystemExit("outputs differ from gokey's")
    return {"ours": ours_s, "gokey": gokey_s, "core": core_s}


def bench_rsa(
    gokey: str, work: Path, bits: int, realms: list[str]
) -> list[tuple[str, float, float, float]]:
    """Per realm: (realm, gokey seconds, aux-secrets process seconds, core API seconds)."""
    from aux_secrets.core.derive import DeriveRequest, derive
    from aux_secrets.core.gokey import GokeyUnseeded

    pwfile = work / "pw"
    scheme = GokeyUnseeded(PASSWORD.encode())
    rows: list[tuple[str, float, float, float]] = []
    t = f"rsa{bits}"
    for realm in realms:
        g_argv = [gokey, "-P", str(pwfile), "-r", realm, "-t", t, "-u"]
        c_argv = [
            *_aux(),
            "derive",
            realm,
            "--scheme",
            "gokey",
            "--password-file",
            str(pwfile),
            "--no-seed",
            "--type",
            t,
        ]
        request = DeriveRequest(realm, t)
        g_s, g_out = _timed(functools.partial(_run, g_argv))
        c_s, c_out = _timed(functools.partial(_run, c_argv))
        a_s, a_out = _timed(functools.partial(derive, scheme, request))
        if not g_out == c_out == a_out:
            raise SystemExit(f"{t} for {realm}: outputs differ from gokey's")
        rows.append((realm, g_s, c_s, a_s))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rsa-realms", type=int, default=3)
    args = parser.parse_args()
    gokey = shutil.which("gokey")
    if gokey is None:
        raise SystemExit("gokey is not installed: apt-get install gokey")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "pw").write_text(PASSWORD)
        _run([gokey, "-p", PASSWORD, "-t", "seed", "-o", str(work / "seed.bin")])

        print(
            f"# aux-secrets derive vs gokey ({platform.platform()}, "
            f"Python {platform.python_version()})\n"
        )
        help_s = _best_of(5, lambda: _run([*_aux(), "--help"]))
        single = [
            *_aux(),
            "derive",
            "example.com",
            "--scheme",
            "gokey",
            "--password-file",
            str(work / "pw"),
            "--no-seed",
        ]
        single_s = _best_of(5, lambda: _run(single))
        gokey_single = _best_of(5, lambda: _run([gokey, "-P", str(work / "pw"), "-r", "x"]))
        print("| command | best of 5 |\n| --- | --- |")
        print(f"| `aux-secrets --help` | {help_s * 1000:.0f} ms |")
        print(f"| `aux-secrets derive REALM --scheme gokey --no-seed` | {single_s * 1000:.0f} ms |")
        print(f"| `gokey -r REALM` (pass, unseeded) | {gokey_single * 1000:.0f} ms |\n")

        print(
            f"| {args.count} passwords | aux-secrets --batch | {args.count} gokey runs "
            "| ratio (target) | core API alone |\n| --- | --- | --- | --- | --- |"
        )
        for label, seeded, mode, target in (
            ("seeded, legacy", True, "legacy", 20),
            ("seeded, v2 (gokey: legacy)", True, "v2", 20),
            ("unseeded", False, "legacy", 3),
        ):
            r = bench_passwords(gokey, work, args.count, seeded, mode)
            print(
                f"| {label} | {r['ours']:.2f} s | {r['gokey']:.2f} s | "
                f"{r['gokey'] / r['ours']:.1f}x faster (>= {target}x) | {r['core']:.2f} s |"
            )
        print()

        print(
            "| key | realm | gokey | aux-secrets derive (process) | core API | "
            "ratio process/gokey (<= 3x) |\n| --- | --- | --- | --- | --- | --- |"
        )
        realms = [f"rsa-bench-{i}.example.org" for i in range(args.rsa_realms)]
        for bits in (2048, 4096):
            rows = bench_rsa(gokey, work, bits, realms)
            for realm, g, c, a in rows:
                print(f"| rsa{bits} | {realm} | {g:.2f} s | {c:.2f} s | {a:.2f} s | {c / g:.2f} |")
            g_sum = sum(r[1] for r in rows)
            c_sum = sum(r[2] for r in rows)
            a_sum = sum(r[3] for r in rows)
            print(
                f"| rsa{bits} | all {len(rows)} | {g_sum:.2f} s | {c_sum:.2f} s | "
                f"{a_sum:.2f} s | {c_sum / g_sum:.2f} |"
            )


if __name__ == "__main__":
    main()
