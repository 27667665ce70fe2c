"""Where a host's local store lives: its file names, its paths under ``root``, its keys.

:class:`StoreLayout` is what every part of :class:`~aux_secrets.adapters.localstore.LocalStore`
shares: the store directory under ``root``, the host keys, the systemd-creds settings,
and the clean-up of files an interrupted write left (docs/spec/local-store.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from aux_secrets.adapters.audit import AuditLog
from aux_secrets.adapters.fs import remove_stale_temps
from aux_secrets.adapters.systemd_creds import SystemdCreds
from aux_secrets.core.localstore import BACKENDS
from aux_secrets.errors import InputError

if TYPE_CHECKING:
    from aux_secrets.core.manifest import Settings

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


class StoreLayout:
    """The paths, keys and clean-up of one host's local store."""

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
