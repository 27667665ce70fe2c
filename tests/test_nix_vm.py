"""The NixOS VM tests cannot run here (no KVM, no nixpkgs), but their test scripts must
evaluate and be valid Python for the test driver, and each names its nodes."""

from __future__ import annotations

import ast
import re
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
    # checks.python runs the whole suite: the vault and hosts tests need git.
    assert "pkgs.git" in checks


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


NODE_EVAL = """let
  lib = import {lib};
  self = {flake};
  t = import {test} {{ inherit self; }};
  evalNode = configuration: import {harness} {{ inherit lib configuration; }};
  result = r: {{
    inherit (r) failedAssertions systemPackages;
    packagePaths = map (p: p.outPath) r.config.environment.systemPackages;
    services = builtins.attrNames r.services;
    timers = builtins.attrNames r.timers;
    secrets = lib.mapAttrs (_: s: s.path) r.config.aux.secrets;
    specialisations = builtins.attrNames r.config.specialisation;
  }};
in {{
  testScript = t.testScript;
  nodes = lib.mapAttrs (_: node: result (evalNode node)) t.nodes;
  specialised = lib.mapAttrs (
    _: node:
    lib.mapAttrs (_: s: result (evalNode {{ imports = [ node s.configuration ]; }}))
      (evalNode node).config.specialisation
  ) t.nodes;
}}"""


@pytest.mark.parametrize("test", VM_TESTS, ids=lambda p: p.stem)
def test_vm_nodes_evaluate_with_the_module(test: Path, tmp_path: Path) -> None:
    """Right by construction: each node (and each specialisation of it) evaluates under the
    modern lib with the stubs of nix/tests/module-eval.nix, no assertion fails (those of
    the module and the upstream ones the stubs repeat), the command is on the host
    without the test adding it, and every aux-secrets unit the script uses exists there."""
    from tests.nixeval import nixpkgs_lib
    from tests.test_nix_module import HARNESS, _flake

    lib = nixpkgs_lib()
    expr = NODE_EVAL.format(lib=lib, flake=_flake(lib), test=test, harness=HARNESS)
    r = nix_eval(expr, tmp_path)
    used = set(re.findall(r"aux-secrets-[a-z-]+\.(?:service|timer)", r["testScript"]))
    configurations = list(r["nodes"].items()) + [
        (f"{node}/{name}", c)
        for node, specs in r["specialised"].items()
        for name, c in specs.items()
    ]
    for name, node in configurations:
        assert node["failedAssertions"] == [], (name, node["failedAssertions"])
        # The module's own package, not one the test adds from the flake.
        assert node["systemPackages"].count("aux-secrets") == 1, name
        assert not [p for p in node["packagePaths"] if "1111111111" in p], name
        units = {f"{u}.service" for u in node["services"]} | {f"{u}.timer" for u in node["timers"]}
        assert used <= units, (name, used - units)
        for path in node["secrets"].values():
            assert path.startswith("/run/aux-secrets"), path


def test_mkpasswd_salts_are_valid() -> None:
    """crypt(3) salts are [./0-9A-Za-z] only: mkpasswd refuses '-' ("Illegal salt character")."""
    for test in VM_TESTS:
        for salt in re.findall(r"mkpasswd [^\n]*-S (\S+)", test.read_text()):
            assert re.fullmatch(r"[./0-9A-Za-z]{8,16}", salt), (test.name, salt)
