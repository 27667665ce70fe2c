"""A NixOS rollback runs an older aux-secrets on the local store a newer one wrote
(docs/spec/evolution.md): shown on a booted Debian 12 in systemd-nspawn, where the
boot-time install unit reads a store.json carrying a field this aux-secrets does not know."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aux_secrets.core.bundle import canonical_json
from tests.host.fleet import SERVICES, derive, manifest, operator_vault, provision, write_manifest
from tests.host.operator import Host
from tests.host.services import install_services, records

pytestmark = pytest.mark.host

STORE_JSON = "/var/lib/aux-secrets/store.json"
SECRET = "/run/aux-secrets/db/password"


def test_boot_installs_from_a_newer_writers_store_unless_a_field_is_critical(
    host: Host, tmp_path: Path
) -> None:
    vault = operator_vault(host, tmp_path)
    install_services(host, SERVICES)
    host.ssh_ok("aux-secrets units install --now")
    provision(host, vault, write_manifest(tmp_path, manifest()))
    password = derive(vault, "db/web1", "--charset", "alnum")
    original = host.file(STORE_JSON)
    assert original is not None
    doc = json.loads(original)

    doc["recovery"] = {"escrow": "none"}  # what a newer aux-secrets might record
    host.put(STORE_JSON, canonical_json(doc) + b"\n", mode="0600")
    host.machine.reboot()
    assert host.active("aux-secrets-install.service") == "active"
    assert host.file(SECRET) == password
    assert records(host, "web")[-1].value == password

    # A field its writer marked critical: the boot install refuses in one line and
    # installs nothing it may misread.
    doc["critical"] = ["recovery"]
    host.put(STORE_JSON, canonical_json(doc) + b"\n", mode="0600")
    host.machine.reboot()
    assert host.active("aux-secrets-install.service") == "failed"
    assert host.file(SECRET) is None
    journal = host.inside("journalctl -b --no-pager -q -o cat -u aux-secrets-install.service")
    errors = [line for line in journal.splitlines() if line.startswith("aux-secrets: error:")]
    assert len(errors) == 1 and "recovery" in errors[0] and "marked it critical" in errors[0]
    assert "upgrade aux-secrets on this host" in journal
