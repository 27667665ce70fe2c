"""``aux-secrets install --activation-lists --units-dir DIR`` (the NixOS activation script in a
switch) when the manifest names a unit the new system does not have: the generation is
installed, only the units with a unit file in DIR are listed for switch-to-configuration,
the missing one is named in one warning, ``--json`` and the audit entry, and the install
exits 0."""

from __future__ import annotations

import json
from pathlib import Path

from tests.fake_systemd import calls
from tests.helpers import assert_one_line_error
from tests.test_install_cli import Host, fixed
from tests.test_install_missing_units import audit_entries, make_host

NEW_VALUES = {"db/password": fixed(b"pw-2"), "api/token": fixed(b"tok-2")}


def new_system_units(tmp_path: Path) -> Path:
    """The unit directory of the system being activated: web and api, no gone.service."""
    units = tmp_path / "toplevel/etc/systemd/system"
    units.mkdir(parents=True)
    (units / "web.service").write_text("[Service]\nExecStart=/bin/true\n")
    (units / "api.service").symlink_to("web.service")
    return units


def booted_host(tmp_path: Path) -> Host:
    """A host whose boot installed generation 1 (nothing listed), then got new values."""
    host = make_host(tmp_path, known=[])
    boot = host.install("--activation-lists")
    assert boot.returncode == 0, boot.stderr.decode()
    assert not (host.root / "run/nixos").exists()
    host.deliver(dict(NEW_VALUES))
    return host


def test_a_unit_the_new_system_lacks_is_skipped_not_listed(tmp_path: Path) -> None:
    host = booted_host(tmp_path)
    units = new_system_units(tmp_path)
    result = host.install("--activation-lists", "--units-dir", str(units), "--json")
    assert result.returncode == 0, result.stderr.decode()
    assert (host.root / "run/aux-secrets/db/password").read_bytes() == b"pw-2"
    nixos = host.root / "run/nixos"
    assert (nixos / "activation-restart-list").read_text() == "web.service\n"
    assert (nixos / "activation-reload-list").read_text() == "api.service\n"
    report = json.loads(result.stdout)
    assert report["tryRestart"] == ["gone.service", "web.service"]  # the plan, unchanged
    assert report["notFound"] == [{"verb": "try-restart", "units": ["gone.service"]}]
    lines = result.stderr.decode().splitlines()
    warnings = [x for x in lines if x.startswith("aux-secrets: warning: unit ")]
    assert len(warnings) == 1 and "unit gone.service is not on this host" in warnings[0]
    install = [e for e in audit_entries(host) if e["event"] == "install"]
    assert install[-1]["unitsNotFound"] == ["gone.service"]
    assert not (host.root / "run/aux-secrets.d/.pending.json").exists()
    assert calls(tmp_path) == []  # systemctl is never asked on this path


def test_without_units_dir_every_unit_is_listed_as_before(tmp_path: Path) -> None:
    host = booted_host(tmp_path)
    result = host.install("--activation-lists")
    assert result.returncode == 0, result.stderr.decode()
    restart = (host.root / "run/nixos/activation-restart-list").read_text()
    assert restart == "gone.service\nweb.service\n"
    assert "is not on this host" not in result.stderr.decode()


def test_units_dir_needs_activation_lists(tmp_path: Path) -> None:
    host = booted_host(tmp_path)
    result = host.install("--units-dir", str(new_system_units(tmp_path)))
    assert result.returncode == 2
    assert_one_line_error(result, "--units-dir is only used with --activation-lists")
    assert sorted(p.name for p in (host.root / "run/aux-secrets.d").iterdir()) == [".lock", "1"]


def test_a_units_dir_that_is_not_there_installs_nothing(tmp_path: Path) -> None:
    host = booted_host(tmp_path)
    result = host.install("--activation-lists", "--units-dir", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert_one_line_error(result, f"{tmp_path / 'nope'} is not a directory")
    assert (host.root / "run/aux-secrets/db/password").read_bytes() == b"pw-1"
    assert not (host.root / "run/nixos").exists()
