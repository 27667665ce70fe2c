"""The audit log format: hash-chained JSON lines (docs/spec/audit-log.md, version 1).

Each line is one canonical JSON object describing one activate or install. ``prev`` is
the ``hash`` of the line before (64 zeros for the first), ``seq`` counts from 0, and
``hash`` is SHA-256 over a domain string and the canonical JSON of the entry without
``hash``. A changed line breaks its own hash, a removed or reordered line breaks the
chain, and the head record (count and last hash, kept beside the log) catches lines cut
from the end. Fingerprints in entries are keyed (core/fingerprint.py), never values.

Pure: encode and verify bytes; the adapter reads and appends the file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aux_secrets.core.bundle import (
    BUNDLE_ID_RE,
    canonical_json,
    check_host_name,
    check_secret_name,
    format_instant,
    load_json,
    parse_instant_strict,
)
from aux_secrets.core.fields import known_fields
from aux_secrets.core.fingerprint import is_fingerprint
from aux_secrets.errors import FormatVersionError, InputError

VERSION = 1
EVENTS = ("activate", "install", "repair")
# An entry longer than this carries counts and a digest instead of its lists (section 5
# of the spec), so every line stays far below what a reader accepts (MAX_LINE_BYTES).
MAX_ENTRY_BYTES = 64 * 1024
MAX_LINE_BYTES = 16 * 1024 * 1024
_SUMMARY_DOMAIN = b"aux-secrets audit summary v1\x00"
GENESIS = "0" * 64
_DOMAIN = b"aux-secrets audit v1\x00"
_HASH_RE = re.compile(r"[0-9a-f]{64}")
_UNIT_RE = re.compile(r"[A-Za-z0-9:_.@\\-]{1,255}")
_FIELDS = {
    "version",
    "seq",
    "time",
    "event",
    "host",
    "bundleId",
    "serial",
    "generation",
    "changed",
    "fingerprints",
    "restartUnits",
    "reloadUnits",
    "prev",
    "hash",
}
_OPTIONAL = {"summary", "dropped", "unitsNotFound"}
_SUMMARY_FIELDS = {"changed", "restartUnits", "reloadUnits", "digest"}


@dataclass(frozen=True)
class AuditSummary:
    """What an entry too long to write in full carries instead of its lists."""

    changed: int
    restart_units: int
    reload_units: int
    digest: str  # SHA-256 over the full lists (summary_digest)


@dataclass(frozen=True)
class AuditEvent:
    """What happened, as the caller reports it (seq, prev and hash are added on append)."""

    event: str
    time: datetime
    host: str
    bundle_id: str | None = None
    serial: int | None = None
    generation: int | None = None
    changed: tuple[str, ...] = ()
    fingerprints: Mapping[str, str] = field(default_factory=dict)
    restart_units: tuple[str, ...] = ()
    reload_units: tuple[str, ...] = ()
    summary: AuditSummary | None = None  # set instead of the lists for a long entry
    dropped: int | None = None  # "repair": bytes of a torn last line removed
    units_not_found: tuple[str, ...] = ()  # "install": units skipped, the host lacks them


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    prev: str
    hash: str
    event: AuditEvent


@dataclass(frozen=True)
class AuditHead:
    """The count of entries and the last hash (GENESIS and 0 for an empty log)."""

    count: int
    hash: str


def _check_event(ev: AuditEvent, where: str) -> None:
    if ev.event not in EVENTS:
        raise InputError(f"{where}.event: expected one of {', '.join(EVENTS)}")
    check_host_name(ev.host, f"{where}.host")
    if ev.bundle_id is not None and (
        not isinstance(ev.bundle_id, str) or not BUNDLE_ID_RE.fullmatch(ev.bundle_id)
    ):
        raise InputError(f"{where}.bundleId: expected 32 lowercase hex digits or null")
    for name, value in (("serial", ev.serial), ("generation", ev.generation)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise InputError(f"{where}.{name}: expected a whole number or null")
    for name in ev.changed:
        check_secret_name(name, f"{where}.changed")
    if len(set(ev.changed)) != len(ev.changed):
        raise InputError(f"{where}.changed: a secret is listed twice")
    for name, fp in ev.fingerprints.items():
        check_secret_name(name, f"{where}.fingerprints")
        if not is_fingerprint(fp):
            raise InputError(f"{where}.fingerprints.{name}: not a keyed fingerprint")
    for key, units in (
        ("restartUnits", ev.restart_units),
        ("reloadUnits", ev.reload_units),
        ("unitsNotFound", ev.units_not_found),
    ):
        for unit in units:
            if not isinstance(unit, str) or not _UNIT_RE.fullmatch(unit):
                raise InputError(f"{where}.{key}: {unit!r} is not a unit name")


def summary_digest(ev: AuditEvent) -> str:
    """SHA-256 over an event's full lists: lets someone holding them check a summary."""
    lists = {
        "changed": sorted(ev.changed),
        "fingerprints": dict(sorted(ev.fingerprints.items())),
        "reloadUnits": sorted(ev.reload_units),
        "restartUnits": sorted(ev.restart_units),
    }
    return hashlib.sha256(_SUMMARY_DOMAIN + canonical_json(lists)).hexdigest()


