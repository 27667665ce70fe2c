"""Encodings of derived keys: PEM (as gokey writes it), OpenSSH, WireGuard, public halves.

The private PEM encoders write DER by hand so that the bytes match gokey's (Go's encoding/asn1,
encoding/pem) exactly; public encodings go through ``cryptography``.
"""

from __future__ import annotations

import base64
import hashlib
import struct

from aux_secrets.core.keys import Curve
from aux_secrets.core.rsa_prime import RsaKey

ED25519_OID = "1.3.101.112"
X25519_OID = "1.3.101.110"
OPENSSH_CHECKINT_LABEL = b"aux-secrets openssh checkint v1\x00"

# --- DER -------------------------------------------------------------------------------


def _der(tag: int, body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([tag, n]) + body
    size = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def der_int(value: int) -> bytes:
    if value < 0:
        raise ValueError("only non-negative integers are encoded")
    return _der(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def der_octets(data: bytes) -> bytes:
    return _der(0x04, data)


def der_bits(data: bytes) -> bytes:
    return _der(0x03, b"\x00" + data)


def der_seq(*items: bytes) -> bytes:
    return _der(0x30, b"".join(items))


def der_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return _der(0x06, bytes(out))


def der_explicit(number: int, body: bytes) -> bytes:
    return _der(0xA0 | number, body)


def pem(label: str, der: bytes) -> bytes:
    """PEM as Go's encoding/pem writes it: 64-character lines, trailing newline."""
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return (
        f"-----BEGIN {label}-----\n"
        + "".join(line + "\n" for line in lines)
        + f"-----END {label}-----\n"
    ).encode("ascii")


# --- private keys as gokey writes them ---------------------------------------------------


def pkcs8_25519_pem(oid: str, key: bytes) -> bytes:
    """PKCS#8 "PRIVATE KEY" for Ed25519 (the seed) or X25519, without the public key."""
    der = der_seq(der_int(0), der_seq(der_oid(oid)), der_octets(der_octets(key)))
    return pem("PRIVATE KEY", der)


def ec_public_point(curve: Curve, k: int) -> bytes:
    """The uncompressed public point 04 || X || Y of the private scalar ``k``."""
    from cryptography.hazmat.primitives.asymmetric import ec

    curves: dict[str, ec.EllipticCurve] = {
        "P-256": ec.SECP256R1(),
        "P-384": ec.SECP384R1(),
        "P-521": ec.SECP521R1(),
    }
    numbers = ec.derive_private_key(k, curves[curve.name]).public_key().public_numbers()
    size = (curve.bits + 7) // 8
    return b"\x04" + numbers.x.to_bytes(size, "big") + numbers.y.to_bytes(size, "big")


def sec1_ec_pem(curve: Curve, k: int) -> bytes:
    """SEC 1 "EC PRIVATE KEY" as Go's x509.MarshalECPrivateKey writes it."""
    size = (curve.order.bit_length() + 7) // 8
    der = der_seq(
        der_int(1),
        der_octets(k.to_bytes(size, "big")),
        der_explicit(0, der_oid(curve.oid)),
        der_explicit(1, der_bits(ec_public_point(curve, k))),
    )
    return pem("EC PRIVATE KEY", der)


def pkcs1_rsa_pem(key: RsaKey) -> bytes:
    """PKCS#1 "RSA PRIVATE KEY" (version 0, n, e, d, p, q, dp, dq, qinv)."""
    fields = (0, key.n, key.e, key.d, key.p, key.q, key.dp, key.dq, key.qinv)
    return pem("RSA PRIVATE KEY", der_seq(*(der_int(v) for v in fields)))


# --- public halves -----------------------------------------------------------------------


def ed25519_public(seed: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def x25519_public(key: bytes) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = X25519PrivateKey.from_private_bytes(key).public_key()
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def spki_pem(algorithm_oid: str, public: bytes, parameters_oid: str | None = None) -> bytes:
    """SubjectPublicKeyInfo "PUBLIC KEY" PEM."""
    algorithm = der_seq(
        der_oid(algorithm_oid), *([der_oid(parameters_oid)] if parameters_oid else [])
    )
    return pem("PUBLIC KEY", der_seq(algorithm, der_bits(public)))


def ed25519_public_pem(seed: bytes) -> bytes:
    return spki_pem(ED25519_OID, ed25519_public(seed))


def x25519_public_pem(key: bytes) -> bytes:
    return spki_pem(X25519_OID, x25519_public(key))


def ec_public_pem(curve: Curve, k: int) -> bytes:
    return spki_pem("1.2.840.10045.2.1", ec_public_point(curve, k), curve.oid)


def rsa_public_pem(key: RsaKey) -> bytes:
    # RSA's AlgorithmIdentifier carries an explicit NULL parameter.
    algorithm = der_seq(der_oid("1.2.840.113549.1.1.1"), b"\x05\x00")
    body = der_seq(algorithm, der_bits(der_seq(der_int(key.n), der_int(key.e))))
    return pem("PUBLIC KEY", body)


def wireguard_key(key: bytes) -> bytes:
    """A WireGuard key (private or public): base64 of the 32 bytes, no newline."""
    return base64.b64encode(key)


# --- OpenSSH -----------------------------------------------------------------------------


def _ssh_string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _ssh_mpint(value: int) -> bytes:
    if value == 0:
        return _ssh_string(b"")
    return _ssh_string(value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _ed25519_blob(public: bytes) -> bytes:
    return _ssh_string(b"ssh-ed25519") + _ssh_string(public)


def _rsa_blob(key: RsaKey) -> bytes:
    return _ssh_string(b"ssh-rsa") + _ssh_mpint(key.e) + _ssh_mpint(key.n)


def _ssh_public_line(blob: bytes, keytype: bytes) -> bytes:
    return keytype + b" " + base64.b64encode(blob)


def ed25519_ssh_public(seed: bytes) -> bytes:
    """``ssh-ed25519 AAAA...`` (no comment, no newline)."""
    return _ssh_public_line(_ed25519_blob(ed25519_public(seed)), b"ssh-ed25519")


def rsa_ssh_public(key: RsaKey) -> bytes:
    """``ssh-rsa AAAA...`` (no comment, no newline)."""
    return _ssh_public_line(_rsa_blob(key), b"ssh-rsa")


def _openssh_private(public_blob: bytes, private_fields: bytes) -> bytes:
    """An unencrypted "OPENSSH PRIVATE KEY" file (openssh-key-v1), deterministic.

    The two check integers are the first 4 bytes of SHA-256(label || public key blob), so
    the same key always gives the same file.
    """
    check = hashlib.sha256(OPENSSH_CHECKINT_LABEL + public_blob).digest()[:4]
    section = bytearray(check + check + private_fields + _ssh_string(b""))
    pad = 1
    while len(section) % 8:
        section.append(pad)
        pad += 1
    body = (
        b"openssh-key-v1\x00"
        + _ssh_string(b"none")
        + _ssh_string(b"none")
        + _ssh_string(b"")
        + struct.pack(">I", 1)
        + _ssh_string(public_blob)
        + _ssh_string(bytes(section))
    )
    b64 = base64.b64encode(body).decode("ascii")
    lines = [b64[i : i + 70] for i in range(0, len(b64), 70)]
    return (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        + "".join(line + "\n" for line in lines)
        + "-----END OPENSSH PRIVATE KEY-----\n"
    ).encode("ascii")


def ed25519_openssh_private(seed: bytes) -> bytes:
    public = ed25519_public(seed)
    fields = _ssh_string(b"ssh-ed25519") + _ssh_string(public) + _ssh_string(seed + public)
    return _openssh_private(_ed25519_blob(public), fields)


def rsa_openssh_private(key: RsaKey) -> bytes:
    fields = _ssh_string(b"ssh-rsa") + b"".join(
        _ssh_mpint(v) for v in (key.n, key.e, key.d, key.qinv, key.p, key.q)
    )
    return _openssh_private(_rsa_blob(key), fields)
