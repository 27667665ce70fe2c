"""Boot-time behaviour on a booted Debian 12 in systemd-nspawn: a DynamicUser service
reading its secret through LoadCredentialEncrypted=, secrets back before services after a
reboot with no network, and a host killed in the middle of an install."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.helpers import cli
from tests.host.fleet import (
    HOST,
    SERVICES,
    derive,
    manifest,
    operator_vault,
    provision,
    write_manifest,
)
from tests.host.operator import Host
from tests.host.services import install_services, records

pytestmark = pytest.mark.host

DYN_UNIT = """[Unit]
Description=aux-secrets test: a DynamicUser service with an encrypted credential

[Service]
DynamicUser=yes
StateDirectory=dyn
LoadCredentialEncrypted=dyn-token:/var/lib/aux-secrets/credentials/dyn-token.cred
ExecStart=/bin/sh -c 'v=$(base64 -w0 < "$CREDENTIALS_DIRECTORY/dyn-token"); \
  echo "$(id -u) $v" > "$STATE_DIRECTORY/read"; exec sleep infinity'

[Install]
WantedBy=multi-user.target
"""
DYN_SECRET = {
    "dyn/token": {
        "source": {"derive": {"realm": "dyn/web1", "type": "pass", "charset": "alnum"}},
        "credential": {"units": ["dyn.service"]},
        "restartUnits": ["dyn.service"],
    }
}


def dyn_read(host: Host) -> tuple[int, bytes]:
    import base64

    data = host.file("/var/lib/private/dyn/read")
    assert data is not None, "dyn.service recorded nothing"
    uid, value = data.decode().split()
    return int(uid), base64.b64decode(value)


def monotonic(host: Host, unit: str, prop: str) -> int:
    return int(host.inside(f"systemctl show -P {prop} {unit}").strip())


def deploy(host: Host, tmp_path: Path, extra: dict[str, object] | None = None):  # type: ignore[no-untyped-def]
    """Services (and dyn.service when its secret is asked for) first, then the units, then
    the first provision: the order of a new host."""
    vault = operator_vault(host, tmp_path)
    install_services(host, SERVICES)
    host.ssh_ok("systemctl stop idle.service")
    if extra and "dyn/token" in extra:
        host.put("/etc/systemd/system/dyn.service", DYN_UNIT)
        host.ssh_ok("systemctl daemon-reload")
    host.ssh_ok("aux-secrets units install --now")
    doc = manifest(extra=extra)
    provision(host, vault, write_manifest(tmp_path, doc))
    return vault, doc


def test_dynamic_user_service_reads_its_credential(host: Host, tmp_path: Path) -> None:
    vault, _ = deploy(host, tmp_path, DYN_SECRET)
    assert host.exists("/var/lib/aux-secrets/credentials/dyn-token.cred")
    host.ssh_ok("systemctl enable --now dyn.service")
    for _ in range(50):
        if host.exists("/var/lib/private/dyn/read"):
            break
        time.sleep(0.1)
    uid, value = dyn_read(host)
    assert value == derive(vault, "dyn/web1", "--charset", "alnum")
    assert uid >= 61184  # systemd's DynamicUser range: not root, not an account on disk
    # The credential file holds no plaintext.
    sealed = host.file("/var/lib/aux-secrets/credentials/dyn-token.cred")
    assert sealed is not None and value not in sealed


def test_reboot_without_network_secrets_before_services(host: Host, tmp_path: Path) -> None:
    vault, _ = deploy(host, tmp_path, DYN_SECRET)
    host.ssh_ok("systemctl enable dyn.service")
    first_boot = host.inside("cat /proc/sys/kernel/random/boot_id").strip()
    host.machine.reboot()
    boot = host.inside("cat /proc/sys/kernel/random/boot_id").strip()
    assert boot != first_boot
    # No network at all: only the loopback, and the operator does nothing after the reboot.
    links = host.inside("ip -o link show | cut -d: -f2").split()
    assert links == ["lo"]
    password = derive(vault, "db/web1", "--charset", "alnum")
    web = [r for r in records(host, "web") if r.boot_id == boot]
    assert [r.event for r in web] == ["start"]
    assert web[0].value == password  # the file was there when the service started
    api = [r for r in records(host, "api") if r.boot_id == boot]
    assert api and api[0].value == b"tok-1"
    assert host.active("aux-secrets-install.service") == "active"
    installed = monotonic(host, "aux-secrets-install.service", "ExecMainExitTimestampMonotonic")
    for unit in ("web.service", "api.service", "dyn.service"):
        assert installed <= monotonic(host, unit, "ExecMainStartTimestampMonotonic"), unit
    assert dyn_read(host)[1] == derive(vault, "dyn/web1", "--charset", "alnum")
    assert host.ordering_cycles() == []


def test_host_killed_in_the_middle_of_an_install(host: Host, tmp_path: Path) -> None:
    """Power lost while `install` writes a new generation: after boot, one complete
    generation from the local store, and the services up with it."""
    many = {
        f"bulk/s{i:03d}": {
            "source": {
                "derive": {"realm": f"bulk/{i}", "type": "raw", "length": 16, "encoding": "hex"}
            }
        }
        for i in range(300)
    }
    vault, _ = deploy(host, tmp_path)
    bigger = write_manifest(tmp_path, manifest(extra=many))
    bundle = tmp_path / "web1.age"
    made = cli("bundle", "--host", HOST, "--manifest", bigger, "-o", bundle, *vault.args())
    assert made.returncode == 0, made.stderr
    before = host.inside("readlink /run/aux-secrets").strip()
    host.put("/root/web1.age", bundle.read_bytes(), "0600")
    # Activate, then install in the background; power off as soon as the new generation
    # directory appears (the swap has not happened yet).
    host.ssh_ok("aux-secrets activate --bundle /root/web1.age --host web1 --json >/dev/null")
    host.inside("systemd-run --unit=aux-late-install --no-block aux-secrets install")
    deadline = time.monotonic() + 60
    while host.inside("ls /run/aux-secrets.d").split() == [Path(before).name]:
        assert time.monotonic() < deadline, "install never started a new generation"
        time.sleep(0.02)
    host.machine.kill()
    host.machine.boot()
    generation = host.inside("readlink /run/aux-secrets").strip()
    assert generation, "no active generation after the boot"
    names = host.inside("cd /run/aux-secrets && find . -type f | sort").split()
    assert len([n for n in names if n.startswith("./bulk/")]) == 300
    assert host.file("/run/aux-secrets/bulk/s299") == derive(
        vault, "bulk/299", "--type", "raw", "--length", "16", "--encoding", "hex"
    )
    status = json.loads(host.ssh_ok("aux-secrets status --json"))
    assert status["generation"] == Path(generation).name
    assert host.active("web.service") == "active" and host.active("api.service") == "active"
    assert host.ordering_cycles() == []
