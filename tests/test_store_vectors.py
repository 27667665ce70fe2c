"""Frozen store file vectors: decrypt, re-encode byte for byte, and open independently."""

from __future__ import annotations

import base64
import json
import struct
from datetime import UTC, date, datetime
from typing import Any

import pytest

from aux_secrets.core import storefile as sf
from aux_secrets.core.auxv1 import AuxV1
from aux_secrets.errors import DecryptError, FormatVersionError
from tests.helpers import VECTORS

DIR = VECTORS / "store"
CASES: list[dict[str, Any]] = json.loads((DIR / "vectors.json").read_text())["vectors"]
SUCCESS = [c for c in CASES if c["expect"] == "success"]


def _time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _inputs(case: dict[str, Any]) -> tuple[sf.StoreMeta, sf.Payload]:
    meta = sf.StoreMeta(
        case["name"],
        _time(case["created"]),
        _time(case["updated"]),
        case["version"],
        date.fromisoformat(case["expires"]) if case["expires"] else None,
    )
    retired = tuple(
        sf.RetiredValue(r["version"], bytes.fromhex(r["value_hex"])) for r in case["retired"]
    )
    return meta, sf.Payload(bytes.fromhex(case["value_hex"]), case["note"], retired)


def test_vector_set_is_complete() -> None:
    expects = {c["expect"] for c in CASES}
    assert expects == {"success", "decrypt error", "format version error"}
    assert len(SUCCESS) >= 4


@pytest.mark.parametrize("case", SUCCESS, ids=lambda c: c["file"])
def test_vector_decrypts(case: dict[str, Any]) -> None:
    data = (DIR / case["file"]).read_bytes()
    meta, payload = sf.decrypt_file(bytes.fromhex(case["key_hex"]), data, case["name"])
    assert (meta, payload) == _inputs(case)


@pytest.mark.parametrize("case", SUCCESS, ids=lambda c: c["file"])
def test_vector_re_encodes_byte_identically(case: dict[str, Any]) -> None:
    data = (DIR / case["file"]).read_bytes()
    meta, payload = _inputs(case)
    key = bytes.fromhex(case["key_hex"])
    assert sf.encrypt_file(key, bytes.fromhex(case["nonce_hex"]), meta, payload) == data


def test_vector_key_from_the_aux_v1_scheme() -> None:
    (case,) = [c for c in CASES if "key_from" in c]
    scheme = AuxV1(bytes.fromhex(case["key_from"]["seed_hex"]))
    from aux_secrets.adapters.store import store_key

    assert store_key(scheme, case["name"]).hex() == case["key_hex"]


@pytest.mark.parametrize("case", [c for c in CASES if c["expect"] != "success"])
def test_vector_failures(case: dict[str, Any]) -> None:
    data = (DIR / case["file"]).read_bytes()
    error = DecryptError if case["expect"] == "decrypt error" else FormatVersionError
    with pytest.raises(error):
        sf.decrypt_file(bytes.fromhex(case["key_hex"]), data, case["name"])


# --- an independent XChaCha20-Poly1305 -------------------------------------------------


def _rotl(v: int, c: int) -> int:
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def _hchacha20(key: bytes, nonce16: bytes) -> bytes:
    """HChaCha20 (draft-irtf-cfrg-xchacha, section 2.2), written out from the draft."""
    state = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    state += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))

    def quarter(a: int, b: int, c: int, d: int) -> None:
        state[a] = (state[a] + state[b]) & 0xFFFFFFFF
        state[d] = _rotl(state[d] ^ state[a], 16)
        state[c] = (state[c] + state[d]) & 0xFFFFFFFF
        state[b] = _rotl(state[b] ^ state[c], 12)
        state[a] = (state[a] + state[b]) & 0xFFFFFFFF
        state[d] = _rotl(state[d] ^ state[a], 8)
        state[c] = (state[c] + state[d]) & 0xFFFFFFFF
        state[b] = _rotl(state[b] ^ state[c], 7)

    for _ in range(10):
        quarter(0, 4, 8, 12)
        quarter(1, 5, 9, 13)
        quarter(2, 6, 10, 14)
        quarter(3, 7, 11, 15)
        quarter(0, 5, 10, 15)
        quarter(1, 6, 11, 12)
        quarter(2, 7, 8, 13)
        quarter(3, 4, 9, 14)
    return struct.pack("<8I", *(state[0:4] + state[12:16]))


def test_hchacha20_matches_the_draft_vector() -> None:
    key = bytes(range(32))
    nonce = bytes.fromhex("000000090000004a0000000031415927")
    expected = "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"
    assert _hchacha20(key, nonce).hex() == expected


@pytest.mark.parametrize("case", SUCCESS, ids=lambda c: c["file"])
def test_vector_opens_with_an_independent_implementation(case: dict[str, Any]) -> None:
    from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

    data = (DIR / case["file"]).read_bytes()
    end = data.index(b"\n\n") + 2
    header, body = data[:end], data[end:]
    nonce = bytes.fromhex(case["nonce_hex"])
    assert base64.b64encode(nonce) in header
    subkey = _hchacha20(bytes.fromhex(case["key_hex"]), nonce[:16])
    plain = ChaCha20Poly1305(subkey).decrypt(
        b"\0\0\0\0" + nonce[16:], base64.b64decode(body.replace(b"\n", b"")), header
    )
    value = bytes.fromhex(case["value_hex"])
    assert plain[:5] == struct.pack(">BI", 1, len(value))
    assert plain[5 : 5 + len(value)] == value
