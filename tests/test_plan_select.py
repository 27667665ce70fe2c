from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from aux_secrets.core.select import OPEN_NOT_AFTER, OPEN_NOT_BEFORE, earliest, select


@dataclass(frozen=True)
class S:
    role: str
    label: str
    not_before: datetime
    not_after: datetime
    value: bytes


def month(y: int, m: int) -> datetime:
    return datetime(y, m, 1, tzinfo=UTC)


# A bundle made in November 2026: monthly, retired 2, ahead 1.
BUNDLE = [
    S("current", "2026-11", month(2026, 11), month(2026, 12), b"nov"),
    S("retired", "2026-10", month(2026, 10), month(2026, 11), b"oct"),
    S("retired", "2026-09", month(2026, 9), month(2026, 10), b"sep"),
    S("ahead", "2026-12", month(2026, 12), month(2027, 1), b"dec"),
]


def test_inside_current_window() -> None:
    sel = select(BUNDLE, datetime(2026, 11, 22, tzinfo=UTC), keep_retired=2)
    assert sel.current == b"nov"
    assert sel.current_label == "2026-11"
    assert sel.retired == (b"oct", b"sep")
    assert sel.next_change == month(2026, 12)
    assert sel.covered_until == month(2027, 1)


def test_boundary_passed_promotes_ahead_slot() -> None:
    sel = select(BUNDLE, month(2026, 12), keep_retired=2)  # exactly on the boundary
    assert sel.current == b"dec"
    assert sel.retired == (b"nov", b"oct")
    assert sel.next_change == month(2027, 1)


def test_one_microsecond_before_boundary() -> None:
    sel = select(BUNDLE, month(2026, 12) - timedelta(microseconds=1), keep_retired=2)
    assert sel.current == b"nov"


def test_beyond_all_slots_has_no_current() -> None:
    sel = select(BUNDLE, month(2027, 2))
    assert sel.current is None
    assert sel.covered_until == month(2027, 1)


def test_before_all_slots_has_no_current() -> None:
    sel = select(BUNDLE, month(2026, 1))
    assert sel.current is None
    assert sel.next_change == month(2026, 9)


def test_fixed_secret_with_kept_values() -> None:
    slots = [
        S("current", "", OPEN_NOT_BEFORE, OPEN_NOT_AFTER, b"live"),
        S("retired", "", OPEN_NOT_BEFORE, OPEN_NOT_AFTER, b"old1"),
        S("retired", "", OPEN_NOT_BEFORE, OPEN_NOT_AFTER, b"old2"),
    ]
    sel = select(slots, datetime(2026, 11, 22, tzinfo=UTC))
    assert sel.current == b"live"
    assert sel.retired == (b"old1", b"old2")
    assert sel.next_change is None


def test_naive_instant_refused() -> None:
    with pytest.raises(ValueError):
        select(BUNDLE, datetime(2026, 11, 22))


def test_earliest() -> None:
    assert earliest([None, month(2027, 1), month(2026, 12)]) == month(2026, 12)
    assert earliest([None]) is None
