"""Making a host's bundle: resolve what its manifest asks for, stamp, sign and seal.

:func:`make_bundle` resolves the secrets (through :mod:`aux_secrets.workflows.resolve`),
stamps host, serial, time, bundle id and the host's fingerprint key, signs with the
vault's bundle signer and seals the result to the host's recipient (docs/spec/bundle.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aux_secrets.adapters.hosts import Host, HostDir
from aux_secrets.errors import UsageError

if TYPE_CHECKING:
    from aux_secrets.adapters.vault import Vault
    from aux_secrets.core.bundle import BundlePayload, BundleSecret
    from aux_secrets.core.keystream import Scheme
    from aux_secrets.core.manifest import Manifest

FINGERPRINT_REALM = "aux-secrets/host/{host}/fingerprint-key/v1"


@dataclass(frozen=True)
class Bundle:
    host: str
    serial: int
    bundle_id: str
    created: datetime
    secrets: int
    data: bytes = field(repr=False)


def fingerprint_key(scheme: Scheme, host: str) -> bytes:
    """The host's fingerprint key: derived from the vault, so verify can recompute it."""
    return scheme.stream(FINGERPRINT_REALM.format(host=host), "raw").read(32)


def resolve_secrets(
    vault: Vault, scheme: Scheme, manifest: Manifest, at: datetime
) -> dict[str, BundleSecret]:
    """Every secret the manifest names, with its slots, as bundle entries."""
    from aux_secrets.workflows.resolve import bundle_secrets

    return bundle_secrets(vault, scheme, manifest, at)


def build_payload(
    vault: Vault,
    scheme: Scheme,
    manifest: Manifest,
    host: str,
    *,
    serial: int,
    at: datetime,
    bundle_id: str,
) -> BundlePayload:
    from aux_secrets.core.bundle import BundlePayload

    return BundlePayload(
        host=host,
        serial=serial,
        created=at,
        bundle_id=bundle_id,
        fingerprint_key=fingerprint_key(scheme, host),
        secrets=resolve_secrets(vault, scheme, manifest, at),
        manifest=manifest,
    )


def check_manifest_host(manifest: Manifest, host: str, label: str) -> None:
    if manifest.host and manifest.host != host:
        raise UsageError(
            f"manifest {label} is for host {manifest.host!r}, not {host!r}",
            hint=f"pass --host {manifest.host}, or the manifest of {host}",
        )


def make_bundle(
    vault: Vault,
    scheme: Scheme,
    host: Host,
    manifest: Manifest,
    *,
    at: datetime | None = None,
    label: str = "manifest",
) -> Bundle:
    """Resolve, stamp with a serial that only grows (recorded in the vault), sign with
    the vault's bundle signer (docs/spec/bundle.md section 2), and seal to the host."""
    from aux_secrets.adapters.bundle_age import seal_bundle
    from aux_secrets.core.bundle import encode_payload
    from aux_secrets.core.bundle_sign import sign_payload, signer_seed

    check_manifest_host(manifest, host.name, label)
    at = (at or datetime.now(UTC)).replace(microsecond=0)
    hosts = HostDir(vault.hosts_dir)
    # Resolve before reserving a serial: a vault error then burns no serial.
    secrets = resolve_secrets(vault, scheme, manifest, at)
    serial = hosts.next_serial(host.name, int(at.timestamp()))
    bundle_id = os.urandom(16).hex()
    from aux_secrets.core.bundle import BundlePayload

    payload = BundlePayload(
        host=host.name,
        serial=serial,
        created=at,
        bundle_id=bundle_id,
        fingerprint_key=fingerprint_key(scheme, host.name),
        secrets=secrets,
        manifest=manifest,  # a host without a manifest yet installs with this one
    )
    sealed = seal_bundle(
        sign_payload(signer_seed(scheme), encode_payload(payload)), [host.recipient]
    )
    return Bundle(host.name, serial, bundle_id, at, len(secrets), sealed)
