"""The individual systemd credentials of a host's local store (``credentials/N.cred``).

:class:`StoreCredentials` seals the value live now of each secret the manifest gives a
``credential``, only where the file's recorded fingerprint (``credentials/index.json``)
differs, and removes credentials the manifest no longer names.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aux_secrets.adapters.fs import atomic_write, file_lock, read_bounded
from aux_secrets.adapters.localstore_layout import INDEX_NAME, LOCK_NAME, MAX_META_BYTES
from aux_secrets.adapters.localstore_read import StoreReader
from aux_secrets.core.bundle import BundlePayload, BundleSecret
from aux_secrets.core.fingerprint import fingerprint
from aux_secrets.core.localstore import decode_credential_index, encode_credential_index
from aux_secrets.errors import AuxError, ConflictError

if TYPE_CHECKING:
    from aux_secrets.core.manifest import Manifest


def current_slot_at(secret: BundleSecret, at: datetime) -> bytes:
    """The value live at ``at``, as the installer chooses it (core/select.py): the slot
    whose window holds it, else the last one after every window, else the one marked
    current."""
    from aux_secrets.core.select import select

    chosen = select(secret.slots, at).current
    return chosen if chosen is not None else secret.current_slot().value


class StoreCredentials(StoreReader):
    """Planning, sealing and writing ``credentials/``; the installer refreshes them."""

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
