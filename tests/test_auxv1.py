"""aux-v1 core: seed wrapping, header checks, HKDF per realm and purpose."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aux_secrets.core import auxv1
from aux_secrets.core.derive import DeriveRequest, derive
from aux_secrets.errors import FormatVersionError, InputError, WrongPasswordError

FAST = auxv1.Argon2Params(memory_kib=8, time_cost=1, parallelism=1)
SEED = bytes(range(100, 132))
SALT = b"s" * 16
NONCE = b"n" * 12


def wrapped(password: bytes = b"pw", seed: bytes = SEED) -> bytes:
    return auxv1.wrap_seed(seed, password, SALT, NONCE, FAST)


def test_wrap_unwrap_round_trip_and_layout() -> None:
    blob = wrapped()
    assert blob.startswith(b"AUX-SEED\x00\x01")
    assert len(blob) == auxv1.HEADER_LEN + 32 + 16 == 100
    assert SEED not in blob
    assert auxv1.unwrap_seed(blob, b"pw") == SEED
    header = auxv1.parse_header(blob)
    assert header.params == FAST and header.salt == SALT and header.nonce == NONCE


def test_wrong_password_is_one_opaque_error() -> None:
    with pytest.raises(WrongPasswordError) as info:
        auxv1.unwrap_seed(wrapped(), b"pW")
    assert "does not open" in info.value.message


@pytest.mark.parametrize("offset", [8, 11, 15, 19, 23, 24, 45, 52, 99])
def test_any_flipped_byte_is_refused(offset: int) -> None:
    blob = bytearray(wrapped())
    blob[offset] ^= 0x01
    with pytest.raises((WrongPasswordError, InputError)):
        auxv1.unwrap_seed(bytes(blob), b"pw")


def test_structural_errors_name_the_fault() -> None:
    blob = wrapped()
    with pytest.raises(InputError, match="truncated"):
        auxv1.unwrap_seed(blob[:-1], b"pw")
    with pytest.raises(InputError, match="trailing"):
        auxv1.unwrap_seed(blob + b"x", b"pw")
    with pytest.raises(InputError, match="truncated"):
        auxv1.unwrap_seed(b"", b"pw")
    with pytest.raises(InputError, match="bad magic"):
        auxv1.unwrap_seed(b"\x00" * 100, b"pw")
    with pytest.raises(FormatVersionError, match="version 7"):
        auxv1.unwrap_seed(blob[:8] + struct.pack(">H", 7) + blob[10:], b"pw")


def test_out_of_bounds_params_refused_before_argon2() -> None:
    blob = wrapped()
    huge_time = blob[:14] + struct.pack(">I", 10_000) + blob[18:]
    with pytest.raises(InputError, match="time cost"):
        auxv1.unwrap_seed(huge_time, b"pw")
    zero_lanes = blob[:18] + struct.pack(">I", 0) + blob[22:]
    with pytest.raises(InputError, match="parallelism"):
        auxv1.unwrap_seed(zero_lanes, b"pw")


def test_wrap_refuses_bad_inputs() -> None:
    with pytest.raises(InputError):
        auxv1.wrap_seed(b"short", b"pw", SALT, NONCE, FAST)
    with pytest.raises(InputError):
        auxv1.wrap_seed(SEED, b"", SALT, NONCE, FAST)
    with pytest.raises(InputError):
        auxv1.wrap_seed(SEED, b"pw", b"x", NONCE, FAST)


def test_rewrap_keeps_seed_and_derivations() -> None:
    old = wrapped(b"old")
    seed = auxv1.unwrap_seed(old, b"old")
    new = auxv1.wrap_seed(seed, b"new", b"t" * 16, b"m" * 12, FAST)
    assert new != old
    with pytest.raises(WrongPasswordError):
        auxv1.unwrap_seed(new, b"old")
    before = derive(auxv1.AuxV1(seed), DeriveRequest("db/web1"))
    after = derive(auxv1.AuxV1(auxv1.unwrap_seed(new, b"new")), DeriveRequest("db/web1"))
    assert before == after


def test_hkdf_matches_cryptography() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    for length in (1, 32, 33, 64, 100):
        expected = HKDF(hashes.SHA256(), length, b"salt", b"info").derive(b"ikm")
        prk = auxv1.hkdf_extract(b"salt", b"ikm")
        assert auxv1.hkdf_expand(prk, b"info", length) == expected


def test_streams_differ_by_realm_purpose_and_seed() -> None:
    a = auxv1.AuxV1(SEED)
    keys = {
        a.stream_key("db", "pass"),
        a.stream_key("db", "raw"),
        a.stream_key("db2", "pass"),
        a.stream_key("", "pass"),
        auxv1.AuxV1(bytes(32)).stream_key("db", "pass"),
    }
    assert len(keys) == 5
    assert a.stream("db", "raw").read(40) == a.stream("db", "raw").read(40)


def test_stream_info_is_unambiguous() -> None:
    assert auxv1.stream_info("b/c", "pass") == b"aux-secrets/aux-v1/pass\x00b/c"
    assert auxv1.stream_info("ß", "raw") == b"aux-secrets/aux-v1/raw\x00\xc3\x9f"
    with pytest.raises(InputError):
        auxv1.stream_info("realm", "pa\x00ss")
    with pytest.raises(InputError):
        auxv1.stream_info("\udcff", "pass")


@settings(max_examples=50, deadline=None)
@given(realm=st.text(max_size=40), purpose=st.sampled_from(["pass", "raw", "key(ED25519)"]))
def test_stream_key_is_hkdf_of_info(realm: str, purpose: str) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    try:
        info = auxv1.stream_info(realm, purpose)
    except InputError:
        return  # lone surrogates
    expected = HKDF(hashes.SHA256(), 32, auxv1.EXTRACT_SALT, info).derive(SEED)
    assert auxv1.AuxV1(SEED).stream_key(realm, purpose) == expected


def test_seed_length_bounds() -> None:
    with pytest.raises(InputError):
        auxv1.AuxV1(bytes(31))
    auxv1.AuxV1(bytes(1024))
    with pytest.raises(InputError):
        auxv1.AuxV1(bytes(1025))
