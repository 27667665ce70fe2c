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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aux_secrets.core.bundle import BundleSecret
from aux_secrets.core.manifest import DeriveSource, Manifest
from aux_secrets.core.render import SecretValues, render_secret
from aux_secrets.core.select import (
    clock_is_behind,
    earliest,
    live_instant,
    runs_out_soon,
    select,
)
from aux_secrets.errors import InputError


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


def with_pending(plan: Plan, restart: Sequence[str], reload: Sequence[str]) -> Plan:
    """``plan`` plus units an earlier run asked for but could not confirm as requested.

    A run that dies (or whose systemctl fails) after its swap leaves its units pending;
    the next run asks for them again, even if its own plan is empty.
    """
    restarts = set(plan.try_restart) | set(restart)
    reloads = (set(plan.try_reload) | set(reload)) - restarts
    reasons = dict(plan.reasons)
    for unit in (*restart, *reload):
        reasons.setdefault(unit, ("pending",))
    return Plan(
        changed=plan.changed,
        appeared=plan.appeared,
        removed=plan.removed,
        unchanged=plan.unchanged,
        try_restart=tuple(sorted(restarts)),
        try_reload=tuple(sorted(reloads)),
        reasons=reasons,
    )


# --------------------------------------------------------------------------- contents


@dataclass(frozen=True)
class DesiredFile:
    """One file the manifest asks for, rendered; owner and group still by name."""

    key: str
    path: str
    content: bytes = field(repr=False)
    owner: str
    group: str
    mode: int
    restart_units: tuple[str, ...] = ()
    reload_units: tuple[str, ...] = ()


@dataclass(frozen=True)
class Missing:
    """An item the manifest asks for that cannot be installed, and why (never a value)."""

    key: str
    reason: str
    # True when delivering values again fixes it (absent or expired); False when the value
    # cannot be written in the asked format (the manifest or the value must change).
    provision: bool = True


@dataclass(frozen=True)
class StaleValue:
    """A secret installed with a value outside every window the store holds for it."""

    name: str
    label: str
    outside: str  # "after": its values ran out at ``until``; "before": the clock is behind
    until: datetime | None


@dataclass(frozen=True)
class Desired:
    files: tuple[DesiredFile, ...]
    missing: tuple[Missing, ...]
    values: Mapping[str, SecretValues] = field(repr=False)
    next_rotation: datetime | None
    stale: tuple[StaleValue, ...] = ()
    # Secrets whose last value ends soon (name, end), earliest first.
    running_out: tuple[tuple[str, datetime], ...] = ()
    # The bundle's creation when the host clock is plainly before it (the clock is wrong).
    clock_behind: datetime | None = None
    instant: datetime | None = None  # the instant the values were chosen for


TemplateRenderer = Callable[[str, str, Mapping[str, SecretValues]], bytes]


def desired_files(
    manifest: Manifest,
    secrets: Mapping[str, BundleSecret],
    at: datetime,
    *,
    for_users: bool,
    render_template: TemplateRenderer,
    made: datetime | None = None,
) -> Desired:
    """Every file of the next generation at instant ``at``.

    Normal installs take the secrets that are not ``neededForUsers`` plus all templates;
    ``for_users`` takes only the ``neededForUsers`` secrets. A secret the store lacks, or
    has no value for at ``at``, is listed in ``missing`` (and so is a template using it),
    as is an item whose value its format cannot hold (one bad value must not keep every
    other service's secrets from being installed at boot); everything else is rendered.

    Values are chosen for the host clock ``at``, or for ``made`` (the bundle's creation)
    when the clock is before it. A value is never dropped because time ran out: a secret
    whose windows all ended keeps its last value and is listed in ``stale``.
    """
    files: list[DesiredFile] = []
    missing: list[Missing] = []
    values: dict[str, SecretValues] = {}
    boundaries: list[datetime | None] = []
    stale: list[StaleValue] = []
    running_out: list[tuple[str, datetime]] = []
    clock = at
    at = live_instant(clock, made)
    for name, spec in sorted(manifest.secrets.items()):
        if spec.needed_for_users != for_users:
            continue
        key = f"secret:{name}"
        stored = secrets.get(name)
        if stored is None:
            missing.append(Missing(key, "not in the local store"))
            continue
        keep: int | None = None
        if isinstance(spec.source, DeriveSource) and spec.source.rotation is not None:
            keep = spec.source.rotation.retired
        chosen = select(stored.slots, at, keep_retired=keep)
        if chosen.current is None:
            until = chosen.covered_until
            span = (
                f"its values end at {_iso(until)}"
                if until is not None and until <= at
                else ("its values start later")
            )
            missing.append(Missing(key, f"the local store has no value for {_iso(at)} ({span})"))
            continue
        boundaries.append(chosen.next_change)
        if chosen.outside is not None:
            stale.append(
                StaleValue(name, chosen.current_label, chosen.outside, chosen.covered_until)
            )
        else:
            ends = runs_out_soon(stored.slots, at)
            if ends is not None:
                running_out.append((name, ends))
        value = SecretValues(current=chosen.current, retired=chosen.retired, public=stored.public)
        values[name] = value
        try:
            content = render_secret(value, spec.format, spec.env_name, name=name)
        except InputError as exc:
            missing.append(Missing(key, exc.message, provision=False))
            continue
        files.append(
            DesiredFile(
                key=key,
                path=spec.path,
                content=content,
                owner=spec.owner,
                group=spec.group,
                mode=spec.mode_bits,
                # A changed value is also sealed again for credential.units: restart
                # them, or they keep the credential they started with.
                restart_units=tuple(
                    dict.fromkeys(
                        spec.restart_units + (spec.credential.units if spec.credential else ())
                    )
                ),
                reload_units=spec.reload_units,
            )
        )
    if not for_users:
        absent = {m.key.split(":", 1)[1]: m.provision for m in missing}
        for name, tspec in sorted(manifest.templates.items()):
            key = f"template:{name}"
            lacking = sorted({ref for ref, _ in tspec.references if ref in absent})
            if lacking:
                missing.append(
                    Missing(
                        key,
                        f"uses missing secret {', '.join(lacking)}",
                        provision=any(absent[n] for n in lacking),
                    )
                )
                continue
            try:
                content = render_template(tspec.content, tspec.format, values)
            except InputError as exc:
                missing.append(Missing(key, exc.message, provision=False))
                continue
            files.append(
                DesiredFile(
                    key=key,
                    path=tspec.path,
                    content=content,
                    owner=tspec.owner,
                    group=tspec.group,
                    mode=tspec.mode_bits,
                    restart_units=tspec.restart_units,
                    reload_units=tspec.reload_units,
                )
            )
    return Desired(
        files=tuple(files),
        missing=tuple(missing),
        values=values,
        next_rotation=earliest(boundaries),
        stale=tuple(stale),
        running_out=tuple(sorted(running_out, key=lambda item: (item[1], item[0]))),
        clock_behind=made if made is not None and clock_is_behind(clock, made) else None,
        instant=at,
    )


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


__all__ = [
    "Desired",
    "DesiredFile",
    "InstalledItem",
    "Missing",
    "Plan",
    "StaleValue",
    "TemplateRenderer",
    "desired_files",
    "make_plan",
    "with_pending",
]
