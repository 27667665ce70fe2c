"""Start-up cost of the CLI, side by side with the interpreter, typer's import and gokey.

Run from the repository root:  .venv/bin/python -m bench.startup [--repeat 15] [--callgrind]
Add ``--compare-src OTHER/src`` to measure another checkout in the same run (interleaved).

Measures, each as a whole process (best and range of --repeat runs, interleaved):
- the floors: ``python -c pass`` and ``python -c "import typer"``;
- ``aux-secrets --version``, ``aux-secrets --help`` and one seeded ``aux-secrets derive``
  (gokey scheme, v2 seed, from a password file), against one ``gokey -s SEED`` run;
- what ``PYTHONDONTWRITEBYTECODE=1`` costs: ``--help`` and the seeded ``derive`` from a
  copy of the sources without ``__pycache__`` that only ever runs with the variable set
  (every start compiles the modules again), against a copy run without it (the first
  start writes the caches, later ones read them).
With --callgrind, also the instructions each command executes under
``valgrind --tool=callgrind`` (one run each; stable where wall time is noisy).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

PASSWORD = "benchmark master password"
SRC = Path(__file__).resolve().parent.parent / "src"


def env_for(src: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUX_SECRETS_", "PYTHON"))}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    env.update(extra)
    return env


def run(argv: Sequence[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(list(argv), capture_output=True, check=False, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv} failed: {done.stderr.decode(errors='replace')}")
    return elapsed


def instructions(argv: Sequence[str], env: dict[str, str]) -> int:
    """Instructions executed (callgrind's ``Collected``), one run."""
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        capture_output=True,
        check=False,
        env={**env, "PYTHONHASHSEED": "0"},  # the same dict and set orders in every run
    )
    found = re.search(rb"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise SystemExit(f"callgrind failed for {argv}: {done.stderr[-500:].decode()}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--compare-src", type=Path, help="another checkout's src/")
    parser.add_argument("--callgrind", action="store_true")
    args = parser.parse_args()
    gokey = shutil.which("gokey")
    if gokey is None:
        raise SystemExit("gokey is not installed: apt-get install gokey")
    py = sys.executable
    aux = [py, "-m", "aux_secrets"]
    with tempfile.TemporaryDirectory(prefix="aux-bench-startup-") as tmp:
        work = Path(tmp)
        pw, seed = work / "pw", work / "seed"
        pw.write_text(PASSWORD)
        subprocess.run([gokey, "-p", PASSWORD, "-t", "seed", "-o", str(seed)], check=True)
        derive = [
            "derive", "example.com", "--scheme", "gokey", "--password-file", str(pw),
            "--seed", str(seed), "--seed-mode", "v2",
        ]  # fmt: skip
        # Two copies of the sources without caches: one only ever run with the variable
        # set (it never gets a cache), one run without it (its first run writes them).
        nowrite, cached = work / "nowrite/src", work / "cached/src"
        for copy in (nowrite, cached):
            shutil.copytree(SRC, copy, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        cases: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass": ([py, "-c", "pass"], env_for(None)),
            "python -c 'import typer'": ([py, "-c", "import typer"], env_for(None)),
            "gokey -s SEED (one password)": (
                [gokey, "-P", str(pw), "-s", str(seed), "-r", "example.com"],
                env_for(None),
            ),
        }
        trees = [("aux-secrets", SRC)]
        if args.compare_src is not None:
            trees.append(("compared", args.compare_src.resolve()))
        for label, src in trees:
            cases[f"{label} --version"] = ([*aux, "--version"], env_for(src))
            cases[f"{label} --help"] = ([*aux, "--help"], env_for(src))
            cases[f"{label} derive (seeded)"] = ([*aux, *derive], env_for(src))
        for what, command in (("--help", ["--help"]), ("derive (seeded)", derive)):
            cases[f"{what}, PYTHONDONTWRITEBYTECODE=1, no caches"] = (
                [*aux, *command],
                env_for(nowrite, PYTHONDONTWRITEBYTECODE="1"),
            )
            cases[f"{what}, caches written"] = ([*aux, *command], env_for(cached))
        for argv, env in cases.values():  # warm the page cache (and write the copy's caches)
            run(argv, env)
        times: dict[str, list[float]] = {name: [] for name in cases}
        loads = [os.getloadavg()[0]]
        for _ in range(args.repeat):
            for name, (argv, env) in cases.items():
                times[name].append(run(argv, env))
        loads.append(os.getloadavg()[0])
        counts = {}
        if args.callgrind:
            for name, (argv, env) in cases.items():
                if name.startswith("gokey"):
                    continue  # a Go binary: its threads make callgrind's count meaningless
                counts[name] = instructions(argv, env)
    print(
        f"# start-up ({platform.platform()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()})"
    )
    print(
        f"# best of {args.repeat}, interleaved; load average {min(loads):.1f} to {max(loads):.1f}"
    )
    header = "| command | best | range |" + (" instructions |" if counts else "")
    print(header)
    print("| --- | --- | --- |" + (" --- |" if counts else ""))
    for name, runs in times.items():
        best, worst = min(runs) * 1000, max(runs) * 1000
        row = f"| {name} | {best:.0f} ms | {best:.0f}-{worst:.0f} ms |"
        if counts:
            row += f" {counts[name] / 1e6:.0f} M |" if name in counts else " |"
        print(row)
    print()
    for what in ("--help", "derive (seeded)"):
        slow = min(times[f"{what}, PYTHONDONTWRITEBYTECODE=1, no caches"])
        fast = min(times[f"{what}, caches written"])
        print(
            f"PYTHONDONTWRITEBYTECODE=1 without caches adds {(slow - fast) * 1000:.0f} ms to {what}"
        )


if __name__ == "__main__":
    main()
