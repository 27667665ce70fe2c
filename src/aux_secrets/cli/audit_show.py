"""`aux-secrets audit show`: the host's audit log as readable lines, filtered."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from aux_secrets.cli import output
from aux_secrets.cli.hostside import JsonOpt, ManifestOpt, RootOpt
from aux_secrets.core.escape import printable
from aux_secrets.errors import UsageError

if TYPE_CHECKING:
    from aux_secrets.core.audit import AuditEntry

SHOW_HELP = """Show the host's audit log, one line per activate, install or repair.

The chain is checked first (as 'audit verify' does). --secret keeps the entries that
changed that secret; --since and --until keep those in a time range (UTC instants,
'2026-12-01' or '2026-12-01T08:00:00Z'); --last N the newest N. Values never appear:
fingerprints are keyed HMACs.

Examples:

  aux-secrets audit show --secret db/password --since 2026-11-01

  aux-secrets audit show --last 5 --json
"""


def entry_doc(entry: AuditEntry) -> dict[str, object]:
    ev = entry.event
    doc: dict[str, object] = {
        "seq": entry.seq,
        "time": f"{ev.time:%Y-%m-%dT%H:%M:%SZ}",
        "event": ev.event,
        "host": ev.host,
        "bundleId": ev.bundle_id,
        "serial": ev.serial,
        "generation": ev.generation,
        "changed": list(ev.changed),
        "fingerprints": dict(ev.fingerprints),
        "restartUnits": list(ev.restart_units),
        "reloadUnits": list(ev.reload_units),
        "hash": entry.hash,
    }
    if ev.summary is not None:
        doc["summary"] = {
            "changed": ev.summary.changed,
            "restartUnits": ev.summary.restart_units,
            "reloadUnits": ev.summary.reload_units,
        }
    if ev.dropped is not None:
        doc["dropped"] = ev.dropped
    if ev.units_not_found:
        doc["unitsNotFound"] = list(ev.units_not_found)
    return doc


def entry_line(entry: AuditEntry) -> str:
    ev = entry.event
    parts = [f"{ev.time:%Y-%m-%dT%H:%M:%SZ}", f"#{entry.seq}", f"{ev.event:<8}", ev.host]
    if ev.serial is not None:
        parts.append(f"serial {ev.serial}")
    if ev.generation is not None:
        parts.append(f"generation {ev.generation}")
    if ev.changed:
        parts.append("changed " + ", ".join(ev.changed))
    elif ev.summary is not None:
        parts.append(f"changed {ev.summary.changed} secrets (long entry)")
    if ev.restart_units:
        parts.append("restart " + ", ".join(ev.restart_units))
    if ev.reload_units:
        parts.append("reload " + ", ".join(ev.reload_units))
    if ev.units_not_found:
        parts.append("not on the host " + ", ".join(ev.units_not_found))
    if ev.dropped is not None:
        parts.append(f"dropped a torn line of {ev.dropped} bytes")
    return printable("  ".join(parts))


def _instant(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    from aux_secrets.core.rotation import parse_instant
    from aux_secrets.errors import InputError

    try:
        return parse_instant(text if "T" in text else f"{text}T00:00:00Z")
    except InputError as exc:
        raise UsageError(f"{option}: {exc.message}") from None


def audit_show(
    secret: Annotated[
        str | None,
        typer.Option("--secret", metavar="NAME", help="Only entries that changed NAME."),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", metavar="INSTANT", help="Entries at or after.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", metavar="INSTANT", help="Entries before.")
    ] = None,
    last: Annotated[
        int | None, typer.Option("--last", metavar="N", help="Only the newest N entries.")
    ] = None,
    manifest: ManifestOpt = None,
    root: RootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    from aux_secrets.adapters.audit import AuditLog
    from aux_secrets.adapters.hostroot import load_manifest, resolve_root, settings_of
    from aux_secrets.adapters.localstore import under_root

    start, end = _instant(since, "--since"), _instant(until, "--until")
    if start is not None and end is not None and end <= start:
        raise UsageError("--until must be after --since")
    if last is not None and last < 1:
        raise UsageError("--last must be 1 or more")
    root_dir = resolve_root(root)
    settings = settings_of(load_manifest(manifest, root_dir, required=False))
    log = AuditLog(under_root(root_dir, settings.store_dir))
    entries = [
        e
        for e in log.verify()
        if (secret is None or secret in e.event.changed or secret in e.event.fingerprints)
        and (start is None or e.event.time >= start)
        and (end is None or e.event.time < end)
    ]
    if last is not None:
        entries = entries[-last:]
    if as_json:
        print(json.dumps([entry_doc(e) for e in entries], indent=2, sort_keys=True))
        return
    if not entries:
        output.info(f"audit log {log.path}: no entries match")
        return
    for entry in entries:
        print(entry_line(entry))


def register(audit_app: typer.Typer) -> None:
    audit_app.command("show", help=SHOW_HELP)(audit_show)
