"""Where a realm or a store secret is used across the vault's hosts.

Each host entry names its manifest (a file, a built system or a flake); every manifest
that can be read is searched. A derived secret matches a realm when its realm template
is the realm, or fills ``{period}`` to it; a store secret matches its store name. A host
whose manifest cannot be read is reported as such, never silently left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from aux_secrets.adapters.hosts import HostDir
from aux_secrets.core.expiry import EXPIRY_WARNING_DAYS
from aux_secrets.errors import AuxError

if TYPE_CHECKING:
    from aux_secrets.core.manifest import Manifest

Kind = Literal["realm", "store"]


@dataclass(frozen=True)
class Use:
    host: str
    secrets: tuple[str, ...] = ()  # the manifest's secret names that use it
    error: str | None = None  # the host's manifest could not be read


def _realm_matches(template: str, realm: str) -> bool:
    """``realm`` is the template itself, or the template with every ``{period}`` filled."""
    if template == realm:
        return True
    if "{period}" not in template:
        return False
    pattern = "[0-9A-Za-z-]+".join(re.escape(part) for part in template.split("{period}"))
    return re.fullmatch(pattern, realm) is not None


def uses(vault_root: Path, hosts_dir: Path, kind: Kind, name: str) -> list[Use]:
    """For every host of the vault, the secrets of its manifest that use ``name``."""
    from aux_secrets.core.manifest import StoreSource
    from aux_secrets.workflows.manifest_source import load_manifest, manifest_for_host

    hosts = HostDir(hosts_dir)
    out: list[Use] = []
    for host in hosts.names():
        try:
            entry = hosts.read(host)
            manifest = load_manifest(manifest_for_host(entry, vault_root))
        except (AuxError, OSError) as exc:
            message = exc.message if isinstance(exc, AuxError) else str(exc)
            out.append(Use(host, error=message))
            continue
        found = []
        for secret, spec in sorted(manifest.secrets.items()):
            source = spec.source
            if isinstance(source, StoreSource):
                hit = kind == "store" and source.name == name
            else:
                hit = kind == "realm" and _realm_matches(source.realm, name)
            if hit:
                found.append(secret)
        out.append(Use(host, tuple(found)))
    return out


def expiry_notes(vault: object, manifest: Manifest, today: date) -> list[tuple[str, str]]:
    """(secret, line) for each store secret ``manifest`` uses that has expired or expires
    within EXPIRY_WARNING_DAYS (store file headers only: no key, no decryption)."""
    from aux_secrets.adapters.store import vault_store
    from aux_secrets.core.manifest import StoreSource

    wanted = {
        spec.source.name: secret
        for secret, spec in manifest.secrets.items()
        if isinstance(spec.source, StoreSource)
    }
    if not wanted:
        return []
    store = vault_store(vault, commit=False)  # type: ignore[arg-type]
    notes = []
    for entry in store.dir.entries():
        meta = entry.meta
        if meta is None or meta.name not in wanted or meta.expires is None:
            continue
        left = (meta.expires - today).days
        if left < 0:
            state = f"EXPIRED on {meta.expires.isoformat()}"
        elif left <= EXPIRY_WARNING_DAYS:
            state = f"expires on {meta.expires.isoformat()} (in {left} days)"
        else:
            continue
        notes.append(
            (
                wanted[meta.name],
                f"store secret {meta.name} {state}: renew it (aux-secrets store set {meta.name})",
            )
        )
    return notes


@dataclass(frozen=True)
class Held:
    """One secret a host held, who else holds the same value, and what to do about it."""

    secret: str
    source: str  # "derive REALM" or "store NAME"
    shared_with: tuple[str, ...]
    rotate: str  # the next step, as a sentence with the command


def decommission_report(
    vault_root: Path, hosts_dir: Path, name: str
) -> tuple[list[Held], list[Use]]:
    """What host ``name`` held (from its manifest), which other hosts share each value,
    and how to rotate each; plus the hosts whose manifests could not be read."""
    from aux_secrets.core.manifest import DeriveSource
    from aux_secrets.workflows.manifest_source import load_manifest, manifest_for_host

    hosts = HostDir(hosts_dir)
    manifest = load_manifest(manifest_for_host(hosts.read(name), vault_root))
    held: list[Held] = []
    unknown: dict[str, Use] = {}
    for secret, spec in sorted(manifest.secrets.items()):
        source = spec.source
        if isinstance(source, DeriveSource):
            kind: Kind = "realm"
            key = source.realm
            what = f"derive {source.realm}"
        else:
            kind, key, what = "store", source.name, f"store {source.name}"
        others = []
        for use in uses(vault_root, hosts_dir, kind, key):
            if use.host == name:
                continue
            if use.error is not None:
                unknown[use.host] = use
            elif use.secrets:
                others.append(use.host)
        shared = tuple(others)
        on = f" on {', '.join(shared)}" if shared else ""
        if isinstance(source, DeriveSource):
            ahead = source.rotation.ahead if source.rotation else 0
            held_too = f" (it also held the next {ahead} period(s) ahead)" if ahead else ""
            new = (
                source.realm.replace("{period}", "v2/{period}")
                if source.rotation
                else (f"{source.realm}/v2")
            )
            rotate = (
                f"derived: change its realm to a new one, e.g. {new}, in the manifest(s)"
                f"{on} and provision them{held_too}"
                if shared
                else f"derived, held by this host only: nothing to rotate if its disk is "
                f"wiped; if it may have leaked, retire realm {source.realm}{held_too}"
            )
        else:
            rotate = (
                f"stored: revoke it where it was issued, then 'aux-secrets store revoke "
                f"{source.name}' and provision{on}"
                if shared
                else f"stored, held by this host only: revoke it where it was issued, then "
                f"'aux-secrets store rm {source.name}'"
            )
        held.append(Held(secret, what, shared, rotate))
    return held, list(unknown.values())


__all__ = [
    "EXPIRY_WARNING_DAYS",
    "Held",
    "Kind",
    "Use",
    "decommission_report",
    "expiry_notes",
    "uses",
]
