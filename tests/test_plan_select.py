from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from aux_secrets.core.select import (
    OPEN_NOT_AFTER,
    OPEN_NOT_BEFORE,
    clock_is_behind,
    earliest,
    live_instant,
    runs_out_soon,
    select,
)


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


def test_beyond_all_slots_keeps_the_last_value_stale() -> None:
    """Time running out never takes a value away: the newest one stays, marked stale."""
    sel = select(BUNDLE, month(2027, 2), keep_retired=2)
    assert sel.current == b"dec"
    assert sel.current_label == "2026-12"
    assert sel.outside == "after" and sel.stale
    assert sel.retired == (b"nov", b"oct")
    assert sel.covered_until == month(2027, 1)
    assert sel.next_change is None  # nothing changes until the host is provisioned


def test_before_all_slots_serves_the_value_marked_current() -> None:
    sel = select(BUNDLE, month(2026, 1))
    assert sel.current == b"nov"
    assert sel.outside == "before" and sel.stale
    assert sel.next_change == month(2026, 9)


def test_inside_a_window_is_not_stale() -> None:
    assert select(BUNDLE, datetime(2026, 11, 22, tzinfo=UTC)).outside is None


def test_a_clock_before_the_bundle_uses_the_bundles_creation() -> None:
    made = datetime(2026, 11, 22, 12, tzinfo=UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert live_instant(epoch, made) == made
    assert clock_is_behind(epoch, made)
    later = made + timedelta(days=3)
    assert live_instant(later, made) == later
    assert not clock_is_behind(later, made)
    skew = made - timedelta(minutes=2)  # a little skew between operator and host clocks
    assert live_instant(skew, made) == made
    assert not clock_is_behind(skew, made)
    assert not clock_is_behind(epoch, None)
    # The next rotation is then counted from the bundle's creation, not from 1970.
    assert select(BUNDLE, live_instant(epoch, made)).next_change == month(2026, 12)


def test_values_running_out_warn_days_ahead() -> None:
    # The last value (2026-12) ends 2027-01-01: no warning in November...
    assert runs_out_soon(BUNDLE, datetime(2026, 11, 22, tzinfo=UTC)) is None
    # ...a week before, and on, the end...
    assert runs_out_soon(BUNDLE, datetime(2026, 12, 25, tzinfo=UTC)) == month(2027, 1)
    # ...none once they ran out (that is stale, said elsewhere), none for open values.
    assert runs_out_soon(BUNDLE, month(2027, 2)) is None
    static = [S("current", "static", OPEN_NOT_BEFORE, OPEN_NOT_AFTER, b"v")]
    assert runs_out_soon(static, month(2030, 1)) is None
    # A daily secret warns on its last day only, not all the time.
    day = datetime(2026, 11, 22, tzinfo=UTC)
    daily = [
        S("current", "d1", day, day + timedelta(days=1), b"a"),
        S("ahead", "d2", day + timedelta(days=1), day + timedelta(days=2), b"b"),
    ]
    assert runs_out_soon(daily, day + timedelta(hours=1)) is None
    assert runs_out_soon(daily, day + timedelta(days=1, hours=1)) == day + timedelta(days=2)


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
