"""The workflows on a booted Debian 12 in systemd-nspawn, end to end, as an operator runs
them over ssh: rotation and clocks (values that ran out stay served), a settings change
re-sealed by the boot-time install, a stale vault clone refused, drift in what a service
reads. (The first deployment is in test_nspawn_host.py.)"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aux_secrets.adapters.hosts import HostDir
from tests.host.fleet import (
    HOST,
    SERVICES,
    manifest,
    operator_vault,
    provision,
    set_token,
    write_manifest,
)
from tests.host.operator import Host
from tests.host.services import install_services, records
from tests.provision_helpers import Vault

pytestmark = pytest.mark.host

HMAC = {
    "api/hmac": {
        "source": {
            "derive": {
                "realm": "api/hmac/{period}",
                "type": "raw",
                "length": 16,
                "encoding": "hex",
                "rotation": {"period": "monthly", "ahead": 1},
            }
        },
        "restartUnits": ["hmac.service"],
    }
}


def _ready(host: Host, tmp_path: Path, **settings: object) -> tuple[Vault, Path]:
    vault = operator_vault(host, tmp_path)
    install_services(host, {**SERVICES, "hmac": "/run/aux-secrets/api/hmac"})
    host.ssh_ok("aux-secrets units install --now")
    return vault, write_manifest(tmp_path, manifest(extra=HMAC, settings=dict(settings)))


def test_values_that_ran_out_keep_the_service_running(host: Host, tmp_path: Path) -> None:
    vault, first = _ready(host, tmp_path)
    made = (datetime.now(UTC) - timedelta(days=92)).strftime("%Y-%m-%dT%H:%M:%SZ")
    done = host.aux("provision", "--host", HOST, "--manifest", first, "--at", made, *vault.args())
    assert done.returncode == 0, done.stderr.decode()
    assert b"ran out" in done.stderr and b"STALE" in done.stderr
    value = host.file("/run/aux-secrets/api/hmac")
    assert value is not None and len(value) == 32
    # The boot-time install (and a restart of the service) keeps the last value.
    host.ssh_ok("systemctl restart aux-secrets-install.service hmac.service")
    assert host.file("/run/aux-secrets/api/hmac") == value
    assert records(host, "hmac")[-1].value == value
    journal = host.inside("journalctl -b --no-pager -q -u aux-secrets-install.service")
    assert "its values ran out" in journal and "STALE" in journal
    status = host.ssh("aux-secrets status")
    assert b"secret api/hmac is STALE" in status.stderr
    # A clock before the bundle was made is named; nothing is taken away either.
    behind = host.ssh("aux-secrets install --at 1970-01-01T00:00:00Z")
    assert behind.returncode == 0, behind.stderr.decode()
    assert b"the clock is wrong" in behind.stderr
    # The values live when the bundle was made are served meanwhile: never none.
    served = host.file("/run/aux-secrets/api/hmac")
    assert served is not None and len(served) == 32


def test_a_settings_change_is_resealed_by_the_boot_install(host: Host, tmp_path: Path) -> None:
    vault, first = _ready(host, tmp_path, backend="plain")
    provision(host, vault, first)
    store = json.loads(host.file("/var/lib/aux-secrets/store.json") or b"{}")
    assert store["backend"] == "plain"
    password = host.file("/run/aux-secrets/db/password")
    # The new generation's manifest asks for systemd-creds; the switch (here: the boot
    # unit) installs from the same store, re-sealed in place.
    changed = manifest(extra=HMAC, settings={"backend": "systemd-creds"})
    host.put("/etc/aux-secrets/manifest.json", json.dumps(changed))
    status = host.ssh("aux-secrets status")
    assert b"not sealed as the manifest asks (backend plain -> systemd-creds)" in status.stderr
    host.ssh_ok("systemctl restart aux-secrets-install.service")
    journal = host.inside("journalctl -b --no-pager -q -u aux-secrets-install.service")
    assert "re-sealed the local store in place (backend plain -> systemd-creds)" in journal
    store = json.loads(host.file("/var/lib/aux-secrets/store.json") or b"{}")
    assert (store["backend"], store["credentialKey"]) == ("systemd-creds", "host")
    blobs = host.ssh_ok("ls /var/lib/aux-secrets").split()
    assert [b for b in blobs if b.startswith("store-")] == [store["blob"]]
    assert host.file("/run/aux-secrets/db/password") == password
    assert "sealed     systemd-creds, key host" in host.ssh_ok("aux-secrets status")


def test_a_stale_vault_clone_cannot_take_the_host_back(host: Host, tmp_path: Path) -> None:
    vault, first = _ready(host, tmp_path)
    stale = Vault(tmp_path / "stale-clone", vault.password_file)
    shutil.copytree(vault.root, stale.root)  # another operator's copy, before the change
    set_token(vault, b"tok-2")
    provision(host, vault, first)
    assert records(host, "api")[-1].value == b"tok-2"
    # Serials are clock seconds and the stale clone has no record of the last one: until
    # the clock passes the host's serial, its bundle is refused as a replay, before the
    # version check this test is about.
    active = int(HostDir(vault.root / "hosts").serial_path(HOST).read_text())
    deadline = time.monotonic() + 30
    while time.time() <= active + 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    refused = host.aux("provision", "--host", HOST, "--manifest", first, *stale.args())
    assert refused.returncode != 0
    assert b"back from version 2 to version 1" in refused.stderr
    assert host.file("/run/aux-secrets/api/token") == b"tok-2"
    assert records(host, "api")[-1].value == b"tok-2"


def test_drift_in_what_a_service_reads_is_seen_and_repaired(host: Host, tmp_path: Path) -> None:
    vault, first = _ready(host, tmp_path)
    provision(host, vault, first)
    verify = ("verify", "--host", HOST, "--manifest", first, "--json", *vault.args())
    assert host.aux(*verify).returncode == 0
    host.ssh_ok(
        "chmod u+w /run/aux-secrets/db/password && echo edited > /run/aux-secrets/db/password"
    )
    drift = host.aux(*verify)
    assert drift.returncode == 1
    assert json.loads(drift.stdout)[HOST]["db/password"]["verdict"] == "changed"
    host.ssh_ok("aux-secrets install")  # puts it back and restarts what reads it
    assert host.aux(*verify).returncode == 0
    assert records(host, "web")[-1].value != b"edited\n"
