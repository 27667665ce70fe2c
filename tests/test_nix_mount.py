"""The mount script of the install units and activation scripts (nix/module/units.nix),
run for real: it mounts the RAM filesystem once, leaves it alone when it is right, and
replaces it when aux.settings.useTmpfs changed (a filesystem of the other type is
detached lazily, not stacked). Needs root (mount) and AUX_SECRETS_NIXPKGS_LIB.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, require_program
from tests.test_nix_module import evaluate, from_example

STORE_BIN = re.compile(r"/nix/store/[0-9a-z]{32}-(coreutils|util-linux)/bin/([a-z]+)")


def script(tmp: Path, tmpfs: bool) -> Path:
    extra = "systemd.sysusers.enable = true;" + (" aux.settings.useTmpfs = true;" if tmpfs else "")
    text = evaluate(from_example(FIXTURES / "nix" / "users.nix", extra), tmp, "mountScript")[
        "mountScript"
    ]
    # The store's coreutils and util-linux are Debian's here.
    text = STORE_BIN.sub(lambda m: require_program(m.group(2), m.group(1)), text)
    path = tmp / ("mount-tmpfs" if tmpfs else "mount-ramfs")
    path.write_text("#!/bin/bash\n" + text)
    path.chmod(0o755)
    return path


def fstypes(where: Path) -> list[str]:
    findmnt = require_program("findmnt", "util-linux")
    done = subprocess.run(
        [findmnt, "-n", "-o", "FSTYPE", "--mountpoint", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.split()


@pytest.fixture
def where(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.fail("mounting needs root (run the suite as root, as CI does)", pytrace=False)
    target = tmp_path / "run" / "aux-secrets.d"
    yield target
    umount = require_program("umount", "util-linux")
    while fstypes(target):
        subprocess.run([umount, "--lazy", str(target)], check=True)


def run(program: Path, where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(program), str(where)], capture_output=True, text=True, check=False, timeout=60
    )


def test_mounts_once_and_replaces_on_a_type_change(where: Path, tmp_path: Path) -> None:
    ramfs, tmpfs = script(tmp_path, False), script(tmp_path, True)
    first = run(ramfs, where)
    assert first.returncode == 0, first.stderr
    assert fstypes(where) == ["ramfs"]
    assert (os.stat(where).st_mode & 0o777) == 0o751
    (where / "1").mkdir()
    (where / "1" / "secret").write_text("old")
    held = open(where / "1" / "secret")  # a service that has the file open  # noqa: SIM115

    again = run(ramfs, where)
    assert (again.returncode, again.stderr) == (0, "")
    assert (where / "1" / "secret").read_text() == "old"  # left alone

    changed = run(tmpfs, where)
    assert changed.returncode == 0, changed.stderr
    assert "is ramfs, not tmpfs: replacing it" in changed.stderr
    assert fstypes(where) == ["tmpfs"]  # replaced, not stacked
    assert not (where / "1").exists()  # the install writes a new generation next
    assert held.read() == "old"  # open files stay readable
    held.close()
    assert run(tmpfs, where).returncode == 0
    assert fstypes(where) == ["tmpfs"]
