"""The install entry's optional ``unitsNotFound``: units the host did not have, skipped."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import UTC, datetime

import pytest

from aux_secrets.core.audit import (
    GENESIS,
    MAX_ENTRY_BYTES,
    AuditEvent,
    AuditHead,
    decode_entry,
    encode_entry,
)
from aux_secrets.core.bundle import canonical_json
from aux_secrets.errors import InputError

EVENT = AuditEvent(
    event="install",
    time=datetime(2026, 11, 22, tzinfo=UTC),
    host="web1",
    generation=3,
    restart_units=("gone.service", "web.service"),
    units_not_found=("gone.service",),
)
START = AuditHead(0, GENESIS)


def test_round_trip_sorted() -> None:
    ev = dataclasses.replace(EVENT, units_not_found=("z.service", "gone.service"))
    line, _ = encode_entry(START, ev)
    doc = json.loads(line)
    assert doc["unitsNotFound"] == ["gone.service", "z.service"]
    assert decode_entry(line.rstrip(b"\n"), "e").event.units_not_found == (
        "gone.service",
        "z.service",
    )


def test_absent_when_every_unit_was_there() -> None:
    line, _ = encode_entry(START, dataclasses.replace(EVENT, units_not_found=()))
    assert "unitsNotFound" not in json.loads(line)


def rewritten(**fields: object) -> bytes:
    """An entry with fields changed and its hash recomputed (a careful forger)."""
    line, _ = encode_entry(START, EVENT)
    doc = json.loads(line)
    doc.update(fields)
    doc.pop("hash")
    doc["hash"] = hashlib.sha256(b"aux-secrets audit v1\x00" + canonical_json(doc)).hexdigest()
    return canonical_json(doc)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ([], "canonical"),  # an empty list is written as no field
        (["web.service", "gone.service"], "canonical"),  # not sorted
        (["bad name"], "not a unit name"),
        ("gone.service", "list of strings"),
    ],
)
def test_refused_forms(value: object, why: str) -> None:
    with pytest.raises(InputError, match=why):
        decode_entry(rewritten(unitsNotFound=value), "e")
    assert decode_entry(rewritten(), "e").event == EVENT


def test_a_long_entry_leaves_the_list_out() -> None:
    many = tuple(f"u{n:05}.service" for n in range(6000))
    line, _ = encode_entry(START, dataclasses.replace(EVENT, units_not_found=many))
    assert len(line) < MAX_ENTRY_BYTES
    assert "unitsNotFound" not in json.loads(line) and "summary" in json.loads(line)
