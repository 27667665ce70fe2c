"""Keyed fingerprints: show that two sides hold the same value without revealing it.

A plain hash of a low-entropy value (a six-digit PIN, a short password) can be reversed
by trying every candidate. A fingerprint here is HMAC-SHA256 under a per-host key that
travels inside the bundle, so the audit log and ``status --json`` can be read by anyone
without letting them test guesses. Format (docs/spec/audit-log.md):

    fp1:<first 16 bytes of HMAC-SHA256(key, "aux-secrets fingerprint v1" NUL name NUL value), hex>
"""

from __future__ import annotations

import hashlib
import hmac

from aux_secrets.errors import InputError

PREFIX = "fp1:"
KEY_BYTES = 32
_DOMAIN = b"aux-secrets fingerprint v1\x00"


def fingerprint(key: bytes, name: str, value: bytes) -> str:
    """Fingerprint of ``value`` as secret ``name`` under the per-host ``key``."""
    if len(key) != KEY_BYTES:
        raise InputError(f"fingerprint key must be {KEY_BYTES} bytes")
    if "\x00" in name:
        raise InputError("secret name contains a NUL character")
    mac = hmac.new(key, _DOMAIN + name.encode("utf-8") + b"\x00" + value, hashlib.sha256)
    return PREFIX + mac.digest()[:16].hex()


def is_fingerprint(text: object) -> bool:
    return (
        isinstance(text, str)
        and text.startswith(PREFIX)
        and len(text) == len(PREFIX) + 32
        and all(c in "0123456789abcdef" for c in text[len(PREFIX) :])
    )


__all__ = ["KEY_BYTES", "PREFIX", "fingerprint", "is_fingerprint"]
