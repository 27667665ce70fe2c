"""The local store formats (docs/spec/local-store.md, version 1): sealed blob and clear metadata.

The host keeps what the last bundle delivered under ``storeDir``:

- a *blob* with the whole payload, opened with exactly one decrypt at install time:
  for the ``systemd-creds`` and ``plain`` backends an envelope (magic ``AUXSTORE``,
  version, key kind, the data key - sealed by systemd-creds, or in the clear for
  ``plain`` - then AES-256-GCM of the payload bound to host, serial and bundle id);
  for the ``age`` backend the delivered age file itself;
- ``store.json``, clear metadata readable without decrypting: backend, host, serial,
  created, bundle id, the blob's name and SHA-256, and per secret its slots' labels,
  windows and keyed fingerprints (never values).

Pure: bytes in, bytes out; the key and nonce are arguments.
"""

from __future__ import annotations

import base64
import re
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from aux_secrets.core.bundle import (
    BUNDLE_ID_RE,
    OPEN_NOT_AFTER,
    OPEN_NOT_BEFORE,
    ROLES,
    BundlePayload,
    canonical_json,
    check_host_name,
    check_secret_name,
    format_instant,
    load_json,
    parse_date_strict,
    parse_instant_strict,
)
from aux_secrets.core.fields import known_fields
from aux_secrets.core.fingerprint import fingerprint, is_fingerprint
from aux_secrets.errors import DecryptError, FormatVersionError, InputError

VERSION = 1
MAGIC = b"AUXSTORE"
KIND_SYSTEMD_CREDS = 1
KIND_PLAIN = 2
KEY_BYTES = 32
NONCE_BYTES = 12
BACKENDS = ("systemd-creds", "age", "plain")
CREDENTIAL_KEYS = ("host", "tpm2", "host+tpm2")
METADATA_FORMAT = "aux-secrets-local-store"
_HEADER = struct.Struct(">8sBBI")
# store-SERIAL.bin, or store-SERIAL-N.bin after the N-th re-seal of one bundle in place.
_BLOB_NAME_RE = re.compile(r"store-[0-9]{1,19}(-[0-9]{1,9})?\.(bin|age)")
_PCRS_RE = re.compile(r"[0-9A-Za-z+,:=/]{1,256}")
_HEX64_RE = re.compile(r"[0-9a-f]{64}")
MAX_KEY_BLOB = 64 * 1024


@dataclass(frozen=True)
class StoreBlob:
    kind: int
    key_blob: bytes
    nonce: bytes
    ciphertext: bytes
    header: bytes


def _context(host: str, serial: int, bundle_id: str) -> bytes:
    return b"\x00" + f"{host}\x00{serial}\x00{bundle_id}".encode()


def seal_blob(
    kind: int,
    key_blob: bytes,
    key: bytes,
    nonce: bytes,
    payload: bytes,
    *,
    host: str,
    serial: int,
    bundle_id: str,
) -> bytes:
    """Envelope for the systemd-creds (kind 1) and plain (kind 2) backends."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if kind not in (KIND_SYSTEMD_CREDS, KIND_PLAIN):
        raise InputError(f"unknown local store key kind {kind}")
    if len(key) != KEY_BYTES or len(nonce) != NONCE_BYTES:
        raise InputError("local store key or nonce has the wrong length")
    if len(key_blob) > MAX_KEY_BLOB:
        raise InputError("sealed local store key is too large")
    header = _HEADER.pack(MAGIC, VERSION, kind, len(key_blob)) + key_blob
    ciphertext = AESGCM(key).encrypt(nonce, payload, header + _context(host, serial, bundle_id))
    return header + nonce + ciphertext


def parse_blob(data: bytes, *, name: str = "local store blob") -> StoreBlob:
    """Split an envelope into its parts (no decryption); InputError for malformed input."""
    if len(data) < _HEADER.size:
        raise InputError(f"{name} is truncated")
    magic, version, kind, key_len = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise InputError(f"{name} is not an aux-secrets local store blob")
    if version != VERSION:
        raise FormatVersionError(f"{name} has version {version}; this build reads {VERSION}")
    if kind not in (KIND_SYSTEMD_CREDS, KIND_PLAIN):
        raise InputError(f"{name} has an unknown key kind {kind}")
    if key_len > MAX_KEY_BLOB:
        raise InputError(f"{name} is malformed (key length)")
    end = _HEADER.size + key_len
    if len(data) < end + NONCE_BYTES + 16:
        raise InputError(f"{name} is truncated")
    return StoreBlob(
        kind=kind,
        key_blob=data[_HEADER.size : end],
        nonce=data[end : end + NONCE_BYTES],
        ciphertext=data[end + NONCE_BYTES :],
        header=data[:end],
    )


def open_blob(blob: StoreBlob, key: bytes, *, host: str, serial: int, bundle_id: str) -> bytes:
    """Decrypt the payload; one opaque DecryptError for a wrong key or any tampering."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(key) != KEY_BYTES:
        raise DecryptError("the local store could not be opened (wrong key or tampered)")
    try:
        return AESGCM(key).decrypt(
            blob.nonce, blob.ciphertext, blob.header + _context(host, serial, bundle_id)
        )
    except InvalidTag:
        raise DecryptError("the local store could not be opened (wrong key or tampered)") from None


