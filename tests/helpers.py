"""Shared test helpers: run the real CLI, require the real programs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VECTORS = REPO / "tests" / "vectors"
FIXTURES = REPO / "tests" / "fixtures"


def require_program(program: str, package: str) -> str:
    """Path of a real program the test needs; a clear failure naming the apt package if absent."""
    path = shutil.which(program) or next(
        (str(p) for p in (Path("/usr/sbin") / program, Path("/sbin") / program) if p.exists()), None
    )
    if path is None:
        pytest.fail(f"{program} is not installed: apt-get install {package}", pytrace=False)
    return path


def cli(
    *args: str | os.PathLike[str],
    input: bytes | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``aux-secrets ARGS`` as a real process and return what it did (bytes)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "aux_secrets", *map(str, args)],
        input=input if input is not None else b"",
        capture_output=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    """The failure contract: non-zero exit, first stderr line 'aux-secrets: error: ...'."""
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode != 0, f"expected failure, got success; stderr={stderr!r}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("aux-secrets: error: ")]
    assert len(errors) == 1, f"expected exactly one error line, got: {stderr!r}"
    assert "Traceback" not in stderr, stderr
    for needle in needles:
        assert needle in errors[0], f"{needle!r} not in {errors[0]!r}"
    return errors[0]
