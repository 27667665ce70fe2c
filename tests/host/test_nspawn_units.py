"""A manifest that names a unit the booted host does not have (Debian 12 in
systemd-nspawn, the real systemctl): provision succeeds, says which unit it skipped, and
the real unit beside it restarts with its new secret, once; the boot-time install
succeeds too."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.host.fleet import HOST, SERVICES, derive, manifest, operator_vault, write_manifest
from tests.host.operator import Host
from tests.host.services import Record, install_services, records

pytestmark = pytest.mark.host

MISSING = "gone.service"
WAIT = 30.0


def started_record(host: Host, pid: str) -> list[Record]:
    """web's records once the process ``pid`` has written its own (systemctl returns when
    the process is forked, before it has run the recorder)."""
    deadline = time.monotonic() + WAIT
    while not any(r.pid == pid for r in records(host, "web")):
        assert time.monotonic() < deadline, f"web.service {pid} recorded nothing in {WAIT:g}s"
        time.sleep(0.2)
    return records(host, "web")


def manifest_naming_a_missing_unit() -> dict[str, Any]:
    doc = manifest()
    doc["secrets"]["db/password"]["restartUnits"] = ["web.service", MISSING]
    return doc


def test_the_real_systemctl_asks_for_the_others_and_exits_5(host: Host) -> None:
    """What the installer relies on (tests/fake_systemd.py copies it): systemctl restarts
    the known unit despite the missing one, exits 5 with one "not found" line, and
    ``show`` answers for both, in order."""
    host.keyscan()
    install_services(host, {"web": SERVICES["web"]})
    before = host.main_pid("web.service")
    done = host.machine.run(["systemctl", "try-restart", MISSING, "web.service"], check=False)
    assert done.returncode == 5
    assert done.stderr.strip() == f"Failed to try-restart {MISSING}: Unit {MISSING} not found."
    assert host.main_pid("web.service") != before
    show = host.inside(f"systemctl show --property=Id,LoadState -- {MISSING} web")
    assert show == f"Id={MISSING}\nLoadState=not-found\n\nId=web.service\nLoadState=loaded\n"
    # A masked unit is no failure at all: try-restart leaves it alone and exits 0.
    host.inside("systemctl mask idle-masked.service")
    assert host.machine.run(["systemctl", "try-restart", "idle-masked.service"]).returncode == 0


def test_provision_skips_a_unit_the_host_lacks_and_restarts_the_real_one(
    host: Host, tmp_path: Path
) -> None:
    vault = operator_vault(host, tmp_path)
    install_services(host, SERVICES)
    host.ssh_ok("aux-secrets units install --now")
    web_pid = host.main_pid("web.service")
    starts = len(records(host, "web"))

    done = host.aux(
        "provision",
        "--host",
        HOST,
        "--manifest",
        write_manifest(tmp_path, manifest_naming_a_missing_unit()),
        *vault.args(),
    )
    out = done.stdout.decode() + done.stderr.decode()
    assert done.returncode == 0, out
    warnings = [line for line in out.splitlines() if f"unit {MISSING} is not on this host" in line]
    assert len(warnings) == 1, out
    assert "skipped its try-restart" in warnings[0]

    password = derive(vault, "db/web1", "--charset", "alnum")
    assert host.file("/run/aux-secrets/db/password") == password
    new_pid = host.main_pid("web.service")
    assert new_pid != web_pid
    web = started_record(host, new_pid)
    assert len(web) == starts + 1  # restarted once: systemctl had already done it
    assert web[-1].event == "start" and web[-1].value == password
    assert records(host, "api")[-1].event == "reload"
    assert not host.exists("/run/aux-secrets.d/.pending.json")

    status = json.loads(host.ssh_ok("aux-secrets status --json"))
    assert status["active"] is not None
    entries = json.loads(host.ssh_ok("aux-secrets audit show --json"))
    entries = entries if isinstance(entries, list) else entries["entries"]
    install = [e for e in entries if e["event"] == "install"][-1]
    assert install["generation"] == 1
    assert install["unitsNotFound"] == [MISSING]
    assert host.ssh("aux-secrets audit verify").returncode == 0
    assert host.ordering_cycles() == []


def test_the_boot_time_install_does_not_fail_on_a_unit_the_host_lacks(
    host: Host, tmp_path: Path
) -> None:
    """At boot every file appears, so the install asks for every unit of the manifest,
    the missing one included: the install unit succeeds, and says which it skipped."""
    vault = operator_vault(host, tmp_path)
    install_services(host, SERVICES)
    host.ssh_ok("aux-secrets units install --now")
    doc = manifest_naming_a_missing_unit()
    done = host.aux(
        "provision", "--host", HOST, "--manifest", write_manifest(tmp_path, doc), *vault.args()
    )
    assert done.returncode == 0, done.stderr.decode()
    host.machine.reboot()
    assert host.active("aux-secrets-install.service") == "active"
    journal = host.inside("journalctl -b --no-pager -q -u aux-secrets-install.service")
    assert f"unit {MISSING} is not on this host" in journal, journal
    boot = host.inside("cat /proc/sys/kernel/random/boot_id").strip()
    web = [r for r in records(host, "web") if r.boot_id == boot]
    assert [r.event for r in web] == ["start"]
    assert web[0].value == derive(vault, "db/web1", "--charset", "alnum")
    assert host.ordering_cycles() == []
