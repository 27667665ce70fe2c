"""colmena and deploy-rs: the documented examples (docs/transports/examples/) evaluated with
the real Nix evaluator, colmena's keyCommand run as colmena runs it, its output opened by
age with the host key, and the host-side command (aux.delivery.incoming, the deploy-rs
activation hook) taking it in."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO, cli, require_program
from tests.nixeval import nix_eval, nix_string
from tests.provision_helpers import make_host_root, make_vault
from tests.sshd import _keygen

EXAMPLES = REPO / "docs" / "transports" / "examples"
BIN = str(Path(sys.executable).parent)


def colmena_key(tmp_path: Path) -> dict[str, object]:
    expr = f'((import {nix_string(EXAMPLES / "colmena-hive.nix")}).web1 {{ name = "web1"; }})'
    node = nix_eval(expr, tmp_path)
    assert isinstance(node, dict)
    assert node["aux"]["delivery"]["incoming"]["enable"] is True
    key = node["deployment"]["keys"]["aux-secrets-bundle"]
    assert isinstance(key, dict)
    return key


def deploy_rs_hook(tmp_path: Path) -> str:
    stub = "{ activate = { nixos = c: { nixos = c; }; "
    stub += "custom = base: cmd: { inherit base cmd; }; }; }"
    expr = (
        f"(import {nix_string(EXAMPLES / 'deploy-rs.nix')} {{ "
        f'self = {{ nixosConfigurations.web1 = "system"; }}; pkgs = {{ aux-secrets = "pkg"; }}; '
        f"deploy-lib = {stub}; }}).nodes.web1"
    )
    node = nix_eval(expr, tmp_path)
    assert isinstance(node, dict)
    assert node["profilesOrder"] == ["system", "aux-secrets"]
    assert node["profiles"]["system"]["path"] == {"nixos": "system"}
    hook = node["profiles"]["aux-secrets"]["path"]["cmd"]
    assert isinstance(hook, str)
    return hook


def test_colmena_key_command_output_opens_on_the_host(tmp_path: Path) -> None:
    age = require_program("age", "age")
    key = colmena_key(tmp_path)
    assert key["destDir"] == "/var/lib/aux-secrets/incoming"
    assert (key["name"], key["permissions"], key["user"]) == ("web1.age", "0600", "root")
    assert key["uploadAt"] == "pre-activation"
    vault = make_vault(tmp_path)
    host_key = tmp_path / "web1_host_key"
    pub = _keygen(host_key)
    host = make_host_root(tmp_path, "web1", host_key)
    added = cli(
        "host",
        "add",
        "web1",
        "--ssh-host-key",
        pub,
        "--manifest",
        host.manifest,
        "--vault",
        vault.root,
    )
    assert added.returncode == 0, added.stderr
    # As colmena runs it: the argv as given, on the operator's PATH, stdout captured.
    command = key["keyCommand"]
    assert isinstance(command, list)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    env.update(
        PATH=f"{BIN}:{env.get('PATH', '')}",
        AUX_SECRETS_VAULT=str(vault.root),
        AUX_SECRETS_PASSWORD_FILE=str(vault.password_file),
        AUX_SECRETS_AGENT="off",
    )
    made = subprocess.run(command, capture_output=True, env=env, timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    # Colmena writes it to destDir/name with the key's owner and permissions.
    dest = host.root / str(key["destDir"]).lstrip("/") / str(key["name"])
    dest.parent.mkdir(parents=True)
    dest.write_bytes(made.stdout)
    dest.chmod(int(str(key["permissions"]), 8))
    opened = subprocess.run([age, "-d", "-i", str(host_key), str(dest)], capture_output=True)
    assert opened.returncode == 0, opened.stderr  # a standard age file for this host
    password = cli("derive", "db/web1", "--charset", "alnum", *vault.args()).stdout
    assert password not in made.stdout + made.stderr

    # The host takes it in: the hook's command (aux.delivery.incoming's), its absolute
    # paths under the test root.
    hook = [
        str(host.root / a.lstrip("/")) if a.startswith("/") else a
        for a in shlex.split(deploy_rs_hook(tmp_path))[1:]
    ]
    assert hook[0] == "pull" and hook[-1] == str(dest.parent)
    taken = cli(*hook, "--root", host.root)
    assert taken.returncode == 0, taken.stderr
    assert host.installed("db/password") == password
    # deploy-rs runs the hook on every deployment: the same bundle again is no change.
    again = cli(*hook, "--root", host.root)
    assert again.returncode == 0 and b"nothing newer" in again.stderr
    # A bundle the host refuses fails the hook, and so the deployment.
    dest.write_bytes(made.stdout[:-40])
    refused = cli(*hook, "--root", host.root, "--json")
    assert refused.returncode != 0
    assert b"this host keeps serial" in refused.stderr
    assert (
        json.loads(cli("status", "--json", "--root", host.root).stdout)["active"]["host"] == "web1"
    )
