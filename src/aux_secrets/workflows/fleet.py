"""Doing one job for many hosts with bounded concurrency, one failure never stopping the others.

:func:`run_fleet` returns one :class:`Outcome` per host, in the order given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

from aux_secrets.errors import AuxError, UnreachableError, UsageError

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """One host's result in a fleet run: a value, or the one-line error and its hint."""

    host: str
    value: T | None = None
    error: str | None = None
    hint: str | None = None
    seconds: float = 0.0
    unreachable: bool = False  # the host could not be reached at all (not a host failure)

    @property
    def ok(self) -> bool:
        return self.error is None


def run_fleet(
    names: Sequence[str],
    job: Callable[[str], T],
    *,
    jobs: int = 4,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[Outcome[T]], None] | None = None,
) -> list[Outcome[T]]:
    """Run ``job(name)`` for every host, at most ``jobs`` at once; results in ``names`` order.

    A job that raises is that host's failure and nothing more: the others run on.
    """
    if jobs < 1:
        raise UsageError("-j must be at least 1")

    def one(name: str) -> Outcome[T]:
        if on_start is not None:
            on_start(name)
        started = time.monotonic()
        try:
            value = job(name)
            outcome: Outcome[T] = Outcome(name, value=value)
        except AuxError as exc:
            gone = isinstance(exc, UnreachableError)
            outcome = Outcome(name, error=exc.message, hint=exc.hint, unreachable=gone)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            outcome = Outcome(name, error=f"{exc.strerror or type(exc).__name__}{where}")
        except Exception as exc:  # a bug on one host must not stop the fleet
            outcome = Outcome(name, error=f"internal error ({type(exc).__name__})")
        outcome = Outcome(
            outcome.host,
            outcome.value,
            outcome.error,
            outcome.hint,
            time.monotonic() - started,
            outcome.unreachable,
        )
        if on_done is not None:
            on_done(outcome)
        return outcome

    if not names:
        return []
    with ThreadPoolExecutor(max_workers=min(jobs, len(names))) as pool:
        return list(pool.map(one, names))
