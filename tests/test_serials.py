"""Serials stay bounded: the operator refuses one far beyond the clock, and a host that
took one anyway has an authenticated way back (activate --reset-serial)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from aux_secrets.adapters.hosts import Host as HostEntry
from aux_secrets.adapters.hosts import HostDir
from aux_secrets.errors import InputError
from tests.bundles import OTHER_SIGNER_SEED
from tests.helpers import assert_one_line_error, cli
from tests.test_activate import activate
from tests.test_hosts import ED_PUB
from tests.test_localstore_support import Host, payload

TOP = 2**63 - 1


@pytest.mark.parametrize("recorded", [TOP, 10**12])
def test_a_serial_far_beyond_the_clock_is_refused_by_the_operator(
    tmp_path: Path, recorded: int
) -> None:
    hosts = HostDir(tmp_path / "hosts")
    hosts.add(HostEntry(name="web1", recipient=ED_PUB, last_serial=recorded))
    before = hosts.path("web1").read_bytes()
    with pytest.raises(InputError, match="far beyond the clock") as info:
        hosts.next_serial("web1", 1_800_000_000)
    assert "--reset-serial" in (info.value.hint or "")
    assert hosts.path("web1").read_bytes() == before
    # A little ahead (many bundles in one second, a clock a bit behind) is fine.
    hosts.add(HostEntry(name="web2", recipient=ED_PUB, last_serial=1_800_000_500))
    assert hosts.next_serial("web2", 1_800_000_000) == 1_800_000_501


def test_host_at_the_top_serial_gets_back_only_with_a_newer_signed_bundle(
    tmp_path: Path,
) -> None:
    host = Host(tmp_path)
    top = payload(TOP)
    assert activate(host, host.bundle(top)).returncode == 0
    later = replace(payload(1_800_000_000), created=top.created + timedelta(days=1))
    stuck = activate(host, host.bundle(later))
    line = assert_one_line_error(stuck, "not newer than the active serial")
    assert line and "--reset-serial" in stuck.stderr.decode()
    # Not a replay: an older bundle is refused even with the flag.
    older = replace(payload(5), created=top.created - timedelta(days=1))
    refused = activate(host, host.bundle(older), "--reset-serial")
    assert_one_line_error(refused, "refusing an older bundle")
    # Not a forgery: the signer still decides.
    forged = activate(host, host.bundle(later, OTHER_SIGNER_SEED), "--reset-serial")
    assert forged.returncode != 0
    before = host.snapshot()
    assert f"store-{TOP}.bin" in before
    back = activate(host, host.bundle(later), "--reset-serial")
    assert back.returncode == 0, back.stderr.decode()
    meta = host.store().active_meta()
    assert meta is not None and meta.serial == 1_800_000_000
    # The old top bundle is a replay now, although its serial is higher.
    after = host.snapshot()
    again = activate(host, host.bundle(top))
    assert_one_line_error(again, "before the serial was reset")
    assert host.snapshot() == after
    next_one = replace(payload(1_800_000_001), created=later.created + timedelta(hours=1))
    assert activate(host, host.bundle(next_one)).returncode == 0


def test_reset_serial_is_in_activate_help() -> None:
    result = cli("activate", "--help")
    assert b"--reset-serial" in result.stdout
