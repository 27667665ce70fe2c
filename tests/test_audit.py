"""The hash-chained audit log: pure format, file adapter, and `audit verify`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aux_secrets.adapters.audit import AuditLog
from aux_secrets.core.audit import (
    GENESIS,
    AuditEvent,
    AuditHead,
    decode_head,
    encode_entry,
    encode_head,
    verify_log,
)
from aux_secrets.core.fingerprint import fingerprint
from aux_secrets.errors import FormatVersionError, InputError
from tests.helpers import assert_one_line_error, cli

KEY = b"\x05" * 32


def event(n: int, event: str = "activate") -> AuditEvent:
    return AuditEvent(
        event=event,
        time=datetime(2026, 11, 22, 0, n, tzinfo=UTC),
        host="web1",
        bundle_id=f"{n:032x}",
        serial=n,
        changed=("db", "talos/hmac"),
        fingerprints={"db": fingerprint(KEY, "db", b"pw%d" % n)},
        restart_units=("postgresql.service",),
    )


def build(count: int) -> tuple[bytes, AuditHead]:
    head = AuditHead(0, GENESIS)
    data = b""
    for n in range(count):
        line, head = encode_entry(head, event(n))
        data += line
    return data, head


def test_chain_verifies() -> None:
    data, head = build(4)
    entries = verify_log(data, head)
    assert [e.seq for e in entries] == [0, 1, 2, 3]
    assert entries[0].prev == GENESIS
    assert entries[2].prev == entries[1].hash
    assert entries[3].event == event(3)
    assert verify_log(b"", AuditHead(0, GENESIS)) == []


def test_entries_hold_no_values() -> None:
    data, _ = build(2)
    assert b"pw0" not in data and b"pw1" not in data
    doc = json.loads(data.splitlines()[0])
    assert doc["fingerprints"]["db"].startswith("fp1:")


def lines_of(data: bytes) -> list[bytes]:
    return data.split(b"\n")[:-1]


def join(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


def test_changed_entry_detected() -> None:
    data, head = build(3)
    lines = lines_of(data)
    doc = json.loads(lines[1])
    doc["restartUnits"] = []
    lines[1] = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(InputError, match="line 2: hash does not match"):
        verify_log(join(lines), head)


def test_changed_entry_with_recomputed_hash_breaks_the_chain() -> None:
    data, head = build(3)
    lines = lines_of(data)
    forged_prev = AuditHead(1, json.loads(lines[0])["hash"])
    forged = event(1)
    forged = AuditEvent(**{**forged.__dict__, "changed": ()})
    new_line, _ = encode_entry(forged_prev, forged)
    lines[1] = new_line.rstrip(b"\n")
    with pytest.raises(InputError, match="line 3: the chain is broken"):
        verify_log(join(lines), head)


def test_removed_entry_detected() -> None:
    data, head = build(4)
    lines = lines_of(data)
    del lines[1]
    with pytest.raises(InputError, match="line 2: the chain is broken"):
        verify_log(join(lines), head)


def test_reordered_entries_detected() -> None:
    data, head = build(4)
    lines = lines_of(data)
    lines[1], lines[2] = lines[2], lines[1]
    with pytest.raises(InputError, match="chain is broken"):
        verify_log(join(lines), head)


def test_removed_last_entries_detected_by_head() -> None:
    data, head = build(4)
    lines = lines_of(data)
    with pytest.raises(InputError, match="head records 4"):
        verify_log(join(lines[:2]), head)
    # A head lagging by exactly the last line (crash between the two writes) is accepted.
    _, head3 = build(3)
    assert len(verify_log(data, head3)) == 4


@pytest.mark.parametrize("cut", [1, 10, -2, -1])
def test_truncated_log_refused(cut: int) -> None:
    data, head = build(2)
    with pytest.raises(InputError):
        verify_log(data[:cut], head)


@pytest.mark.parametrize("line", [b"garbage", b"{}", b"[1]", b"\xff\xfe", b'{"version":1}'])
def test_garbage_line_refused(line: bytes) -> None:
    data, _ = build(1)
    with pytest.raises(InputError, match="line 2"):
        verify_log(data + line + b"\n", None)


def test_wrong_version_refused() -> None:
    data, head = build(1)
    doc = json.loads(data)
    doc["version"] = 2
    with pytest.raises(FormatVersionError):
        verify_log(json.dumps(doc).encode() + b"\n", head)
    with pytest.raises(FormatVersionError):
        decode_head(b'{"count":0,"hash":"' + GENESIS.encode() + b'","version":9}\n')


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"[]", b'{"count":-1,"hash":"00","version":1}\n', b'{"count":1,"version":1}\n'],
)
def test_bad_head_refused(data: bytes) -> None:
    with pytest.raises(InputError):
        decode_head(data)


def test_head_roundtrip() -> None:
    head = AuditHead(7, "ab" * 32)
    assert decode_head(encode_head(head)) == head


def test_event_validation() -> None:
    head = AuditHead(0, GENESIS)
    for bad in (
        AuditEvent(event="reboot", time=datetime(2026, 1, 1, tzinfo=UTC), host="h"),
        AuditEvent(event="install", time=datetime(2026, 1, 1, tzinfo=UTC), host="bad host"),
        AuditEvent(
            event="install",
            time=datetime(2026, 1, 1, tzinfo=UTC),
            host="h",
            fingerprints={"db": "plain-sha256"},
        ),
        AuditEvent(
            event="install",
            time=datetime(2026, 1, 1, tzinfo=UTC),
            host="h",
            restart_units=("a b.service",),
        ),
    ):
        with pytest.raises(InputError):
            encode_entry(head, bad)


# --------------------------------------------------------------------------- adapter


def test_adapter_append_and_verify(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "store")
    for n in range(3):
        log.append(event(n, "install" if n % 2 else "activate"))
    entries = log.verify()
    assert [e.event.event for e in entries] == ["activate", "install", "activate"]
    assert (log.path.stat().st_mode & 0o777) == 0o600
    assert decode_head(log.head_path.read_bytes()) == AuditHead(3, entries[-1].hash)


def test_adapter_repairs_a_lagging_head(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.append(event(0))
    old_head = log.head_path.read_bytes()
    log.append(event(1))
    log.head_path.write_bytes(old_head)  # as if the head write never happened
    log.append(event(2))
    assert len(log.verify()) == 3


def test_adapter_refuses_to_append_after_tampering(tmp_path: Path) -> None:
    log = AuditLog(tmp_path)
    log.append(event(0))
    log.append(event(1))
    data = log.path.read_bytes()
    log.path.write_bytes(data[: data.index(b"\n") + 1])  # drop the last entry
    with pytest.raises(InputError, match="does not end where"):
        log.append(event(2))
    # The head records the last entry whole: a cut inside it is tampering, not a crash.
    log.path.write_bytes(data[:-5])
    with pytest.raises(InputError, match="does not end where"):
        log.append(event(2))
    assert log.path.read_bytes() == data[:-5]


def test_cli_audit_verify(tmp_path: Path) -> None:
    root = tmp_path / "root"
    log = AuditLog(root / "var/lib/aux-secrets")
    for n in range(3):
        log.append(event(n))
    ok = cli("audit", "verify", "--root", root)
    assert ok.returncode == 0, ok.stderr
    assert b"ok, 3 entries" in ok.stdout
    lines = log.path.read_bytes().split(b"\n")
    lines[0], lines[1] = lines[1], lines[0]
    log.path.write_bytes(b"\n".join(lines))
    assert_one_line_error(cli("audit", "verify", "--root", root), "line 1")


def test_cli_audit_verify_missing_log(tmp_path: Path) -> None:
    assert_one_line_error(cli("audit", "verify", "--root", tmp_path), "does not exist")
