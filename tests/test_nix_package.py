"""nix/package.nix: what its build runs and ships (no Nix needed: the file is read)."""

from __future__ import annotations

import re

from tests.helpers import REPO

PACKAGE = (REPO / "nix" / "package.nix").read_text()
CHECKED = re.findall(r'"(tests/test_[a-z0-9_]+\.py)"', PACKAGE)
# What a Nix build sandbox lacks: the programs tests drive, root, a Nix store.
NEEDS_MORE = re.compile(r"require_program|useradd|groupadd|nix_eval|nix_instantiate|sshd")


def test_the_build_runs_only_tests_that_need_nothing_else() -> None:
    assert len(CHECKED) >= 20
    for name in CHECKED:
        path = REPO / name
        assert path.is_file(), name
        assert not NEEDS_MORE.search(path.read_text()), f"{name} needs a program or root"


def test_license_file_matches_the_package() -> None:
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    assert "license = lib.licenses.mit" in PACKAGE
    pyproject = (REPO / "pyproject.toml").read_text()
    assert 'license = { text = "MIT" }' in pyproject


def test_the_source_leaves_out_build_output() -> None:
    for name in ('"build"', '"dist"', '".egg-info"', '"result"', '".venv"'):
        assert name in PACKAGE, name
