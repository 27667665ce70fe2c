"""Workflow 3: a settings change arrives with the switch's manifest; its install re-seals
the local store in place (or fails loudly with the next step). Through the CLI, against
a real sshd on 127.0.0.1, real systemd-creds and a software TPM."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import assert_one_line_error, cli
from tests.provision_helpers import HostRoot, add_host, make_host_root, make_vault, tree_bytes
from tests.sshd import Sshd, sshd
from tests.swtpm import Swtpm, swtpm

__all__ = ["sshd", "swtpm"]

CRED = {"db/password": {"credential": {"name": "db", "units": ["db.service"]}}}


def _settings(host: HostRoot, *, credential: bool = True, **settings: Any) -> None:
    doc = json.loads(host.manifest.read_text())
    doc["settings"].update(settings)
    for name, extra in CRED.items() if credential else ():
        doc["secrets"][name].update(extra)
    host.manifest.write_text(json.dumps(doc))


def _store_files(host: HostRoot) -> list[str]:
    return sorted(p.name for p in (host.root / "var/lib/aux-secrets").glob("store-*"))


def _store_json(host: HostRoot) -> dict[str, Any]:
    doc = json.loads((host.root / "var/lib/aux-secrets/store.json").read_text())
    assert isinstance(doc, dict)
    return doc


def _provisioned(tmp_path: Path, server: Sshd) -> tuple[HostRoot, list[str]]:
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", server.host_key)
    add_host(vault, host, server)
    result = cli("provision", "--host", "web1", *vault.args())
    assert result.returncode == 0, result.stderr
    return host, vault.args()


def test_the_switch_install_reseals_plain_to_systemd_creds(tmp_path: Path, sshd: Sshd) -> None:
    host, _ = _provisioned(tmp_path, sshd)
    assert _store_json(host)["backend"] == "plain"
    (old_blob,) = _store_files(host)
    values = {n: host.installed(n) for n in ("db/password", "api/hmac")}

    _settings(host, backend="systemd-creds", credentialKey="host")  # the new generation
    shown = cli("status", "--root", host.root)
    assert b"not sealed as the manifest asks (backend plain -> systemd-creds)" in shown.stderr
    assert "sealed     plain (MISMATCH: backend plain -> systemd-creds)" in shown.stdout.decode()
    doc = json.loads(cli("status", "--root", host.root, "--json").stdout)
    assert doc["sealingMismatch"] == ["backend plain -> systemd-creds"]

    dry = cli("install", "--root", host.root, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert b"would re-seal the local store in place" in dry.stderr
    assert _store_files(host) == [old_blob]

    switch = cli("install", "--root", host.root, "--json")
    assert switch.returncode == 0, switch.stderr
    assert json.loads(switch.stdout)["resealed"] == ["backend plain -> systemd-creds"]
    meta = _store_json(host)
    assert (meta["backend"], meta["credentialKey"]) == ("systemd-creds", "host")
    (new_blob,) = _store_files(host)  # the plain blob (its key in the clear) is gone
    assert new_blob != old_blob and new_blob.endswith("-1.bin")
    data = (host.root / "var/lib/aux-secrets" / new_blob).read_bytes()
    assert data[:8] == b"AUXSTORE" and data[9] == 1  # key kind 1: sealed by systemd-creds
    assert (host.root / "var/lib/aux-secrets/credentials/db.cred").is_file()
    assert {n: host.installed(n) for n in values} == values
    after = cli("status", "--root", host.root, "--json")
    assert json.loads(after.stdout)["sealingMismatch"] == []
    again = cli("install", "--root", host.root, "--json")
    assert json.loads(again.stdout)["resealed"] == []


def test_turning_the_tpm_on_and_changing_pcrs(tmp_path: Path, sshd: Sshd, swtpm: Swtpm) -> None:
    host, _ = _provisioned(tmp_path, sshd)
    env = {"SYSTEMD_LOG_LEVEL": "err"}
    tpm = {"device": swtpm.device, "pcrs": "7"}
    # No individual credential here: each is one more TPM session in one process, and
    # swtpm without a resource manager has only three.
    _settings(host, credential=False, backend="systemd-creds", credentialKey="tpm2", tpm2=tpm)
    on = cli("install", "--root", host.root, "--json", env=env)
    swtpm.flush()
    assert on.returncode == 0, on.stderr
    assert json.loads(on.stdout)["resealed"] == ["backend plain -> systemd-creds"]
    meta = _store_json(host)
    assert (meta["credentialKey"], meta["tpm2Pcrs"]) == ("tpm2", "7")

    pcrs = {**tpm, "pcrs": "0+7"}
    _settings(host, credential=False, backend="systemd-creds", credentialKey="tpm2", tpm2=pcrs)
    moved = cli("install", "--root", host.root, "--json", env=env)
    swtpm.flush()
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["resealed"] == ["tpm2.pcrs 7 -> 0+7"]
    assert _store_json(host)["tpm2Pcrs"] == "0+7"
    assert _store_files(host) == [_store_json(host)["blob"]]
    # Sealed the new way: a change of PCR 0 now makes the TPM refuse it.
    swtpm.extend_pcr(0)
    refused = cli("install", "--root", host.root, env=env)
    swtpm.flush()
    assert_one_line_error(refused, "TPM")


def test_what_cannot_be_resealed_on_the_host_fails_loudly(tmp_path: Path, sshd: Sshd) -> None:
    host, _ = _provisioned(tmp_path, sshd)
    before = tree_bytes(host.root)
    _settings(host, backend="age")
    to_age = cli("install", "--root", host.root)
    assert_one_line_error(to_age, "backend age keeps the delivered bundle itself")
    assert b"aux-secrets provision --host web1" in to_age.stderr
    pinned = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBhB7h4gQyFSJ0pHPuSVDhBC9dKGqkUr5Nn8Iq6mDsAx"
    _settings(host, backend="plain", bundleSigners=[pinned])
    unpinned = cli("install", "--root", host.root)
    assert_one_line_error(unpinned, "which settings.bundleSigners no longer lists")
    unchanged = {k: v for k, v in tree_bytes(host.root).items() if "manifest" not in k}
    assert unchanged == {k: v for k, v in before.items() if "manifest" not in k}
