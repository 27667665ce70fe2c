"""`install --activation-lists --units-dir DIR` against hostile unit names and unit trees:
path separators and `..`, symlink loops, a units directory that is a symlink (or a loop),
dotted template instances, and an empty unit file (which systemd loads as masked)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from aux_secrets.adapters.systemctl import ActivationLists, UnitFile, unit_file_state
from tests.helpers import assert_one_line_error, require_program
from tests.test_install_activation_units import booted_host, new_system_units
from tests.test_install_missing_units import manifest_doc


@pytest.fixture
def units(tmp_path: Path) -> Path:
    units = tmp_path / "system"
    units.mkdir()
    (units / "web.service").write_text("[Service]\nExecStart=/bin/true\n")
    return units


@pytest.mark.parametrize(
    "name",
    ["../../etc/passwd.service", "../system/web.service", "/etc/web.service", "a\0.service"],
)
def test_a_name_reaching_out_of_the_directory_is_missing(
    tmp_path: Path, units: Path, name: str
) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd.service").write_text("[Service]\n")
    (tmp_path / "etc/web.service").write_text("[Service]\n")
    assert unit_file_state(units, name) is UnitFile.MISSING
    lists = ActivationLists(tmp_path / "root", units)
    assert lists.request("try-restart", [name]) == (name,)
    assert not (tmp_path / "root/run/nixos/activation-restart-list").exists()


@pytest.mark.parametrize("name", ["..service", "...service", ".service"])
def test_dot_names_stay_inside_the_directory(tmp_path: Path, units: Path, name: str) -> None:
    # Files right above the directory must not define them.
    (tmp_path / "service").write_text("[Service]\n")
    (tmp_path / name).write_text("[Service]\n")
    assert unit_file_state(units, name) is UnitFile.MISSING


def test_symlink_loops_define_nothing(units: Path) -> None:
    (units / "self.service").symlink_to("self.service")
    (units / "a.service").symlink_to("b.service")
    (units / "b.service").symlink_to("a.service")
    (units / "loop@.service").symlink_to("loop@.service")
    for name in ("self.service", "a.service", "loop@x.service"):
        assert unit_file_state(units, name) is UnitFile.MISSING, name


def test_an_empty_unit_file_is_masked_as_systemd_loads_it(units: Path) -> None:
    """systemd loads an empty unit file as masked (null_or_empty): the switch refuses to
    start it, so it must not be listed, and it is no unit the host lacks."""
    systemctl = require_program("systemctl", "systemd")
    (units / "empty.service").write_bytes(b"")
    (units / "tpl@.service").write_bytes(b"")
    (units / "link.service").symlink_to("empty.service")
    # The oracle: systemd's own reading of the same tree.
    root = units.parent / "oracle"
    (root / "etc/systemd").mkdir(parents=True)
    shutil.copytree(units, root / "etc/systemd/system", symlinks=True)
    for name in ("empty.service", "link.service", "tpl@x.service"):
        done = subprocess.run(
            [systemctl, f"--root={root}", "is-enabled", name], capture_output=True, check=False
        )
        assert done.stdout.strip() == b"masked", (name, done)
        assert unit_file_state(units, name) is UnitFile.MASKED, name
    (units.parent / "root").mkdir()
    lists = ActivationLists(units.parent / "root", units)
    assert lists.request("try-restart", ["empty.service", "web.service"]) == ()
    restart = units.parent / "root/run/nixos/activation-restart-list"
    assert restart.read_text() == "web.service\n"


@pytest.mark.parametrize(
    ("unit", "template"),
    [
        ("getty@tty1.service", "getty@.service"),
        ("vpn@site.example.org.service", "vpn@.service"),
        ("my.app@a.b.service", "my.app@.service"),
        ("x@y@z.service", "x@.service"),
    ],
)
def test_dotted_template_instances_find_their_template(
    units: Path, unit: str, template: str
) -> None:
    assert unit_file_state(units, unit) is UnitFile.MISSING
    (units / template).write_text("[Service]\n")
    assert unit_file_state(units, unit) is UnitFile.PRESENT


def test_a_units_dir_that_is_a_symlink_is_followed(tmp_path: Path, units: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(units)
    (tmp_path / "root").mkdir()
    lists = ActivationLists(tmp_path / "root", link)
    assert lists.request("try-restart", ["web.service", "gone.service"]) == ("gone.service",)


def test_a_units_dir_that_is_a_symlink_loop_installs_nothing(tmp_path: Path) -> None:
    host = booted_host(tmp_path)
    loop = tmp_path / "loop"
    loop.symlink_to("loop")
    result = host.install("--activation-lists", "--units-dir", str(loop))
    assert result.returncode == 2
    assert_one_line_error(result, f"{loop} is not a directory")
    assert (host.root / "run/aux-secrets/db/password").read_bytes() == b"pw-1"
    assert not (host.root / "run/nixos").exists()


@pytest.mark.parametrize(
    "unit", ["../../etc/passwd.service", "a/b.service", "web.service\ngone.service", "x"]
)
def test_a_manifest_unit_name_with_a_separator_installs_nothing(tmp_path: Path, unit: str) -> None:
    host = booted_host(tmp_path)
    doc = manifest_doc(Path("/bin/false"))
    doc["secrets"]["db/password"]["restartUnits"] = [unit]
    host.write_manifest(doc)
    units = new_system_units(tmp_path)
    before = sorted(os.listdir(host.root / "run/aux-secrets.d"))
    result = host.install("--activation-lists", "--units-dir", str(units))
    assert_one_line_error(result, "restartUnits", "is not a systemd unit name")
    assert sorted(os.listdir(host.root / "run/aux-secrets.d")) == before
    assert (host.root / "run/aux-secrets/db/password").read_bytes() == b"pw-1"
    assert not (host.root / "run/nixos").exists()


def test_a_full_install_with_awkward_units(tmp_path: Path) -> None:
    """Through the command: an empty (masked) unit, a loop and a dotted instance."""
    host = booted_host(tmp_path)
    doc = manifest_doc(Path("/bin/false"))
    doc["secrets"]["db/password"]["restartUnits"] = [
        "empty.service", "loop.service", "vpn@site.example.org.service",
    ]  # fmt: skip
    host.write_manifest(doc)
    units = new_system_units(tmp_path)
    (units / "empty.service").write_bytes(b"")
    (units / "loop.service").symlink_to("loop.service")
    (units / "vpn@.service").write_text("[Service]\n")
    result = host.install("--activation-lists", "--units-dir", str(units), "--json")
    assert result.returncode == 0, result.stderr.decode()
    restart = (host.root / "run/nixos/activation-restart-list").read_text()
    assert restart == "vpn@site.example.org.service\n"
    report = json.loads(result.stdout)
    assert report["notFound"] == [{"verb": "try-restart", "units": ["loop.service"]}]
