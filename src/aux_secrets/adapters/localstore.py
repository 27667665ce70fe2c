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
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aux_secrets.adapters import bundle_age
from aux_secrets.adapters.audit import AuditLog
from aux_secrets.adapters.fs import atomic_write, file_lock, read_bounded, remove_stale_temps
from aux_secrets.adapters.systemd_creds import SystemdCreds
from aux_secrets.core.audit import AuditEvent
from aux_secrets.core.bundle import BundlePayload, BundleSecret, decode_payload, format_instant
from aux_secrets.core.bundle_sign import (
    Envelope,
    open_envelope,
    parse_signer,
    signer_fingerprint,
)
from aux_secrets.core.fingerprint import fingerprint
from aux_secrets.core.localstore import (
    BACKENDS,
    KEY_BYTES,
    KIND_PLAIN,
    KIND_SYSTEMD_CREDS,
    NONCE_BYTES,
    StoreMeta,
    check_payload_matches,
    decode_credential_index,
    decode_meta,
    encode_credential_index,
    encode_meta,
    meta_for,
    open_blob,
    parse_blob,
    seal_blob,
    version_downgrades,
)
from aux_secrets.errors import AuxError, ConflictError, InputError, NotFoundError, PolicyError

if TYPE_CHECKING:
    from aux_secrets.core.manifest import Manifest, Settings

META_NAME = "store.json"
LOCK_NAME = "store.lock"
CREDENTIALS_DIR = "credentials"
INDEX_NAME = "index.json"
STORE_CREDENTIAL_NAME = "aux-secrets-store"
MAX_META_BYTES = 64 * 1024 * 1024
MAX_BLOB_BYTES = 96 * 1024 * 1024


def under_root(root: Path, path: str | os.PathLike[str]) -> Path:
    """``path`` (absolute, from the manifest) inside ``root``; ``/`` leaves it unchanged."""
    text = os.fspath(path)
    if not text.startswith("/"):
        raise InputError(f"path {text!r} is not absolute")
    return root / text.lstrip("/") if root != Path("/") else Path(text)


