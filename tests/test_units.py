"""The units for hosts without the NixOS module: rendering, `units install`, and the real
`systemd-analyze verify` on every file shipped (no systemd as PID 1 needed)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from aux_secrets.core.manifest import Settings, Tpm2Settings
from aux_secrets.core.units import TEMPLATES, escape_path, render, render_units
from tests.helpers import assert_one_line_error, cli, require_program

DATA = Path(__file__).resolve().parent.parent / "src" / "aux_secrets" / "data" / "units"
PROGRAM = str(Path(sys.executable).with_name("aux-secrets"))
UNIT_DIR = "etc/systemd/system"
TPM2_MANIFEST = {
    "version": 1,
    "host": "web1",
    "settings": {
        "credentialKey": "host+tpm2",
        "storeDir": "/srv/aux/store",
        "generationsDir": "/run/aux-gens.d",
        "runtimeDir": "/run/aux-gens",
        "group": "auxkeys",
    },
    "secrets": {},
}


def templates() -> dict[str, str]:
    return {name: (DATA / name).read_text() for name in TEMPLATES}


def verify(root: Path, *units: str) -> subprocess.CompletedProcess[str]:
    """The real systemd-analyze verify, the units found through SYSTEMD_UNIT_PATH (drop-ins
    included), the rest of systemd's units from this machine."""
    analyze = require_program("systemd-analyze", "systemd")
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{root / UNIT_DIR}:", "SYSTEMD_LOG_LEVEL": "info"}
    return subprocess.run(
        [analyze, "verify", *units], capture_output=True, text=True, env=env, timeout=120
    )


def installed_units(root: Path) -> list[str]:
    return sorted(p.name for p in (root / UNIT_DIR).iterdir() if p.is_file())


