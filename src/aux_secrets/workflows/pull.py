"""The host's side of publish-and-pull: fetch its bundle, take it in if it is newer.

A fetched bundle goes through the local store's ``activate`` like a delivered one
(host key, signature, pinned or recorded signer, host name, serial), so the source
needs no trust. What the host already holds stays active on any failure. A small
cache (``storeDir/pull.json``: the source, its ETag and Last-Modified, the sha256 of
the bundle taken in) lets an unchanged source cost one conditional request and no
decryption; a damaged cache only costs a full fetch.

A host whose manifest comes with its first bundle pulls too: its name is the one it is
given, else the manifest's, else the active bundle's, else the system's short hostname
(what colmena and deploy-rs call a host), and the signer it is given is required.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aux_secrets.adapters import fetch
from aux_secrets.adapters.fs import atomic_write, read_bounded
from aux_secrets.core.nesting import loads_json
from aux_secrets.errors import AuxError, PolicyError, UsageError

if TYPE_CHECKING:
    from aux_secrets.adapters.localstore import ActivateResult, LocalStore
    from aux_secrets.core.localstore import StoreMeta
    from aux_secrets.core.manifest import Manifest

NO_NAME_HINT = "pass --host NAME (for the units: aux-secrets units install --host NAME)"
# Names a fresh system answers with before anyone named it: never a host of a vault.
UNNAMED = ("localhost", "localhost.localdomain", "(none)", "")
STATE_NAME = "pull.json"
STATE_VERSION = 1
MAX_STATE_BYTES = 64 * 1024


@dataclass(frozen=True)
class PullResult:
    host: str
    where: str
    activated: ActivateResult | None  # None: the source holds nothing newer
    serial: int


@dataclass(frozen=True)
class PullState:
    source: str
    etag: str | None
    last_modified: str | None
    sha256: str
    serial: int


def read_state(store: LocalStore) -> PullState | None:
    """The cache, or None when it is missing or damaged (it is only a cache)."""
    try:
        doc = loads_json(read_bounded(store.store_dir / STATE_NAME, MAX_STATE_BYTES))
    except (AuxError, OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("version") != STATE_VERSION:
        return None
    source, sha, serial = doc.get("source"), doc.get("sha256"), doc.get("serial")
    etag, modified = doc.get("etag"), doc.get("lastModified")
    if not isinstance(source, str) or not isinstance(sha, str) or type(serial) is not int:
        return None
    return PullState(
        source,
        etag if isinstance(etag, str) else None,
        modified if isinstance(modified, str) else None,
        sha,
        serial,
    )


def write_state(store: LocalStore, state: PullState) -> None:
    doc = {
        "version": STATE_VERSION,
        "source": state.source,
        "etag": state.etag,
        "lastModified": state.last_modified,
        "sha256": state.sha256,
        "serial": state.serial,
    }
    atomic_write(store.store_dir / STATE_NAME, json.dumps(doc).encode() + b"\n", mode=0o600)


def _same_bundle(store: LocalStore, data: bytes, active: StoreMeta) -> bool:
    """Does ``data`` hold the very bundle that is active (a source that has not moved on)?"""
    from aux_secrets.adapters.bundle_age import open_bundle
    from aux_secrets.core.bundle import decode_payload
    from aux_secrets.core.bundle_sign import open_envelope

    envelope = open_envelope(open_bundle(data, store.host_key_paths()))
    payload = decode_payload(envelope.payload)
    return payload.bundle_id == active.bundle_id and payload.serial == active.serial


def keeping(active: StoreMeta | None) -> str:
    if active is None:
        return "this host has no secrets from a bundle yet"
    return f"this host keeps serial {active.serial}"


def system_hostname(root: Path) -> str:
    """The short hostname: the running system's, or ROOT/etc/hostname's under a root."""
    import socket

    if root == Path("/"):
        name = socket.gethostname()
    else:
        try:
            name = read_bounded(root / "etc/hostname", 4096).decode("utf-8", "replace")
        except (AuxError, OSError):
            name = ""
    return name.strip().split(".", 1)[0]


def host_name(given: str | None, manifest: Manifest | None, store: LocalStore, root: Path) -> str:
    """The host whose bundle to take: ``given`` (--host), which a manifest must agree
    with, else the manifest's host, else the active bundle's, else the short hostname."""
    from aux_secrets.core.bundle import check_host_name

    if given is not None:
        check_host_name(given, "--host")
        if manifest is not None and given != manifest.host:
            raise UsageError(f"--host {given} differs from the manifest's host {manifest.host}")
        return given
    if manifest is not None:
        return manifest.host
    active = store.active_meta()
    if active is not None:
        return active.host
    name = system_hostname(root)
    if name.lower() in UNNAMED:
        raise UsageError(
            "no host name: no manifest, nothing activated yet, and the system's hostname "
            f"is {name or 'empty'!r}",
            hint=NO_NAME_HINT,
        )
    try:
        check_host_name(name, "the system's hostname")
    except AuxError as exc:
        raise UsageError(f"no host name: {exc.message}", hint=NO_NAME_HINT) from None
    return name


def _check_pinned(store: LocalStore, data: bytes, signer: bytes) -> None:
    """A bundle signed by anyone but the signer this host was given is refused."""
    from aux_secrets.adapters.bundle_age import open_bundle
    from aux_secrets.core.bundle_sign import open_envelope, signer_fingerprint

    envelope = open_envelope(open_bundle(data, store.host_key_paths()))
    if envelope.signer != signer:
        raise PolicyError(
            f"bundle signed by {signer_fingerprint(envelope.signer)}, but this host takes "
            f"bundles only from {signer_fingerprint(signer)} (--signer)",
            hint="publish bundles of the vault this host belongs to, or install the units "
            "with that vault's signer: aux-secrets units install --signer KEY",
        )


def pull(
    store: LocalStore,
    host: str,
    source: str,
    *,
    manifest: Manifest | None,
    timeout: float = fetch.DEFAULT_TIMEOUT,
    limit: int,
    trust_first_signer: bool = False,
    signer: bytes | None = None,
) -> PullResult:
    """Fetch ``SOURCE/HOST.age`` and activate it when it is new; any refusal raises the
    same error class with what the host keeps added to the message. With ``signer``
    only a bundle that key signed is taken (it pins the first one, too)."""
    active = store.active_meta()
    try:
        return _pull(
            store, host, source, active, manifest, timeout, limit, trust_first_signer, signer
        )
    except AuxError as exc:
        raise type(exc)(f"{exc.message}; {keeping(active)}", hint=exc.hint) from None


def _pull(
    store: LocalStore,
    host: str,
    source: str,
    active: StoreMeta | None,
    manifest: Manifest | None,
    timeout: float,
    limit: int,
    trust_first_signer: bool,
    signer: bytes | None,
) -> PullResult:
    state = read_state(store)
    if state is not None and (state.source != source or active is None):
        state = None
    if state is not None and active is not None and state.serial != active.serial:
        state = None  # something else (provision over ssh) delivered since: no shortcut
    got = fetch.fetch(
        source,
        host,
        limit=limit,
        timeout=timeout,
        etag=state.etag if state else None,
        last_modified=state.last_modified if state else None,
    )
    if got.data is None:
        assert active is not None
        return PullResult(host, got.where, None, active.serial)
    digest = hashlib.sha256(got.data).hexdigest()
    if active is not None and (
        (state is not None and state.sha256 == digest) or _same_bundle(store, got.data, active)
    ):
        write_state(store, PullState(source, got.etag, got.last_modified, digest, active.serial))
        return PullResult(host, got.where, None, active.serial)
    if signer is not None:
        _check_pinned(store, got.data, signer)
    elif active is None and not store.settings.bundle_signers and not trust_first_signer:
        raise PolicyError(
            "refusing to take a first bundle from a pull source with no signer pinned",
            hint="pin the vault's signer ('aux-secrets signer') in settings.bundleSigners "
            "or with --signer, or pass --trust-first-signer once",
        )
    result = store.activate(got.data, host, manifest=manifest)
    write_state(store, PullState(source, got.etag, got.last_modified, digest, result.meta.serial))
    return PullResult(host, got.where, result, result.meta.serial)
