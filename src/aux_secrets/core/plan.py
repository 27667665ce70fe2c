"""What changed between two generations, and which units to restart or reload.

The installer hands in the files of the active generation and those of the new one, each
keyed by the item that produced it (``secret:NAME`` or ``template:NAME``), plus the units
each item names. Files are compared byte for byte (and by location: a file that moved
counts as changed). Units are asked for exactly for the items that changed or appeared:

- ``try_restart``: the sorted union of their ``restartUnits``;
- ``try_reload``: the sorted union of their ``reloadUnits``, minus units already being
  restarted (a restart re-reads the files anyway; asking for both would restart twice);
- a removed item asks for nothing: its unit is going away with the configuration, or
  will fail loudly on the missing file, which a restart would not fix;
- an install that changes nothing asks for nothing.

Pure: bytes in, a plan out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class InstalledItem:
    """One file of a generation as the plan sees it."""

    key: str  # "secret:NAME" or "template:NAME"
    location: str  # where it lives inside the generation
    content: bytes
    restart_units: tuple[str, ...] = ()
    reload_units: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    changed: tuple[str, ...]
    appeared: tuple[str, ...]
    removed: tuple[str, ...]
    unchanged: tuple[str, ...]
    try_restart: tuple[str, ...]
    try_reload: tuple[str, ...]
    # For each unit asked for, the items that caused it (for the report and the audit log).
    reasons: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def touched(self) -> tuple[str, ...]:
        """Items that changed or appeared, sorted."""
        return tuple(sorted((*self.changed, *self.appeared)))

    @property
    def is_noop(self) -> bool:
        return not (self.changed or self.appeared or self.removed)


def make_plan(previous: Mapping[str, tuple[str, bytes]], new: Sequence[InstalledItem]) -> Plan:
    """Compare ``new`` with ``previous`` (key -> (location, content)) and list the units.

    ``previous`` is empty on a first install: every item appears and all their units are
    asked for (``try-restart`` leaves stopped units alone, so this is harmless at boot).
    """
    seen: set[str] = set()
    changed: list[str] = []
    appeared: list[str] = []
    unchanged: list[str] = []
    restart: dict[str, set[str]] = {}
    reload: dict[str, set[str]] = {}
    for item in new:
        if item.key in seen:
            raise ValueError(f"item {item.key} listed twice")
        seen.add(item.key)
        old = previous.get(item.key)
        if old is None:
            appeared.append(item.key)
        elif old != (item.location, item.content):
            changed.append(item.key)
        else:
            unchanged.append(item.key)
            continue
        for unit in item.restart_units:
            restart.setdefault(unit, set()).add(item.key)
        for unit in item.reload_units:
            reload.setdefault(unit, set()).add(item.key)
    removed = sorted(k for k in previous if k not in seen)
    for unit in restart:
        # A restarted unit reads its files afresh; a reload on top would be a second bounce.
        if unit in reload:
            restart[unit] |= reload.pop(unit)
    reasons = {u: tuple(sorted(keys)) for u, keys in {**restart, **reload}.items()}
    return Plan(
        changed=tuple(sorted(changed)),
        appeared=tuple(sorted(appeared)),
        removed=tuple(removed),
        unchanged=tuple(sorted(unchanged)),
        try_restart=tuple(sorted(restart)),
        try_reload=tuple(sorted(reload)),
        reasons=reasons,
    )


__all__ = ["InstalledItem", "Plan", "make_plan"]
