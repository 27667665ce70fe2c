"""The host side's starting points under ``--root``: the root directory, the manifest
(default ROOT/etc/aux-secrets/manifest.json) and the local store it configures.

Shared by the host-side commands (activate, install, status, audit) and by
``provision --local``, which runs the same steps in its own process. Imports are local
so that importing this module costs nothing at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aux_secrets.adapters.installer import InstallReport
    from aux_secrets.adapters.localstore import LocalStore
    from aux_secrets.core.manifest import Manifest, Settings
    from aux_secrets.errors import NotFoundError

DEFAULT_MANIFEST = "/etc/aux-secrets/manifest.json"
MAX_MANIFEST_BYTES = 16 * 1024 * 1024


def resolve_root(root: Path | None) -> Path:
    """The --root directory as an absolute path (``/`` when not given)."""
    from aux_secrets.errors import InputError, NotFoundError

    if root is None:
        return Path("/")
    resolved = root.absolute()
    if resolved.exists() and not resolved.is_dir():
        raise InputError(f"root directory {root} is not a directory")
    if not resolved.is_dir():
        raise NotFoundError(f"root directory {root} does not exist")
    return resolved


def manifest_path(manifest: Path | None, root: Path) -> tuple[Path, bool]:
    """The manifest file and whether the operator named it explicitly."""
    from aux_secrets.adapters.localstore import under_root

    if manifest is not None:
        return manifest, True
    return under_root(root, DEFAULT_MANIFEST), False


def load_manifest(manifest: Path | None, root: Path, *, required: bool = True) -> Manifest | None:
    """Parse the manifest (strict). Without --manifest and ``required=False``, a missing
    default manifest gives None (the built-in settings apply)."""
    from aux_secrets.adapters.fs import read_bounded
    from aux_secrets.core.manifest import parse_manifest
    from aux_secrets.errors import NotFoundError

    path, explicit = manifest_path(manifest, root)
    if not explicit and not required and not path.exists():
        return None
    if not path.exists():
        raise NotFoundError(
            f"manifest {path} does not exist",
            hint="pass --manifest PATH (the NixOS module writes /etc/aux-secrets/manifest.json)",
        )
    return parse_manifest(
        read_bounded(path, MAX_MANIFEST_BYTES, what="manifest"), filename=str(path)
    )


def settings_of(manifest: Manifest | None) -> Settings:
    from aux_secrets.core.manifest import Settings

    return manifest.settings if manifest is not None else Settings()


def open_store(manifest: Manifest | None, root: Path) -> LocalStore:
    from aux_secrets.adapters.localstore import LocalStore

    return LocalStore(settings_of(manifest), root)


def missing_error(report: InstallReport, host: str) -> NotFoundError | None:
    """The error an install with missing items ends with (the others are installed)."""
    from aux_secrets.errors import NotFoundError

    if not report.missing:
        return None
    names = ", ".join(m.key.split(":", 1)[1] for m in report.missing)
    if len(report.missing) == 1:
        names += f" ({report.missing[0].reason})"
    fix = "fix the manifest, the value or the place named in the reasons above"
    return NotFoundError(
        f"{len(report.missing)} not installed (the others are): {names}",
        hint=f"aux-secrets provision --host {host}"
        if any(m.provision for m in report.missing)
        else fix,
    )
