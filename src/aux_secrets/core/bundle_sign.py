"""The signed envelope of a bundle (format version 2, docs/spec/bundle.md section 2).

A bundle's age layer only proves it was encrypted to the host, which anyone holding the
host's *public* key can do. Version 2 wraps the version 1 payload in an envelope signed
with the vault's bundle signer (Ed25519, derived from the vault, never stored):

    {"payload":"<base64 v1 payload>","signature":"<base64>","signer":"<base64>","version":2}

canonical JSON, signature = Ed25519(signer, b"aux-secrets/bundle/v2\\x00" + payload bytes).

Pure: keys are bytes; signing and verifying raise, they never return a bool.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aux_secrets.core.bundle import MAX_PAYLOAD_BYTES, canonical_json, load_json
from aux_secrets.errors import DecryptError, FormatVersionError, InputError

if TYPE_CHECKING:
    from aux_secrets.core.keystream import Scheme

ENVELOPE_VERSION = 2
SIGNER_REALM = "aux-secrets/bundle-signer/v1"
SIGNER_PURPOSE = "key(ED25519)"
SIGNATURE_CONTEXT = b"aux-secrets/bundle/v2\x00"
SEED_BYTES = 32
PUBLIC_BYTES = 32
SIGNATURE_BYTES = 64
SSH_KEY_TYPE = "ssh-ed25519"
SSH_COMMENT = "aux-secrets-signer"
MAX_ENVELOPE_BYTES = MAX_PAYLOAD_BYTES * 4 // 3 + 4096
UNSIGNED = "unsigned bundle (format 1) refused: re-make it with this aux-secrets"
BAD_SIGNATURE = "the bundle's signature does not verify (tampered with or forged)"


@dataclass(frozen=True)
class Envelope:
    """A decoded and verified envelope: who signed, and the v1 payload bytes inside."""

    signer: bytes
    signature: bytes
    payload: bytes = field(repr=False)


def signer_seed(scheme: Scheme) -> bytes:
    """The vault's bundle-signer seed, from the reserved realm no user can derive."""
    return scheme.stream(SIGNER_REALM, SIGNER_PURPOSE).read(SEED_BYTES)


def public_key(seed: bytes) -> bytes:
    """The 32-byte Ed25519 public key of a 32-byte seed."""
    from nacl.signing import SigningKey

    if len(seed) != SEED_BYTES:
        raise InputError(f"bundle signer seed must be {SEED_BYTES} bytes")
    return bytes(SigningKey(seed).verify_key)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object, where: str, size: int | None = None) -> bytes:
    if not isinstance(text, str):
        raise InputError(f"bundle envelope: {where}: expected base64 text")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InputError(f"bundle envelope: {where}: not valid base64") from None
    if _b64(data) != text:
        raise InputError(f"bundle envelope: {where}: base64 is not in canonical form")
    if size is not None and len(data) != size:
        raise InputError(f"bundle envelope: {where}: expected {size} bytes")
    return data


def sign_payload(seed: bytes, payload: bytes) -> bytes:
    """Envelope bytes (canonical JSON) carrying ``payload`` signed with ``seed``."""
    from nacl.signing import SigningKey

    if len(seed) != SEED_BYTES:
        raise InputError(f"bundle signer seed must be {SEED_BYTES} bytes")
    key = SigningKey(seed)
    signature = key.sign(SIGNATURE_CONTEXT + payload).signature
    return canonical_json(
        {
            "payload": _b64(payload),
            "signature": _b64(bytes(signature)),
            "signer": _b64(bytes(key.verify_key)),
            "version": ENVELOPE_VERSION,
        }
    )


def verify_signature(signer: bytes, signature: bytes, payload: bytes) -> None:
    """Raise DecryptError (one opaque line) unless ``signature`` is valid."""
    from nacl.exceptions import BadSignatureError
    from nacl.exceptions import ValueError as NaclValueError
    from nacl.signing import VerifyKey

    try:
        VerifyKey(signer).verify(SIGNATURE_CONTEXT + payload, signature)
    except (BadSignatureError, NaclValueError, TypeError):
        raise DecryptError(BAD_SIGNATURE) from None


