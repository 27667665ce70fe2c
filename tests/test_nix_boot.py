"""The NixOS install units booted by a real systemd (Debian 12's, in systemd-nspawn):
the units modules/aux-secrets.nix defines, rendered as in tests/test_nix_units.py, with
the for-users RAM filesystem mounted by the unit itself, the sysusers drop-in of the
module, and no bundle delivered yet. The boot has no ordering cycle, the for-users
install runs before systemd-sysusers and the install after it, both mount their RAM
filesystems, exit status 75 leaves them active, and sysusers creates the account locked
instead of failing on the missing hash file.

Marked `host` (the booted-host suite, tests/host/): runs with `-m host`. Needs
AUX_SECRETS_NIXPKGS_LIB.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import FIXTURES
from tests.host import support
from tests.test_nix_module import evaluate, from_example
from tests.test_nix_units import STORE_PATH, render_service

if TYPE_CHECKING:
    from tests.host.nspawn import NspawnHost

pytestmark = pytest.mark.host

USER = "auxalice"
HASH_FILE = "/run/aux-secrets-for-users/users/alice"
FAKE_INSTALL = """#!/bin/sh
# Stands in for `aux-secrets install`: records the call, finds no bundle (exit 75).
echo "$(cut -d' ' -f1 /proc/uptime) $*" >> /run/aux-fake-install.log
echo "aux-secrets: error: no bundle has been delivered to host desk1 yet" >&2
exit 75
"""


def _program(command: str) -> str:
    if "-aux-secrets-mount " in command:
        return STORE_PATH.sub("/usr/local/bin/aux-secrets-mount", command, count=1)
    fake = STORE_PATH.sub("/usr/local/bin/aux-secrets-fake", command, count=1)
    return STORE_PATH.sub("/etc/aux-secrets/manifest.json", fake)


@pytest.fixture
def booted(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[NspawnHost]:
    fallback = getattr(request, "param", True)
    if not support.selected(request.config):
        pytest.skip("booted-host suite not selected: run `bash scripts/test.sh -m host`")
    why = support.nspawn_missing()
    if why is not None:
        support.skip_or_fail(why)
    from tests.host.cache import rootfs
    from tests.host.nspawn import NspawnHost

    extra = (
        "systemd.sysusers.enable = true; "
        f'users.users.{USER} = {{ isSystemUser = true; group = "users"; '
        f'hashedPasswordFile = "{HASH_FILE}"; }}; '
        'aux.secrets.token = { store = "token"; credential.units = [ "credtest.service" ]; };'
    )
    r = evaluate(
        from_example(FIXTURES / "nix" / "users.nix", extra),
        tmp_path,
        "services",
        "mountScript",
        "failedAssertions",
    )
    assert r["failedAssertions"] == []
    machine = NspawnHost([rootfs()], tmp_path / "host", f"auxnix{os.getpid()}")
    try:
        units = machine.path("/etc/systemd/system")
        bins = machine.path("/usr/local/bin")
        bins.mkdir(parents=True, exist_ok=True)
        mount = re.sub(
            r"/nix/store/[0-9a-z]{32}-(coreutils|util-linux)/bin/", "/usr/bin/", r["mountScript"]
        )
        (bins / "aux-secrets-mount").write_text("#!/bin/bash\n" + mount)
        (bins / "aux-secrets-fake").write_text(FAKE_INSTALL)
        for program in bins.iterdir():
            program.chmod(0o755)
        for name in ("aux-secrets-install", "aux-secrets-install-for-users"):
            unit = r["services"][name]
            (units / f"{name}.service").write_text(render_service(name, unit, _program))
            for target in unit["wantedBy"]:
                if target == "userborn.service":
                    continue
                wants = units / f"{target}.wants"
                wants.mkdir(exist_ok=True)
                (wants / f"{name}.service").symlink_to(f"../{name}.service")
        # A service of credential.units: the module's settings, and a command that keeps
        # what it got.
        credtest = dict(r["services"]["credtest"])
        credtest["wantedBy"] = ["multi-user.target"]
        credtest["serviceConfig"] = {
            **credtest["serviceConfig"],
            "Type": "oneshot",
            "RemainAfterExit": True,
            "ExecStart": '/bin/sh -c "cp $CREDENTIALS_DIRECTORY/token /root/credtest.token"',
        }
        (units / "credtest.service").write_text(render_service("credtest", credtest, str))
        (units / "multi-user.target.wants").mkdir(exist_ok=True)
        (units / "multi-user.target.wants/credtest.service").symlink_to("../credtest.service")
        # The module's drop-in on systemd-sysusers, with NixOS's own parts of it.
        sysusers = r["services"]["systemd-sysusers"]["serviceConfig"]
        drop = units / "systemd-sysusers.service.d"
        drop.mkdir()
        (drop / "nixos.conf").write_text(
            "[Unit]\nConditionNeedsUpdate=\n\n[Service]\n"
            f"LoadCredential=passwd.hashed-password.{USER}:{HASH_FILE}\n"
            + "".join(f"SetCredential={c}\n" for c in sysusers["SetCredential"] if fallback)
        )
        machine.path("/etc/sysusers.d").mkdir(parents=True, exist_ok=True)
        machine.path("/etc/sysusers.d/auxalice.conf").write_text(f'u {USER} - "aux test"\n')
        machine.boot()
        yield machine
    finally:
        machine.stop()


def _show(machine: NspawnHost, unit: str, prop: str) -> str:
    return machine.run(["systemctl", "show", "-P", prop, unit]).stdout.strip()


def test_first_boot_of_the_nixos_units(booted: NspawnHost) -> None:
    machine = booted
    journal = machine.journal()
    assert "ordering cycle" not in journal, journal
    for unit in ("aux-secrets-install-for-users.service", "aux-secrets-install.service"):
        assert _show(machine, unit, "ActiveState") == "active", machine.journal()
        assert _show(machine, unit, "ExecMainStatus") == "75"
    assert _show(machine, "systemd-sysusers.service", "Result") == "success"
    assert _show(machine, "systemd-sysusers.service", "ActiveState") == "active"

    # the order: for-users, sysusers, install
    def start(unit: str) -> int:
        return int(_show(machine, unit, "InactiveExitTimestampMonotonic"))

    def done(unit: str) -> int:
        return int(_show(machine, unit, "ActiveEnterTimestampMonotonic"))

    assert done("aux-secrets-install-for-users.service") <= start("systemd-sysusers.service")
    assert done("systemd-sysusers.service") <= start("aux-secrets-install.service")
    for where in ("/run/aux-secrets-for-users.d", "/run/aux-secrets.d"):
        fs = machine.run(["findmnt", "-n", "-o", "FSTYPE", "--mountpoint", where]).stdout
        assert fs.split() == ["ramfs"], where
    # credential.units before the first delivery: started, with a credential that is
    # empty once its newline is stripped
    assert _show(machine, "credtest.service", "Result") == "success", machine.journal()
    assert machine.path("/root/credtest.token").read_bytes() == b"\n"
    shadow = machine.run(["getent", "shadow", USER]).stdout
    assert shadow.split(":")[1] == "!", shadow  # created locked, not failed


@pytest.mark.parametrize("booted", [False], indirect=True, ids=["without-fallback"])
def test_without_the_fallback_sysusers_fails(booted: NspawnHost) -> None:
    """The control: LoadCredential= of the missing hash file alone fails the whole unit
    (no system user at all on a first boot): what the SetCredential= default prevents."""
    assert _show(booted, "systemd-sysusers.service", "Result") != "success"
    assert booted.run(["getent", "passwd", USER], check=False).returncode != 0
