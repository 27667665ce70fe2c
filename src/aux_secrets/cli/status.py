"""``aux-secrets status``: what the host's local store holds, read from clear metadata.

No decrypt, no TPM access, never a value: the active bundle, how the store is sealed,
each secret's live slot by keyed fingerprint, and whether any value is stale (its
values ran out, or the clock is behind the bundle) or about to run out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aux_secrets.adapters.hostroot import (
    load_manifest,
    manifest_path,
    open_store,
    resolve_root,
    settings_of,
)
from aux_secrets.cli.hostside import JsonOpt, ManifestOpt, RootOpt
from aux_secrets.core.expiry import EXPIRY_WARNING_DAYS

if TYPE_CHECKING:
    import typer

    from aux_secrets.core.localstore import SlotMeta
    from aux_secrets.core.manifest import Manifest


@dataclass(frozen=True)
class _Slot:
    """A stored slot as the selector sees it, its fingerprint standing in for the value."""

    role: str
    label: str
    not_before: datetime
    not_after: datetime
    value: bytes


@dataclass(frozen=True)
class Live:
    label: str | None
    fingerprint: str | None
    next_change: datetime | None
    stale: str | None  # "values-ran-out" or "clock-behind"
    values_end: datetime | None  # when the last value ends (None: open-ended)
    runs_out: datetime | None  # values_end, when that is near


def live_slot(slots: Sequence[SlotMeta], at: datetime) -> Live:
    """The slot the installer would serve at ``at`` (core/select.py), by fingerprint."""
    from aux_secrets.core.bundle import OPEN_NOT_AFTER
    from aux_secrets.core.select import runs_out_soon, select

    shown = [
        _Slot(s.role, s.label, s.not_before, s.not_after, s.fingerprint.encode()) for s in slots
    ]
    chosen = select(shown, at)
    ends = chosen.covered_until
    return Live(
        label=chosen.current_label if chosen.current is not None else None,
        fingerprint=chosen.current.decode() if chosen.current is not None else None,
        next_change=chosen.next_change,
        stale=None
        if chosen.outside is None
        else "values-ran-out"
        if chosen.outside == "after"
        else "clock-behind",
        values_end=ends if ends is not None and ends < OPEN_NOT_AFTER else None,
        runs_out=runs_out_soon(shown, at) if chosen.outside is None else None,
    )


def _window(at: datetime, open_value: datetime) -> str | None:
    from aux_secrets.core.bundle import format_instant

    return None if at == open_value else format_instant(at)


def _installed(runtime: Path) -> dict[str, str]:
    """What the live generation's files are: key -> ok / changed / missing / unknown."""
    import os

    from aux_secrets.adapters.installer.generation import check

    if not runtime.is_symlink():
        return {}
    target = runtime.parent / os.readlink(runtime)
    return check(target) if target.is_dir() else {}


