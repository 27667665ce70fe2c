"""Encodings checked by other implementations: ssh-keygen, cryptography, PyNaCl."""

from __future__ import annotations

import base64
import functools
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from aux_secrets.core.derive import ENCODINGS, DeriveRequest, derive, derive_with_public
from aux_secrets.core.gokey import GokeyUnseeded
from tests.helpers import require_program

SCHEME = GokeyUnseeded(b"encoding tests")
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
PEM = serialization.Encoding.PEM


@functools.cache
def d(type: str, encoding: str | None = None, public: bool = False, realm: str = "enc") -> bytes:
    return derive(SCHEME, DeriveRequest(realm, type, encoding=encoding, public=public))


def _ssh_keygen_public(tmp_path: Path, private: bytes) -> bytes:
    keygen = require_program("ssh-keygen", "openssh-client")
    path = tmp_path / "id"
    path.write_bytes(private)
    path.chmod(0o600)
    done = subprocess.run([keygen, "-y", "-f", str(path)], capture_output=True, check=True)
    return done.stdout.strip()


def test_raw_encodings_agree() -> None:
    binary = d("raw")
    assert len(binary) == 32
    assert d("raw", "hex") == binary.hex().encode()
    assert base64.b64decode(d("raw", "base64")) == binary


def test_ed25519_openssh_private_key_is_read_by_ssh_keygen(tmp_path: Path) -> None:
    private = d("ed25519", "openssh")
    assert private.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert private.endswith(b"-----END OPENSSH PRIVATE KEY-----\n")
    assert private == d("ed25519", "openssh"), "OpenSSH encoding must be deterministic"
    public = d("ed25519", "public")
    assert public.startswith(b"ssh-ed25519 AAAA") and not public.endswith(b"\n")
    assert _ssh_keygen_public(tmp_path, private) == public
    # Same key as the PEM encoding.
    from_pem = serialization.load_pem_private_key(d("ed25519"), None)
    from_ssh = serialization.load_ssh_private_key(private, None)
    raw = serialization.Encoding.Raw
    fmt = serialization.PrivateFormat.Raw
    none = serialization.NoEncryption()
    assert isinstance(from_pem, ed25519.Ed25519PrivateKey)
    assert isinstance(from_ssh, ed25519.Ed25519PrivateKey)
    assert from_pem.private_bytes(raw, fmt, none) == from_ssh.private_bytes(raw, fmt, none)


def test_ed25519_public_forms() -> None:
    key = serialization.load_pem_private_key(d("ed25519"), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    assert d("ed25519", public=True) == d("ed25519", "public")
    assert d("ed25519", "public-pem") == key.public_key().public_bytes(PEM, SPKI)
    assert d("ed25519", "pem", public=True) == d("ed25519", "public-pem")
    assert d("ed25519", "openssh", public=True) == d("ed25519", "public")


def test_x25519_wireguard_keys() -> None:
    from nacl.bindings import crypto_scalarmult_base

    private = base64.b64decode(d("x25519", "wireguard"))
    assert len(private) == 32
    assert private[0] & 7 == 0 and private[31] & 0xC0 == 0x40
    key = serialization.load_pem_private_key(d("x25519"), None)
    assert isinstance(key, x25519.X25519PrivateKey)
    raw = serialization.Encoding.Raw
    assert (
        key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
        == private
    )
    public = d("x25519", "public")
    assert base64.b64decode(public) == crypto_scalarmult_base(private)
    assert d("x25519", public=True) == public
    assert d("x25519", "wireguard", public=True) == public
    assert d("x25519", "public-pem") == key.public_key().public_bytes(PEM, SPKI)


@pytest.mark.parametrize(
    ("type", "curve"), [("ec256", ec.SECP256R1), ("ec384", ec.SECP384R1), ("ec521", ec.SECP521R1)]
)
def test_ec_pem_and_public_pem(type: str, curve: type[ec.EllipticCurve]) -> None:
    private = d(type)
    assert private.startswith(b"-----BEGIN EC PRIVATE KEY-----\n")
    key = serialization.load_pem_private_key(private, None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, curve)
    # OpenSSL re-encodes SEC1 the same way Go does (named curve, public key included).
    again = key.private_bytes(
        PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    assert again == private
    assert d(type, "public") == key.public_key().public_bytes(PEM, SPKI)
    assert d(type, public=True) == d(type, "pem", public=True) == d(type, "public")


@pytest.mark.parametrize("type", ["rsa2048", pytest.param("rsa4096", marks=pytest.mark.slow)])
def test_rsa_encodings(type: str, tmp_path: Path) -> None:
    private = d(type)
    key = serialization.load_pem_private_key(private, None)  # checks the key's consistency
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == int(type[3:])
    numbers = key.private_numbers()
    assert numbers.public_numbers.e == 65537
    phi = (numbers.p - 1) * (numbers.q - 1)
    assert numbers.d == pow(65537, -1, phi)  # d modulo phi, as gokey computes it
    assert d(type, "public") == key.public_key().public_bytes(PEM, SPKI)
    openssh = d(type, "openssh")
    assert openssh == d(type, "openssh")
    public_line = d(type, "public-openssh")
    assert public_line.startswith(b"ssh-rsa AAAA")
    assert _ssh_keygen_public(tmp_path, openssh) == public_line
    from_ssh = serialization.load_ssh_private_key(openssh, None)
    assert isinstance(from_ssh, rsa.RSAPrivateKey)
    assert from_ssh.private_numbers() == numbers
    assert d(type, public=True) == d(type, "public")
    assert d(type, "openssh", public=True) == public_line


def test_public_outputs_hold_no_private_material() -> None:
    for type in ("ed25519", "x25519", "ec256", "rsa2048"):
        out = d(type, public=True)
        assert b"PRIVATE" not in out
        assert out != d(type)


@pytest.mark.parametrize("type", ["ed25519", "x25519"])
def test_25519_pem_reencodes_identically(type: str) -> None:
    """OpenSSL writes the same PKCS#8 bytes back (no public key, no attributes)."""
    private = d(type)
    key = serialization.load_pem_private_key(private, None)
    again = key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert again == private


@pytest.mark.parametrize(
    ("type", "encoding"),
    [(t, e) for t, encodings in ENCODINGS.items() if t != "rsa4096" for e in encodings],
)
def test_derive_with_public_is_derive_and_the_default_public_half(type: str, encoding: str) -> None:
    value, public = derive_with_public(SCHEME, DeriveRequest("enc", type, encoding=encoding))
    assert value == d(type, encoding)
    assert public == (None if type in ("pass", "raw") else d(type, public=True))