def install(root: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return cli("units", "install", "--root", root, "--program", PROGRAM, *extra)


@pytest.mark.parametrize(
    "path", ["/run/aux-secrets.d", "/srv/a b/c", "/var/lib/.hidden/x", "/", "/ü-dir//x/"]
)
def test_escape_path_matches_systemd_escape(path: str) -> None:
    escape = require_program("systemd-escape", "systemd")
    expected = subprocess.run(
        [escape, "--path", path], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert escape_path(path) == expected


def test_render_refuses_an_unknown_placeholder() -> None:
    with pytest.raises(KeyError, match="@NOPE@"):
        render("ExecStart=@NOPE@", {})


def test_every_template_placeholder_is_filled() -> None:
    settings = Settings(credential_key="host+tpm2", tpm2=Tpm2Settings(device="/dev/tpm0"))
    files = render_units(templates(), settings, program=PROGRAM, manifest="/etc/m.json")
    assert all("@" not in f.text.replace("aux-secrets@", "") for f in files)
    names = [Path(f.path).name for f in files]
    assert "tpm2.conf" in names
    dropin = next(f for f in files if f.path.endswith("tpm2.conf"))
    assert "After=dev-tpm0.device tpm2.target" in dropin.text


def test_install_writes_enables_and_creates_the_group(tmp_path: Path) -> None:
    done = install(tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert installed_units(tmp_path) == [
        "aux-secrets-install.service",
        "aux-secrets-rotate.service",
        "aux-secrets-rotate.timer",
        "run-aux\\x2dsecrets.d.mount",
    ]
    for name in installed_units(tmp_path):
        assert stat.S_IMODE((tmp_path / UNIT_DIR / name).stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / UNIT_DIR).stat().st_mode) == 0o755
    # enabled by the real `systemctl --root`, as the [Install] sections say
    wants = {
        "sysinit.target.wants": "aux-secrets-install.service",
        "timers.target.wants": "aux-secrets-rotate.timer",
        "local-fs.target.wants": "run-aux\\x2dsecrets.d.mount",
    }
    for folder, unit in wants.items():
        link = tmp_path / UNIT_DIR / folder / unit
        assert os.readlink(link) == f"/{UNIT_DIR}/{unit}"
    assert sorted(report["enabled"]) == sorted(wants.values())
    assert report["reloaded"] is False
    # the generations' group, made by the real systemd-sysusers under the root
    assert any(line.startswith("keys:") for line in (tmp_path / "etc/group").read_text().split())
    unit = (tmp_path / UNIT_DIR / "aux-secrets-install.service").read_text()
    # the default manifest is not named: a host without one installs with the carried one
    assert f"ExecStart={PROGRAM} install\n" in unit
    assert "Before=sysinit.target" in unit
    again = json.loads(install(tmp_path, "--json").stdout)
    assert again["written"] == [] and len(again["unchanged"]) == 5


def test_default_units_verify_clean(tmp_path: Path) -> None:
    assert install(tmp_path).returncode == 0
    units = installed_units(tmp_path)
    result = verify(tmp_path, *units)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "" and result.stdout.strip() == ""


def test_tpm2_units_with_custom_dirs_verify_clean(tmp_path: Path) -> None:
    (tmp_path / "etc/aux-secrets").mkdir(parents=True)
    (tmp_path / "etc/aux-secrets/manifest.json").write_text(json.dumps(TPM2_MANIFEST))
    assert install(tmp_path).returncode == 0
    units = installed_units(tmp_path)
    assert "run-aux\\x2dgens.d.mount" in units
    dropin = tmp_path / UNIT_DIR / "aux-secrets-install.service.d" / "tpm2.conf"
    assert "Wants=dev-tpmrm0.device" in dropin.read_text()
    unit = (tmp_path / UNIT_DIR / "aux-secrets-install.service").read_text()
    assert "RequiresMountsFor=/srv/aux/store /run/aux-gens.d" in unit
    assert "ConditionPathExists=/srv/aux/store/store.json" in unit
    result = verify(tmp_path, *units)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "" and result.stdout.strip() == ""
    assert any(line.startswith("auxkeys:") for line in (tmp_path / "etc/group").read_text().split())


def test_a_service_that_needs_its_secrets_has_no_ordering_cycle(tmp_path: Path) -> None:
    """An ordinary service that names the install unit (as a user may) stays cycle-free."""
    assert install(tmp_path).returncode == 0
    (tmp_path / UNIT_DIR / "web.service").write_text(
        "[Unit]\nWants=aux-secrets-install.service\nAfter=aux-secrets-install.service\n"
        "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"
    )
    result = verify(tmp_path, "web.service", *installed_units(tmp_path))
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_verify_catches_an_ordering_cycle(tmp_path: Path) -> None:
    """The check above can fail: a service the install is ordered after, but that itself
    starts after sysinit.target, is a cycle systemd-analyze reports."""
    assert install(tmp_path).returncode == 0
    (tmp_path / UNIT_DIR / "late.service").write_text(
        "[Unit]\nBefore=aux-secrets-install.service\n[Service]\nExecStart=/bin/true\n"
    )
    dropin = tmp_path / UNIT_DIR / "aux-secrets-install.service.d"
    dropin.mkdir()
    (dropin / "late.conf").write_text("[Unit]\nWants=late.service\n")
    result = verify(tmp_path, "aux-secrets-install.service")
    # systemd breaks the cycle by dropping a job and may still exit 0: the clean checks
    # above therefore require empty output, not only the exit status.
    assert "ordering cycle" in result.stderr


def test_show_prints_without_writing(tmp_path: Path) -> None:
    done = cli("units", "show", "--root", tmp_path, "--json")
    assert done.returncode == 0, done.stderr
    paths = [f["path"] for f in json.loads(done.stdout)]
    assert "/etc/systemd/system/aux-secrets-install.service" in paths
    assert list(tmp_path.iterdir()) == []


def test_a_program_path_that_cannot_be_in_a_unit_is_refused(tmp_path: Path) -> None:
    done = cli("units", "install", "--root", tmp_path, "--program", "/opt/my tools/aux-secrets")
    assert_one_line_error(done, "program", "cannot be written into a unit file")
    assert list(tmp_path.iterdir()) == []


def test_root_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    assert_one_line_error(install(target), "is not a directory")


def test_a_bad_manifest_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "etc/aux-secrets").mkdir(parents=True)
    (tmp_path / "etc/aux-secrets/manifest.json").write_text('{"version": 1, "hos')
    assert_one_line_error(install(tmp_path), "manifest")
    assert not (tmp_path / UNIT_DIR).exists()
