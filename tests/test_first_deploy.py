"""Workflow 1: the first deployment with ``provision`` alone, to a host with no manifest.

Every bundle carries the manifest it was made from; a host without a manifest of its own
seals and installs with that one (docs/spec/bundle.md, docs/spec/installer.md). Driven
through the CLI against a real sshd on 127.0.0.1.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.helpers import assert_one_line_error, cli
from tests.provision_helpers import HostRoot, add_host, make_host_root, make_vault, tree_bytes
from tests.sshd import Sshd, sshd

__all__ = ["sshd"]


def _new_host(tmp_path: Path, server: Sshd, name: str = "web1") -> tuple[HostRoot, Path]:
    """A host root with its ssh host key but no manifest; the manifest stays with the
    operator (returned), as for a new NixOS host before its first switch."""
    host = make_host_root(tmp_path, name, server.host_key)
    kept = tmp_path / f"{name}.json"
    shutil.move(host.manifest, kept)
    return HostRoot(host.name, host.root, kept, host.systemctl_log), kept


def _derive(vault_args: list[str], realm: str, *args: str) -> bytes:
    result = cli("derive", realm, *args, *vault_args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_provision_alone_installs_on_a_host_without_a_manifest(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    host, kept = _new_host(tmp_path, sshd)
    add_host(vault, host, sshd)  # --manifest is the operator's copy, outside the host
    host_manifest = host.root / "etc/aux-secrets/manifest.json"
    assert not host_manifest.exists()

    result = cli("provision", "--host", "web1", *vault.args())
    assert result.returncode == 0, result.stderr
    assert host.installed("db/password") == _derive(vault.args(), "db/web1", "--charset", "alnum")
    assert host.calls() == ["try-restart postgresql.service", "try-reload-or-restart api.service"]
    err = result.stdout.decode() + result.stderr.decode()
    assert "installing with the one bundle serial" in err
    assert not host_manifest.exists()  # nothing written into the host's /etc

    shown = cli("status", "--root", host.root)
    assert shown.returncode == 0, shown.stderr
    assert "manifest   none at" in shown.stdout.decode()
    assert "the one the active bundle carries" in shown.stdout.decode()

    # At boot (or a timer) the host installs again from its store alone: no change.
    again = cli("install", "--root", host.root, "--json")
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["manifest"] == {"carried": True, "path": None}
    assert doc["changed"] == [] and doc["appeared"] == []

    # The switch puts the same manifest on the host: it takes over, nothing changes.
    host_manifest.write_bytes(kept.read_bytes())
    switch = cli("install", "--root", host.root, "--json")
    assert switch.returncode == 0, switch.stderr
    doc = json.loads(switch.stdout)
    assert doc["manifest"]["carried"] is False
    assert doc["changed"] == [] and doc["tryRestart"] == []
    assert b"another manifest" not in switch.stderr


def test_first_deployment_from_a_built_system(tmp_path: Path, sshd: Sshd) -> None:
    """build, provision --system ./result, switch: the documented NixOS order."""
    vault = make_vault(tmp_path)
    host, kept = _new_host(tmp_path, sshd)
    add_host(vault, host, sshd)
    system = tmp_path / "result"
    (system / "etc/aux-secrets").mkdir(parents=True)
    shutil.copy(kept, system / "etc/aux-secrets/manifest.json")
    result = cli("provision", "--host", "web1", "--system", system, "--json", *vault.args())
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(result.stdout)["changed"]) == ["api/hmac", "db/password"]
    assert host.installed("api/hmac")


def test_a_hand_written_toml_manifest_needs_no_remote_manifest(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    host, _ = _new_host(tmp_path, sshd)
    systemctl = host.root / "systemctl"
    toml = tmp_path / "web1.toml"
    toml.write_text(
        "version = 1\n"
        'host = "web1"\n'
        "[settings]\n"
        'backend = "plain"\n'
        f'systemctl = ["{systemctl}"]\n'
        '[secrets."app/key"]\n'
        'source = { derive = { realm = "app/key/web1", charset = "alnum" } }\n'
        'restartUnits = ["app.service"]\n'
        '[templates."app.env"]\n'
        'content = "KEY={{aux:app/key}}\\n"\n'
    )
    add_host(vault, HostRoot("web1", host.root, toml, host.systemctl_log), sshd)
    result = cli("provision", "--host", "web1", *vault.args())
    assert result.returncode == 0, result.stderr
    value = _derive(vault.args(), "app/key/web1", "--charset", "alnum")
    assert host.installed("app/key") == value
    assert (host.root / "run/aux-secrets/templates/app.env").read_bytes() == b"KEY=" + value + b"\n"
    assert host.calls() == ["try-restart app.service"]


def test_the_carried_manifest_seals_the_store_as_it_asks(tmp_path: Path, sshd: Sshd) -> None:
    """Backend and credentials come from the carried manifest, not the built-in defaults."""
    vault = make_vault(tmp_path)
    host, kept = _new_host(tmp_path, sshd)
    doc = json.loads(kept.read_text())
    doc["settings"]["backend"] = "systemd-creds"
    doc["secrets"]["db/password"]["credential"] = {"name": "db", "units": ["db.service"]}
    kept.write_text(json.dumps(doc))
    add_host(vault, host, sshd)
    result = cli("provision", "--host", "web1", *vault.args())
    assert result.returncode == 0, result.stderr
    status = json.loads(cli("status", "--root", host.root, "--json").stdout)
    assert status["backend"] == "systemd-creds"
    assert status["active"]["credentialKey"] == "host"
    assert (host.root / "var/lib/aux-secrets/credentials/db.cred").is_file()
    assert host.installed("db/password")


def test_a_carried_manifest_with_another_store_dir_is_refused(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    host, kept = _new_host(tmp_path, sshd)
    doc = json.loads(kept.read_text())
    doc["settings"]["storeDir"] = "/srv/aux"
    kept.write_text(json.dumps(doc))
    add_host(vault, host, sshd)
    before = tree_bytes(host.root)
    refused = cli("provision", "--host", "web1", *vault.args())
    assert_one_line_error(refused, "/srv/aux", "/var/lib/aux-secrets")
    assert b"put the manifest on the host first" in refused.stderr
    assert tree_bytes(host.root) == before


def test_install_without_any_manifest_or_bundle_says_what_to_do(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    result = cli("install", "--root", root)
    line = assert_one_line_error(result, "does not exist", "no bundle has been delivered yet")
    assert str(root / "etc/aux-secrets/manifest.json") in line
    assert b"aux-secrets provision --host" in result.stderr
    assert result.returncode == 75  # never provisioned: the units' non-fatal state


def test_a_host_manifest_other_than_the_bundles_is_named(tmp_path: Path, sshd: Sshd) -> None:
    """build, provision, switch on a host that has an older manifest: the provision's
    install uses the host's own and says the rest comes with the switch."""
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    add_host(vault, host, sshd)
    assert cli("provision", "--host", "web1", *vault.args()).returncode == 0
    new = json.loads(host.manifest.read_text())
    new["secrets"]["new/token"] = {"source": {"derive": {"realm": "new/token"}}}
    built = tmp_path / "new.json"
    built.write_text(json.dumps(new))
    result = cli("provision", "--host", "web1", "--manifest", built, *vault.args())
    assert result.returncode == 0, result.stderr
    assert "was made from another manifest than" in result.stdout.decode() + result.stderr.decode()
    assert not (host.root / "run/aux-secrets/new/token").exists()
    host.manifest.write_text(json.dumps(new))  # the switch
    switch = cli("install", "--root", host.root)
    assert switch.returncode == 0, switch.stderr
    assert (host.root / "run/aux-secrets/new/token").is_file()
    assert b"another manifest" not in switch.stderr