def status_report(manifest: Manifest | None, root: Path, at: datetime) -> dict[str, Any]:
    """What ``status --json`` prints: no values, only keyed fingerprints and metadata."""
    import os

    from aux_secrets.adapters.localstore import under_root
    from aux_secrets.core.bundle import OPEN_NOT_AFTER, OPEN_NOT_BEFORE, format_instant
    from aux_secrets.core.bundle_sign import signer_fingerprint
    from aux_secrets.core.manifest import DeriveSource
    from aux_secrets.core.select import clock_is_behind, live_instant

    settings = settings_of(manifest)
    store = open_store(manifest, root)
    meta = store.active_meta()
    runtime = under_root(root, settings.runtime_dir)
    generation = os.path.basename(os.readlink(runtime)) if runtime.is_symlink() else None
    installed = _installed(runtime)
    names = set(manifest.secrets) if manifest is not None else set()
    names |= set(meta.secrets) if meta is not None else set()
    made = meta.created if meta is not None else None
    instant = live_instant(at, made)
    secrets: dict[str, Any] = {}
    upcoming = []
    for name in sorted(names):
        spec = manifest.secrets.get(name) if manifest is not None else None
        source = (
            None if spec is None else "derive" if isinstance(spec.source, DeriveSource) else "store"
        )
        entry: dict[str, Any] = {
            "source": source,
            "inManifest": spec is not None,
            "inStore": meta is not None and name in meta.secrets,
            "fingerprint": None,
            "label": None,
            "stale": None,
            "valuesEnd": None,
            "runsOutSoon": False,
            "expires": None,
            "installed": installed.get(f"secret:{name}"),
            "slots": [],
        }
        if meta is not None and name in meta.secrets:
            expires = meta.secrets[name].expires
            entry["expires"] = None if expires is None else expires.isoformat()
            live = live_slot(meta.secrets[name].slots, instant)
            entry["label"], entry["fingerprint"] = live.label, live.fingerprint
            entry["stale"] = live.stale
            entry["valuesEnd"] = (
                None if live.values_end is None else format_instant(live.values_end)
            )
            entry["runsOutSoon"] = live.runs_out is not None
            entry["slots"] = [
                {
                    "role": s.role,
                    "label": s.label,
                    "notBefore": _window(s.not_before, OPEN_NOT_BEFORE),
                    "notAfter": _window(s.not_after, OPEN_NOT_AFTER),
                    "fingerprint": s.fingerprint,
                }
                for s in meta.secrets[name].slots
            ]
            if live.next_change is not None:
                upcoming.append(live.next_change)
        secrets[name] = entry
    from aux_secrets.adapters.reseal import pending, untrusted_signer

    mismatch = pending(store, meta) if meta is not None and manifest is not None else []
    distrusted = untrusted_signer(store, meta) if meta is not None else None
    return {
        "version": 1,
        "host": manifest.host if manifest is not None else meta.host if meta is not None else None,
        "sealing": None
        if meta is None
        else {
            "backend": meta.backend,
            "credentialKey": meta.credential_key,
            "tpm2Pcrs": meta.tpm2_pcrs,
        },
        "sealingMismatch": mismatch,
        "signerNotPinned": distrusted,
        "time": format_instant(at),
        "clockBehind": clock_is_behind(at, made),
        "backend": meta.backend if meta is not None else settings.backend,
        "storeDir": str(store.store_dir),
        "active": None
        if meta is None
        else {
            "serial": meta.serial,
            "bundleId": meta.bundle_id,
            "created": format_instant(meta.created),
            "host": meta.host,
            "credentialKey": meta.credential_key,
            "signer": None if meta.signer is None else signer_fingerprint(meta.signer),
        },
        "generation": generation,
        "nextRotation": format_instant(min(upcoming)) if upcoming else None,
        "stale": sorted(n for n, e in secrets.items() if e["stale"]),
        "installedChanged": sorted(k for k, v in installed.items() if v in ("changed", "missing")),
        "runningOut": sorted(n for n, e in secrets.items() if e["runsOutSoon"]),
        "expiring": sorted(
            n for n, e in secrets.items() if _expiry_state(e["expires"], at) is not None
        ),
        "secrets": secrets,
    }


def _expiry_state(expires: str | None, at: datetime) -> str | None:
    """'EXPIRED on D' or 'expires on D (in N days)' when within EXPIRY_WARNING_DAYS."""
    from datetime import date

    if expires is None:
        return None
    left = (date.fromisoformat(expires) - at.date()).days
    if left < 0:
        return f"EXPIRED on {expires}"
    if left <= EXPIRY_WARNING_DAYS:
        return f"expires on {expires} (in {left} days)"
    return None