def summarised(ev: AuditEvent) -> AuditEvent:
    """``ev`` with its lists replaced by their counts and digest."""
    summary = AuditSummary(
        changed=len(ev.changed),
        restart_units=len(ev.restart_units),
        reload_units=len(ev.reload_units),
        digest=summary_digest(ev),
    )
    return AuditEvent(
        event=ev.event,
        time=ev.time,
        host=ev.host,
        bundle_id=ev.bundle_id,
        serial=ev.serial,
        generation=ev.generation,
        summary=summary,
        dropped=ev.dropped,
    )


def _body(seq: int, prev: str, ev: AuditEvent) -> dict[str, Any]:
    optional: dict[str, Any] = {}
    if ev.summary is not None:
        optional["summary"] = {
            "changed": ev.summary.changed,
            "digest": ev.summary.digest,
            "reloadUnits": ev.summary.reload_units,
            "restartUnits": ev.summary.restart_units,
        }
    if ev.dropped is not None:
        optional["dropped"] = ev.dropped
    if ev.units_not_found:
        optional["unitsNotFound"] = sorted(ev.units_not_found)
    return {
        **optional,
        "bundleId": ev.bundle_id,
        "changed": sorted(ev.changed),
        "event": ev.event,
        "fingerprints": dict(sorted(ev.fingerprints.items())),
        "generation": ev.generation,
        "host": ev.host,
        "prev": prev,
        "reloadUnits": sorted(ev.reload_units),
        "restartUnits": sorted(ev.restart_units),
        "seq": seq,
        "serial": ev.serial,
        "time": format_instant(ev.time),
        "version": VERSION,
    }


