"""derive --batch streams: its output is written line by line, never held whole.

A batch whose output is about 64 MiB runs in a fresh process whose peak memory is
measured by its parent (ru_maxrss of the one child): holding the output (and joining
it) needed well over 128 MiB; streaming stays near the interpreter's own size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import cli

PW = "correct horse"
FAST = ("--argon2-memory", "8", "--argon2-time", "1")
LINES = 1000
LENGTH = 32 * 1024  # raw bytes per value: 64 KiB of hex per line

MEASURE = r"""
import resource, subprocess, sys
with open(sys.argv[1], "rb") as batch:
    done = subprocess.run(sys.argv[2:], stdin=batch, stdout=subprocess.PIPE, check=False)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stderr.write(f"{done.returncode} {len(done.stdout)} {peak}\n")
sys.stdout.buffer.write(done.stdout[:200000])
"""


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("stream")
    pw = root / "pw"
    pw.write_text(PW + "\n")
    assert cli("init", root / "vault", "--password-file", pw, *FAST).returncode == 0
    return root / "vault", pw


def batch_file(tmp_path: Path) -> Path:
    lines = [
        json.dumps({"realm": f"bulk/{i}", "type": "raw", "length": LENGTH, "encoding": "hex"})
        for i in range(LINES)
    ]
    path = tmp_path / "batch.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_batch_output_is_streamed(vault: tuple[Path, Path], tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "aux_secrets", "derive", "--batch", "-",
            "--vault", str(vault[0]), "--password-file", str(vault[1])]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    measured = subprocess.run(
        [sys.executable, "-c", MEASURE, str(batch_file(tmp_path)), *argv],
        capture_output=True, env=env, timeout=600, check=True,
    )  # fmt: skip
    code, size, peak_kib = (int(x) for x in measured.stderr.split()[-3:])
    assert code == 0
    assert size > LINES * LENGTH * 2  # every line arrived
    first = json.loads(measured.stdout.split(b"\n", 1)[0])
    assert first["realm"] == "bulk/0" and len(first["value"]) == 2 * LENGTH
    assert peak_kib < 100 * 1024, f"peak {peak_kib} KiB: the output was held in memory"


def test_batch_to_a_file_is_atomic_and_the_same(vault: tuple[Path, Path], tmp_path: Path) -> None:
    small = tmp_path / "small.jsonl"
    small.write_text("\n".join(json.dumps({"realm": f"r/{i}"}) for i in range(600)) + "\n")
    args = ("derive", "--batch", small, "--vault", vault[0], "--password-file", vault[1])
    printed = cli(*args)
    assert printed.returncode == 0, printed.stderr
    out = tmp_path / "out.jsonl"
    written = cli(*args, "--output", out)
    assert written.returncode == 0, written.stderr
    assert out.read_bytes() == printed.stdout and printed.stdout.count(b"\n") == 600
    assert (out.stat().st_mode & 0o777) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
