"""The host lifecycle on a booted Debian 12 in systemd-nspawn, driven as an operator does:
over ssh on 127.0.0.1, with this checkout's CLI on both sides."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.host.fleet import (
    SERVICES,
    derive,
    manifest,
    operator_vault,
    provision,
    set_token,
    write_manifest,
)
from tests.host.operator import Host
from tests.host.services import install_services, records

pytestmark = pytest.mark.host


def units_install(host: Host) -> None:
    host.ssh_ok("aux-secrets units install --now")


def test_first_deployment_over_ssh_to_a_host_that_never_had_a_bundle(
    host: Host, tmp_path: Path
) -> None:
    vault = operator_vault(host, tmp_path)
    assert not host.exists("/etc/aux-secrets")
    install_services(host, SERVICES)
    units_install(host)
    # Before any bundle: the services run without their files, the boot-time unit skips.
    assert records(host, "web")[-1].value is None
    assert host.active("aux-secrets-install.service") == "inactive"

    report = provision(host, vault, write_manifest(tmp_path, manifest()))

    password = derive(vault, "db/web1", "--charset", "alnum")
    assert host.file("/run/aux-secrets/db/password") == password
    assert sorted(report["restarted"]) == ["idle.service", "web.service"]
    web = records(host, "web")
    assert [r.event for r in web] == ["start", "start"]
    assert web[-1].value == password
    assert records(host, "api")[-1].event == "reload"
    assert records(host, "api")[-1].value == b"tok-1"
    # The host never got a manifest file: it installed with the one the bundle carries.
    assert not host.exists("/etc/aux-secrets/manifest.json")
    status = json.loads(host.ssh_ok("aux-secrets status --json"))
    assert status["active"]["serial"] == report["serial"]
    assert host.ordering_cycles() == []


def test_restart_only_what_changed_reload_and_stopped_units(host: Host, tmp_path: Path) -> None:
    vault = operator_vault(host, tmp_path)
    install_services(host, SERVICES)
    host.ssh_ok("systemctl stop idle.service")
    units_install(host)
    first = write_manifest(tmp_path, manifest())
    provision(host, vault, first)
    web_pid, api_pid = host.main_pid("web.service"), host.main_pid("api.service")
    counts = {name: len(records(host, name)) for name in SERVICES}

    # No change: nothing restarted or reloaded, same processes.
    report = provision(host, vault, first)
    assert report["noChange"] is True and report["restarted"] == [] and report["reloaded"] == []
    assert {name: len(records(host, name)) for name in SERVICES} == counts
    assert (host.main_pid("web.service"), host.main_pid("api.service")) == (web_pid, api_pid)

    # The fixed secret changes: api.service gets a reload (same PID), web is left alone.
    set_token(vault, b"tok-2")
    report = provision(host, vault, first)
    assert report["reloaded"] == ["api.service"] and report["restarted"] == []
    api = records(host, "api")
    assert api[-1].event == "reload" and api[-1].value == b"tok-2"
    assert host.main_pid("api.service") == api_pid
    assert host.main_pid("web.service") == web_pid and len(records(host, "web")) == counts["web"]

    # db/password's realm changes: web.service restarts and reads the new value.
    report = provision(host, vault, write_manifest(tmp_path, manifest(db_realm="db/web1/v2")))
    assert "web.service" in report["restarted"]
    web = records(host, "web")
    assert web[-1].event == "start"
    assert web[-1].value == derive(vault, "db/web1/v2", "--charset", "alnum")
    assert host.main_pid("web.service") != web_pid
    # A stopped unit stays stopped through every provision.
    assert host.active("idle.service") == "inactive"
    assert records(host, "idle")[-1].value is None
    assert host.ordering_cycles() == []