def credentials_env(root: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for systemd-creds: under a --root other than /, the host key
    (SYSTEMD_CREDENTIAL_SECRET) defaults to ROOT/var/lib/systemd/credential.secret."""
    result = dict(os.environ if env is None else env)
    if root != Path("/") and "SYSTEMD_CREDENTIAL_SECRET" not in result:
        secret = root / "var/lib/systemd/credential.secret"
        secret.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        result["SYSTEMD_CREDENTIAL_SECRET"] = str(secret)
    return result


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


def current_slot_at(secret: BundleSecret, at: datetime) -> bytes:
    """The value live at ``at``, as the installer chooses it (core/select.py): the slot
    whose window holds it, else the last one after every window, else the one marked
    current."""
    from aux_secrets.core.select import select

    chosen = select(secret.slots, at).current
    return chosen if chosen is not None else secret.current_slot().value


class LocalStore:
    """The local store of one host (``settings`` from its manifest, paths under ``root``)."""

    def __init__(
        self,
        settings: Settings,
        root: Path = Path("/"),
        *,
        env: Mapping[str, str] | None = None,
        after_each: Callable[[], None] | None = None,
    ) -> None:
        if settings.backend not in BACKENDS:
            raise InputError(f"settings.backend {settings.backend!r} is not one of {BACKENDS}")
        self.settings = settings
        self.root = root
        self.store_dir = under_root(root, settings.store_dir)
        self.meta_path = self.store_dir / META_NAME
        self.credentials_dir = self.store_dir / CREDENTIALS_DIR
        self._env = env
        self._after_each = after_each
        self.audit = AuditLog(self.store_dir)

    # ------------------------------------------------------------------ helpers

    def host_key_paths(self) -> list[Path]:
        return [under_root(self.root, p) for p in self.settings.host_keys]

    def creds(self, with_key: str | None = None) -> SystemdCreds:
        return SystemdCreds(
            with_key=with_key or self.settings.credential_key,
            tpm2_device=self.settings.tpm2.device,
            tpm2_pcrs=self.settings.tpm2.pcrs,
            env=credentials_env(self.root, self._env),
            after_each=self._after_each,
        )

    def credential_path(self, name: str) -> Path:
        """Where credential ``name`` lives: ready for ``LoadCredentialEncrypted=NAME:PATH``."""
        return self.credentials_dir / f"{name}.cred"

    def _ensure_dir(self) -> None:
        self.store_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.store_dir.is_symlink() or not self.store_dir.is_dir():
            raise InputError(f"store directory {self.store_dir} is not a directory")

    # ------------------------------------------------------------------ reading

    def active_meta(self) -> StoreMeta | None:
        """What is active (serial, host, created, bundle id, fingerprints), no decrypt.
        None when nothing was ever activated."""
        if not self.meta_path.exists():
            return None
        data = read_bounded(self.meta_path, MAX_META_BYTES, what="local store metadata")
        return decode_meta(data, name=f"local store metadata {self.meta_path}")

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """The store lock, so the metadata and the blob read are one activation's.

        An ``activate`` commits a new blob and removes the old one under this lock; a
        reader without it could read the old metadata and find its blob gone. A store
        the caller cannot lock (read-only, not root) is read without it.
        """
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(file_lock(self.store_dir / LOCK_NAME, what="local store lock"))
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOENT):
                    raise
            yield

    def load(self) -> BundlePayload:
        """The active payload, with exactly one decrypt (metadata and blob read under the
        store lock, so an ``activate`` at the same moment is seen whole or not at all)."""
        with self._reading():
            meta = self.active_meta()
            if meta is None:
                raise NotFoundError(
                    f"no bundle has been activated in {self.store_dir}",
                    hint="deliver one: aux-secrets provision --host HOST "
                    "(or aux-secrets activate --bundle FILE)",
                )
            blob_path = self.store_dir / meta.blob
            blob = read_bounded(blob_path, MAX_BLOB_BYTES, what="local store blob")
        if hashlib.sha256(blob).hexdigest() != meta.blob_sha256:
            raise InputError(
                f"local store blob {blob_path} does not match its metadata (changed or corrupted)",
                hint="deliver the bundle again: aux-secrets provision --host HOST",
            )
        payload_bytes = self._open(meta, blob, blob_path)
        if meta.backend == "age":  # the kept bundle: its signed envelope, checked again
            envelope = open_envelope(payload_bytes)
            if meta.signer is not None and envelope.signer != meta.signer:
                raise InputError(
                    f"local store blob {blob_path} is not signed by the recorded bundle signer",
                    hint="deliver the bundle again: aux-secrets provision --host HOST",
                )
            payload_bytes = envelope.payload
        payload = decode_payload(payload_bytes)
        check_payload_matches(payload, meta, name=f"local store blob {blob_path}")
        return payload

    def _open(self, meta: StoreMeta, blob: bytes, blob_path: Path) -> bytes:
        if meta.backend == "age":
            return bundle_age.open_bundle(blob, self.host_key_paths())
        parsed = parse_blob(blob, name=f"local store blob {blob_path}")
        expected = KIND_SYSTEMD_CREDS if meta.backend == "systemd-creds" else KIND_PLAIN
        if parsed.kind != expected:
            raise InputError(f"local store blob {blob_path} does not match backend {meta.backend}")
        if parsed.kind == KIND_PLAIN:
            key = parsed.key_blob
        else:
            key = self.creds(meta.credential_key).decrypt(
                STORE_CREDENTIAL_NAME, parsed.key_blob, what=f"local store {blob_path}"
            )
        return open_blob(parsed, key, host=meta.host, serial=meta.serial, bundle_id=meta.bundle_id)

    # ------------------------------------------------------------------ activate

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
            floor = self._check_serial(old, payload, host, reset_serial)
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
            warnings=warnings,
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

    def _remove_stale_temps(self) -> None:
        """Temp files of writes a kill interrupted (under the store lock, which every
        writer of these names holds)."""
        remove_stale_temps(
            self.store_dir, lambda target: target == META_NAME or target.startswith("store-")
        )
        remove_stale_temps(
            self.credentials_dir,
            lambda target: target == INDEX_NAME or target.endswith(".cred"),
        )

    def sealed_pcrs(self) -> str | None:
        """The PCRs a blob sealed now is bound to (recorded in store.json), or None."""
        backend, key = self.settings.backend, self.settings.credential_key
        return self.settings.tpm2.pcrs if backend == "systemd-creds" and "tpm2" in key else None

    def _remove_stale_blobs(self, keep: str) -> None:
        for path in self.store_dir.glob("store-*"):
            if path.name != keep and path.suffix in (".bin", ".age"):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()

    # ------------------------------------------------------------------ credentials

    def _read_index(self) -> dict[str, str]:
        """What each credential file holds (by fingerprint); a damaged index is only a
        cache miss: every credential is sealed again."""
        path = self.credentials_dir / INDEX_NAME
        try:
            return decode_credential_index(read_bounded(path, MAX_META_BYTES, what="index"))
        except (AuxError, OSError):
            return {}

    def _plan_credentials(
        self, payload: BundlePayload, manifest: Manifest | None, at: datetime
    ) -> tuple[dict[str, str], dict[str, bytes]]:
        """(credential -> fingerprint wanted, credential -> newly sealed bytes). Only
        credentials whose live value differs from what their file holds are sealed."""
        if manifest is None:
            return {}, {}
        from aux_secrets.core.select import live_instant

        at = live_instant(at, payload.created)
        wanted: dict[str, str] = {}
        values: dict[str, bytes] = {}
        for name, spec in sorted(manifest.secrets.items()):
            secret = payload.secrets.get(name)
            if spec.credential is None or secret is None:
                continue  # the installer names missing secrets
            value = current_slot_at(secret, at)
            wanted[spec.credential.name] = fingerprint(payload.fingerprint_key, name, value)
            values[spec.credential.name] = value
        held = self._read_index()
        stale = [
            c for c in wanted if held.get(c) != wanted[c] or not self.credential_path(c).is_file()
        ]
        if not stale:
            return wanted, {}
        creds = self.creds()
        return wanted, {c: creds.encrypt(c, values[c]) for c in stale}

    def _write_credentials(
        self, wanted: Mapping[str, str], sealed: Mapping[str, bytes]
    ) -> tuple[Path, ...]:
        if not wanted and not self.credentials_dir.exists():
            return ()
        self.credentials_dir.mkdir(mode=0o700, exist_ok=True)
        written = []
        for name, data in sorted(sealed.items()):
            path = self.credential_path(name)
            atomic_write(path, data, mode=0o600)
            written.append(path)
        keep = {self.credential_path(c).name for c in wanted}
        for path in self.credentials_dir.glob("*.cred"):
            if path.name not in keep:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
        index = encode_credential_index(wanted)
        if self._read_index_bytes() != index:  # an unchanged index is not rewritten
            atomic_write(self.credentials_dir / INDEX_NAME, index, mode=0o600)
        return tuple(written)

    def _read_index_bytes(self) -> bytes | None:
        try:
            return read_bounded(self.credentials_dir / INDEX_NAME, MAX_META_BYTES, what="index")
        except (AuxError, OSError):
            return None

    def refresh_credentials(
        self, manifest: Manifest, payload: BundlePayload, at: datetime
    ) -> tuple[Path, ...]:
        """Bring ``credentials/`` in line with the manifest and the values live at ``at``
        (after a rotation boundary, or a manifest that names new credentials). Seals only
        what changed; returns the files written. The installer calls this."""
        self._ensure_dir()
        with file_lock(self.store_dir / LOCK_NAME, what="local store lock"):
            self._remove_stale_temps()
            active = self.active_meta()
            if active is not None and active.bundle_id != payload.bundle_id:
                # An activate came in since ``payload`` was read: sealing its values now
                # would put older values over the ones that activate just sealed.
                raise ConflictError(
                    "a newer bundle was activated while install was running; nothing was changed",
                    hint="run aux-secrets install again",
                )
            wanted, sealed = self._plan_credentials(payload, manifest, at)
            return self._write_credentials(wanted, sealed)

    def seal_credential(self, name: str, value: bytes) -> Path:
        """Write credential ``name`` (sealed with ``--name=NAME``) to its file, atomically.
        Prefer refresh_credentials, which also keeps the index."""
        self._ensure_dir()
        self.credentials_dir.mkdir(mode=0o700, exist_ok=True)
        path = self.credential_path(name)
        atomic_write(path, self.creds().encrypt(name, value), mode=0o600)
        with contextlib.suppress(FileNotFoundError):
            (self.credentials_dir / INDEX_NAME).unlink()  # no longer known: reseal next time
        return path


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
