"""Drift checks: does a host hold what the vault says, by keyed fingerprints.

``verify`` runs ``aux-secrets status --json`` on the host (never a value leaves it) and
compares each secret's fingerprint with the one the vault computes for now; the host's
own freshness flags (a value kept after its windows ran out, values about to run out,
a clock behind) are carried into the verdicts' details.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aux_secrets.adapters import ssh
from aux_secrets.adapters.hosts import Host, HostDir
from aux_secrets.core.nesting import loads_json
from aux_secrets.errors import ExternalError, InputError
from aux_secrets.workflows.bundles import check_manifest_host, fingerprint_key, resolve_secrets
from aux_secrets.workflows.host_report import host_error
from aux_secrets.workflows.manifest_source import ManifestSource, load_manifest, manifest_from_file
from aux_secrets.workflows.route import Route, run_on_host

if TYPE_CHECKING:
    from aux_secrets.adapters.vault import Vault
    from aux_secrets.core.bundle import BundleSecret
    from aux_secrets.core.keystream import Scheme


VERDICTS = ("ok", "stale", "missing", "unexpected", "changed")


@dataclass(frozen=True)
class Drift:
    secret: str
    verdict: str  # one of VERDICTS
    detail: str = ""


def expected_fingerprints(
    key: bytes, secrets: Mapping[str, BundleSecret]
) -> dict[str, tuple[str, frozenset[str]]]:
    """secret -> (fingerprint of the current value, fingerprints of its other slots)."""
    from aux_secrets.core.fingerprint import fingerprint

    out: dict[str, tuple[str, frozenset[str]]] = {}
    for name, secret in secrets.items():
        current = fingerprint(key, name, secret.current_slot().value)
        others = frozenset(
            fingerprint(key, name, slot.value) for slot in secret.slots if slot.role != "current"
        )
        out[name] = (current, others)
    return out


def compare_fingerprints(
    expected: Mapping[str, tuple[str, frozenset[str]]], reported: Mapping[str, str]
) -> list[Drift]:
    """ok / stale (an older or other value) / missing / unexpected, sorted by secret name."""
    drifts: list[Drift] = []
    for name in sorted(set(expected) | set(reported)):
        if name not in reported:
            drifts.append(Drift(name, "missing", "the host does not hold it"))
        elif name not in expected:
            drifts.append(Drift(name, "unexpected", "the vault's manifest does not ask for it"))
        else:
            current, others = expected[name]
            got = reported[name]
            if got == current:
                drifts.append(Drift(name, "ok"))
            elif got in others:
                drifts.append(Drift(name, "stale", "holds a retired or ahead value"))
            else:
                drifts.append(Drift(name, "stale", "holds a value the vault did not issue now"))
    return drifts


def parse_status(data: bytes, host: str) -> dict[str, str]:
    """secret -> fingerprint from ``aux-secrets status --json`` output."""
    try:
        doc = loads_json(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"host {host}: status --json did not print JSON") from None
    secrets = doc.get("secrets") if isinstance(doc, dict) else None
    out: dict[str, str] = {}
    items: Iterable[tuple[str, object]]
    if isinstance(secrets, dict):
        items = secrets.items()
    elif isinstance(secrets, list):
        items = ((str(s.get("name")), s) for s in secrets if isinstance(s, dict))
    else:
        raise InputError(f"host {host}: status --json has no 'secrets'")
    for name, entry in items:
        fp = entry.get("fingerprint") if isinstance(entry, dict) else entry
        if isinstance(fp, str):
            out[name] = fp
    return out


def verify_host(
    vault: Vault,
    scheme: Scheme,
    host: Host,
    source: ManifestSource,
    route: Route,
    *,
    at: datetime | None = None,
    timeout: float = 120.0,
    status: Callable[[], ssh.CommandResult] | None = None,
    where: str | None = None,
) -> list[Drift]:
    """Compare the host's ``status --json`` (over ssh, or what ``status`` runs) with the vault."""
    manifest = load_manifest(source)
    check_manifest_host(manifest, host.name, source.label)
    at = at or datetime.now(UTC)
    secrets = resolve_secrets(vault, scheme, manifest, at)
    expected = expected_fingerprints(fingerprint_key(scheme, host.name), secrets)
    result = status() if status is not None else run_on_host(route, ["status"], b"", timeout)
    if result.returncode != 0:
        shown = where or route.where
        raise ExternalError(f"host {host.name} ({shown}): status: {host_error(result)}")
    drifts = compare_fingerprints(expected, parse_status(result.stdout, host.name))
    notes = host_freshness(result.stdout)
    from aux_secrets.workflows.usage import expiry_notes

    for secret, note in expiry_notes(vault, manifest, at.date()):
        notes[secret] = f"{notes[secret]}; {note}" if secret in notes else note
    return with_installed(with_freshness(drifts, notes), host_installed(result.stdout))


