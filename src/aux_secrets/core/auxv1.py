"""The aux-v1 scheme: an Argon2id-wrapped random seed and HKDF-SHA256 per realm.

Format and derivation are specified in docs/spec/aux-v1-seed.md; this module is the
reference implementation. Pure: the caller passes the salt, nonce and seed (randomness
lives in the adapters).
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass

from aux_secrets.core.gokey import AesCtrStream
from aux_secrets.errors import ExternalError, FormatVersionError, InputError, WrongPasswordError

MAGIC = b"AUX-SEED"
VERSION = 1
SALT_LEN = 16
NONCE_LEN = 12
TAG_LEN = 16
KEY_LEN = 32
SEED_LEN = 32
MIN_SEED_LEN = 32
MAX_SEED_LEN = 1024
# magic, version (u16), memory KiB (u32), time cost (u32), parallelism (u32),
# seed length (u16), salt (16), nonce (12); all big-endian.
_HEADER = struct.Struct(">8sHIIIH16s12s")
HEADER_LEN = _HEADER.size

# Bounds a reader accepts before running Argon2 (a tampered header must not make
# unlock run for hours or allocate the machine's memory).
MIN_MEMORY_KIB = 8
MAX_MEMORY_KIB = 4 * 1024 * 1024
MAX_TIME_COST = 64
MAX_PARALLELISM = 255

EXTRACT_SALT = b"aux-secrets/aux-v1/seed"
INFO_PREFIX = b"aux-secrets/aux-v1/"


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost: memory in KiB, passes, lanes."""

    memory_kib: int = 65536
    time_cost: int = 6
    parallelism: int = 1

    def check(self, *, what: str = "Argon2id parameters") -> None:
        if not 1 <= self.parallelism <= MAX_PARALLELISM:
            raise InputError(f"{what}: parallelism must be 1..{MAX_PARALLELISM}")
        if not 1 <= self.time_cost <= MAX_TIME_COST:
            raise InputError(f"{what}: time cost must be 1..{MAX_TIME_COST}")
        low = max(MIN_MEMORY_KIB, 8 * self.parallelism)
        if not low <= self.memory_kib <= MAX_MEMORY_KIB:
            raise InputError(f"{what}: memory must be {low}..{MAX_MEMORY_KIB} KiB")


DEFAULT_PARAMS = Argon2Params()
# Without costs pinned in vault.toml, a seed header asking for more than this is refused
# before Argon2id runs: a tampered header within MAX_* would take minutes and GiBs.
UNPINNED_MAX_MEMORY_KIB = 1024 * 1024
UNPINNED_MAX_TIME_COST = 24
UNPINNED_MAX_PARALLELISM = 16


def costs_far_above_defaults(params: Argon2Params) -> bool:
    return (
        params.memory_kib > UNPINNED_MAX_MEMORY_KIB
        or params.time_cost > UNPINNED_MAX_TIME_COST
        or params.parallelism > UNPINNED_MAX_PARALLELISM
    )


def describe_costs(params: Argon2Params) -> str:
    return (
        f"memory {params.memory_kib} KiB, time cost {params.time_cost}, "
        f"parallelism {params.parallelism}"
    )


@dataclass(frozen=True)
class SeedHeader:
    params: Argon2Params
    seed_len: int
    salt: bytes
    nonce: bytes

    def encode(self) -> bytes:
        return _HEADER.pack(
            MAGIC,
            VERSION,
            self.params.memory_kib,
            self.params.time_cost,
            self.params.parallelism,
            self.seed_len,
            self.salt,
            self.nonce,
        )


def argon2id(password: bytes, salt: bytes, params: Argon2Params, length: int = KEY_LEN) -> bytes:
    """Raw Argon2id (version 0x13) output."""
    from argon2.exceptions import HashingError
    from argon2.low_level import Type, hash_secret_raw

    try:
        out: bytes = hash_secret_raw(
            password,
            salt,
            time_cost=params.time_cost,
            memory_cost=params.memory_kib,
            parallelism=params.parallelism,
            hash_len=length,
            type=Type.ID,
            version=19,
        )
    except (HashingError, MemoryError):
        raise ExternalError(
            f"Argon2id could not run with {describe_costs(params)} (not enough memory?)",
            hint="run it where that much memory is available",
        ) from None
    return out