def _hash(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(_DOMAIN + canonical_json(body)).hexdigest()


def encode_entry(head: AuditHead, event: AuditEvent) -> tuple[bytes, AuditHead]:
    """The line (with newline) that follows ``head``, and the head after it."""
    _check_event(event, "audit entry")
    body = _body(head.count, head.hash, event)
    digest = _hash(body)
    line = canonical_json({**body, "hash": digest}) + b"\n"
    if len(line) > MAX_ENTRY_BYTES and event.summary is None:
        return encode_entry(head, summarised(event))
    return line, AuditHead(count=head.count + 1, hash=digest)


def _str_list(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}: expected a list of strings")
    return tuple(value)


def decode_entry(line: bytes, where: str) -> AuditEntry:
    """One line (without its newline) -> entry; the hash is checked, not the chain."""
    doc = load_json(line, where)
    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected a JSON object")
    if doc.get("version") != VERSION or isinstance(doc.get("version"), bool):
        raise FormatVersionError(
            f"{where}: audit entry version {doc.get('version')!r} is not supported"
        )
    # A newer writer's fields are skipped (docs/spec/evolution.md), yet still covered by
    # the hash below, which is over the whole line.
    known = known_fields(doc, where, _FIELDS, _OPTIONAL)
    seq, prev, digest = doc["seq"], doc["prev"], doc["hash"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise InputError(f"{where}: seq is not a whole number")
    for name, value in (("prev", prev), ("hash", digest)):
        if not isinstance(value, str) or not _HASH_RE.fullmatch(value):
            raise InputError(f"{where}: {name} is not a SHA-256 hex digest")
    fps = doc["fingerprints"]
    if not isinstance(fps, dict) or not all(isinstance(v, str) for v in fps.values()):
        raise InputError(f"{where}: fingerprints is not an object of strings")
    for name in ("event", "host"):
        if not isinstance(doc[name], str):
            raise InputError(f"{where}: {name} is not a string")
    summary = _decode_summary(doc.get("summary"), where) if "summary" in doc else None
    not_found = _str_list(doc.get("unitsNotFound", []), f"{where}.unitsNotFound")
    dropped = doc.get("dropped")
    if "dropped" in doc and (
        isinstance(dropped, bool) or not isinstance(dropped, int) or dropped < 0
    ):
        raise InputError(f"{where}: dropped is not a whole number")
    event = AuditEvent(
        event=doc["event"],
        time=parse_instant_strict(doc["time"], f"{where}.time"),
        host=doc["host"],
        bundle_id=doc["bundleId"],
        serial=doc["serial"],
        generation=doc["generation"],
        changed=_str_list(doc["changed"], f"{where}.changed"),
        fingerprints=fps,
        restart_units=_str_list(doc["restartUnits"], f"{where}.restartUnits"),
        reload_units=_str_list(doc["reloadUnits"], f"{where}.reloadUnits"),
        summary=summary,
        dropped=dropped,
        units_not_found=not_found,
    )
    _check_event(event, where)
    body = {k: v for k, v in doc.items() if k != "hash"}
    known_body = {k: v for k, v in known.items() if k != "hash"}
    if _body(seq, prev, event) != known_body or canonical_json(doc) != line:
        raise InputError(f"{where}: entry is not in canonical form (edited?)")
    if _hash(body) != digest:
        raise InputError(f"{where}: hash does not match the entry (the entry was changed)")
    return AuditEntry(seq=seq, prev=prev, hash=digest, event=event)


def _decode_summary(value: object, where: str) -> AuditSummary:
    if not isinstance(value, dict) or set(value) != _SUMMARY_FIELDS:
        raise InputError(f"{where}.summary: expected exactly {', '.join(sorted(_SUMMARY_FIELDS))}")
    counts = [value[k] for k in ("changed", "restartUnits", "reloadUnits")]
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in counts):
        raise InputError(f"{where}.summary: counts must be whole numbers")
    digest = value["digest"]
    if not isinstance(digest, str) or not _HASH_RE.fullmatch(digest):
        raise InputError(f"{where}.summary.digest: not a SHA-256 hex digest")
    return AuditSummary(
        changed=counts[0], restart_units=counts[1], reload_units=counts[2], digest=digest
    )


def verify_log(data: bytes, head: AuditHead | None, *, name: str = "audit log") -> list[AuditEntry]:
    """Check every line and the chain; with ``head``, also that nothing was cut off the end."""
    if data and not data.endswith(b"\n"):
        raise InputError(f"{name}: the last line is incomplete (interrupted write or truncation)")
    lines = data.split(b"\n")[:-1] if data else []
    entries: list[AuditEntry] = []
    prev = GENESIS
    for number, line in enumerate(lines, start=1):
        where = f"{name} line {number}"
        entry = decode_entry(line, where)
        if entry.seq != number - 1 or entry.prev != prev:
            raise InputError(
                f"{where}: the chain is broken "
                "(an entry before it was removed, reordered or changed)"
            )
        entries.append(entry)
        prev = entry.hash
    if head is not None and not _head_accepts(head, entries):
        raise InputError(
            f"{name}: holds {len(entries)} entries but the head records {head.count} "
            "(entries were removed from the end, or the head was changed)"
        )
    return entries


def _head_accepts(head: AuditHead, entries: Sequence[AuditEntry]) -> bool:
    """The head matches the last entry, or lags by exactly the last one (a crash between
    appending a line and recording the new head)."""
    if head == head_of(entries):
        return True
    return bool(entries) and head == head_of(entries[:-1])


def head_of(entries: Sequence[AuditEntry]) -> AuditHead:
    return AuditHead(count=len(entries), hash=entries[-1].hash if entries else GENESIS)


def encode_head(head: AuditHead) -> bytes:
    return canonical_json({"count": head.count, "hash": head.hash, "version": VERSION}) + b"\n"


def decode_head(data: bytes, *, name: str = "audit head") -> AuditHead:
    doc = load_json(data, name)
    if not isinstance(doc, dict):
        raise InputError(f"{name}: expected a JSON object")
    if doc.get("version") != VERSION or isinstance(doc.get("version"), bool):
        raise FormatVersionError(f"{name}: version {doc.get('version')!r} is not supported")
    known_fields(doc, name, {"count", "hash", "version"})
    count, digest = doc["count"], doc["hash"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InputError(f"{name}: count is not a whole number")
    if not isinstance(digest, str) or not _HASH_RE.fullmatch(digest):
        raise InputError(f"{name}: hash is not a SHA-256 hex digest")
    if canonical_json(doc) + b"\n" != data:
        raise InputError(f"{name}: not in canonical form")
    return AuditHead(count=count, hash=digest)


__all__ = [
    "EVENTS",
    "GENESIS",
    "MAX_ENTRY_BYTES",
    "MAX_LINE_BYTES",
    "VERSION",
    "AuditEntry",
    "AuditEvent",
    "AuditHead",
    "AuditSummary",
    "decode_entry",
    "decode_head",
    "encode_entry",
    "encode_head",
    "head_of",
    "summarised",
    "summary_digest",
    "verify_log",
]
