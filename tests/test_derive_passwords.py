"""Password charsets: uniform mapping, class minimums, gokey's policy."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aux_secrets.core.derive import DeriveRequest, derive
from aux_secrets.core.gokey import AesCtrStream
from aux_secrets.core.passwords import (
    ALPHABETS,
    CHARSETS,
    GOKEY_ALPHABET,
    PasswordPolicy,
    generate_password,
)


class BytesStream:
    """A key stream that plays back fixed bytes, then fails if read further."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def read(self, n: int) -> bytes:
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out + bytes(n - len(out)) if len(out) < n else out


class OneStream:
    name = "one"

    def __init__(self, key: bytes) -> None:
        self.key = key

    def stream(self, realm: str, purpose: str) -> AesCtrStream:
        return AesCtrStream(self.key)


def _map_every_byte(charset: str) -> Counter[str]:
    """Feed each byte value 0..255 once and count which characters come out."""
    from aux_secrets.core import passwords

    gen = (
        passwords._gokey_indices(BytesStream(bytes(range(256))))
        if charset == "gokey"
        else passwords._uniform_indices(BytesStream(bytes(range(256))), len(ALPHABETS[charset]))
    )
    accepted = {"gokey": 188}.get(charset, 256 - 256 % len(ALPHABETS[charset]))
    return Counter(ALPHABETS[charset][next(gen)] for _ in range(accepted))


@pytest.mark.parametrize("charset", CHARSETS)
def test_every_character_is_equally_likely(charset: str) -> None:
    counts = _map_every_byte(charset)
    assert set(counts) == set(ALPHABETS[charset])
    assert len(set(counts.values())) == 1, counts


def test_charset_alphabets() -> None:
    assert len(GOKEY_ALPHABET) == len(set(GOKEY_ALPHABET)) == 94
    assert ALPHABETS["urlsafe"].endswith("-_") and len(ALPHABETS["urlsafe"]) == 64
    assert ALPHABETS["base64"].endswith("+/") and len(ALPHABETS["base64"]) == 64
    assert ALPHABETS["hex"] == "0123456789abcdef"
    assert ALPHABETS["digits"] == "0123456789"
    assert len(ALPHABETS["alnum"]) == 62


def test_gokey_skips_byte_255_and_rejects_188_and_up() -> None:
    # 255, 200 and 188 are rejected; 187 -> '?' (last), 0 -> 'a', 1 -> 'a', 2 -> 'b'.
    stream = BytesStream(bytes([255, 200, 188, 187, 0, 1, 2]) + b"\x00" * 57)
    from aux_secrets.core import passwords

    gen = passwords._gokey_indices(stream)
    assert [GOKEY_ALPHABET[next(gen)] for _ in range(4)] == ["?", "a", "a", "b"]


def test_gokey_policy_regenerates_the_whole_password() -> None:
    # First 8 characters all 'a' (not compliant) -> discarded; the next 8 are compliant.
    good = "AAAaaa1!"
    first = bytes([0] * 8)
    second = bytes(GOKEY_ALPHABET.index(c) * 2 for c in good)
    stream = BytesStream(first + second + bytes(48))
    assert generate_password(stream, PasswordPolicy("gokey", 8)) == good


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    key=st.binary(min_size=32, max_size=32),
    charset=st.sampled_from(CHARSETS),
    length=st.integers(8, 64),
)
def test_outputs_stay_in_the_charset_and_meet_the_policy(
    key: bytes, charset: str, length: int
) -> None:
    out = derive(OneStream(key), DeriveRequest("r", charset=charset, length=length)).decode()
    assert len(out) == length
    assert set(out) <= set(ALPHABETS[charset])
    if charset == "gokey":
        assert sum(c.isupper() for c in out) >= 3
        assert sum(c.islower() for c in out) >= 3
        assert sum(c.isdigit() for c in out) >= 1
        assert sum(not c.isalnum() for c in out) >= 1


@settings(max_examples=30, deadline=None, derandomize=True)
@given(key=st.binary(min_size=32, max_size=32))
def test_class_minimums_hold(key: bytes) -> None:
    minimums = (("upper", 2), ("lower", 2), ("digit", 4))
    out = derive(
        OneStream(key), DeriveRequest("r", charset="alnum", length=12, minimums=minimums)
    ).decode()
    assert sum(c.isupper() for c in out) >= 2
    assert sum(c.islower() for c in out) >= 2
    assert sum(c.isdigit() for c in out) >= 4


def test_minimum_already_met_keeps_the_same_password() -> None:
    scheme = OneStream(bytes(range(32)))
    plain = derive(scheme, DeriveRequest("r", charset="alnum", length=40))
    assert sum(c.isupper() for c in plain.decode()) >= 1
    tightened = derive(
        scheme, DeriveRequest("r", charset="alnum", length=40, minimums=(("upper", 1),))
    )
    assert tightened == plain
