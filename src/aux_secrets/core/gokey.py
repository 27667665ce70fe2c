"""The gokey scheme: byte-compatible with cloudflare/gokey's key streams.

Unseeded: each (realm, purpose) gets ``PBKDF2-HMAC-SHA256(password, realm + "-" + purpose,
4096 iterations, 32 bytes)`` as an AES-256 key; the stream is AES-256-CTR (zero IV) over zeros.

Seeded: a 256-byte seed file ``nonce(12) || AES-256-GCM(seed body 228) || tag(16)`` wrapped
with ``PBKDF2(password, nonce, 4096, 32)``. The unwrapped seed ``useed`` feeds, per realm,
``HKDF-SHA256(ikm=useed, salt=useed[:12] + useed[-16:], info=realm + "-" + purpose)`` -> 32
bytes -> AES-256-CTR as above. Seed mode ``v2`` (gokey >= 0.2.0) puts the decrypted body into
``useed``; seed mode ``legacy`` (gokey < 0.2.0, CVE-2025-13353) leaves it zero, so the password
is only checked and anyone holding the seed file can derive every seeded secret.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Literal

from aux_secrets.errors import InputError, UsageError, WrongPasswordError

SEED_FILE_LENGTH = 256
NONCE_LENGTH = 12
TAG_LENGTH = 16
PBKDF2_ITERATIONS = 4096
SeedMode = Literal["v2", "legacy"]
SEED_MODES: tuple[SeedMode, ...] = ("v2", "legacy")

_FIRST_CHUNK = 512
_MAX_CHUNK = 1 << 20


class AesCtrStream:
    """AES-256-CTR with a zero IV over an endless run of zeros: gokey's DRNG.

    One encryptor per stream, read in growing chunks so that many small reads (passwords)
    and long reads (RSA prime search) are both cheap.
    """

    def __init__(self, key: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        if len(key) != 32:
            raise ValueError("AES-256-CTR key must be 32 bytes")
        self._enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
        self._buf = b""
        self._pos = 0
        self._chunk = _FIRST_CHUNK

    def read(self, n: int) -> bytes:
        if n < 0:
            raise ValueError("cannot read a negative number of bytes")
        avail = len(self._buf) - self._pos
        if n <= avail:
            out = self._buf[self._pos : self._pos + n]
            self._pos += n
            return out
        parts = [self._buf[self._pos :]]
        need = n - avail
        while True:
            size = max(self._chunk, need)
            self._chunk = min(self._chunk * 2, _MAX_CHUNK)
            block = self._enc.update(bytes(size))
            if need <= len(block):
                parts.append(block[:need])
                self._buf = block
                self._pos = need
                return b"".join(parts)
            parts.append(block)  # pragma: no cover - size >= need always holds
            need -= len(block)  # pragma: no cover


def _pbkdf2(password: bytes, salt: bytes) -> bytes:
    # cryptography's PBKDF2 is about twice as fast as hashlib's here (it carries a newer
    # OpenSSL), and unseeded gokey pays one PBKDF2 per realm.
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    return PBKDF2HMAC(SHA256(), 32, salt, PBKDF2_ITERATIONS).derive(password)


def _hkdf_sha256_32(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def _label(realm: str, purpose: str) -> bytes:
    return (realm + "-" + purpose).encode("utf-8")


class GokeyUnseeded:
    """gokey without a seed file (``gokey -u``): one PBKDF2 per realm and purpose."""

    name = "gokey"

    def __init__(self, password: bytes) -> None:
        if not password:
            raise UsageError("the master password is empty")
        self._password = password

    def stream(self, realm: str, purpose: str) -> AesCtrStream:
        return AesCtrStream(_pbkdf2(self._password, _label(realm, purpose)))


def unwrap_seed_file(password: bytes, seed_file: bytes, mode: SeedMode, skip: int = 0) -> bytes:
    """Check ``password`` against a gokey seed file and return gokey's unwrapped seed.

    Raises InputError for a malformed file and WrongPasswordError when authentication fails
    (wrong password or tampered file: one opaque error).
    """
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if mode not in SEED_MODES:
        raise UsageError(f"unknown seed mode {mode!r}: use one of {', '.join(SEED_MODES)}")
    if skip < 0 or (seed_file and skip >= len(seed_file)):
        raise UsageError(f"seed skip {skip} is outside the seed file ({len(seed_file)} bytes)")
    body = seed_file[skip:]
    if len(body) != SEED_FILE_LENGTH:
        what = "empty" if not body else f"{len(body)} bytes"
        raise InputError(
            f"gokey seed file is {what} after skipping {skip} bytes; "
            f"a gokey seed is exactly {SEED_FILE_LENGTH} bytes",
            hint="make one with: gokey -t seed -o FILE",
        )
    nonce, sealed = body[:NONCE_LENGTH], body[NONCE_LENGTH:]
    try:
        plaintext = AESGCM(_pbkdf2(password, nonce)).decrypt(nonce, sealed, None)
    except InvalidTag:
        raise WrongPasswordError(
            "wrong master password (or the gokey seed file was changed)"
        ) from None
    tag = body[-TAG_LENGTH:]
    if mode == "legacy":
        plaintext = bytes(len(plaintext))
    return nonce + plaintext + tag


class GokeySeeded:
    """gokey with a seed file; the seed is unwrapped (and the password checked) once here."""

    name = "gokey"

    def __init__(self, password: bytes, seed_file: bytes, mode: SeedMode, skip: int = 0) -> None:
        self.mode: SeedMode = mode
        self._useed = unwrap_seed_file(password, seed_file, mode, skip)
        self._salt = self._useed[:NONCE_LENGTH] + self._useed[-TAG_LENGTH:]

    def stream(self, realm: str, purpose: str) -> AesCtrStream:
        return AesCtrStream(_hkdf_sha256_32(self._useed, self._salt, _label(realm, purpose)))


def make_seed_file(password: bytes, random256: bytes) -> bytes:
    """gokey's seed recipe: the first 12 random bytes are the nonce, the next 228 are sealed.

    ``random256`` must be 256 fresh random bytes (its last 16 are replaced by the GCM tag).
    """
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if len(random256) != SEED_FILE_LENGTH:
        raise ValueError(f"a gokey seed needs exactly {SEED_FILE_LENGTH} random bytes")
    if not password:
        raise UsageError("the master password is empty")
    nonce = random256[:NONCE_LENGTH]
    body = random256[NONCE_LENGTH : SEED_FILE_LENGTH - TAG_LENGTH]
    return nonce + AESGCM(_pbkdf2(password, nonce)).encrypt(nonce, body, None)
