"""What ``install`` prints: the ``--json`` document and the human summary (never a value)."""

from __future__ import annotations

from datetime import UTC, datetime

from aux_secrets.adapters.installer.host import InstallReport
from aux_secrets.core.escape import printable


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _item(key: str) -> dict[str, str]:
    kind, name = key.split(":", 1)
    return {"kind": kind, "name": name}


def report_json(report: InstallReport) -> dict[str, object]:
    """The ``install --json`` document (names, units, numbers; never a value)."""
    r = report.result
    plan = r.plan
    return {
        "version": 1,
        "host": report.host,
        "dryRun": not r.written,
        "kept": r.kept,
        "forUsers": report.for_users,
        "runtimeDir": report.tree.link_dir,
        "generation": r.generation,
        "previous": r.previous,
        "changed": [_item(k) for k in plan.changed],
        "appeared": [_item(k) for k in plan.appeared],
        "removed": [_item(k) for k in plan.removed],
        "unchanged": len(plan.unchanged),
        "tryRestart": list(plan.try_restart),
        "tryReloadOrRestart": list(plan.try_reload),
        "requested": [{"verb": v, "units": list(u)} for v, u in report.requested],
        "notFound": [{"verb": v, "units": list(u)} for v, u in report.not_found],
        "pruned": list(r.pruned),
        "missing": [{**_item(m.key), "reason": m.reason} for m in report.missing],
        "nextRotation": _iso(report.next_rotation) if report.next_rotation else None,
        "stale": [
            {
                "name": v.name,
                "label": v.label,
                "reason": "values-ran-out" if v.outside == "after" else "clock-behind",
                "valuesEnd": _iso(v.until)
                if v.until is not None and v.outside == "after"
                else None,
            }
            for v in report.stale
        ],
        "runningOut": [{"name": n, "valuesEnd": _iso(t)} for n, t in report.running_out],
        "clockBehind": None
        if report.clock_behind is None
        else {"bundleCreated": _iso(report.clock_behind)},
    }


def report_warnings(report: InstallReport, clock: datetime) -> list[str]:
    """The loud lines for stale values, values running out, a clock that is behind and
    units the host does not have (stderr: the journal of the install unit)."""
    lines: list[str] = []
    if report.clock_behind is not None:
        lines.append(
            f"the clock ({_iso(clock)}) is before this host's bundle was made "
            f"({_iso(report.clock_behind)}): the clock is wrong (no RTC, or NTP has not "
            "synced yet); installed the values live when the bundle was made"
        )
    for v in report.stale:
        if v.outside == "after":
            ended = _iso(v.until) if v.until is not None else "?"
            lines.append(
                f"secret {v.name}: its values ran out at {ended} (the host was not "
                f"provisioned in time); still serving the last one ({v.label}), now STALE: "
                f"provision again (aux-secrets provision --host {report.host})"
            )
        else:
            lines.append(
                f"secret {v.name}: no value of the local store starts before "
                f"{_iso(clock)}; serving the one marked current ({v.label}), STALE: check "
                "the clock"
            )
    for name, ends in report.running_out:
        days = (ends - clock).total_seconds() / 86400
        lines.append(
            f"secret {name}: its values run out at {_iso(ends)} (in {days:.1f} days): "
            f"provision before then (aux-secrets provision --host {report.host})"
        )
    for verb, units in report.not_found:
        lines += [
            f"unit {unit} is not on this host (no such unit): skipped its "
            f"{verb} (the manifest names it in restartUnits/reloadUnits)"
            for unit in units
        ]
    return lines


def report_lines(report: InstallReport) -> list[str]:
    """The human summary ``install`` prints; the last line is ``next rotation: ...``."""
    r = report.result
    plan = r.plan
    where = f"{report.tree.link_dir} -> {report.tree.generations_dir}/{r.generation}"
    counts = (
        f"{len(plan.changed)} changed, {len(plan.appeared)} appeared, "
        f"{len(plan.removed)} removed, {len(plan.unchanged)} unchanged"
    )
    if r.kept:
        head = f"generation {r.generation} kept: {where} ({counts}); nothing to write"
    elif r.written:
        head = f"generation {r.generation} installed: {where} ({counts})"
    else:
        head = f"dry run: generation {r.generation} would be {where} ({counts}); nothing written"
    lines = [head]
    for label, keys in (("changed", plan.changed), ("appeared", plan.appeared)):
        lines += [f"  {label:<9} {k.replace(':', ' ', 1)}" for k in keys]
    lines += [f"  removed   {k.replace(':', ' ', 1)}" for k in plan.removed]
    verb_units = (("try-restart", plan.try_restart), ("try-reload-or-restart", plan.try_reload))
    for verb, units in verb_units:
        if units:
            lines.append(f"  {verb}: {' '.join(units)}")
    for verb, units in report.not_found:
        lines.append(f"  not found (skipped its {verb}): {' '.join(units)}")
    if not plan.try_restart and not plan.try_reload:
        lines.append("  no units to restart or reload")
    lines += [f"  missing   {m.key.replace(':', ' ', 1)}: {m.reason}" for m in report.missing]
    nxt = _iso(report.next_rotation) if report.next_rotation else "none"
    lines.append(f"next rotation: {nxt}")
    return [printable(line) for line in lines]