@dataclass(frozen=True)
class SlotMeta:
    role: str
    label: str
    not_before: datetime
    not_after: datetime
    fingerprint: str


@dataclass(frozen=True)
class SecretMeta:
    slots: tuple[SlotMeta, ...]
    has_public: bool
    expires: date | None = None  # the store secret's expiry date the bundle carried


@dataclass(frozen=True)
class StoreMeta:
    """``store.json``: what is active, readable without decrypting anything."""

    backend: str
    credential_key: str | None
    blob: str
    blob_sha256: str
    host: str
    serial: int
    created: datetime
    bundle_id: str
    secrets: Mapping[str, SecretMeta]
    # The Ed25519 key that signed the active bundle (None: a store from before signing).
    signer: bytes | None = None
    # Set by activate --reset-serial: no bundle made before this instant is accepted again.
    created_floor: datetime | None = None
    # The PCRs a TPM-sealed store key is bound to (credentialKey tpm2 or host+tpm2); None:
    # not sealed to a TPM, or a store.json from before this was recorded.
    tpm2_pcrs: str | None = None


def meta_for(
    payload: BundlePayload,
    *,
    backend: str,
    credential_key: str | None,
    blob: str,
    blob_sha256: str,
    signer: bytes | None = None,
    created_floor: datetime | None = None,
    tpm2_pcrs: str | None = None,
) -> StoreMeta:
    """Metadata of a payload about to become active (fingerprints under its own key)."""
    meta = StoreMeta(
        backend=backend,
        credential_key=credential_key,
        blob=blob,
        blob_sha256=blob_sha256,
        host=payload.host,
        serial=payload.serial,
        created=payload.created,
        bundle_id=payload.bundle_id,
        secrets=_secrets_meta(payload),
        signer=signer,
        created_floor=created_floor,
        tpm2_pcrs=tpm2_pcrs,
    )
    _validate_meta(meta, "store metadata")
    return meta


def _secrets_meta(payload: BundlePayload) -> dict[str, SecretMeta]:
    return {
        name: SecretMeta(
            slots=tuple(
                SlotMeta(
                    role=s.role,
                    label=s.label,
                    not_before=s.not_before,
                    not_after=s.not_after,
                    fingerprint=fingerprint(payload.fingerprint_key, name, s.value),
                )
                for s in secret.slots
            ),
            has_public=secret.public is not None,
            expires=secret.expires,
        )
        for name, secret in sorted(payload.secrets.items())
    }


