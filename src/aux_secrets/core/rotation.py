"""Date-stamped rotation: which realm is current, retired or ahead at a given instant.

Rotation of a derived secret is a change of realm: ``talos/hmac/{period}`` becomes
``talos/hmac/2026-11`` in November and ``talos/hmac/2026-12`` in December. Any period's
value can be derived again, so nothing is archived. Everything here is pure and in UTC;
the caller passes the instant in.

Each period is numbered by an integer *index* (days since 0001-01-01, ISO weeks since the
week of 0001-01-01, months, quarters, years); neighbours are index +/- 1, which keeps the
arithmetic exact across month lengths, leap years and ISO years with 53 weeks.
Windows are half-open: ``not_before <= t < not_after``; an instant exactly on a boundary
belongs to the period that starts there.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from aux_secrets.errors import InputError

PERIODS = ("daily", "weekly", "monthly", "quarterly", "yearly")
PLACEHOLDER = "{period}"

# The most retired or ahead slots one rotation may ask for (a sanity bound, not a policy).
MAX_SLOTS = 1000

# The window of a secret without rotation: valid at every instant.
OPEN_NOT_BEFORE = datetime.min.replace(tzinfo=UTC)
OPEN_NOT_AFTER = datetime.max.replace(tzinfo=UTC)

Role = Literal["current", "retired", "ahead"]


@dataclass(frozen=True)
class Rotation:
    """A period plus how many earlier (``retired``) and later (``ahead``) periods to keep."""

    period: str
    retired: int = 0
    ahead: int = 0

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise InputError(
                f"unknown rotation period {self.period!r}",
                hint=f"use one of: {', '.join(PERIODS)}",
            )
        for field in ("retired", "ahead"):
            count = getattr(self, field)
            if isinstance(count, bool) or not isinstance(count, int):
                raise InputError(f"rotation {field} must be a whole number")
            if not 0 <= count <= MAX_SLOTS:
                raise InputError(f"rotation {field} must be between 0 and {MAX_SLOTS}, not {count}")


@dataclass(frozen=True)
class Slot:
    """One realm of a rotated secret and the half-open window ``[not_before, not_after)``."""

    role: Role
    label: str
    realm: str
    not_before: datetime
    not_after: datetime


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise InputError(
            "instant has no time zone", hint="give it in UTC, e.g. 2026-11-22T00:00:00Z"
        )
    return at.astimezone(UTC)


def _index(period: str, at: datetime) -> int:
    day = at.date()
    if period == "daily":
        return day.toordinal()
    if period == "weekly":
        # 0001-01-01 is a Monday, so ISO weeks are the 7-day blocks counted from it.
        return (day.toordinal() - 1) // 7
    if period == "monthly":
        return day.year * 12 + day.month - 1
    if period == "quarterly":
        return day.year * 4 + (day.month - 1) // 3
    if period == "yearly":
        return day.year
    raise InputError(
        f"unknown rotation period {period!r}", hint=f"use one of: {', '.join(PERIODS)}"
    )


def _start_date(period: str, index: int) -> date:
    try:
        if period == "daily":
            return date.fromordinal(index)
        if period == "weekly":
            return date.fromordinal(index * 7 + 1)
        if period == "monthly":
            return date(index // 12, index % 12 + 1, 1)
        if period == "quarterly":
            return date(index // 4, (index % 4) * 3 + 1, 1)
        return date(index, 1, 1)
    except (ValueError, OverflowError):
        raise InputError(
            f"{period} rotation reaches outside the years 1 to 9999", hint="use a nearer instant"
        ) from None


def _start(period: str, index: int) -> datetime:
    d = _start_date(period, index)
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _end(period: str, index: int) -> datetime:
    # The last period of year 9999 has no representable successor start: it ends at the
    # end of time (the same instant an open window ends at).
    try:
        return _start(period, index + 1)
    except InputError:
        if index == _index(period, OPEN_NOT_AFTER):
            return OPEN_NOT_AFTER
        raise


def _label(period: str, index: int) -> str:
    d = _start_date(period, index)
    if period == "daily":
        return d.isoformat()
    if period == "weekly":
        year, week, _ = d.isocalendar()
        return f"{year:04d}-W{week:02d}"
    if period == "monthly":
        return f"{d.year:04d}-{d.month:02d}"
    if period == "quarterly":
        return f"{d.year:04d}-Q{(d.month - 1) // 3 + 1}"
    return f"{d.year:04d}"


def _check_template(realm_template: str, rotation: Rotation | None) -> None:
    has = PLACEHOLDER in realm_template
    if rotation is not None and not has:
        raise InputError(
            f"realm {realm_template!r} has a rotation but no {PLACEHOLDER}",
            hint=f"put {PLACEHOLDER} in the realm, e.g. {realm_template}/{PLACEHOLDER}",
        )
    if rotation is None and has:
        raise InputError(
            f"realm {realm_template!r} contains {PLACEHOLDER} but has no rotation",
            hint="give a rotation period (daily, weekly, monthly, quarterly, yearly)",
        )


def period_label(period: str, at: datetime) -> str:
    """The label of the period containing ``at``: ``2026-11-22``, ``2026-W47``, ``2026-11``..."""
    return _label(period, _index(period, _utc(at)))


def next_boundary(period: str, at: datetime) -> datetime:
    """The first instant after ``at`` at which a new period starts (always ``> at``)."""
    return _end(period, _index(period, _utc(at)))


def expand(realm_template: str, rotation: Rotation | None, at: datetime) -> list[Slot]:
    """``[current, retired newest-first..., ahead soonest-first...]`` at instant ``at``.

    Without a rotation the result is one current slot with the realm unchanged and an open
    window (``OPEN_NOT_BEFORE``..``OPEN_NOT_AFTER``, label ``""``).
    """
    _check_template(realm_template, rotation)
    at = _utc(at)
    if rotation is None:
        return [Slot("current", "", realm_template, OPEN_NOT_BEFORE, OPEN_NOT_AFTER)]
    period = rotation.period
    now = _index(period, at)

    def slot(role: Role, index: int) -> Slot:
        label = _label(period, index)
        return Slot(
            role=role,
            label=label,
            realm=realm_template.replace(PLACEHOLDER, label),
            not_before=_start(period, index),
            not_after=_end(period, index),
        )

    slots = [slot("current", now)]
    slots += [slot("retired", now - k) for k in range(1, rotation.retired + 1)]
    slots += [slot("ahead", now + k) for k in range(1, rotation.ahead + 1)]
    return slots


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant with an explicit offset (``Z`` or ``+00:00``...), returned in UTC.

    A bare date (``2026-11-22``) means its midnight UTC. A date-time without an offset is
    refused rather than guessed as local time.
    """
    if len(text) > 64 or not text.isascii():
        raise InputError(f"not an ISO 8601 instant: {text[:64]!r}")
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(
            f"not an ISO 8601 instant: {text!r}", hint="write it like 2026-11-22T00:00:00Z"
        ) from None
    if value.tzinfo is None:
        raise InputError(f"instant {text!r} has no time zone", hint=f"add Z for UTC, e.g. {text}Z")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InputError(f"instant {text!r} is outside the years 1 to 9999") from None


def format_instant(at: datetime) -> str:
    """``2026-11-22T00:00:00Z`` (seconds precision, microseconds only when present)."""
    return _utc(at).isoformat().replace("+00:00", "Z")


__all__ = [
    "MAX_SLOTS",
    "OPEN_NOT_AFTER",
    "OPEN_NOT_BEFORE",
    "PERIODS",
    "PLACEHOLDER",
    "Rotation",
    "Slot",
    "expand",
    "format_instant",
    "next_boundary",
    "parse_instant",
    "period_label",
]
