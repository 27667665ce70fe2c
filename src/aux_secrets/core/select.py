"""Pick each secret's value for an instant from the slots the local store holds.

A bundle carries, per secret, a list of slots (``current``, ``retired``, ``ahead``), each
with a half-open window ``[not_before, not_after)``. The installer runs on the host clock,
long after the bundle was made: when a rotation boundary has passed, an ``ahead`` slot
now contains the instant and becomes the live value, and the slot that was ``current``
when the bundle was made has become retired. So the role written in the bundle is only
a tie-breaker; the windows decide.

- current: the slot whose window contains the instant (a slot labelled ``current`` wins
  a tie, then the one that started last).
- retired: the slots whose window ended at or before the instant, newest first, plus
  slots the bundle marks ``retired`` with an open window (kept values of a fixed
  secret); at most ``keep_retired`` of them when the caller knows the rotation's count.
- next change: the earliest instant after ``at`` at which the choice would differ (the
  current window's end, or the start of a later slot), so a timer can run the installer
  again then.
- outside every window: a value is never taken away because time ran out. After the
  last window (the host was not provisioned in time) the slot that ended last stays
  current; before every window (a clock that is behind) the slot the bundle marked
  current does. Either way ``outside`` says so (``after`` / ``before``) and the caller
  reports the value as stale.
- the live instant: a host clock before the bundle was made is wrong (a bundle is made
  from the values live at its creation), so :func:`live_instant` picks the creation
  instant instead, and :func:`clock_is_behind` tells whether that is worth naming.

Pure: the instant is an argument, nothing reads a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

OPEN_NOT_BEFORE = datetime.min.replace(tzinfo=UTC)
OPEN_NOT_AFTER = datetime.max.replace(tzinfo=UTC)
# A host clock this far behind the bundle's creation is named as wrong (less is skew).
CLOCK_SLACK = timedelta(minutes=10)
# Warn that values run out when the last one has at most this long left (or one of its
# own windows, when that is shorter: a daily secret warns on its last day).
RUN_OUT_WARNING = timedelta(days=7)


class SlotLike(Protocol):
    """What the selector needs from one stored slot."""

    @property
    def role(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def not_before(self) -> datetime: ...
    @property
    def not_after(self) -> datetime: ...
    @property
    def value(self) -> bytes: ...


@dataclass(frozen=True)
class Selection:
    """The values a secret has at one instant; ``current`` is None when no slot covers it."""

    current: bytes | None
    current_label: str
    retired: tuple[bytes, ...]
    next_change: datetime | None
    covered_until: datetime | None  # the latest not_after among the slots (None: no slots)
    # None inside a window; "after": every window has ended (the last value is kept);
    # "before": every window starts later (the value marked current is used).
    outside: Literal["after", "before"] | None = None

    @property
    def stale(self) -> bool:
        return self.outside is not None


def _is_open(slot: SlotLike) -> bool:
    return slot.not_before <= OPEN_NOT_BEFORE and slot.not_after >= OPEN_NOT_AFTER


def select(
    slots: Sequence[SlotLike], at: datetime, *, keep_retired: int | None = None
) -> Selection:
    """Choose current and retired values of one secret at instant ``at`` (aware, any zone)."""
    if at.tzinfo is None:
        raise ValueError("select() needs an aware datetime")
    containing = [s for s in slots if s.not_before <= at < s.not_after]
    # A slot labelled current beats one that merely contains the instant; then the latest start.
    containing.sort(key=lambda s: (s.role == "current", s.not_before), reverse=True)
    chosen = containing[0] if containing else None

    ended = [s for s in slots if s.not_after <= at]
    ended.sort(key=lambda s: (s.not_after, s.not_before), reverse=True)
    outside: Literal["after", "before"] | None = None
    if chosen is None and ended:
        chosen, outside = ended[0], "after"  # ran out: keep the newest value, stale
    elif chosen is None and slots:
        marked = [s for s in slots if s.role == "current"]
        chosen = marked[0] if marked else min(slots, key=lambda s: s.not_before)
        outside = "before"
    ended = [s for s in ended if s is not chosen]
    kept = [s for s in slots if s.role == "retired" and _is_open(s) and s is not chosen]
    retired_slots = ended + kept
    if keep_retired is not None:
        retired_slots = retired_slots[:keep_retired]

    boundaries = [s.not_before for s in slots if s.not_before > at]
    if chosen is not None and at < chosen.not_after < OPEN_NOT_AFTER:
        boundaries.append(chosen.not_after)
    boundaries += [s.not_after for s in containing if s.not_after < OPEN_NOT_AFTER]
    next_change = min(boundaries) if boundaries else None
    covered_until = max((s.not_after for s in slots), default=None)
    return Selection(
        current=chosen.value if chosen is not None else None,
        current_label=chosen.label if chosen is not None else "",
        retired=tuple(s.value for s in retired_slots),
        next_change=next_change,
        covered_until=covered_until,
        outside=outside,
    )


def live_instant(clock: datetime, made: datetime | None) -> datetime:
    """The instant to choose values for: the host clock, or the bundle's creation when the
    clock is before it (a clock behind, e.g. no RTC before NTP, is never more right)."""
    return made if made is not None and clock < made else clock


def clock_is_behind(clock: datetime, made: datetime | None) -> bool:
    """Whether the clock is so far before the bundle's creation that it is plainly wrong."""
    return made is not None and made - clock > CLOCK_SLACK


def runs_out_soon(slots: Sequence[SlotLike], at: datetime) -> datetime | None:
    """When the last value of these slots ends, if that is near (see RUN_OUT_WARNING);
    None for open-ended values, for values that already ran out, or when it is far."""
    last = max(slots, key=lambda s: s.not_after, default=None)
    if last is None or last.not_after >= OPEN_NOT_AFTER or last.not_after <= at:
        return None
    window = last.not_after - last.not_before if last.not_before > OPEN_NOT_BEFORE else None
    warn = min(RUN_OUT_WARNING, window) if window is not None else RUN_OUT_WARNING
    return last.not_after if last.not_after - at <= warn else None


def earliest(instants: Sequence[datetime | None]) -> datetime | None:
    """The earliest of several optional instants (the next rotation across all secrets)."""
    real = [i for i in instants if i is not None]
    return min(real) if real else None


__all__ = [
    "CLOCK_SLACK",
    "OPEN_NOT_AFTER",
    "OPEN_NOT_BEFORE",
    "RUN_OUT_WARNING",
    "Selection",
    "SlotLike",
    "clock_is_behind",
    "earliest",
    "live_instant",
    "runs_out_soon",
    "select",
]
