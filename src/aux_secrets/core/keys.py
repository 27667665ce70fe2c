"""Private keys drawn from a key stream, exactly as gokey draws them."""

from __future__ import annotations

from dataclasses import dataclass

from aux_secrets.core.keystream import KeyStream
from aux_secrets.core.rsa_prime import RsaKey, gokey_rsa


@dataclass(frozen=True)
class Curve:
    """A NIST curve: its name, the cryptography class name, its DER OID and its order."""

    name: str
    bits: int
    oid: str
    order: int


CURVES: dict[str, Curve] = {
    "ec256": Curve(
        "P-256",
        256,
        "1.2.840.10045.3.1.7",
        0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    ),
    "ec384": Curve(
        "P-384",
        384,
        "1.3.132.0.34",
        int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF"
            "581A0DB248B0A77AECEC196ACCC52973",
            16,
        ),
    ),
    "ec521": Curve(
        "P-521",
        521,
        "1.3.132.0.35",
        int(
            "01FF" + "FFFFFFFF" * 7 + "FFFFFFFA"
            "51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
            16,
        ),
    ),
}
RSA_BITS: dict[str, int] = {"rsa2048": 2048, "rsa4096": 4096}


def ed25519_seed(stream: KeyStream) -> bytes:
    """The 32-byte Ed25519 private seed (RFC 8032): the next 32 bytes."""
    return stream.read(32)


def x25519_private(stream: KeyStream) -> bytes:
    """The next 32 bytes, clamped as gokey clamps them (RFC 7748)."""
    k = bytearray(stream.read(32))
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    return bytes(k)


def ec_private_scalar(stream: KeyStream, curve: Curve) -> int:
    """FIPS 186-4 B.5.1 (extra random bits): ``bits/8 + 8`` bytes, ``k mod (n - 1) + 1``."""
    k = int.from_bytes(stream.read(curve.bits // 8 + 8), "big")
    return k % (curve.order - 1) + 1


def rsa_private(stream: KeyStream, bits: int) -> RsaKey:
    """gokey's deterministic RSA key (see rsa_prime)."""
    return gokey_rsa(stream, bits)
