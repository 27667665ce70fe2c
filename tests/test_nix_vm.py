"""The NixOS VM tests cannot run here (no KVM, no nixpkgs), but their test scripts must
evaluate and be valid Python for the test driver, and each names its nodes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.nixeval import nix_eval, nix_string

VM_TESTS = sorted((REPO / "nix" / "tests").glob("vm-*.nix"))
VM_TESTS = [p for p in VM_TESTS if p.name != "vm-common.nix"]
FAKE_SELF = "{ nixosModules.default = { }; packages = { }; }"


def test_vm_tests_are_listed_in_the_checks() -> None:
    checks = (REPO / "nix" / "tests" / "default.nix").read_text()
    assert {p.name for p in VM_TESTS} == {
        "vm-install.nix",
        "vm-users.nix",
        "vm-tpm2.nix",
        "vm-rotation.nix",
    }
    for test in VM_TESTS:
        assert f"./{test.name}" in checks


@pytest.mark.parametrize("test", VM_TESTS, ids=lambda p: p.stem)
def test_vm_test_script_is_python(test: Path, tmp_path: Path) -> None:
    expr = (
        f"let t = import {nix_string(test)} {{ self = {FAKE_SELF}; }}; in "
        "{ inherit (t) name testScript; nodes = builtins.attrNames t.nodes; }"
    )
    result = nix_eval(expr, tmp_path)
    assert result["name"].startswith("aux-secrets-")
    tree = ast.parse(result["testScript"], filename=test.name)
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    for node in result["nodes"]:
        assert node in used, f"node {node} is never used by the script"
    assert "provision" in used and "make_vault" in used
