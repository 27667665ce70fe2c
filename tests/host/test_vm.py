"""What only a VM shows: TPM2 sealing across a reboot and a PCR 7 change, the rotation
timer firing when the clock passes a boundary, and a power cut in the middle of an
install. Each VM boot costs 20-60 s of emulation (more under load): three boots in all."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import cli
from tests.host.fleet import (
    HOST,
    SERVICES,
    derive,
    manifest,
    operator_vault,
    provision,
    set_token,
    write_manifest,
)
from tests.host.nspawn import ordering_cycles
from tests.host.operator import Host
from tests.host.services import install_services, records
from tests.provision_helpers import Vault

pytestmark = [pytest.mark.host, pytest.mark.timeout(1500)]

PCR7_CHANGE = "7:sha256=" + "0" * 63 + "1"


def boot_id(host: Host) -> str:
    return host.inside("cat /proc/sys/kernel/random/boot_id").strip()


def power_cut_mid_install(host: Host, vault: Vault, tmp_path: Path, doc: dict[str, Any]) -> None:
    """Cut the power one second into activate + install of a larger bundle (200 secrets
    more than the host's manifest asks for), boot again: the manifest's files complete,
    from whichever bundle the store holds; the audit log intact."""
    many = {
        f"bulk/s{i:03d}": {"source": {"derive": {"realm": f"bulk/{i}", "type": "raw"}}}
        for i in range(200)
    }
    set_token(vault, b"tok-2")
    bigger_doc = {**doc, "secrets": {**doc["secrets"], **many}}
    bundle = tmp_path / "web1.age"
    bigger = write_manifest(tmp_path, bigger_doc)
    made = cli("bundle", "--host", HOST, "--manifest", bigger, "-o", bundle, *vault.args())
    assert made.returncode == 0, made.stderr
    host.put("/root/web1.age", bundle.read_bytes(), "0600")
    host.inside(
        "systemd-run --unit=aux-late --no-block sh -c "
        "'aux-secrets activate --bundle /root/web1.age --host web1 && aux-secrets install'"
    )
    time.sleep(1.0)
    host.machine.cycles += ordering_cycles(host.machine.journal())
    host.machine.kill()
    host.machine.boot()
    status = json.loads(host.ssh_ok("aux-secrets status --json"))
    names = set(host.inside("cd /run/aux-secrets && find . -type f | cut -c3-").split())
    wanted = {n for n, e in status["secrets"].items() if e["inManifest"]}
    assert wanted == set(doc["secrets"]) and wanted <= names, sorted(wanted - names)
    assert host.ssh("aux-secrets audit verify").returncode == 0
    assert host.active("web.service") == "active"


def test_tpm2_sealing_survives_reboot_refuses_after_pcr7_change_and_provision_repairs(
    vm: Host, tmp_path: Path
) -> None:
    host = vm
    assert host.inside("systemd-creds has-tpm2 >/dev/null; echo $?").strip() == "0"
    vault = operator_vault(host, tmp_path)
    install_services(host, SERVICES)
    host.ssh_ok("systemctl stop idle.service")
    doc = manifest(settings={"credentialKey": "host+tpm2"})
    host.put_manifest(doc)  # the host's own manifest: the units follow its TPM setting
    host.ssh_ok("aux-secrets units install --now")
    assert "dev-tpmrm0.device" in host.inside("systemctl show -P After aux-secrets-install.service")
    provision(host, vault, write_manifest(tmp_path, doc))
    status = json.loads(host.ssh_ok("aux-secrets status --json"))
    assert status["active"]["credentialKey"] == "host+tpm2"
    password = derive(vault, "db/web1", "--charset", "alnum")

    # The reboot is a power cut one second into activate + install of a new, larger
    # bundle (one VM boot fewer than a clean reboot and a cut apart).
    power_cut_mid_install(host, vault, tmp_path, doc)
    boot = boot_id(host)
    web = [r for r in records(host, "web") if r.boot_id == boot]
    assert [r.value for r in web] == [password]  # unsealed with the TPM before web started
    assert host.active("aux-secrets-install.service") == "active"
    assert host.ordering_cycles() == []

    # A PCR 7 change (what a Secure Boot change does): the store no longer opens.
    generation = host.inside("readlink /run/aux-secrets").strip()
    web_pid = host.main_pid("web.service")
    host.inside(f"TPM2TOOLS_TCTI=device:/dev/tpmrm0 tpm2_pcrextend {PCR7_CHANGE}", timeout=300)
    refused = host.ssh("aux-secrets install")
    assert refused.returncode != 0
    errors = [line for line in refused.stderr.decode().splitlines() if line.strip()]
    assert errors and errors[0].startswith("aux-secrets: error: "), errors
    assert "Traceback" not in refused.stderr.decode()
    assert password.decode() not in refused.stderr.decode() + refused.stdout.decode()
    # Nothing stale or empty reached a service: the last complete generation stays, no
    # restart happened, the file still holds the value it had.
    assert host.inside("readlink /run/aux-secrets").strip() == generation
    assert host.main_pid("web.service") == web_pid
    assert host.file("/run/aux-secrets/db/password") == password
    assert [r.event for r in records(host, "web") if r.boot_id == boot] == ["start"]

    # A new provision seals again against the TPM as it is now: install works again.
    provision(host, vault, write_manifest(tmp_path, doc))
    again = host.ssh("aux-secrets install --json")
    assert again.returncode == 0, again.stderr.decode()
    assert host.file("/run/aux-secrets/db/password") == password


def test_rotation_timer_fires_at_a_boundary(vm: Host, tmp_path: Path) -> None:
    host = vm
    vault = operator_vault(host, tmp_path)
    rotating = {
        "rot/key": {
            "source": {
                "derive": {
                    "realm": "rot/{period}",
                    "type": "pass",
                    "charset": "alnum",
                    "rotation": {"period": "daily", "retired": 0, "ahead": 1},
                }
            },
            "restartUnits": ["rot.service"],
        }
    }
    install_services(host, {**SERVICES, "rot": "/run/aux-secrets/rot/key"})
    host.ssh_ok("aux-secrets units install --now")
    doc = manifest(extra=rotating)
    provision(host, vault, write_manifest(tmp_path, doc))
    now = datetime.now(UTC)
    today, tomorrow = now.date(), (now + timedelta(days=1)).date()
    assert host.file("/run/aux-secrets/rot/key") == derive(
        vault, f"rot/{today.isoformat()}", "--charset", "alnum"
    )
    rot_pid = host.main_pid("rot.service")
    web_pid = host.main_pid("web.service")

    # The VM's clock just before the next UTC midnight: the timer fires on its own.
    boundary = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)
    host.inside(f"date -u -s @{int(boundary.timestamp()) - 8}")
    expected = derive(vault, f"rot/{tomorrow.isoformat()}", "--charset", "alnum")
    deadline = time.monotonic() + 120
    while host.file("/run/aux-secrets/rot/key") != expected:
        assert time.monotonic() < deadline, host.inside(
            "systemctl status --no-pager aux-secrets-rotate.timer aux-secrets-rotate.service"
        )
        time.sleep(2)
    ran = host.inside("journalctl -b -u aux-secrets-rotate.service --no-pager -q -o cat")
    assert "Finished" in ran or "Deactivated" in ran or "rot/key" in ran, ran
    for _ in range(30):
        if records(host, "rot")[-1].value == expected:
            break
        time.sleep(1)
    assert records(host, "rot")[-1].value == expected
    assert host.main_pid("rot.service") != rot_pid
    assert host.main_pid("web.service") == web_pid  # its secret did not change
    assert host.ordering_cycles() == []
