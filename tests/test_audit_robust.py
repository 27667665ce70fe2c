"""The audit log never bricks a host: a full file system, torn lines, SIGKILL, huge entries.

The file system is a real 64 KiB tmpfs; the torn lines are what a write cut short
leaves; the kills are SIGKILLs at random moments of a process appending in a loop.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aux_secrets.adapters.audit import AuditLog
from aux_secrets.core.audit import MAX_ENTRY_BYTES, AuditEvent, summary_digest
from aux_secrets.core.fingerprint import fingerprint
from aux_secrets.errors import ExternalError

KEY = b"\x07" * 32


def event(n: int, changed: int = 2) -> AuditEvent:
    names = tuple(f"app/secret-{i:05d}" for i in range(changed))
    return AuditEvent(
        event="install",
        time=datetime(2026, 11, 22, 0, n % 60, tzinfo=UTC),
        host="web1",
        bundle_id=f"{n:032x}",
        serial=n,
        generation=n + 1,
        changed=names,
        fingerprints={name: fingerprint(KEY, name, b"v%d" % n) for name in names},
        restart_units=tuple(f"unit{i}.service" for i in range(min(changed, 50))),
    )


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", str(mnt)], check=True
    )
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(directory: Path) -> Path:
    """Fill the file system of ``directory`` to the last byte."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 4096, 512, 64, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size) == size:
                    pass
    finally:
        os.close(fd)
    return filler


def test_full_file_system_writes_nothing_then_recovers(small_fs: Path) -> None:
    log = AuditLog(small_fs)
    log.append(event(0))
    before = (log.path.read_bytes(), log.head_path.read_bytes())
    filler = fill(small_fs)
    for n in range(1, 4):  # entries of many sizes: a line cut anywhere is cut off again
        with pytest.raises(ExternalError, match="nothing was written"):
            log.append(event(n, changed=n * 40))
        assert (log.path.read_bytes(), log.head_path.read_bytes()) == before
    assert not [p.name for p in small_fs.iterdir() if p.name.endswith(".tmp")]
    filler.unlink()
    log.append(event(5))
    assert [e.event.serial for e in log.verify()] == [0, 5]


@pytest.mark.parametrize("keep", [1, 40, -1])
def test_torn_last_line_is_cut_and_recorded(tmp_path: Path, keep: int) -> None:
    log = AuditLog(tmp_path)
    log.append(event(0))
    head = log.head_path.read_bytes()
    log.append(event(1))
    data = log.path.read_bytes()
    second = data[data.index(b"\n") + 1 :]
    # What a write cut short leaves: part of the line, the head not yet replaced.
    torn = second[:keep] if keep > 0 else second[:-1]
    log.path.write_bytes(data[: data.index(b"\n") + 1] + torn)
    log.head_path.write_bytes(head)
    log.append(event(2))
    entries = log.verify()
    assert [e.event.event for e in entries] == ["install", "repair", "install"]
    assert entries[1].event.dropped == len(torn)
    assert [e.event.serial for e in entries] == [0, None, 2]


def test_torn_only_line_is_cut_and_recorded(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.path.write_bytes(b'{"bundleId":')
    log.append(event(3))
    assert [e.event.event for e in log.verify()] == ["repair", "install"]


def _append_forever(store: str) -> None:
    log = AuditLog(Path(store))
    n = 0
    while True:
        n += 1
        log.append(event(n, changed=1 + n % 300))


def test_sigkill_at_random_points_never_stops_the_next_append(tmp_path: Path) -> None:
    rng = random.Random(13)
    for _ in range(12):
        child = multiprocessing.get_context("fork").Process(
            target=_append_forever, args=(str(tmp_path),)
        )
        child.start()
        time.sleep(rng.uniform(0.01, 0.2))
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        AuditLog(tmp_path).append(event(0))  # never refused
        AuditLog(tmp_path).verify()


def test_an_entry_for_a_huge_change_is_bounded_and_readable(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    big = event(1, changed=20_000)  # about 2 MiB written in full
    log.append(big)
    raw = log.path.read_bytes()
    assert len(raw) <= MAX_ENTRY_BYTES
    doc = json.loads(raw)
    assert doc["changed"] == [] and doc["fingerprints"] == {}
    assert doc["summary"]["changed"] == 20_000 and doc["summary"]["restartUnits"] == 50
    assert doc["summary"]["digest"] == summary_digest(big)  # checkable by who holds the list
    log.append(event(2))  # the next append reads it back
    assert [e.event.serial for e in log.verify()] == [1, 2]
    assert log.verify()[0].event.summary is not None


def test_activate_commits_even_when_the_log_refuses_the_entry(tmp_path: Path) -> None:
    from tests.test_activate import activate
    from tests.test_localstore_support import Host, payload

    host = Host(tmp_path, backend="plain")
    assert activate(host, host.bundle(payload(1))).returncode == 0
    log = host.store_dir / "audit.jsonl"
    log.write_bytes(b"")  # the head still records one entry: appends are refused
    result = activate(host, host.bundle(payload(2)))
    assert result.returncode == 0, result.stderr
    assert b"warning: bundle serial 2 is active, but the audit log did not record it" in (
        result.stderr
    )
    meta = host.store().active_meta()
    assert meta is not None and meta.serial == 2