def open_envelope(data: bytes) -> Envelope:
    """Parse an envelope strictly and verify its signature; the payload is NOT decoded.

    A version 1 payload (unsigned) is refused with :data:`UNSIGNED`; a bad signature with
    :data:`BAD_SIGNATURE`. Who the signer must be is the caller's policy."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise InputError(f"bundle envelope is larger than {MAX_ENVELOPE_BYTES} bytes")
    document = load_json(data, "bundle envelope")
    if not isinstance(document, dict):
        raise InputError("bundle envelope: expected a JSON object")
    version = document.get("version")
    if version == 1 and not isinstance(version, bool) and "format" in document:
        raise FormatVersionError(
            UNSIGNED, hint="make a fresh bundle: aux-secrets provision --host HOST"
        )
    if version != ENVELOPE_VERSION or isinstance(version, bool):
        raise FormatVersionError(
            f"bundle format {version!r} is not supported (this build reads {ENVELOPE_VERSION})",
            hint="upgrade aux-secrets on this host",
        )
    keys = set(document)
    expected = {"version", "signer", "signature", "payload"}
    unknown = sorted(keys - expected)
    if unknown:
        raise InputError(f"bundle envelope: $.{unknown[0]}: unknown field")
    missing = sorted(expected - keys)
    if missing:
        raise InputError(f"bundle envelope: $.{missing[0]}: missing field")
    signer = _unb64(document["signer"], "$.signer", PUBLIC_BYTES)
    signature = _unb64(document["signature"], "$.signature", SIGNATURE_BYTES)
    payload = _unb64(document["payload"], "$.payload")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise InputError(f"bundle payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    envelope = Envelope(signer=signer, signature=signature, payload=payload)
    if canonical_envelope(envelope) != data:
        raise InputError("bundle envelope is not in canonical form")
    verify_signature(signer, signature, payload)
    return envelope


def canonical_envelope(envelope: Envelope) -> bytes:
    return canonical_json(
        {
            "payload": _b64(envelope.payload),
            "signature": _b64(envelope.signature),
            "signer": _b64(envelope.signer),
            "version": ENVELOPE_VERSION,
        }
    )


def signer_fingerprint(signer: bytes) -> str:
    """``ed25519 SHA256:...`` as ssh-keygen -l shows the same key."""
    blob = _ssh_blob(signer)
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return f"ed25519 SHA256:{digest}"


def _ssh_blob(signer: bytes) -> bytes:
    if len(signer) != PUBLIC_BYTES:
        raise InputError(f"bundle signer must be {PUBLIC_BYTES} bytes")
    kind = SSH_KEY_TYPE.encode()
    return len(kind).to_bytes(4, "big") + kind + len(signer).to_bytes(4, "big") + signer


def signer_ssh_line(signer: bytes, comment: str = SSH_COMMENT) -> str:
    """``ssh-ed25519 AAAA... aux-secrets-signer``: the form for settings.bundleSigners."""
    return f"{SSH_KEY_TYPE} {_b64(_ssh_blob(signer))} {comment}".rstrip()


def parse_signer(text: str, where: str = "bundle signer") -> bytes:
    """The 32-byte key of an ``ssh-ed25519 AAAA... [comment]`` line or bare base64."""
    if not isinstance(text, str):
        raise InputError(f"{where}: expected a string")
    parts = text.split()
    if len(parts) >= 2 and parts[0] == SSH_KEY_TYPE:
        try:
            blob = base64.b64decode(parts[1].encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise InputError(f"{where}: the ssh-ed25519 key is not valid base64") from None
        kind = SSH_KEY_TYPE.encode()
        head = len(kind).to_bytes(4, "big") + kind + PUBLIC_BYTES.to_bytes(4, "big")
        if len(blob) != len(head) + PUBLIC_BYTES or not blob.startswith(head):
            raise InputError(f"{where}: not an ssh-ed25519 public key")
        return blob[len(head) :]
    if len(parts) == 1:
        try:
            key = base64.b64decode(parts[0].encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            key = b""
        if len(key) == PUBLIC_BYTES:
            return key
    raise InputError(
        f"{where}: expected 'ssh-ed25519 AAAA...' or the base64 of a 32-byte ed25519 key",
        hint="print the vault's signer with: aux-secrets signer",
    )


__all__ = [
    "BAD_SIGNATURE",
    "ENVELOPE_VERSION",
    "SIGNER_REALM",
    "UNSIGNED",
    "Envelope",
    "canonical_envelope",
    "open_envelope",
    "parse_signer",
    "public_key",
    "sign_payload",
    "signer_fingerprint",
    "signer_seed",
    "signer_ssh_line",
    "verify_signature",
]
