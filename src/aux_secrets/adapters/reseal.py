"""Bring the local store to the sealing the manifest asks for, in place (Workflow 3).

A settings change (``backend``, ``credentialKey``, ``tpm2.pcrs``; turning the TPM on)
arrives with the switch's manifest, after the bundle was activated the old way. The
switch's install calls :func:`reseal` first: the active payload is opened the way it
was sealed, sealed again the new way under a new blob name, checked by opening it, and
committed with one rename of ``store.json``; the old blob is removed, and with another
credential key every individual credential is sealed again by the installer. A change
that cannot be made on the host (to the ``age`` backend, which keeps the delivered
bundle itself; an active bundle whose signer the new ``bundleSigners`` no longer
trusts) fails loudly with the next step. Nothing changes on any failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from aux_secrets.adapters.fs import atomic_write, file_lock
from aux_secrets.adapters.localstore import INDEX_NAME, LOCK_NAME, LocalStore
from aux_secrets.core.bundle import encode_payload
from aux_secrets.core.bundle_sign import parse_signer, signer_fingerprint
from aux_secrets.core.localstore import StoreMeta, encode_meta, sealing_changes
from aux_secrets.errors import PolicyError

if TYPE_CHECKING:
    from aux_secrets.core.bundle import BundlePayload

_SUFFIX_RE = re.compile(r"store-[0-9]+-([0-9]+)\.(bin|age)")


@dataclass(frozen=True)
class Resealed:
    changes: tuple[str, ...]  # e.g. ("backend plain -> systemd-creds",)
    blob: str  # the new blob's name
    # The payload it opened (None for a dry run): the install needs no second decrypt.
    payload: BundlePayload | None = field(default=None, repr=False)


def pending(store: LocalStore, meta: StoreMeta) -> list[str]:
    """How the active store's sealing differs from ``store.settings`` (empty: it agrees)."""
    s = store.settings
    return sealing_changes(
        meta, backend=s.backend, credential_key=s.credential_key, tpm2_pcrs=s.tpm2.pcrs
    )


def untrusted_signer(store: LocalStore, meta: StoreMeta) -> str | None:
    """The active bundle's signer when settings.bundleSigners pins others, else None."""
    pinned = [
        parse_signer(text, f"settings.bundleSigners[{i}]")
        for i, text in enumerate(store.settings.bundle_signers)
    ]
    if pinned and meta.signer is not None and meta.signer not in pinned:
        return signer_fingerprint(meta.signer)
    return None


def _next_blob(meta: StoreMeta) -> str:
    match = _SUFFIX_RE.fullmatch(meta.blob)
    n = int(match.group(1)) + 1 if match else 1
    return f"store-{meta.serial}-{n}.bin"


def reseal(store: LocalStore, host: str, *, dry_run: bool = False) -> Resealed | None:
    """Re-seal the active store as ``store.settings`` ask; None when it already is (or
    nothing was activated). PolicyError, changing nothing, when it cannot be done here."""
    meta = store.active_meta()
    if meta is None:
        return None
    signer = untrusted_signer(store, meta)
    if signer is not None:
        raise PolicyError(
            f"the active bundle is signed by {signer}, which settings.bundleSigners no "
            "longer lists: its values are not installed",
            hint=f"provision the host from the vault whose signer is pinned: "
            f"aux-secrets provision --host {host}",
        )
    changes = pending(store, meta)
    if not changes:
        return None
    if store.settings.backend == "age":
        raise PolicyError(
            f"the local store is sealed with backend {meta.backend}; backend age keeps the "
            "delivered bundle itself, which this host no longer has",
            hint=f"deliver it again: aux-secrets provision --host {host}",
        )
    name = _next_blob(meta)
    if dry_run:
        return Resealed(tuple(changes), name)
    payload = store.load()  # opened the way it was sealed (meta's backend and key)
    with file_lock(store.store_dir / LOCK_NAME, what="local store lock"):
        now = store.active_meta()
        if now is None or (now.serial, now.bundle_id, now.blob) != (
            meta.serial,
            meta.bundle_id,
            meta.blob,
        ):
            return None  # an activate came first, and sealed the new way
        _, blob = store._seal(payload, encode_payload(payload), b"")
        settings = store.settings
        new = replace(
            meta,
            backend=settings.backend,
            credential_key=settings.credential_key if settings.backend == "systemd-creds" else None,
            blob=name,
            blob_sha256=hashlib.sha256(blob).hexdigest(),
            tpm2_pcrs=store.sealed_pcrs(),
        )
        path = store.store_dir / name
        atomic_write(path, blob, mode=0o600)
        store._open(new, blob, path)  # never commit a store that cannot be read back
        atomic_write(store.meta_path, encode_meta(new), mode=0o600)  # the commit
        store._remove_stale_blobs(keep=name)
        if new.credential_key != meta.credential_key or new.tpm2_pcrs != meta.tpm2_pcrs:
            # Every individual credential is sealed again the new way by the installer.
            with contextlib.suppress(FileNotFoundError):
                (store.credentials_dir / INDEX_NAME).unlink()
    return Resealed(tuple(changes), name, payload)


__all__ = ["Resealed", "pending", "reseal", "untrusted_signer"]
