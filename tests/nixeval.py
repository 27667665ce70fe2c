"""Run the real Nix evaluator (nix-instantiate from nix-bin) the way the Nix tests need it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import REPO, require_program

LIB_ENV = "AUX_SECRETS_NIXPKGS_LIB"
LIB_SKIP = (
    "module evaluation skipped: set AUX_SECRETS_NIXPKGS_LIB to a nixpkgs lib folder "
    "(the lib/ of github:nix-community/nixpkgs.lib; see DEVELOPERS.md)"
)


class NixError(Exception):
    """nix-instantiate failed; the message is its stderr."""


def nix_instantiate(args: list[str], tmp: Path) -> str:
    """``nix-instantiate --store dummy:// ARGS``, its state and home in ``tmp``."""
    program = require_program("nix-instantiate", "nix-bin")
    (tmp / "nix-home").mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp / "nix-home"),
        "NIX_STATE_DIR": str(tmp / "nix-state"),
        "NIX_LOG_DIR": str(tmp / "nix-log"),
        "NIX_CONF_DIR": str(tmp / "nix-conf"),
    }
    result = subprocess.run(
        [program, "--store", "dummy://", *args],
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise NixError(result.stderr.decode(errors="replace"))
    return result.stdout.decode()


def nix_eval(expr: str, tmp: Path) -> Any:
    """Evaluate ``expr`` strictly and return it decoded from JSON."""
    return json.loads(nix_instantiate(["--eval", "--strict", "--json", "-E", expr], tmp))


def nix_string(value: str | Path) -> str:
    """A Nix string literal."""
    return json.dumps(str(value)).replace("${", "\\${")


def nixpkgs_lib() -> Path:
    """The nixpkgs lib folder from AUX_SECRETS_NIXPKGS_LIB, or skip with the agreed message."""
    folder = os.environ.get(LIB_ENV)
    if not folder:
        pytest.skip(LIB_SKIP)
    path = Path(folder)
    if (path / "lib" / "default.nix").exists():
        path = path / "lib"
    if not (path / "default.nix").exists():
        pytest.fail(f"{LIB_ENV}={folder} holds no nixpkgs lib (default.nix)", pytrace=False)
    return path