def _validate_meta(meta: StoreMeta, name: str) -> None:
    if meta.backend not in BACKENDS:
        raise InputError(f"{name}: $.backend: expected one of {', '.join(BACKENDS)}")
    if meta.backend == "systemd-creds":
        if meta.credential_key not in CREDENTIAL_KEYS:
            raise InputError(
                f"{name}: $.credentialKey: expected one of {', '.join(CREDENTIAL_KEYS)}"
            )
    elif meta.credential_key is not None:
        raise InputError(f"{name}: $.credentialKey: only the systemd-creds backend has one")
    if not isinstance(meta.blob, str) or not _BLOB_NAME_RE.fullmatch(meta.blob):
        raise InputError(f"{name}: $.blob: not a local store blob file name")
    if not isinstance(meta.blob_sha256, str) or not _HEX64_RE.fullmatch(meta.blob_sha256):
        raise InputError(f"{name}: $.blobSha256: expected 64 lowercase hex digits")
    check_host_name(meta.host, f"{name}: $.host")
    if isinstance(meta.serial, bool) or not isinstance(meta.serial, int) or meta.serial < 1:
        raise InputError(f"{name}: $.serial: expected a whole number from 1")
    if not isinstance(meta.bundle_id, str) or not BUNDLE_ID_RE.fullmatch(meta.bundle_id):
        raise InputError(f"{name}: $.bundleId: expected 32 lowercase hex digits")
    if meta.tpm2_pcrs is not None and (
        not isinstance(meta.tpm2_pcrs, str) or not _PCRS_RE.fullmatch(meta.tpm2_pcrs)
    ):
        raise InputError(f"{name}: $.tpm2Pcrs: expected a PCR list such as 7 or 0+7")
    if meta.signer is not None and (not isinstance(meta.signer, bytes) or len(meta.signer) != 32):
        raise InputError(f"{name}: $.signer: expected the base64 of a 32-byte ed25519 key")
    for secret, sm in meta.secrets.items():
        check_secret_name(secret, f"{name}: $.secrets")
        for slot in sm.slots:
            if slot.role not in ROLES or not is_fingerprint(slot.fingerprint):
                raise InputError(f"{name}: $.secrets.{secret}: malformed slot")


def _window(at: datetime, open_value: datetime) -> str | None:
    return None if at == open_value else format_instant(at)


def encode_meta(meta: StoreMeta) -> bytes:
    _validate_meta(meta, "store metadata")
    doc = {
        "backend": meta.backend,
        "blob": meta.blob,
        "blobSha256": meta.blob_sha256,
        "bundleId": meta.bundle_id,
        "created": format_instant(meta.created),
        "credentialKey": meta.credential_key,
        "format": METADATA_FORMAT,
        "host": meta.host,
        "secrets": {
            name: {
                **({} if sm.expires is None else {"expires": sm.expires.isoformat()}),
                "hasPublic": sm.has_public,
                "slots": [
                    {
                        "fingerprint": s.fingerprint,
                        "label": s.label,
                        "notAfter": _window(s.not_after, OPEN_NOT_AFTER),
                        "notBefore": _window(s.not_before, OPEN_NOT_BEFORE),
                        "role": s.role,
                    }
                    for s in sm.slots
                ],
            }
            for name, sm in sorted(meta.secrets.items())
        },
        "serial": meta.serial,
        "version": VERSION,
    }
    if meta.signer is not None:  # absent: no signer recorded (a store from before signing)
        doc["signer"] = base64.b64encode(meta.signer).decode("ascii")
    if meta.created_floor is not None:  # absent: the serial was never reset
        doc["createdFloor"] = format_instant(meta.created_floor)
    if meta.tpm2_pcrs is not None:  # absent: not sealed to a TPM (or not recorded)
        doc["tpm2Pcrs"] = meta.tpm2_pcrs
    return canonical_json(doc) + b"\n"


