"""Delivery beyond ssh on a booted Debian 12 in systemd-nspawn: a bundle dropped by a copy
transport is taken in by the incoming path unit; the pull timer's service takes in a
published bundle. Both driven as an operator does, with this checkout's CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from tests.helpers import cli
from tests.host.fleet import HOST, SERVICES, derive, manifest, operator_vault, write_manifest
from tests.host.operator import Host
from tests.host.services import install_services, records
from tests.provision_helpers import Vault

pytestmark = pytest.mark.host

WAIT = 60.0


def wait_for(host: Host, path: str, value: bytes) -> None:
    deadline = time.monotonic() + WAIT
    while host.file(path) != value:
        if time.monotonic() > deadline:
            journal = host.inside("journalctl -b --no-pager -q -u 'aux-secrets-*' | tail -20")
            raise AssertionError(f"{path} did not get its value within {WAIT:g}s:\n{journal}")
        time.sleep(0.3)


def signer(vault: Vault) -> str:
    done = cli("signer", "--ssh", *vault.args())
    assert done.returncode == 0, done.stderr
    return done.stdout.decode().strip()


def publish_into(
    host: Host, vault: Vault, tmp_path: Path, doc: dict[str, Any], directory: str
) -> None:
    """``provision --publish`` on the operator's side, the bundle copied into the host's
    ``directory`` (a publish directory synced to it)."""
    pub = tmp_path / "pub"
    done = host.aux(
        "provision",
        "--host",
        HOST,
        "--manifest",
        write_manifest(tmp_path, doc),
        "--publish",
        pub,
        *vault.args(),
    )
    assert done.returncode == 0, done.stderr.decode()
    host.put(f"{directory}/{HOST}.age", (pub / f"{HOST}.age").read_bytes(), mode="0600")


def provision_by_copy(host: Host, vault: Vault, tmp_path: Path) -> dict[str, Any]:
    """The copy transport to storeDir/incoming in the host's vault entry, then provision
    (the manifest on the operator's side): provision's report, the bundle delivered."""
    with (vault.root / f"hosts/{HOST}.toml").open("a") as handle:
        destination = "{target}:/var/lib/aux-secrets/incoming/"
        handle.write(
            tomli_w.dumps({"transport": {"kind": "copy", "copy": [{"destination": destination}]}})
        )
    done = host.aux(
        "provision",
        "--host",
        HOST,
        "--manifest",
        write_manifest(tmp_path, manifest()),
        "--json",
        *vault.args(),
    )
    assert done.returncode == 0, done.stderr.decode()
    report: dict[str, Any] = json.loads(done.stdout)
    assert report["delivered"] is True
    return report


def test_a_copied_bundle_is_taken_in_by_the_incoming_path_unit(host: Host, tmp_path: Path) -> None:
    vault = operator_vault(host, tmp_path)
    install_services(host, SERVICES)
    host.put_manifest(manifest())
    host.ssh_ok("aux-secrets units install --now --incoming")
    assert host.active("aux-secrets-incoming.path") == "active"
    report = provision_by_copy(host, vault, tmp_path)
    password = derive(vault, "db/web1", "--charset", "alnum")
    wait_for(host, "/run/aux-secrets/db/password", password)
    deadline = time.monotonic() + WAIT
    while records(host, "web")[-1].value != password and time.monotonic() < deadline:
        time.sleep(0.3)
    assert records(host, "web")[-1].value == password  # restarted with its secret
    status = json.loads(host.ssh_ok("aux-secrets status --json"))
    assert status["active"]["serial"] == report["serial"]
    assert host.ordering_cycles() == []


def test_the_pull_timer_service_takes_in_a_published_bundle(host: Host, tmp_path: Path) -> None:
    vault = operator_vault(host, tmp_path)
    install_services(host, SERVICES)
    doc = manifest(settings={"bundleSigners": [signer(vault)]})
    host.put_manifest(doc)
    host.ssh_ok(
        "mkdir -p /srv/aux-pub && aux-secrets units install --now --pull-source /srv/aux-pub"
    )
    # Boot and the switch never wait for a pull: the timer is armed, the service did not run.
    assert host.active("aux-secrets-pull.timer") == "active"
    assert host.active("aux-secrets-pull.service") == "inactive"
    publish_into(host, vault, tmp_path, doc, "/srv/aux-pub")

    host.ssh_ok("systemctl start aux-secrets-pull.service")  # what the timer starts
    password = derive(vault, "db/web1", "--charset", "alnum")
    wait_for(host, "/run/aux-secrets/db/password", password)
    # The same published bundle again: nothing newer, the service still succeeds.
    host.ssh_ok("systemctl start aux-secrets-pull.service")
    assert host.inside("systemctl show -P Result aux-secrets-pull.service").strip() == "success"
    # A missing source leaves the host as it is, with one line in the journal.
    host.ssh_ok("rm /srv/aux-pub/web1.age")
    failed = host.ssh("systemctl start aux-secrets-pull.service")
    assert failed.returncode != 0
    journal = host.inside("journalctl -b --no-pager -q -u aux-secrets-pull.service")
    assert "this host keeps serial" in journal
    assert host.file("/run/aux-secrets/db/password") == password
