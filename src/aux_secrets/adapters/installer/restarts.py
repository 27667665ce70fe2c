"""Asking for restarts and reloads, and the pending record that makes them survive a crash.

Before the swap, a run that will ask for units writes ``generationsDir/.pending.json``;
it removes the record once its requests succeeded. Every run adds the units of a record
it finds to its own plan (docs/spec/installer.md, steps 6 and 10), so a crash or a
failing systemctl after the swap costs at most a repeated restart, never a missed one.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from aux_secrets.adapters.fs import atomic_write
from aux_secrets.adapters.installer import safepath
from aux_secrets.adapters.installer.layout import MAX_META_BYTES
from aux_secrets.core.nesting import loads_json
from aux_secrets.core.plan import Plan
from aux_secrets.errors import ExternalError

PENDING_NAME = ".pending.json"
VERBS = ("try-restart", "try-reload-or-restart")


class UnitRequester(Protocol):
    """Something that asks systemd to restart or reload units (see adapters/systemctl.py).

    ``request`` returns the units it skipped because the host does not have them.
    """

    def request(self, verb: str, units: Sequence[str]) -> tuple[str, ...]: ...


Requests = list[tuple[str, tuple[str, ...]]]  # (verb, units), in the order of VERBS


def read_pending(gens: Path) -> tuple[list[str], list[str]]:
    """Units a run asked for after its swap but did not see through (crash, failure).

    A missing or unreadable record means none (the worst case is the missed restart the
    record exists to prevent, never a wrong one).
    """
    raw = safepath.read_nofollow(gens / PENDING_NAME, MAX_META_BYTES)
    if raw is None:
        return [], []
    try:
        doc = loads_json(raw)
        restart, reload = doc["tryRestart"], doc["tryReloadOrRestart"]
    except (ValueError, TypeError, KeyError):
        return [], []
    ok = isinstance(restart, list) and isinstance(reload, list)
    if not ok or not all(isinstance(u, str) for u in (*restart, *reload)):
        return [], []
    return restart, reload


def write_pending(gens: Path, plan: Plan) -> None:
    """Record the plan's units (only if it asks for any), before the swap."""
    if not (plan.try_restart or plan.try_reload):
        return
    doc = {"tryRestart": list(plan.try_restart), "tryReloadOrRestart": list(plan.try_reload)}
    atomic_write(gens / PENDING_NAME, json.dumps(doc, sort_keys=True).encode(), mode=0o600)


def clear_pending(gens: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(gens / PENDING_NAME)


def request_units(
    requester: UnitRequester, plan: Plan, generation: int
) -> tuple[Requests, Requests]:
    """One request per verb with all its units: (what was asked for, what the host lacks).

    A unit the host does not have is skipped, not a failure; a failing request is an
    ExternalError saying the generation is installed anyway.
    """
    requested: Requests = []
    not_found: Requests = []
    for verb, units in zip(VERBS, (plan.try_restart, plan.try_reload), strict=True):
        if not units:
            continue
        try:
            skipped = tuple(requester.request(verb, units))
        except ExternalError as exc:
            raise ExternalError(
                f"generation {generation} is installed, but asking for {verb} failed: "
                f"{exc.message}",
                hint=exc.hint,
            ) from None
        asked = tuple(u for u in units if u not in skipped)
        if asked:
            requested.append((verb, asked))
        if skipped:
            not_found.append((verb, skipped))
    return requested, not_found
