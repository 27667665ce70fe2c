"""Reading a host's local store back: its metadata without a decrypt, its payload with one.

:class:`StoreReader` reads ``store.json`` and the blob it names under the store lock,
checks the blob's hash, opens it with its backend (age, systemd-creds, plain) and checks
the payload against the metadata (docs/spec/local-store.md).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
from collections.abc import Iterator
from pathlib import Path

from aux_secrets.adapters import bundle_age
from aux_secrets.adapters.fs import file_lock, read_bounded
from aux_secrets.adapters.localstore_layout import (
    LOCK_NAME,
    MAX_BLOB_BYTES,
    MAX_META_BYTES,
    STORE_CREDENTIAL_NAME,
    StoreLayout,
)
from aux_secrets.core.bundle import BundlePayload, decode_payload
from aux_secrets.core.bundle_sign import open_envelope
from aux_secrets.core.localstore import (
    KIND_PLAIN,
    KIND_SYSTEMD_CREDS,
    StoreMeta,
    check_payload_matches,
    decode_meta,
    open_blob,
    parse_blob,
)
from aux_secrets.errors import InputError, NotFoundError


class StoreReader(StoreLayout):
    """Reading the active store: :meth:`active_meta` and :meth:`load`."""

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
