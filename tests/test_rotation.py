"""Rotation arithmetic: fixed examples plus properties over the whole calendar."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aux_secrets.core.rotation import (
    OPEN_NOT_AFTER,
    OPEN_NOT_BEFORE,
    PERIODS,
    Rotation,
    expand,
    format_instant,
    next_boundary,
    parse_instant,
    period_label,
)
from aux_secrets.errors import InputError


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


instants = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9997, 12, 31), timezones=st.just(UTC)
)
periods = st.sampled_from(PERIODS)
# Far enough from the calendar's ends for a few retired/ahead years.
inner_instants = st.datetimes(
    min_value=datetime(10, 1, 1), max_value=datetime(9990, 12, 31), timezones=st.just(UTC)
)


# ------------------------------------------------------------------ fixed examples


@pytest.mark.parametrize(
    ("period", "label", "start", "end"),
    [
        ("daily", "2026-11-22", utc(2026, 11, 22), utc(2026, 11, 23)),
        ("weekly", "2026-W47", utc(2026, 11, 16), utc(2026, 11, 23)),
        ("monthly", "2026-11", utc(2026, 11, 1), utc(2026, 12, 1)),
        ("quarterly", "2026-Q4", utc(2026, 10, 1), utc(2027, 1, 1)),
        ("yearly", "2026", utc(2026, 1, 1), utc(2027, 1, 1)),
    ],
)
def test_current_slot_of_each_period(
    period: str, label: str, start: datetime, end: datetime
) -> None:
    [slot] = expand("talos/hmac/{period}", Rotation(period), utc(2026, 11, 22, 13, 5))
    assert slot.role == "current"
    assert slot.label == label
    assert slot.realm == f"talos/hmac/{label}"
    assert (slot.not_before, slot.not_after) == (start, end)


def test_monthly_retired_and_ahead_order() -> None:
    slots = expand(
        "talos/hmac/{period}", Rotation("monthly", retired=2, ahead=1), utc(2026, 11, 22)
    )
    assert [(s.role, s.realm) for s in slots] == [
        ("current", "talos/hmac/2026-11"),
        ("retired", "talos/hmac/2026-10"),
        ("retired", "talos/hmac/2026-09"),
        ("ahead", "talos/hmac/2026-12"),
    ]


def test_year_end_crossing() -> None:
    slots = expand("k/{period}", Rotation("monthly", retired=1, ahead=1), utc(2026, 12, 31, 23, 59))
    assert [s.label for s in slots] == ["2026-12", "2026-11", "2027-01"]
    slots = expand("k/{period}", Rotation("quarterly", retired=1, ahead=1), utc(2027, 1, 1))
    assert [s.label for s in slots] == ["2027-Q1", "2026-Q4", "2027-Q2"]


@pytest.mark.parametrize(
    ("instant", "labels"),
    [
        # 2020 and 2026 are ISO years with 53 weeks; 2021-01-03 is still in 2020-W53.
        (utc(2021, 1, 3, 23, 59), ["2020-W53", "2020-W52", "2021-W01"]),
        (utc(2021, 1, 4), ["2021-W01", "2020-W53", "2021-W02"]),
        (utc(2027, 1, 1), ["2026-W53", "2026-W52", "2027-W01"]),
        (utc(2026, 12, 28), ["2026-W53", "2026-W52", "2027-W01"]),
        # ISO year 2025 starts on 2024-12-30.
        (utc(2024, 12, 30), ["2025-W01", "2024-W52", "2025-W02"]),
    ],
)
def test_iso_week_53_and_year_edges(instant: datetime, labels: list[str]) -> None:
    slots = expand("k/{period}", Rotation("weekly", retired=1, ahead=1), instant)
    assert [s.label for s in slots] == labels


def test_leap_day() -> None:
    [slot, before, after] = expand("k/{period}", Rotation("daily", 1, 1), utc(2028, 2, 29, 12))
    assert (slot.label, before.label, after.label) == ("2028-02-29", "2028-02-28", "2028-03-01")
    [feb] = expand("k/{period}", Rotation("monthly"), utc(2028, 2, 10))
    assert feb.not_after - feb.not_before == timedelta(days=29)
    [feb] = expand("k/{period}", Rotation("monthly"), utc(2027, 2, 10))
    assert feb.not_after - feb.not_before == timedelta(days=28)


def test_instant_on_boundary_belongs_to_new_period() -> None:
    at = utc(2026, 12, 1)
    assert period_label("monthly", at) == "2026-12"
    assert period_label("monthly", at - timedelta(microseconds=1)) == "2026-11"
    assert next_boundary("monthly", at) == utc(2027, 1, 1)


def test_other_time_zones_are_converted_to_utc() -> None:
    # 00:30 on Dec 1 in UTC+1 is still November in UTC.
    at = datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=1)))
    assert period_label("monthly", at) == "2026-11"


def test_no_rotation_is_one_open_slot() -> None:
    [slot] = expand("db/web1", None, utc(2026, 11, 22))
    assert (slot.role, slot.label, slot.realm) == ("current", "", "db/web1")
    assert (slot.not_before, slot.not_after) == (OPEN_NOT_BEFORE, OPEN_NOT_AFTER)


def test_template_and_rotation_must_agree() -> None:
    with pytest.raises(InputError, match=r"has a rotation but no \{period\}"):
        expand("talos/hmac", Rotation("monthly"), utc(2026, 11, 22))
    with pytest.raises(InputError, match=r"contains \{period\} but has no rotation"):
        expand("talos/hmac/{period}", None, utc(2026, 11, 22))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"period": "hourly"},
        {"period": "monthly", "retired": -1},
        {"period": "daily", "ahead": 1001},
    ],
)
def test_bad_rotation_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(InputError):
        Rotation(**kwargs)  # type: ignore[arg-type]


def test_naive_instant_refused() -> None:
    with pytest.raises(InputError, match="time zone"):
        expand("k/{period}", Rotation("daily"), datetime(2026, 11, 22))


def test_end_of_calendar() -> None:
    with pytest.raises(InputError, match="years 1 to 9999"):
        expand("k/{period}", Rotation("yearly", ahead=1), utc(9999, 6, 1))
    [slot] = expand("k/{period}", Rotation("yearly"), utc(9999, 6, 1))
    assert slot.not_after == OPEN_NOT_AFTER
    with pytest.raises(InputError, match="years 1 to 9999"):
        expand("k/{period}", Rotation("daily", retired=2), utc(1, 1, 1))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-22T00:00:00Z", utc(2026, 11, 22)),
        ("2026-11-22T01:00:00+01:00", utc(2026, 11, 22)),
        ("2026-11-22", utc(2026, 11, 22)),
        ("2026-11-22T10:11:12.5Z", utc(2026, 11, 22, 10, 11, 12, 500000)),
    ],
)
def test_parse_instant(text: str, expected: datetime) -> None:
    assert parse_instant(text) == expected
    assert parse_instant(text).tzinfo == UTC


@pytest.mark.parametrize(
    "text", ["2026-11-22T00:00:00", "yesterday", "", "2026-13-01", "2026-11", "x" * 100, "２０２６"]
)
def test_parse_instant_refuses(text: str) -> None:
    with pytest.raises(InputError):
        parse_instant(text)


def test_format_instant() -> None:
    assert format_instant(utc(2026, 11, 22)) == "2026-11-22T00:00:00Z"


# ------------------------------------------------------------------ properties


@settings(max_examples=300)
@given(periods, instants)
def test_current_window_contains_instant(period: str, at: datetime) -> None:
    [slot] = expand("r/{period}", Rotation(period), at)
    assert slot.not_before <= at < slot.not_after
    assert slot.not_before.tzinfo == UTC
    assert (slot.not_before.hour, slot.not_before.minute, slot.not_before.second) == (0, 0, 0)
    assert slot.label == period_label(period, at)


@settings(max_examples=300)
@given(periods, instants)
def test_next_boundary_is_after_and_starts_next_period(period: str, at: datetime) -> None:
    boundary = next_boundary(period, at)
    assert boundary > at
    [current] = expand("r/{period}", Rotation(period), at)
    assert boundary == current.not_after
    # On the boundary: the new period; a microsecond before: still the old one.
    [new] = expand("r/{period}", Rotation(period), boundary)
    assert new.not_before == boundary
    assert new.label != current.label
    assert period_label(period, boundary - timedelta(microseconds=1)) == current.label


@settings(max_examples=200)
@given(periods, inner_instants, st.integers(0, 6), st.integers(0, 6))
def test_windows_tile_without_gaps(period: str, at: datetime, retired: int, ahead: int) -> None:
    slots = expand("r/{period}", Rotation(period, retired, ahead), at)
    assert len(slots) == 1 + retired + ahead
    assert [s.role for s in slots] == ["current"] + ["retired"] * retired + ["ahead"] * ahead
    current, older, newer = slots[0], slots[1 : 1 + retired], slots[1 + retired :]
    chain = [*reversed(older), current, *newer]
    for a, b in itertools.pairwise(chain):
        assert a.not_after == b.not_before
        assert a.label < b.label  # labels sort in time order
    assert len({s.label for s in slots}) == len(slots)
    for s in slots:
        assert s.realm == f"r/{s.label}"
        assert s.not_before < s.not_after
        # Each window's own start maps back to the same label.
        assert period_label(period, s.not_before) == s.label


@settings(max_examples=200)
@given(instants)
def test_period_lengths(at: datetime) -> None:
    def length(period: str) -> timedelta:
        [s] = expand("r/{period}", Rotation(period), at)
        return s.not_after - s.not_before

    assert length("daily") == timedelta(days=1)
    assert length("weekly") == timedelta(days=7)
    assert timedelta(days=28) <= length("monthly") <= timedelta(days=31)
    assert timedelta(days=90) <= length("quarterly") <= timedelta(days=92)
    assert length("yearly") in (timedelta(days=365), timedelta(days=366))


@settings(max_examples=200)
@given(instants)
def test_weekly_label_is_python_iso_calendar(at: datetime) -> None:
    year, week, _ = at.date().isocalendar()
    assert period_label("weekly", at) == f"{year:04d}-W{week:02d}"
    [s] = expand("r/{period}", Rotation("weekly"), at)
    assert s.not_before.weekday() == 0
    assert date.fromisocalendar(year, week, 1) == s.not_before.date()


@settings(max_examples=100)
@given(st.integers(1, 9998))
def test_iso_week_53_exists_exactly_in_long_years(year: int) -> None:
    long_year = date(year, 12, 28).isocalendar()[1] == 53
    last = utc(year, 12, 28)
    assert period_label("weekly", last) == (f"{year:04d}-W53" if long_year else f"{year:04d}-W52")
    slots = expand("r/{period}", Rotation("weekly", ahead=1), last)
    assert slots[1].label == f"{year + 1:04d}-W01"


@settings(max_examples=100)
@given(instants)
def test_format_parse_round_trip(at: datetime) -> None:
    assert parse_instant(format_instant(at)) == at