def _signer(value: object, where: str) -> bytes:
    try:
        if not isinstance(value, str):
            raise ValueError
        key = base64.b64decode(value.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise InputError(f"{where}: expected the base64 of a 32-byte ed25519 key") from None
    if len(key) != 32 or base64.b64encode(key).decode("ascii") != value:
        raise InputError(f"{where}: expected the base64 of a 32-byte ed25519 key")
    return key


def decode_meta(data: bytes, *, name: str = "store metadata") -> StoreMeta:
    doc = load_json(data, name)
    if not isinstance(doc, dict):
        raise InputError(f"{name}: expected a JSON object")
    if doc.get("format") != METADATA_FORMAT:
        raise InputError(f"{name}: $.format is not {METADATA_FORMAT!r}")
    if doc.get("version") != VERSION or isinstance(doc.get("version"), bool):
        raise FormatVersionError(
            f"{name}: version {doc.get('version')!r} is not supported (this build reads {VERSION})"
        )
    # ``signer`` came with signed bundles; a store.json written before has none.
    # ``createdFloor`` only after activate --reset-serial.
    top = {"signer": None, "createdFloor": None, "tpm2Pcrs": None} | known_fields(
        doc,
        f"{name}: $",
        {
            "format", "version", "backend", "credentialKey", "blob", "blobSha256",
            "host", "serial", "created", "bundleId", "secrets",
        },
        {"signer", "createdFloor", "tpm2Pcrs"},
    )  # fmt: skip
    secrets_doc = top["secrets"]
    if not isinstance(secrets_doc, dict):
        raise InputError(f"{name}: $.secrets: expected an object")
    secrets: dict[str, SecretMeta] = {}
    for secret, sdoc in secrets_doc.items():
        where = f"{name}: $.secrets.{secret}"
        # ``expires`` only for a store secret with an expiry date (absent in older files).
        s = known_fields(sdoc, where, {"hasPublic", "slots"}, {"expires"})
        if not isinstance(s["hasPublic"], bool) or not isinstance(s["slots"], list):
            raise InputError(f"{where}: malformed")
        slots = []
        for index, slot_doc in enumerate(s["slots"]):
            at = f"{where}.slots[{index}]"
            sl = known_fields(
                slot_doc, at, {"fingerprint", "label", "notAfter", "notBefore", "role"}
            )
            if not isinstance(sl["label"], str) or not isinstance(sl["role"], str):
                raise InputError(f"{at}: malformed")
            slots.append(
                SlotMeta(
                    role=sl["role"],
                    label=sl["label"],
                    not_before=OPEN_NOT_BEFORE
                    if sl["notBefore"] is None
                    else parse_instant_strict(sl["notBefore"], f"{at}.notBefore"),
                    not_after=OPEN_NOT_AFTER
                    if sl["notAfter"] is None
                    else parse_instant_strict(sl["notAfter"], f"{at}.notAfter"),
                    fingerprint=sl["fingerprint"],
                )
            )
        expires = (
            None if "expires" not in s else parse_date_strict(s["expires"], f"{where}.expires")
        )
        secrets[secret] = SecretMeta(slots=tuple(slots), has_public=s["hasPublic"], expires=expires)
    meta = StoreMeta(
        backend=top["backend"],
        credential_key=top["credentialKey"],
        blob=top["blob"],
        blob_sha256=top["blobSha256"],
        host=top["host"],
        serial=top["serial"],
        created=parse_instant_strict(top["created"], f"{name}: $.created"),
        bundle_id=top["bundleId"],
        secrets=secrets,
        signer=None if "signer" not in doc else _signer(top["signer"], f"{name}: $.signer"),
        created_floor=None
        if top["createdFloor"] is None
        else parse_instant_strict(top["createdFloor"], f"{name}: $.createdFloor"),
        tpm2_pcrs=top["tpm2Pcrs"],
    )
    _validate_meta(meta, name)
    return meta


def check_payload_matches(payload: BundlePayload, meta: StoreMeta, *, name: str) -> None:
    """After a decrypt: the payload must be the one the metadata says is active."""
    if (payload.host, payload.serial, payload.bundle_id) != (
        meta.host,
        meta.serial,
        meta.bundle_id,
    ):
        raise InputError(
            f"{name} does not hold the bundle its metadata names (store corrupted or swapped)",
            hint="deliver the bundle again: aux-secrets provision --host HOST",
        )
    # status reports store.json's fingerprints without decrypting: they must be the
    # sealed values' (``expires`` is left out: a store.json from before it was recorded).
    sealed = {n: (m.slots, m.has_public) for n, m in _secrets_meta(payload).items()}
    if sealed != {n: (m.slots, m.has_public) for n, m in meta.secrets.items()}:
        raise InputError(
            f"{name}: its secrets are not the ones its metadata lists (store.json edited "
            "or corrupted)",
            hint="deliver the bundle again: aux-secrets provision --host HOST",
        )


INDEX_FORMAT = "aux-secrets-credential-index"
_CRED_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")


def encode_credential_index(entries: Mapping[str, str]) -> bytes:
    """``credentials/index.json``: credential name -> fingerprint of the value sealed in it."""
    for name, fp in entries.items():
        if not _CRED_NAME_RE.fullmatch(name) or not is_fingerprint(fp):
            raise InputError(f"credential index: malformed entry {name!r}")
    doc = {"credentials": dict(sorted(entries.items())), "format": INDEX_FORMAT, "version": VERSION}
    return canonical_json(doc) + b"\n"


def decode_credential_index(data: bytes, *, name: str = "credential index") -> dict[str, str]:
    doc = load_json(data, name)
    if not isinstance(doc, dict) or doc.get("format") != INDEX_FORMAT:
        raise InputError(f"{name}: not a credential index")
    if doc.get("version") != VERSION or isinstance(doc.get("version"), bool):
        raise FormatVersionError(f"{name}: version {doc.get('version')!r} is not supported")
    top = known_fields(doc, f"{name}: $", {"credentials", "format", "version"})
    entries = top["credentials"]
    if not isinstance(entries, dict):
        raise InputError(f"{name}: $.credentials: expected an object")
    for cred, fp in entries.items():
        if not _CRED_NAME_RE.fullmatch(cred) or not is_fingerprint(fp):
            raise InputError(f"{name}: $.credentials: malformed entry {cred!r}")
    return dict(entries)


__all__ = [
    "BACKENDS",
    "CREDENTIAL_KEYS",
    "KEY_BYTES",
    "KIND_PLAIN",
    "KIND_SYSTEMD_CREDS",
    "MAGIC",
    "NONCE_BYTES",
    "VERSION",
    "SecretMeta",
    "SlotMeta",
    "StoreBlob",
    "StoreMeta",
    "check_payload_matches",
    "decode_credential_index",
    "decode_meta",
    "encode_credential_index",
    "encode_meta",
    "meta_for",
    "open_blob",
    "parse_blob",
    "seal_blob",
]


_STORE_VERSION_RE = re.compile(r"v([1-9][0-9]{0,8})")


def store_version(role: str, label: str, open_window: bool) -> int | None:
    """The store version a current slot carries (label ``vN``, open window), else None."""
    match = _STORE_VERSION_RE.fullmatch(label) if role == "current" and open_window else None
    return int(match.group(1)) if match else None


def version_downgrades(old: StoreMeta, payload: BundlePayload) -> list[tuple[str, int, int]]:
    """(secret, active version, offered version) for every store secret the payload would
    take back to an older store version than the active store holds (a bundle made from a
    vault clone that is behind)."""
    out: list[tuple[str, int, int]] = []
    for name, secret in sorted(payload.secrets.items()):
        held = old.secrets.get(name)
        if held is None:
            continue
        new_v = next(
            (
                v
                for s in secret.slots
                if (v := store_version(s.role, s.label, _open(s.not_before, s.not_after)))
            ),
            None,
        )
        old_v = next(
            (
                v
                for s in held.slots
                if (v := store_version(s.role, s.label, _open(s.not_before, s.not_after)))
            ),
            None,
        )
        if new_v is not None and old_v is not None and new_v < old_v:
            out.append((name, old_v, new_v))
    return out


def _open(not_before: datetime, not_after: datetime) -> bool:
    return not_before <= OPEN_NOT_BEFORE and not_after >= OPEN_NOT_AFTER


def uses_tpm(credential_key: str | None) -> bool:
    return credential_key is not None and "tpm2" in credential_key


def sealing_changes(
    meta: StoreMeta, *, backend: str, credential_key: str, tpm2_pcrs: str
) -> list[str]:
    """How the active store's sealing differs from what the settings ask ("backend plain
    -> systemd-creds", ...); empty when they agree. A TPM-sealed store whose PCRs were
    not recorded counts as differing (re-sealing it once is harmless)."""
    changes: list[str] = []
    if meta.backend != backend:
        changes.append(f"backend {meta.backend} -> {backend}")
    if backend == "systemd-creds":
        if meta.backend == "systemd-creds" and meta.credential_key != credential_key:
            changes.append(f"credentialKey {meta.credential_key} -> {credential_key}")
        elif (
            uses_tpm(credential_key)
            and meta.backend == "systemd-creds"
            and meta.tpm2_pcrs != tpm2_pcrs
        ):
            changes.append(f"tpm2.pcrs {meta.tpm2_pcrs or 'unrecorded'} -> {tpm2_pcrs}")
    return changes