def warning_lines(report: dict[str, Any]) -> list[str]:
    """The loud lines of a status report: a clock behind, stale values, values running out."""
    lines: list[str] = []
    active = report["active"]
    if report["sealingMismatch"]:
        lines.append(
            "the local store is not sealed as the manifest asks ("
            + "; ".join(report["sealingMismatch"])
            + "): the next install re-seals it in place (aux-secrets install)"
        )
    if report["signerNotPinned"]:
        lines.append(
            f"the active bundle's signer {report['signerNotPinned']} is not in "
            "settings.bundleSigners: install refuses it; provision from the pinned vault"
        )
    if report["clockBehind"] and active is not None:
        lines.append(
            f"the clock ({report['time']}) is before the active bundle was made "
            f"({active['created']}): the clock is wrong (no RTC, or NTP not synced yet); "
            "the values live when the bundle was made are served"
        )
    for name in report["stale"]:
        entry = report["secrets"][name]
        if entry["stale"] == "values-ran-out":
            lines.append(
                f"secret {name} is STALE: its values ran out at {entry['valuesEnd']}; the "
                f"last one ({entry['label']}) is still served: provision this host again"
            )
    for key in report["installedChanged"]:
        kind, _, name = key.partition(":")
        lines.append(
            f"the installed {kind} {name} is not what was installed (changed or removed under "
            "the runtime directory): aux-secrets install puts it back"
        )
    for name in report["runningOut"]:
        entry = report["secrets"][name]
        lines.append(
            f"secret {name}: its values run out at {entry['valuesEnd']}: provision before then"
        )
    from aux_secrets.core.bundle import parse_instant_strict

    at = parse_instant_strict(report["time"], "time")
    for name in report["expiring"]:
        state = _expiry_state(report["secrets"][name]["expires"], at)
        lines.append(
            f"secret {name}: its store value {state}: renew it in the vault "
            "(aux-secrets store set) and provision this host again"
        )
    return lines


def status(
    manifest: ManifestOpt = None,
    root: RootOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the active bundle, backend, each secret's keyed fingerprint and source.

    Reads only clear metadata: no decrypt, no TPM access, never a value. Stale values
    (their values ran out, or the clock is behind the bundle), values that run out
    within days and store values that expire within 30 days are named on stderr. Example:

    \b
        aux-secrets status
        aux-secrets status --json --root /tmp/demo-root
    """
    import json
    from datetime import UTC

    from aux_secrets.cli import output

    root_dir = resolve_root(root)
    parsed = load_manifest(manifest, root_dir, required=False)
    now = datetime.now(UTC).replace(microsecond=0)
    report = status_report(parsed, root_dir, now)
    path = manifest_path(manifest, root_dir)[0]
    report["manifest"] = str(path) if parsed is not None else None
    for line in warning_lines(report):
        output.warning(line)
    if as_json:
        output.write_stdout_bytes(json.dumps(report, indent=2, sort_keys=True).encode() + b"\n")
        return
    active = report["active"]
    lines = [
        f"manifest   {path}"
        if parsed is not None
        else f"manifest   none at {path} (install uses the one the active bundle carries)",
        f"store      {report['storeDir']} (backend {report['backend']})",
    ]
    if active is None:
        lines.append("active     none (run aux-secrets activate --bundle FILE)")
    else:
        lines.append(
            f"active     serial {active['serial']}, bundle {active['bundleId']}, "
            f"created {active['created']}, host {active['host']}"
        )
        lines.append(f"signer     {active['signer'] or 'none recorded'}")
        sealing = report["sealing"]
        how = sealing["backend"]
        if sealing["credentialKey"]:
            how += f", key {sealing['credentialKey']}"
        if sealing["tpm2Pcrs"]:
            how += f", PCRs {sealing['tpm2Pcrs']}"
        if report["sealingMismatch"]:
            how += " (MISMATCH: " + "; ".join(report["sealingMismatch"]) + ")"
        lines.append(f"sealed     {how}")
    lines.append(f"generation {report['generation'] or 'none'}")
    lines.append(f"next       {report['nextRotation'] or 'no rotation due'}")
    for name, entry in report["secrets"].items():
        where = (
            "missing from store" if not entry["inStore"] else entry["fingerprint"] or "no live slot"
        )
        mark = "  STALE" if entry["stale"] else ""
        if name in report["expiring"]:
            expired = (_expiry_state(entry["expires"], now) or "").startswith("EXPIRED")
            mark += f"  {'EXPIRED' if expired else 'EXPIRES'} {entry['expires']}"
        if entry["installed"] in ("changed", "missing"):
            mark += f"  INSTALLED FILE {entry['installed'].upper()}"
        lines.append(
            f"  {name:<30} {entry['source'] or '-':<7} {entry['label'] or '-':<10} {where}{mark}"
        )
    output.write_stdout_bytes(("\n".join(lines) + "\n").encode())


def register(app: typer.Typer) -> None:
    app.command("status")(status)
