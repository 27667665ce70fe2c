"""docs/nixos.md's worked example, evaluated through the module as a user would copy it.

A stand-in for nixpkgs' PostgreSQL module declares what it would (the option and its
`postgres` account); everything else the example needs it declares itself. Needs
AUX_SECRETS_NIXPKGS_LIB.
"""

from __future__ import annotations

import re
from pathlib import Path

from aux_secrets.core.manifest import parse_manifest
from tests.helpers import REPO
from tests.nixeval import nix_eval, nix_string, nixpkgs_lib
from tests.test_nix_module import HARNESS, normalised

DOC = (REPO / "docs" / "nixos.md").read_text()
POSTGRES_STUB = """{ lib, ... }: {
  options.services.postgresql.enable = lib.mkEnableOption "postgresql";
  config.users.users.postgres = { isSystemUser = true; group = "postgres"; };
  config.users.groups.postgres = { };
}
"""


def worked_example() -> str:
    section = DOC.split("## Worked example", 1)[1]
    match = re.search(r"```nix\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def test_the_worked_example_evaluates(tmp_path: Path) -> None:
    lib = nixpkgs_lib()
    example = tmp_path / "web1.nix"
    example.write_text(worked_example())
    stub = tmp_path / "postgresql.nix"
    stub.write_text(POSTGRES_STUB)
    host = tmp_path / "host.nix"
    host.write_text(
        f'{{ imports = [ {example} {stub} ]; networking.hostName = "web1"; '
        "services.userborn.enable = true; }\n"
    )
    expr = (
        f"let r = import {nix_string(HARNESS)} {{ lib = import {nix_string(lib)}; "
        f"configuration = {host}; }}; in {{ inherit (r) failedAssertions manifest; "
        "units = builtins.attrNames r.services; }"
    )
    r = nix_eval(expr, tmp_path)
    assert r["failedAssertions"] == []
    manifest = parse_manifest(normalised(r["manifest"]), filename="web1.json")
    token = manifest.secrets["github/token"]
    assert (token.owner, token.group) == ("deployer", "deployer")  # the owner's group
    assert "aux-secrets-install" in r["units"] and "aux-secrets-rotate" in r["units"]
