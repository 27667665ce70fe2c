"""From a manifest's secret specs to values: derive (with rotation) or read the store.

Used on the operator's side by ``render`` (preview) and by provisioning (bundles). For an
instant ``at`` each secret becomes a list of slots (``current``, ``retired`` newest first,
``ahead`` soonest first), each with its half-open window, plus the public half of a
derived key type. A fixed secret from the store has one open-window ``current`` slot and
its kept values as open-window ``retired`` slots.

The scheme and the store are passed in; nothing here prompts, and values never reach a
message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Literal, Protocol

from aux_secrets.core.render import SecretValues
from aux_secrets.core.rotation import OPEN_NOT_AFTER, OPEN_NOT_BEFORE, Rotation, expand
from aux_secrets.errors import AuxError, NotFoundError

if TYPE_CHECKING:
    from aux_secrets.core.bundle import BundleSecret
    from aux_secrets.core.keystream import Scheme
    from aux_secrets.core.manifest import DeriveSource, Manifest, SecretSpec

KEY_TYPES = ("ed25519", "x25519", "ec256", "ec384", "ec521", "rsa2048", "rsa4096")

Role = Literal["current", "retired", "ahead"]


class StoredLike(Protocol):
    """What the store gives back for one name (core.storefile.StoredSecret fits)."""

    @property
    def current(self) -> bytes: ...
    @property
    def retired(self) -> tuple[bytes, ...]: ...


StoreReader = Callable[[str], StoredLike]


@dataclass(frozen=True)
class ResolvedSlot:
    role: Role
    label: str
    realm: str  # "" for a stored secret
    not_before: datetime
    not_after: datetime
    value: bytes = field(repr=False)


@dataclass(frozen=True)
class ResolvedSecret:
    """One secret's slots at an instant; ``values()`` is what renders at that instant."""

    name: str
    slots: tuple[ResolvedSlot, ...]
    public: bytes | None = field(default=None, repr=False)
    expires: date | None = None  # a store secret's expiry date, when it has one

    def values(self) -> SecretValues:
        current = next(s.value for s in self.slots if s.role == "current")
        retired = tuple(s.value for s in self.slots if s.role == "retired")
        return SecretValues(current=current, retired=retired, public=self.public)


def rotation_of(source: DeriveSource) -> Rotation | None:
    spec = source.rotation
    if spec is None:
        return None
    return Rotation(spec.period, spec.retired, spec.ahead)


def _derive_slots(
    name: str, source: DeriveSource, scheme: Scheme, at: datetime
) -> tuple[tuple[ResolvedSlot, ...], bytes | None]:
    from aux_secrets.core.derive import DeriveRequest, derive, derive_with_public

    slots: list[ResolvedSlot] = []
    public: bytes | None = None
    try:
        expanded = expand(source.realm, rotation_of(source), at)
        for index, slot in enumerate(expanded):
            request = DeriveRequest(
                realm=slot.realm,
                type=source.type,
                length=source.length,
                charset=source.charset,
                encoding=source.encoding,
                public=source.public,
            )
            if index == 0 and source.type in KEY_TYPES and not source.public:
                # The public half of the first slot's key, from the same derivation.
                value, public = derive_with_public(scheme, request)
            else:
                value = derive(scheme, request)
            slots.append(
                ResolvedSlot(
                    slot.role,
                    slot.label or slot.role,  # a secret without rotation: "current"
                    slot.realm,
                    slot.not_before,
                    slot.not_after,
                    value,
                )
            )
        if source.type in KEY_TYPES and source.public:
            public = slots[0].value  # the file already is the current public half
    except AuxError as exc:
        raise type(exc)(f"secret {name!r}: {exc.message}", hint=exc.hint) from None
    return tuple(slots), public


def _store_slots(
    name: str, store_name: str, read: StoreReader | None, retired: int = 0
) -> tuple[tuple[ResolvedSlot, ...], date | None]:
    """The current value and at most ``retired`` (the manifest's choice) retired ones, and
    the store secret's expiry date (None: it has none)."""
    if read is None:
        raise NotFoundError(
            f"secret {name!r}: needs store secret {store_name!r}, but no store is available"
        )
    try:
        stored = read(store_name)
    except AuxError as exc:
        raise type(exc)(f"secret {name!r}: {exc.message}", hint=exc.hint) from None
    # The current value is labelled with its store version (``v7``) when the store knows
    # it, so a host can refuse a bundle that would take the secret back to an older one.
    meta = getattr(stored, "meta", None)
    version = getattr(meta, "version", None)
    label = f"v{version}" if isinstance(version, int) else "current"
    slots = [ResolvedSlot("current", label, "", OPEN_NOT_BEFORE, OPEN_NOT_AFTER, stored.current)]
    versions: tuple[int, ...] = tuple(getattr(stored, "retired_versions", ()) or ())
    for k, value in enumerate(stored.retired[:retired]):
        label = f"v{versions[k]}" if k < len(versions) else f"retired-{k + 1}"
        slots.append(ResolvedSlot("retired", label, "", OPEN_NOT_BEFORE, OPEN_NOT_AFTER, value))
    expires = getattr(meta, "expires", None)
    return tuple(slots), expires if isinstance(expires, date) else None


def resolve_secret(
    spec: SecretSpec, scheme: Scheme, read_store: StoreReader | None, at: datetime
) -> ResolvedSecret:
    """The slots of one manifest secret at instant ``at``."""
    from aux_secrets.core.manifest import DeriveSource

    source = spec.source
    if isinstance(source, DeriveSource):
        slots, public = _derive_slots(spec.name, source, scheme, at)
        return ResolvedSecret(spec.name, slots, public)
    slots, expires = _store_slots(spec.name, source.name, read_store, source.retired)
    return ResolvedSecret(spec.name, slots, None, expires)


def resolve_manifest(
    manifest: Manifest,
    scheme: Scheme,
    read_store: StoreReader | None,
    at: datetime,
    names: Iterable[str] | None = None,
) -> dict[str, ResolvedSecret]:
    """Every secret of ``manifest`` (or just ``names``) resolved at ``at``, sorted by name."""
    wanted = sorted(manifest.secrets) if names is None else sorted(set(names))
    return {name: resolve_secret(manifest.secrets[name], scheme, read_store, at) for name in wanted}


def values_of(resolved: Mapping[str, ResolvedSecret]) -> dict[str, SecretValues]:
    return {name: secret.values() for name, secret in resolved.items()}


def store_reader(vault: object, scheme: Scheme) -> StoreReader:
    """Read store secrets of ``vault`` as ``store get`` does (files and external sources)."""
    from aux_secrets.adapters.store import vault_store

    store = vault_store(vault, commit=False)  # type: ignore[arg-type]

    def read(name: str) -> StoredLike:
        return store.get(scheme, name)

    return read


def bundle_secrets(
    vault: object, scheme: Scheme, manifest: Manifest, at: datetime
) -> dict[str, BundleSecret]:
    """Every secret of ``manifest`` as bundle entries (all slots, with the public half)."""
    from aux_secrets.core.bundle import BundleSecret, BundleSlot

    read = store_reader(vault, scheme)
    result: dict[str, BundleSecret] = {}
    for name, secret in resolve_manifest(manifest, scheme, read, at).items():
        slots = tuple(
            BundleSlot(s.role, s.label, s.not_before, s.not_after, s.value) for s in secret.slots
        )
        result[name] = BundleSecret(slots=slots, public=secret.public, expires=secret.expires)
    return result
