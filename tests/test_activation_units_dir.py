"""``ActivationLists`` with the new system's unit directory: which unit names it defines.

The tree is built the way NixOS builds ``$systemConfig/etc/systemd/system``
(nixos/lib/systemd-lib.nix, generateUnits): the directory reached through symlinks, unit
files that are symlinks into other store paths, aliases as relative symlinks, disabled
units as symlinks to /dev/null, drop-in directories.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from aux_secrets.adapters.systemctl import (
    ActivationLists,
    UnitFile,
    full_unit_name,
    unit_file_names,
    unit_file_state,
)
from aux_secrets.errors import UsageError


@pytest.fixture
def units(tmp_path: Path) -> Path:
    """``toplevel/etc/systemd/system`` -> ``system-units``, as a NixOS system links it."""
    store = tmp_path / "store"
    package = store / "pkg/lib/systemd/system"
    package.mkdir(parents=True)
    (package / "pkg.service").write_text("[Service]\nExecStart=/bin/true\n")
    dir_ = store / "system-units"
    dir_.mkdir()
    (dir_ / "web.service").write_text("[Service]\nExecStart=/bin/true\n")
    (dir_ / "pkg.service").symlink_to(package / "pkg.service")  # systemd.packages
    (dir_ / "www.service").symlink_to("web.service")  # aliases = [ "www.service" ]
    (dir_ / "off.service").symlink_to(os.devnull)  # enable = false
    (dir_ / "getty@.service").write_text("[Service]\n")
    (dir_ / "tpl@.service").symlink_to(os.devnull)
    (dir_ / "tpl@keep.service").write_text("[Service]\n")
    (dir_ / "own@.service").write_text("[Service]\n")
    (dir_ / "own@quiet.service").symlink_to(os.devnull)
    (dir_ / "dangling.service").symlink_to(store / "gone/dangling.service")
    (dir_ / "folder.service").mkdir()
    (dir_ / "dropin.service.d").mkdir()
    (dir_ / "dropin.service.d/overrides.conf").write_text("[Service]\n")
    (dir_ / "web.socket").write_text("[Socket]\n")
    etc = store / "etc/etc/systemd"
    etc.mkdir(parents=True)
    (etc / "system").symlink_to(dir_)
    toplevel = tmp_path / "toplevel"
    toplevel.mkdir()
    (toplevel / "etc").symlink_to(store / "etc/etc")
    return toplevel / "etc/systemd/system"


@pytest.mark.parametrize(
    ("name", "full"),
    [
        ("web", "web.service"),
        ("web.service", "web.service"),
        ("web.socket", "web.socket"),
        ("data.mount", "data.mount"),
        ("web.conf", "web.conf.service"),  # no unit type: systemctl appends .service too
        ("getty@tty1", "getty@tty1.service"),
    ],
)
def test_full_unit_name(name: str, full: str) -> None:
    assert full_unit_name(name) == full


@pytest.mark.parametrize(
    ("unit", "names"),
    [
        ("web.service", ("web.service",)),
        ("getty@tty1.service", ("getty@tty1.service", "getty@.service")),
        ("vpn@a.b.service", ("vpn@a.b.service", "vpn@.service")),
        ("timer@x.timer", ("timer@x.timer", "timer@.timer")),
        ("getty@.service", ("getty@.service",)),  # the template itself
    ],
)
def test_unit_file_names(unit: str, names: tuple[str, ...]) -> None:
    assert unit_file_names(unit) == names


@pytest.mark.parametrize(
    ("unit", "state"),
    [
        ("web.service", UnitFile.PRESENT),
        ("pkg.service", UnitFile.PRESENT),  # a symlink into a package
        ("www.service", UnitFile.PRESENT),  # an alias
        ("web.socket", UnitFile.PRESENT),
        ("getty@tty1.service", UnitFile.PRESENT),  # from its template
        ("tpl@keep.service", UnitFile.PRESENT),  # its own file before the masked template
        ("tpl@other.service", UnitFile.MASKED),
        ("own@quiet.service", UnitFile.MASKED),  # the instance masked, the template not
        ("off.service", UnitFile.MASKED),
        ("gone.service", UnitFile.MISSING),
        ("gone@x.service", UnitFile.MISSING),
        ("dangling.service", UnitFile.MISSING),
        ("folder.service", UnitFile.MISSING),
        ("dropin.service", UnitFile.MISSING),  # a drop-in defines no unit
        ("web.timer", UnitFile.MISSING),
    ],
)
def test_unit_file_state(units: Path, unit: str, state: UnitFile) -> None:
    assert unit_file_state(units, unit) is state


def test_a_name_with_a_slash_is_not_looked_up_outside(units: Path) -> None:
    assert (units / "../system-units/web.service").is_file()
    assert unit_file_state(units, "../system-units/web.service") is UnitFile.MISSING


def test_only_units_the_new_system_has_are_listed(tmp_path: Path, units: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    lists = ActivationLists(root, units)
    skipped = lists.request(
        "try-restart", ["web.service", "gone.service", "www.service", "getty@tty1.service"]
    )
    assert skipped == ("gone.service",)
    skipped = lists.request("try-reload-or-restart", ["pkg.service", "off.service", "x.service"])
    assert skipped == ("x.service",)
    nixos = root / "run/nixos"
    restart = (nixos / "activation-restart-list").read_text()
    assert restart == "getty@tty1.service\nweb.service\nwww.service\n"
    assert (nixos / "activation-reload-list").read_text() == "pkg.service\n"


def test_a_masked_unit_is_neither_listed_nor_reported(tmp_path: Path, units: Path) -> None:
    """switch-to-configuration would start it, which systemd refuses for a masked unit."""
    assert ActivationLists(tmp_path, units).request("try-restart", ["off.service"]) == ()
    assert not (tmp_path / "run/nixos/activation-restart-list").exists()


def test_a_name_without_a_type_is_listed_in_full(tmp_path: Path, units: Path) -> None:
    """switch-to-configuration reads the names as they are: "web" would be no unit."""
    assert ActivationLists(tmp_path, units).request("try-restart", ["web", "gone"]) == ("gone",)
    assert (tmp_path / "run/nixos/activation-restart-list").read_text() == "web.service\n"


def test_without_a_units_dir_every_unit_is_listed(tmp_path: Path) -> None:
    lists = ActivationLists(tmp_path)
    assert lists.request("try-restart", ["gone.service", "web.service"]) == ()
    restart = (tmp_path / "run/nixos/activation-restart-list").read_text()
    assert restart == "gone.service\nweb.service\n"


def test_a_units_dir_that_is_no_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    for path in (tmp_path / "missing", tmp_path / "file"):
        with pytest.raises(UsageError, match="is not a directory"):
            ActivationLists(tmp_path, path)


def test_units_a_generator_made_at_boot_are_listed(tmp_path: Path, units: Path) -> None:
    """The fstab generator's .mount units are not in the system's unit directory; they
    are in /run/systemd/generator*, and switch-to-configuration restarts them."""
    root = tmp_path / "root"
    generator = root / "run/systemd/generator"
    generator.mkdir(parents=True)
    (generator / "mnt-share.mount").write_text("[Mount]\nWhat=//nas/share\nWhere=/mnt/share\n")
    late = root / "run/systemd/generator.late"
    late.mkdir(parents=True)
    (late / "legacy.service").write_text("[Service]\n")
    lists = ActivationLists(root, units)
    wanted = ["mnt-share.mount", "legacy.service", "mnt-gone.mount", "off.service"]
    assert lists.request("try-restart", wanted) == ("mnt-gone.mount",)
    restart = (root / "run/nixos/activation-restart-list").read_text()
    assert restart == "legacy.service\nmnt-share.mount\n"


def test_the_new_systems_mask_wins_over_a_generated_unit(tmp_path: Path, units: Path) -> None:
    root = tmp_path / "root"
    generator = root / "run/systemd/generator"
    generator.mkdir(parents=True)
    (generator / "off.service").write_text("[Service]\n")
    assert ActivationLists(root, units).request("try-restart", ["off.service"]) == ()
    assert not (root / "run/nixos/activation-restart-list").exists()
