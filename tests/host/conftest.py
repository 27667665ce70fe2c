"""Fixtures of the booted-host suite: the cached root, the session's layer, a fresh host.

Every test here is marked ``host`` and skipped unless the suite is selected
(``bash scripts/test.sh -m host``); see :mod:`tests.host.support`.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO
from tests.host import support
from tests.host.operator import Host

_names = itertools.count(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            assert item.get_closest_marker("host"), f"{item.nodeid}: mark the module host"
            if not support.selected(config):
                item.add_marker(
                    pytest.mark.skip(
                        reason="booted-host suite not selected: run `bash scripts/test.sh -m host`"
                    )
                )


@pytest.fixture(scope="session")
def host_layers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    """[session layer, cached root]: what every host of this run boots from."""
    why = support.nspawn_missing()
    if why is not None:
        support.skip_or_fail(why)
    from tests.host.cache import rootfs
    from tests.host.layer import build_layer

    started = time.monotonic()
    try:
        root = rootfs()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        support.skip_or_fail(f"no Debian 12 root filesystem could be built: {exc}")
    built = time.monotonic()
    # Outside pytest's temp folder: a layer is a lower directory of running overlays.
    work = Path(tmp_path_factory.mktemp("host-layer"))
    layer = build_layer(root, REPO, work)
    layer_time = time.monotonic() - built
    print(f"\nhost suite: root filesystem {built - started:.1f}s, layer {layer_time:.1f}s")
    yield [layer, root]
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="session")
def vm_image(
    host_layers: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path, Path]]:
    """The session's VM disk image (cached root + this checkout), kernel and initrd."""
    why = support.vm_missing()
    if why is not None:
        if os.environ.get("AUX_SECRETS_HOST_VM") == "skip":
            pytest.skip(f"VM tests skipped: {why}")
        support.skip_or_fail(why)
    from tests.host.vm import build_image

    started = time.monotonic()
    work = Path(tmp_path_factory.mktemp("vm-image"))
    image = build_image(host_layers, work)
    print(f"\nhost suite: VM image {time.monotonic() - started:.1f}s")
    yield image
    shutil.rmtree(work, ignore_errors=True)  # a 3 GB sparse image per run otherwise


@pytest.fixture
def vm(vm_image: tuple[Path, Path, Path], tmp_path: Path) -> Iterator[Host]:
    """A fresh qemu VM with a software TPM 2.0, booted, nothing provisioned."""
    from tests.host.cache import cache_dir
    from tests.host.vm import VmHost

    machine = VmHost(vm_image, tmp_path / "vm", cache_dir() / "id_ed25519")
    try:
        seconds = machine.boot()
        print(f"VM boot {seconds:.1f}s")
        host = Host(machine, cache_dir() / "id_ed25519", tmp_path)
        yield host
        assert_no_cycles(host)
    finally:
        machine.stop()
        machine.disk.unlink(missing_ok=True)  # the logs stay for a failed test


def assert_no_cycles(host: Host) -> None:
    """No "ordering cycle" in `journalctl -b` of any boot the test made (a power cut's
    boot excepted: there is no journal to read at the instant of a cut)."""
    if host.machine.boots:
        cycles = host.ordering_cycles() if host.machine.leader_alive() else host.machine.cycles
        assert cycles == [], cycles


@pytest.fixture
def host(host_layers: list[Path], tmp_path: Path) -> Iterator[Host]:
    """A fresh, booted nspawn host with this checkout installed and nothing provisioned."""
    from tests.host.cache import cache_dir
    from tests.host.nspawn import NspawnHost

    name = f"auxh{os.getpid()}x{next(_names)}"
    machine = NspawnHost(host_layers, tmp_path / "host", name)
    try:
        seconds = machine.boot()
        print(f"nspawn boot {seconds:.2f}s")
        host = Host(machine, cache_dir() / "id_ed25519", tmp_path)
        yield host
        assert_no_cycles(host)
    finally:
        machine.stop()
