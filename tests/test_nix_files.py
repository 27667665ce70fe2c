"""Every .nix file of the repository parses with the real Nix parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.nixeval import NixError, nix_instantiate

SKIP_DIRS = {".git", ".venv", "node_modules", "result"}
NIX_FILES = sorted(
    p.relative_to(REPO)
    for p in REPO.rglob("*.nix")
    if not SKIP_DIRS.intersection(p.relative_to(REPO).parts)
)


def test_the_nix_files_are_there() -> None:
    names = {str(p) for p in NIX_FILES}
    for expected in (
        "flake.nix",
        "nix/package.nix",
        "nix/pyrage.nix",
        "nix/manifest.nix",
        "nix/checks.nix",
        "modules/aux-secrets.nix",
        "nix/tests/module-eval.nix",
    ):
        assert expected in names


@pytest.mark.parametrize("path", NIX_FILES, ids=str)
def test_nix_file_parses(path: Path, tmp_path: Path) -> None:
    nix_instantiate(["--parse", str(path)], tmp_path)


def test_a_syntax_error_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.nix"
    bad.write_text("{ a = 1; b = ; }\n")
    with pytest.raises(NixError, match="syntax error"):
        nix_instantiate(["--parse", str(bad)], tmp_path)
