"""The units modules/aux-secrets.nix defines, rendered into files the way NixOS renders
them, checked with the real `systemd-analyze verify` together with the units they meet on
NixOS (tests/fixtures/systemd-nixos/: systemd's and NixOS's own orderings).

`systemd-analyze verify` builds the start transaction of the units it is given and reports
an ordering cycle ("Found ordering cycle ... Job ... deleted to break ordering cycle");
systemd does the same at boot, dropping a job. Any such line fails the test.
Needs AUX_SECRETS_NIXPKGS_LIB (module evaluation) and systemd-analyze (package systemd).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import FIXTURES, require_program
from tests.test_nix_module import evaluate, from_example

UPSTREAM = FIXTURES / "systemd-nixos"
STORE_PATH = re.compile(r"/nix/store/[0-9a-z]{32}-[^ ]*")
# nixos/lib/systemd-unit-options.nix: these list options become [Unit] settings.
UNIT_LISTS = {
    "requires": "Requires",
    "wants": "Wants",
    "upholds": "Upholds",
    "after": "After",
    "before": "Before",
    "bindsTo": "BindsTo",
    "partOf": "PartOf",
    "conflicts": "Conflicts",
    "requisite": "Requisite",
}


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def no_store(command: str) -> str:
    """The store is not here: any existing program keeps verify's path checks."""
    return STORE_PATH.sub("", STORE_PATH.sub("/bin/true", command, count=1))


def _lines(section: dict[str, Any], program: Callable[[str], str] = no_store) -> list[str]:
    out = []
    for key, value in section.items():
        for item in value if isinstance(value, list) else [value]:
            text = _value(item)
            if key.startswith("Exec"):
                text = program(text)
            out.append(f"{key}={text}")
    return out


def render_service(
    name: str, unit: dict[str, Any], program: Callable[[str], str] = no_store
) -> str:
    """One `systemd.services.<name>` as NixOS writes it (nixos/lib/systemd-lib.nix)."""
    head = [f"Description={unit.get('description', name)}"]
    for option, key in UNIT_LISTS.items():
        if unit.get(option):
            head.append(f"{key}={' '.join(unit[option])}")
    head += _lines(unit.get("unitConfig", {}))
    if unit.get("restartTriggers"):
        head.append("X-Restart-Triggers=" + " ".join(map(str, unit["restartTriggers"])))
    service = _lines(unit.get("serviceConfig", {}), program)
    if not any(line.startswith("ExecStart=") for line in service):
        service.append("ExecStart=/bin/true")
    return "[Unit]\n" + "\n".join(head) + "\n\n[Service]\n" + "\n".join(service) + "\n"


def render_mount(where: str, fs: dict[str, Any]) -> tuple[str, str]:
    """A `fileSystems` entry as systemd-fstab-generator writes it (the old design)."""
    name = subprocess.run(
        [require_program("systemd-escape", "systemd"), "--path", "--suffix=mount", where],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    text = (
        "[Unit]\nBefore=local-fs.target\n\n[Mount]\n"
        f"What={fs['device']}\nWhere={where}\nType={fs['fsType']}\n"
        f"Options={','.join(fs['options'])}\n"
    )
    return name, text


def link(directory: Path, target: str, unit: str, kind: str) -> None:
    folder = directory / f"{target}.{kind}"
    folder.mkdir(exist_ok=True)
    (folder / unit).unlink(missing_ok=True)
    (folder / unit).symlink_to(f"../{unit}")


def unit_tree(r: dict[str, Any], tmp: Path, *, userborn: bool) -> Path:
    """Upstream units plus the module's, with wantedBy/requiredBy links and mounts."""
    directory = tmp / "units"
    shutil.copytree(UPSTREAM, directory, symlinks=True)
    (directory / "README.md").unlink()
    sysusers = "userborn.service" if userborn else "systemd-sysusers.service"
    link(directory, "sysinit.target", sysusers, "wants")
    link(directory, "sysinit-reactivation.target", sysusers, "requires")
    if userborn:
        (directory / "systemd-sysusers.service").unlink()
        (directory / "systemd-sysusers.service").symlink_to("userborn.service")
    for name, unit in r["services"].items():
        path = directory / f"{name}.service"
        if path.exists() and not path.is_symlink():
            # An upstream unit the module adds to (credentials, sysusers): a drop-in.
            drop = directory / f"{name}.service.d"
            drop.mkdir(exist_ok=True)
            (drop / "aux-secrets.conf").write_text(render_service(name, unit))
        else:
            path.write_text(render_service(name, unit))
        for target in unit.get("wantedBy", []):
            link(directory, target, f"{name}.service", "wants")
        for target in unit.get("requiredBy", []):
            link(directory, target, f"{name}.service", "requires")
    for where, fs in r.get("fileSystems", {}).items():
        name, text = render_mount(where, fs)
        (directory / name).write_text(text)
        link(directory, "local-fs.target", name, "requires")
    return directory


def verify(directory: Path, *units: str) -> str:
    """systemd-analyze verify of ``units`` with only ``directory`` as unit path; its output."""
    program = require_program("systemd-analyze", "systemd")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SYSTEMD_UNIT_PATH": str(directory),
        "SYSTEMD_LOG_LEVEL": "notice",
    }
    done = subprocess.run(
        [program, "verify", "--man=no", *units],
        capture_output=True,
        text=True,
        env=env,
        cwd=directory,
        timeout=120,
        check=False,
    )
    out = done.stdout + done.stderr
    if done.returncode != 0:
        # An ordering cycle systemd cannot break by dropping a job fails the transaction;
        # which jobs it drops first is not fixed, so a cycle shows either way.
        out += f"\nsystemd-analyze verify failed with exit status {done.returncode}\n"
    return out


