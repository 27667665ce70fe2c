"""install's read of the local store against an activate at the same moment, in a loop.

A second process activates bundle after bundle (each commit removes the previous blob)
while this one loads again and again: every load must be one activation, whole.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from aux_secrets.core.bundle import BundlePayload
from aux_secrets.errors import ConflictError
from tests.test_localstore_support import Host, payload


def _activate_many(host: Host, bundles: list[bytes]) -> None:
    store = host.store()
    for data in bundles:
        store.activate(data, "web1")


def test_load_never_sees_half_an_activation(tmp_path: Path) -> None:
    host = Host(tmp_path, backend="plain")
    host.store().activate(host.bundle(payload(1)), "web1")
    payloads = [payload(n) for n in range(2, 62)]
    bundles = [host.bundle(p) for p in payloads]
    known = {p.bundle_id: p for p in [payload(1), *payloads]}
    child = multiprocessing.get_context("fork").Process(target=_activate_many, args=(host, bundles))
    child.start()
    seen: set[int] = set()
    store = host.store()
    while child.is_alive() or not seen:
        loaded: BundlePayload = store.load()  # raised "does not exist" before the lock
        seen.add(loaded.serial)
        assert loaded.secrets["db"].slots[0].value == b"db-pass-%d" % loaded.serial
        assert loaded.bundle_id in known or loaded.serial == 1
    child.join(120)
    assert child.exitcode == 0
    assert len(seen) > 1  # the reads really overlapped the activations
    assert store.load().serial == 61


def test_refresh_after_a_newer_activate_changes_nothing(tmp_path: Path) -> None:
    host = Host(tmp_path, backend="plain")
    store = host.store()
    store.activate(host.bundle(payload(1)), "web1", manifest=host.manifest)
    old = store.load()
    store.activate(host.bundle(payload(2)), "web1", manifest=host.manifest)
    before = host.snapshot()
    try:
        store.refresh_credentials(host.manifest, old, old.created)
    except ConflictError as exc:
        assert "newer bundle was activated" in exc.message
    else:
        raise AssertionError("older values were sealed over a newer activation")
    assert host.snapshot() == before
