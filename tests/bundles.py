"""Signed bundles for tests: one fixed test signer, the real signing code (no tests here)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aux_secrets.adapters.bundle_age import seal_bundle
from aux_secrets.core.bundle import BundlePayload, encode_payload
from aux_secrets.core.bundle_sign import open_envelope, public_key, sign_payload, signer_ssh_line

# The seed of the test signer (also the one tests/vectors/bundle/*.v2.age were signed with).
TEST_SIGNER_SEED = bytes(range(32))
OTHER_SIGNER_SEED = b"\xee" * 32
TEST_SIGNER = public_key(TEST_SIGNER_SEED)
TEST_SIGNER_LINE = signer_ssh_line(TEST_SIGNER)


def signed_bundle(
    payload: BundlePayload | bytes,
    recipients: Sequence[str],
    seed: bytes = TEST_SIGNER_SEED,
) -> bytes:
    """An age bundle to ``recipients`` with ``payload`` (a payload or its v1 bytes) signed
    by ``seed``'s key, exactly as aux-secrets bundle makes one."""
    data = payload if isinstance(payload, bytes) else encode_payload(payload)
    return seal_bundle(sign_payload(seed, data), recipients)


def inner_payload(plaintext: bytes) -> dict[str, Any]:
    """The v1 payload document inside a bundle's age plaintext (signature verified)."""
    document = json.loads(open_envelope(plaintext).payload)
    assert isinstance(document, dict)
    return document


__all__ = [
    "OTHER_SIGNER_SEED",
    "TEST_SIGNER",
    "TEST_SIGNER_LINE",
    "TEST_SIGNER_SEED",
    "inner_payload",
    "signed_bundle",
]