def host_installed(data: bytes) -> dict[str, str]:
    """secret -> ``changed`` / ``missing`` when the host says its installed file is not
    what was installed (``status --json``, ``installed``); others are left out."""
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    secrets = doc.get("secrets") if isinstance(doc, dict) else None
    if not isinstance(secrets, dict):
        return {}
    return {
        name: entry["installed"]
        for name, entry in secrets.items()
        if isinstance(entry, dict) and entry.get("installed") in ("changed", "missing")
    }


def with_installed(drifts: list[Drift], installed: Mapping[str, str]) -> list[Drift]:
    """A secret whose installed file was changed or removed on the host is ``changed``,
    whatever the local store holds: services read the file."""
    out: list[Drift] = []
    for d in drifts:
        state = installed.get(d.secret)
        if state is None:
            out.append(d)
        else:
            what = "changed" if state == "changed" else "removed"
            out.append(
                Drift(
                    d.secret,
                    "changed",
                    f"the installed file was {what} on the host (services read it): "
                    "'aux-secrets install' there puts it back",
                )
            )
    return out


def host_freshness(data: bytes) -> dict[str, str]:
    """secret -> what the host says of its value's freshness (``status --json``): kept
    after its values ran out, or running out soon. Fields it does not have are skipped
    (an older host)."""
    try:
        doc = loads_json(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    secrets = doc.get("secrets") if isinstance(doc, dict) else None
    if not isinstance(secrets, dict):
        return {}
    out: dict[str, str] = {}
    behind = doc.get("clockBehind") is True
    for name, entry in secrets.items():
        if not isinstance(entry, dict):
            continue
        ends = entry.get("valuesEnd")
        ends_text = ends if isinstance(ends, str) else "?"
        if entry.get("stale") == "values-ran-out":
            out[name] = (
                f"the host's values ran out at {ends_text}: it still serves the last one "
                "(stale); provision it"
            )
        elif entry.get("runsOutSoon") is True:
            out[name] = f"the host's values run out at {ends_text}: provision before then"
        if behind:
            out[name] = (out.get(name, "") + "; " if name in out else "") + (
                "the host's clock is before its bundle was made (wrong clock)"
            )
    return out


def with_freshness(drifts: list[Drift], freshness: Mapping[str, str]) -> list[Drift]:
    """The verdicts with the host's freshness notes; a value kept past its windows is
    stale even when its fingerprint is the vault's."""
    out: list[Drift] = []
    for d in drifts:
        note = freshness.get(d.secret)
        if note is None:
            out.append(d)
        elif "ran out" in note:
            out.append(Drift(d.secret, "stale", note))
        else:
            out.append(Drift(d.secret, d.verdict, "; ".join(x for x in (d.detail, note) if x)))
    return out


def verify_local(
    vault: Vault,
    scheme: Scheme,
    host: str | Host,
    manifest: Path,
    root: Path,
    *,
    at: datetime | None = None,
) -> list[Drift]:
    """``verify --local`` for one host in ``root`` (what the README demo calls)."""
    entry = host if isinstance(host, Host) else HostDir(vault.hosts_dir).read(host)
    route = Route(local=True, root=str(root), manifest=str(manifest))
    return verify_host(vault, scheme, entry, manifest_from_file(manifest), route, at=at)
