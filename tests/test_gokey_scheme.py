"""The gokey scheme's own behaviour: seed file checks, key streams, seed files gokey accepts."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from aux_secrets.core.derive import DeriveRequest, derive
from aux_secrets.core.gokey import AesCtrStream, GokeySeeded, GokeyUnseeded, make_seed_file
from aux_secrets.errors import InputError, UsageError, WrongPasswordError
from tests.helpers import require_program

PASSWORD = b"seed test password"
SEED = make_seed_file(PASSWORD, bytes(range(100, 256)) + bytes(range(100)))


@pytest.mark.parametrize("mode", ["v2", "legacy"])
@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "empty"),
        (SEED[:255], "255 bytes"),
        (SEED[:28], "28 bytes"),
        (SEED + b"\n", "257 bytes"),
    ],
)
def test_malformed_seed_file_is_input_error(mode: str, data: bytes, needle: str) -> None:
    with pytest.raises(InputError) as info:
        GokeySeeded(PASSWORD, data, mode)  # type: ignore[arg-type]
    assert needle in info.value.message
    assert "256" in info.value.message


@pytest.mark.parametrize("mode", ["v2", "legacy"])
def test_wrong_password_garbage_and_tampering_are_one_opaque_error(mode: str) -> None:
    tampered = bytearray(SEED)
    tampered[100] ^= 1
    cases = [(b"seed test passworD", SEED), (PASSWORD, bytes(256)), (PASSWORD, bytes(tampered))]
    messages = set()
    for password, data in cases:
        with pytest.raises(WrongPasswordError) as info:
            GokeySeeded(password, data, mode)  # type: ignore[arg-type]
        messages.add(info.value.message)
        assert "seed test" not in info.value.message
    assert len(messages) == 1


def test_skip_outside_the_file_and_unknown_mode_are_usage_errors() -> None:
    for skip in (-1, 256, 1000):
        with pytest.raises(UsageError):
            GokeySeeded(PASSWORD, SEED, "v2", skip=skip)
    with pytest.raises(UsageError):
        GokeySeeded(PASSWORD, SEED, "v3")  # type: ignore[arg-type]


def test_skip_selects_the_seed_behind_a_prefix() -> None:
    plain = GokeySeeded(PASSWORD, SEED, "v2")
    skipped = GokeySeeded(PASSWORD, b"\x00" * 5 + SEED, "v2", skip=5)
    request = DeriveRequest("realm", "raw")
    assert derive(plain, request) == derive(skipped, request)


def test_v2_and_legacy_differ_and_both_verify_the_password() -> None:
    request = DeriveRequest("realm")
    v2 = derive(GokeySeeded(PASSWORD, SEED, "v2"), request)
    legacy = derive(GokeySeeded(PASSWORD, SEED, "legacy"), request)
    assert v2 != legacy


def test_make_seed_file_rejects_wrong_sizes_and_empty_password() -> None:
    with pytest.raises(ValueError):
        make_seed_file(PASSWORD, bytes(255))
    with pytest.raises(UsageError):
        make_seed_file(b"", bytes(256))
    with pytest.raises(UsageError):
        GokeyUnseeded(b"")


def test_gokey_accepts_a_seed_file_we_make(tmp_path: Path) -> None:
    gokey = require_program("gokey", "gokey")
    seed = tmp_path / "seed"
    seed.write_bytes(SEED)
    pwfile = tmp_path / "pw"
    pwfile.write_bytes(PASSWORD)
    done = subprocess.run(
        [gokey, "-P", str(pwfile), "-r", "interop", "-t", "ed25519", "-s", str(seed)],
        capture_output=True,
        check=True,
    )
    ours = derive(GokeySeeded(PASSWORD, SEED, "legacy"), DeriveRequest("interop", "ed25519"))
    assert ours == done.stdout


@settings(max_examples=50, deadline=None, derandomize=True)
@given(sizes=st.lists(st.integers(0, 5000), min_size=1, max_size=20))
def test_stream_reads_are_independent_of_how_they_are_split(sizes: list[int]) -> None:
    key = bytes(range(32))
    whole = AesCtrStream(key).read(sum(sizes))
    stream = AesCtrStream(key)
    assert b"".join(stream.read(n) for n in sizes) == whole


def test_stream_is_aes256_ctr_with_zero_iv_over_zeros() -> None:
    key = bytes(range(32, 64))
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    counters = b"".join(i.to_bytes(16, "big") for i in range(3))
    assert AesCtrStream(key).read(48) == ecb.update(counters)
    with pytest.raises(ValueError):
        AesCtrStream(key[:16])


def test_unseeded_streams_differ_per_realm_and_purpose() -> None:
    scheme = GokeyUnseeded(b"pw")
    reads = {
        scheme.stream(realm, purpose).read(32)
        for realm in ("a", "b", "a-pass")
        for purpose in ("pass", "raw", "key(ED25519)")
    }
    assert len(reads) == 9
