"""A host's first deployment by pull or by a dropped bundle, on a booted Debian 12 in
systemd-nspawn: the host has no manifest (its first bundle brings one), only the units
`aux-secrets units install` wrote and the name it was given, or its hostname."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from tests.host.fleet import HOST, SERVICES, derive, manifest, operator_vault
from tests.host.operator import Host
from tests.host.services import install_services, records
from tests.host.test_nspawn_delivery import (
    provision_by_copy,
    publish_into,
    signer,
    wait_for,
)

pytestmark = pytest.mark.host

MANIFEST = "/etc/aux-secrets/manifest.json"


def journal(host: Host, unit: str) -> str:
    return host.inside(f"journalctl -b --no-pager -q -u {unit}")


def test_a_host_without_a_manifest_pulls_its_first_bundle(host: Host, tmp_path: Path) -> None:
    vault = operator_vault(host, tmp_path)
    install_services(host, SERVICES)
    assert not host.exists(MANIFEST)
    pin = shlex.quote(signer(vault))
    host.ssh_ok(
        "mkdir -p /srv/aux-pub && aux-secrets units install --now "
        f"--pull-source /srv/aux-pub --host {HOST} --signer {pin}"
    )
    assert host.active("aux-secrets-pull.timer") == "active"
    # The manifest lives only on the operator's side, and in the bundle.
    publish_into(host, vault, tmp_path, manifest(), "/srv/aux-pub")

    host.ssh_ok("systemctl start aux-secrets-pull.service")  # what the timer starts
    password = derive(vault, "db/web1", "--charset", "alnum")
    wait_for(host, "/run/aux-secrets/db/password", password)
    assert records(host, "web")[-1].value == password  # restarted, and read it
    assert records(host, "api")[-1].value == b"tok-1"
    assert "pulled serial" in journal(host, "aux-secrets-pull.service")
    assert not host.exists(MANIFEST)  # installed with the manifest the bundle carries
    # Boot installs from the local store with that manifest, before the services start.
    host.machine.reboot()
    assert host.file("/run/aux-secrets/db/password") == password
    assert records(host, "web")[-1].value == password
    # The same bundle again: nothing newer, and the host is still named web1.
    host.ssh_ok("systemctl start aux-secrets-pull.service")
    assert f"{HOST}: /srv/aux-pub/{HOST}.age holds nothing newer" in journal(
        host, "aux-secrets-pull.service"
    )


def test_a_host_without_a_manifest_takes_in_a_dropped_bundle(host: Host, tmp_path: Path) -> None:
    """colmena and deploy-rs name a host by its hostname: no --host needed."""
    vault = operator_vault(host, tmp_path)
    install_services(host, SERVICES)
    host.ssh_ok(f"hostname {HOST} && aux-secrets units install --now --incoming")
    assert not host.exists(MANIFEST) and not host.exists("/etc/aux-secrets/delivery.env")
    assert host.active("aux-secrets-incoming.path") == "active"
    provision_by_copy(host, vault, tmp_path)
    password = derive(vault, "db/web1", "--charset", "alnum")
    wait_for(host, "/run/aux-secrets/db/password", password)
    assert records(host, "api")[-1].value == b"tok-1"
    assert f"{HOST}: pulled serial" in journal(host, "aux-secrets-incoming.service")
    assert not host.exists(MANIFEST)
    status = json.loads(host.ssh_ok("aux-secrets status --json"))
    assert status["active"]["host"] == HOST