def wrap_seed(
    seed: bytes, password: bytes, salt: bytes, nonce: bytes, params: Argon2Params
) -> bytes:
    """The seed file: header || ChaCha20-Poly1305(Argon2id(password, salt), nonce, seed, header)."""
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    if not MIN_SEED_LEN <= len(seed) <= MAX_SEED_LEN:
        raise InputError(f"seed must be {MIN_SEED_LEN}..{MAX_SEED_LEN} bytes")
    if len(salt) != SALT_LEN or len(nonce) != NONCE_LEN:
        raise InputError(f"salt must be {SALT_LEN} bytes and nonce {NONCE_LEN} bytes")
    if not password:
        raise InputError("the master password is empty")
    params.check()
    header = SeedHeader(params, len(seed), salt, nonce).encode()
    key = argon2id(password, salt, params)
    return header + ChaCha20Poly1305(key).encrypt(nonce, seed, header)


def parse_header(blob: bytes, *, what: str = "aux-v1 seed file") -> SeedHeader:
    """Check the structure of a seed file (no password needed); InputError naming the fault."""
    if len(blob) < len(MAGIC) + 2:
        raise InputError(f"{what} is truncated ({len(blob)} bytes)")
    if blob[: len(MAGIC)] != MAGIC:
        raise InputError(f"{what} is not an aux-v1 seed file (bad magic)")
    (version,) = struct.unpack_from(">H", blob, len(MAGIC))
    if version != VERSION:
        raise FormatVersionError(
            f"{what} has format version {version}; this aux-secrets reads version {VERSION}",
            hint="upgrade aux-secrets",
        )
    if len(blob) < HEADER_LEN:
        raise InputError(f"{what} is truncated ({len(blob)} bytes)")
    _, _, memory, time_cost, lanes, seed_len, salt, nonce = _HEADER.unpack_from(blob)
    params = Argon2Params(memory, time_cost, lanes)
    params.check(what=f"{what} header")
    if not MIN_SEED_LEN <= seed_len <= MAX_SEED_LEN:
        raise InputError(f"{what} header: seed length {seed_len} is out of range")
    expected = HEADER_LEN + seed_len + TAG_LEN
    if len(blob) < expected:
        raise InputError(f"{what} is truncated ({len(blob)} of {expected} bytes)")
    if len(blob) > expected:
        raise InputError(f"{what} has {len(blob) - expected} trailing bytes")
    return SeedHeader(params, seed_len, salt, nonce)


def unwrap_seed(blob: bytes, password: bytes, *, what: str = "aux-v1 seed file") -> bytes:
    """The seed inside a seed file; WrongPasswordError (opaque) if it does not authenticate."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    header = parse_header(blob, what=what)
    key = argon2id(password, header.salt, header.params)
    try:
        return ChaCha20Poly1305(key).decrypt(header.nonce, blob[HEADER_LEN:], blob[:HEADER_LEN])
    except InvalidTag:
        raise WrongPasswordError(
            f"the master password does not open {what} (or the file was altered)"
        ) from None


def hkdf_extract(salt: bytes, ikm: bytes) -> bytes:
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand(prk: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 HKDF-Expand with SHA-256."""
    if not 0 < length <= 255 * 32:
        raise ValueError("HKDF-Expand length out of range")
    out = b""
    block = b""
    counter = 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def stream_info(realm: str, purpose: str) -> bytes:
    """HKDF info: b"aux-secrets/aux-v1/" + purpose + b"\\x00" + UTF-8 realm."""
    if not purpose or not purpose.isascii() or not purpose.isprintable():
        raise InputError(f"invalid purpose {purpose!r}")
    try:
        realm_bytes = realm.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("realm is not valid Unicode text") from None
    return INFO_PREFIX + purpose.encode("ascii") + b"\x00" + realm_bytes


class AuxV1:
    """The aux-v1 scheme over an unwrapped seed: cheap per realm once unlocked."""

    name = "aux-v1"

    def __init__(self, seed: bytes) -> None:
        if not MIN_SEED_LEN <= len(seed) <= MAX_SEED_LEN:
            raise InputError(f"aux-v1 seed must be {MIN_SEED_LEN}..{MAX_SEED_LEN} bytes")
        self._prk = hkdf_extract(EXTRACT_SALT, seed)

    def stream_key(self, realm: str, purpose: str) -> bytes:
        return hkdf_expand(self._prk, stream_info(realm, purpose), KEY_LEN)

    def stream(self, realm: str, purpose: str) -> AesCtrStream:
        return AesCtrStream(self.stream_key(realm, purpose))
