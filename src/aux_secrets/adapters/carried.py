"""Which manifest a host installs with: its own, else the one its active bundle carries.

Every bundle carries the manifest it was made from (docs/spec/bundle.md, ``manifest``).
A host with a manifest of its own (``/etc/aux-secrets/manifest.json`` from the NixOS
module, or ``--manifest``) always installs with that one; a host without one (its first
deployment, before the switch, or a host whose manifest lives only in the vault) installs
with the carried one, so ``provision`` alone completes a first deployment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aux_secrets.adapters.localstore import LocalStore
from aux_secrets.errors import NotDeliveredError, NotFoundError

if TYPE_CHECKING:
    from aux_secrets.core.bundle import BundlePayload
    from aux_secrets.core.manifest import Manifest


@dataclass(frozen=True)
class Loaded:
    """A payload already read from the store: the installer's source, without a second
    decrypt."""

    payload: BundlePayload

    def load(self) -> BundlePayload:
        return self.payload


class Recording:
    """The store as the installer's source, keeping the payload it read (to compare the
    manifest it carries with the host's)."""

    def __init__(self, store: LocalStore, payload: BundlePayload | None = None) -> None:
        self.store = store
        self.payload: BundlePayload | None = payload  # already read (a re-seal): no decrypt

    def load(self) -> BundlePayload:
        if self.payload is None:
            self.payload = self.store.load()
        return self.payload


@dataclass(frozen=True)
class Carried:
    """The carried manifest, the store as it asks, and the payload that carried it."""

    manifest: Manifest
    store: LocalStore
    source: Loaded


def carried_manifest(root: Path, missing: Path) -> Carried:
    """The manifest the active bundle carries, for a host that has none at ``missing``.

    NotDeliveredError (exit 75, a host never provisioned) when nothing was activated;
    NotFoundError naming ``missing`` when the active bundle carries no manifest (one made
    before bundles carried it).
    """
    from aux_secrets.core.manifest import Settings

    store = LocalStore(Settings(), root)
    if store.active_meta() is None:
        raise NotDeliveredError(
            f"manifest {missing} does not exist and no bundle has been delivered yet "
            f"(nothing activated in {store.store_dir}): nothing installed",
            hint="deliver one (it carries the manifest): aux-secrets provision --host NAME; "
            "or pass --manifest PATH",
        )
    payload = store.load()
    if payload.manifest is None:
        raise NotFoundError(
            f"manifest {missing} does not exist and the active bundle "
            f"(serial {payload.serial}) carries none",
            hint="provision the host again (bundles carry their manifest), or pass --manifest PATH",
        )
    manifest = payload.manifest
    sealed = store.for_settings(manifest.settings, what="the manifest the bundle carries")
    return Carried(manifest, sealed, Loaded(payload))


def same_manifest(a: Manifest, b: Manifest) -> bool:
    """Whether two manifests ask for the same thing (every default written out)."""
    from aux_secrets.core.manifest import manifest_to_dict

    return manifest_to_dict(a) == manifest_to_dict(b)


def other_manifest_warning(payload: BundlePayload, manifest: Manifest, path: Path) -> str | None:
    """The warning for an install with the host's own manifest (at ``path``) from a bundle
    made from another one; None when they ask for the same or the bundle carries none."""
    made_from = payload.manifest
    if made_from is None or same_manifest(made_from, manifest):
        return None
    return (
        f"the active bundle (serial {payload.serial}) was made from another "
        f"manifest than {path}; installed with the "
        "host's own (switching to the new configuration installs the rest)"
    )


__all__ = [
    "Carried",
    "Loaded",
    "Recording",
    "carried_manifest",
    "other_manifest_warning",
    "same_manifest",
]
