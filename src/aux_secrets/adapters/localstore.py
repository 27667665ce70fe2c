"""The host's local store under ``storeDir``: activate a delivered bundle, load it back.

Layout (docs/spec/local-store.md):

    storeDir/store.json           clear metadata (core/localstore.py), the commit point
    storeDir/store-SERIAL.bin     sealed envelope (systemd-creds, plain backends)
    storeDir/store-SERIAL.age     the delivered bundle as is (age backend)
    storeDir/credentials/N.cred   individual systemd credentials (secrets with `credential`)
    storeDir/audit.jsonl          the audit log (adapters/audit.py)

``activate`` writes the new blob under a new name, then replaces ``store.json`` with one
rename: a crash before the rename leaves the old store active and whole. ``load`` does
exactly one decrypt whatever the number of secrets.

This module activates; the rest of :class:`LocalStore` lives beside it and is
re-exported here: paths, keys and clean-up in ``localstore_layout.py``, reading in
``localstore_read.py``, the individual credentials in ``localstore_credentials.py``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aux_secrets.adapters import bundle_age
from aux_secrets.adapters.fs import atomic_write, file_lock
from aux_secrets.adapters.localstore_credentials import StoreCredentials
from aux_secrets.adapters.localstore_credentials import current_slot_at as current_slot_at
from aux_secrets.adapters.localstore_layout import CREDENTIALS_DIR as CREDENTIALS_DIR
from aux_secrets.adapters.localstore_layout import INDEX_NAME as INDEX_NAME
from aux_secrets.adapters.localstore_layout import LOCK_NAME as LOCK_NAME
from aux_secrets.adapters.localstore_layout import MAX_BLOB_BYTES as MAX_BLOB_BYTES
from aux_secrets.adapters.localstore_layout import MAX_META_BYTES as MAX_META_BYTES
from aux_secrets.adapters.localstore_layout import META_NAME as META_NAME
from aux_secrets.adapters.localstore_layout import STORE_CREDENTIAL_NAME as STORE_CREDENTIAL_NAME
from aux_secrets.adapters.localstore_layout import StoreLayout as StoreLayout
from aux_secrets.adapters.localstore_layout import credentials_env as credentials_env
from aux_secrets.adapters.localstore_layout import under_root as under_root
from aux_secrets.adapters.localstore_read import StoreReader as StoreReader
from aux_secrets.core.audit import AuditEvent
from aux_secrets.core.bundle import BundlePayload, decode_payload, format_instant
from aux_secrets.core.bundle_sign import (
    Envelope,
    open_envelope,
    parse_signer,
    signer_fingerprint,
)
from aux_secrets.core.fingerprint import fingerprint
from aux_secrets.core.localstore import (
    KEY_BYTES,
    KIND_PLAIN,
    KIND_SYSTEMD_CREDS,
    NONCE_BYTES,
    StoreMeta,
    encode_meta,
    meta_for,
    seal_blob,
    version_downgrades,
)
from aux_secrets.errors import ConflictError, PolicyError

if TYPE_CHECKING:
    from aux_secrets.core.manifest import Manifest, Settings


@dataclass(frozen=True)
class ActivateResult:
    meta: StoreMeta
    previous_serial: int | None
    changed: tuple[str, ...]
    removed: tuple[str, ...]
    credentials: tuple[Path, ...]
    signer: bytes = b""
    # The signer recorded before, when --trust-new-signer replaced it; else None.
    replaced_signer: bytes | None = None
    # True when the host had no manifest and the one the bundle carries was used.
    carried_manifest: bool = False
    warnings: tuple[str, ...] = ()  # the audit entry could not be written, and why
    # What became active, decoded once: an install in the same process starts from it.
    payload: BundlePayload | None = field(default=None, repr=False)


class LocalStore(StoreCredentials):
    """The local store of one host (``settings`` from its manifest, paths under ``root``).

    Paths and keys come from :class:`StoreLayout`, reading from :class:`StoreReader`,
    credentials from :class:`StoreCredentials`; this class activates a bundle."""

    def _seal(
        self, payload: BundlePayload, payload_bytes: bytes, bundle: bytes
    ) -> tuple[str, bytes]:
        backend = self.settings.backend
        if backend == "age":
            return f"store-{payload.serial}.age", bundle
        key = os.urandom(KEY_BYTES)
        if backend == "plain":
            kind, key_blob = KIND_PLAIN, key
        else:
            kind = KIND_SYSTEMD_CREDS
            key_blob = self.creds().encrypt(STORE_CREDENTIAL_NAME, key)
        blob = seal_blob(
            kind,
            key_blob,
            key,
            os.urandom(NONCE_BYTES),
            payload_bytes,
            host=payload.host,
            serial=payload.serial,
            bundle_id=payload.bundle_id,
        )
        return f"store-{payload.serial}.bin", blob

    def activate(
        self,
        bundle: bytes,
        host: str,
        *,
        manifest: Manifest | None = None,
        now: datetime | None = None,
        trust_new_signer: bool = False,
        reset_serial: bool = False,
        allow_downgrade: bool = False,
    ) -> ActivateResult:
        """Open ``bundle`` with the host key, verify its signature and signer (pinned in
        settings.bundleSigners, else the one recorded by the first bundle), refuse another
        host or a replay, seal it into the store and commit with one rename. Nothing
        changes on any refusal. ``trust_new_signer`` replaces a recorded signer.
        ``reset_serial`` accepts a serial not above the active one, but only for a bundle
        made later (``created``) than the active one: the way back from a serial pushed
        far ahead, never a replay of an older bundle. A bundle that would take a store
        secret back to an older store version is refused unless ``allow_downgrade``."""
        at = now or datetime.now(UTC).replace(microsecond=0)
        envelope = open_envelope(bundle_age.open_bundle(bundle, self.host_key_paths()))
        payload = decode_payload(envelope.payload)
        if payload.host != host:
            raise PolicyError(
                f"the bundle was made for host {payload.host!r}, this host is {host!r}",
                hint=f"make one for this host: aux-secrets bundle --host {host}",
            )
        if manifest is None and payload.manifest is not None:
            # No manifest on the host yet (its first deployment): seal, and write the
            # credentials, the way the manifest the bundle carries asks.
            carried = payload.manifest
            store = self.for_settings(carried.settings, what="the manifest the bundle carries")
            return store._commit(
                envelope,
                payload,
                bundle,
                host,
                carried,
                at,
                trust_new_signer,
                reset_serial,
                allow_downgrade=allow_downgrade,
            )
        return self._commit(
            envelope,
            payload,
            bundle,
            host,
            manifest,
            at,
            trust_new_signer,
            reset_serial,
            allow_downgrade=allow_downgrade,
        )

    def for_settings(self, settings: Settings, *, what: str) -> LocalStore:
        """This store as ``settings`` seal it; they must name the same storeDir."""
        other = LocalStore(settings, self.root, env=self._env, after_each=self._after_each)
        if other.store_dir != self.store_dir:
            raise PolicyError(
                f"{what} keeps the local store in {settings.store_dir}, but a host without "
                f"a manifest of its own keeps it in {self.settings.store_dir}",
                hint="put the manifest on the host first (or leave settings.storeDir at "
                "its default)",
            )
        return other

    def _commit(
        self,
        envelope: Envelope,
        payload: BundlePayload,
        bundle: bytes,
        host: str,
        manifest: Manifest | None,
        at: datetime,
        trust_new_signer: bool,
        reset_serial: bool = False,
        *,
        allow_downgrade: bool = False,
    ) -> ActivateResult:
        pinned = [
            parse_signer(text, f"settings.bundleSigners[{index}]")
            for index, text in enumerate(self.settings.bundle_signers)
        ]
        if pinned and envelope.signer not in pinned:
            raise PolicyError(
                f"bundle signed by {signer_fingerprint(envelope.signer)}, "
                "which is not in settings.bundleSigners",
                hint="pin the vault's signer (aux-secrets signer) in aux.settings.bundleSigners",
            )
        payload_bytes = envelope.payload
        self._ensure_dir()
        with file_lock(self.store_dir / LOCK_NAME, what="local store lock"):
            self._remove_stale_temps()
            old = self.active_meta()
            replaced: bytes | None = None
            recorded = old.signer if old is not None else None
            if not pinned and recorded is not None and envelope.signer != recorded:
                if not trust_new_signer:
                    raise PolicyError(
                        f"bundle signed by {signer_fingerprint(envelope.signer)}, but this "
                        f"host trusts {signer_fingerprint(recorded)} (recorded from its "
                        "first bundle)",
                        hint="if the vault changed on purpose: aux-secrets activate "
                        "--trust-new-signer --bundle FILE, or pin the signer in "
                        "settings.bundleSigners",
                    )
                replaced = recorded
            # Downgrades first: a stale vault clone's bundle may carry the same serial as
            # the active one (both taken from the clock in one second), and "pull the
            # vault" is the message that operator needs, not "replayed".
            downgrades = version_downgrades(old, payload) if old is not None else []
            if downgrades and not allow_downgrade:
                name, held, offered = downgrades[0]
                more = f" (and {len(downgrades) - 1} more)" if len(downgrades) > 1 else ""
                raise ConflictError(
                    f"the bundle would take store secret {name} back from version {held} "
                    f"to version {offered}{more}: refusing an older store value (the vault "
                    "that made it is behind)",
                    hint="pull the vault (git pull) and provision again; to go back on "
                    "purpose: aux-secrets provision --allow-downgrade (or activate "
                    "--allow-downgrade)",
                )
            floor = self._check_serial(old, payload, host, reset_serial)
            wanted, sealed = self._plan_credentials(payload, manifest, at)
            blob_name, blob = self._seal(payload, payload_bytes, bundle)
            meta = meta_for(
                payload,
                backend=self.settings.backend,
                credential_key=self.settings.credential_key
                if self.settings.backend == "systemd-creds"
                else None,
                blob=blob_name,
                blob_sha256=hashlib.sha256(blob).hexdigest(),
                signer=envelope.signer,
                created_floor=floor,
                tpm2_pcrs=self.sealed_pcrs(),
            )
            blob_path = self.store_dir / blob_name
            atomic_write(blob_path, blob, mode=0o600)
            # A test open before the commit: a store we cannot read back is never made active.
            self._open(meta, blob, blob_path)
            atomic_write(self.meta_path, encode_meta(meta), mode=0o600)  # the commit
            self._remove_stale_blobs(keep=blob_name)
            written = self._write_credentials(wanted, sealed) if manifest is not None else ()
            changed, removed = _changes(old, meta)
            warnings = self.audit.append_or_warn(
                AuditEvent(
                    event="activate",
                    time=at,
                    host=host,
                    bundle_id=payload.bundle_id,
                    serial=payload.serial,
                    changed=changed,
                    fingerprints={
                        name: fingerprint(
                            payload.fingerprint_key,
                            name,
                            current_slot_at(payload.secrets[name], at),
                        )
                        for name in changed
                    },
                ),
                done=f"bundle serial {payload.serial} is active",
            )
        return ActivateResult(
            meta=meta,
            previous_serial=old.serial if old else None,
            changed=changed,
            removed=removed,
            credentials=written,
            signer=envelope.signer,
            replaced_signer=replaced,
            carried_manifest=manifest is payload.manifest and manifest is not None,
            warnings=(*_renamed(old, payload.host), *warnings),
            payload=payload,
        )

    @staticmethod
    def _check_serial(
        old: StoreMeta | None, payload: BundlePayload, host: str, reset_serial: bool
    ) -> datetime | None:
        """Refuse a replay; the ``createdFloor`` the new metadata carries."""
        if old is None:
            return None
        if old.created_floor is not None and payload.created < old.created_floor:
            raise ConflictError(
                f"the bundle was made at {format_instant(payload.created)}, before the serial "
                f"was reset ({format_instant(old.created_floor)}): refusing an older bundle",
                hint="make a fresh bundle: aux-secrets provision --host " + host,
            )
        if payload.serial > old.serial:
            return old.created_floor
        if not reset_serial:
            raise ConflictError(
                f"bundle serial {payload.serial} is not newer than the active serial "
                f"{old.serial}: refusing a replayed or outdated bundle",
                hint="make a fresh bundle: aux-secrets provision --host "
                + host
                + "; if the active serial is far in the future (a changed host file), "
                "see aux-secrets activate --reset-serial",
            )
        if payload.created <= old.created:
            raise ConflictError(
                f"--reset-serial: the bundle was made at {format_instant(payload.created)}, "
                f"not after the active one ({format_instant(old.created)}): refusing an "
                "older bundle",
                hint="make a fresh bundle: aux-secrets bundle --host " + host,
            )
        return payload.created  # from now on, nothing made before this one


def _renamed(old: StoreMeta | None, host: str) -> tuple[str, ...]:
    """A store that changes hosts is said out loud: a renamed host, or (cloned host keys,
    a wrong --host) another host's secrets taken in by mistake."""
    if old is None or old.host == host:
        return ()
    return (
        f"the local store held host {old.host}'s secrets; it now holds host {host}'s "
        "(a renamed host, or another host's bundle taken by mistake)",
    )


def _changes(old: StoreMeta | None, new: StoreMeta) -> tuple[tuple[str, ...], tuple[str, ...]]:
    def prints(meta: StoreMeta | None, name: str) -> Sequence[tuple[str, str]]:
        if meta is None or name not in meta.secrets:
            return ()
        return [(s.label, s.fingerprint) for s in meta.secrets[name].slots]

    changed = tuple(n for n in sorted(new.secrets) if prints(old, n) != prints(new, n))
    removed = tuple(sorted(set(old.secrets) - set(new.secrets))) if old else ()
    return changed, removed


__all__ = [
    "ActivateResult",
    "LocalStore",
    "credentials_env",
    "current_slot_at",
    "under_root",
]