def problems(output: str) -> list[str]:
    return [
        line
        for line in output.splitlines()
        if "ordering cycle" in line
        or "cyclic" in line
        or "Failed to" in line
        or "verify failed" in line
    ]


SCENARIOS = {
    "sysusers": ("users.nix", "systemd.sysusers.enable = true;", False),
    "userborn": ("users.nix", "services.userborn.enable = true;", True),
    "userborn-tpm2-credentials": ("credentials.nix", "services.userborn.enable = true;", True),
    "sysusers-rotation": ("talos-hmac.nix", "systemd.sysusers.enable = true;", False),
    "activation-scripts-tpm2": ("credentials.nix", "", False),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_boot_has_no_ordering_cycle(scenario: str, tmp_path: Path) -> None:
    example, extra, userborn = SCENARIOS[scenario]
    r = evaluate(
        from_example(FIXTURES / "nix" / example, extra), tmp_path, "services", "fileSystems"
    )
    directory = unit_tree(r, tmp_path, userborn=userborn)
    ours = [f"{name}.service" for name in r["services"] if name.startswith("aux-secrets")]
    out = verify(
        directory, "sysinit.target", "sysinit-reactivation.target", "multi-user.target", *ours
    )
    assert problems(out) == [], out


def test_the_check_finds_the_cycle_of_an_fstab_mount(tmp_path: Path) -> None:
    """The old design: the for-users RAM filesystem as a `fileSystems` entry (what the
    module had). Its mount is after local-fs-pre.target, after systemd-tmpfiles-setup-dev,
    after userborn, which the for-users install must precede: verify reports the cycle."""
    r = evaluate(
        from_example(FIXTURES / "nix" / "users.nix", "services.userborn.enable = true;"),
        tmp_path,
        "services",
    )
    unit = r["services"]["aux-secrets-install-for-users"]
    unit["unitConfig"]["RequiresMountsFor"] = ["/run/aux-secrets-for-users.d"]
    r["fileSystems"] = {
        "/run/aux-secrets-for-users.d": {
            "device": "none",
            "fsType": "ramfs",
            "options": ["mode=0751", "nosuid", "nodev", "noexec"],
        }
    }
    directory = unit_tree(r, tmp_path, userborn=True)
    out = verify(directory, "sysinit.target", "aux-secrets-install-for-users.service")
    assert any("Found ordering cycle" in line for line in problems(out)), out


def test_tpm2_target_orders_the_install(tmp_path: Path) -> None:
    r = evaluate(
        from_example(FIXTURES / "nix" / "credentials.nix", "services.userborn.enable = true;"),
        tmp_path,
        "services",
    )
    text = (unit_tree(r, tmp_path, userborn=True) / "aux-secrets-install.service").read_text()
    assert "\nWants=tpm2.target\n" in text
    assert re.search(r"\nAfter=.* tpm2\.target\n", text), text
