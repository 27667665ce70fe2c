"""The store file format (core/storefile.py): names, header, payload, AEAD binding."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aux_secrets.core import storefile as sf
from aux_secrets.errors import (
    AuxError,
    DecryptError,
    FormatVersionError,
    InputError,
    PolicyError,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(32)
NONCE = bytes(range(24))
T0 = datetime(2026, 11, 22, 4, 3, 47, tzinfo=UTC)
T1 = datetime(2026, 11, 23, 5, 0, 0, tzinfo=UTC)


def make(
    name: str = "github/deploy-token",
    value: bytes = b"token",
    *,
    key: bytes = KEY,
    note: str = "",
    retired: tuple[sf.RetiredValue, ...] = (),
    expires: date | None = None,
    version: int = 1,
) -> bytes:
    meta = sf.StoreMeta(name, T0, T1, version, expires)
    return sf.encrypt_file(key, NONCE, meta, sf.Payload(value, note, retired))


# --- names -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["a", "github/deploy-token", "team/db password", "x/y/z.txt", "ünïcode/名前", "a-b_c.d", "v1"],
)
def test_good_names(name: str) -> None:
    sf.validate_name(name)
    assert sf.store_realm(name) == "aux-secrets/store/v1/" + name


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("../x", "'..'"),
        ("a/../b", "'..'"),
        ("a/./b", "'.'"),
        ("a//b", "empty segment"),
        ("a/", "empty segment"),
        ("-rf", "'-'"),
        ("a/-b", "'-'"),
        (".git/config", "'.'"),
        ("a/.hidden", "'.'"),
        ("a\nb", "control"),
        ("a\x00b", "control"),
        ("tab\there", "control"),
        ("del\x7f", "control"),
        ("c1\x85", "control"),
        ("back\\slash", "backslash"),
        ("a /b", "space"),
        (" lead", "space"),
        ("x" * 201, "longer than 200"),
        ("/".join(["y" * 100] * 11), "longer than 1000"),
        ("db.aux/token", "'.aux'"),
        ("a/b.aux/c", "'.aux'"),
    ],
)
def test_bad_names_are_refused(name: str, needle: str) -> None:
    with pytest.raises(PolicyError) as info:
        sf.validate_name(name)
    assert needle in info.value.message


def test_surrogate_name_is_refused() -> None:
    with pytest.raises(PolicyError, match="UTF-8"):
        sf.validate_name("bad\udcffname")


# --- round trips -----------------------------------------------------------------

values = st.binary(max_size=300)


@settings(max_examples=60, deadline=None)
@given(
    value=values,
    note=st.text(max_size=50),
    retired=st.lists(st.tuples(st.integers(1, 2**32 - 1), values), max_size=sf.MAX_KEEP),
)
def test_payload_round_trip(value: bytes, note: str, retired: list[tuple[int, bytes]]) -> None:
    payload = sf.Payload(value, note, tuple(sf.RetiredValue(v, b) for v, b in retired))
    encoded = sf.encode_payload(payload)
    assert sf.decode_payload(encoded, "x") == payload
    # Any strict prefix or any extension is refused.
    with pytest.raises(InputError):
        sf.decode_payload(encoded[:-1], "x")
    with pytest.raises(InputError):
        sf.decode_payload(encoded + b"\0", "x")


@settings(max_examples=40, deadline=None)
@given(value=values, version=st.integers(1, sf.MAX_VERSION))
def test_file_round_trip_and_canonical(value: bytes, version: int) -> None:
    data = make(value=value, version=version, expires=date(2027, 1, 31))
    meta, payload = sf.decrypt_file(KEY, data, "github/deploy-token")
    assert payload.value == value
    assert meta == sf.StoreMeta("github/deploy-token", T0, T1, version, date(2027, 1, 31))
    # Same inputs, same bytes.
    assert sf.encrypt_file(KEY, NONCE, meta, payload) == data


def test_binary_values_survive_exactly() -> None:
    value = b"\x00nul\xff\xfe\xc3\x28 invalid utf-8\r\n\x00"
    retired = (sf.RetiredValue(1, b"\x80\x00"),)
    data = make(value=value, retired=retired, note="ünïcode\nnote")
    secret = sf.to_secret(*sf.decrypt_file(KEY, data, "github/deploy-token"))
    assert secret.current == value
    assert secret.retired == (b"\x80\x00",)
    assert secret.retired_versions == (1,)
    assert secret.note == "ünïcode\nnote"


def test_text_layout() -> None:
    data = make(expires=date(2027, 1, 31))
    lines = data.decode("ascii").split("\n")
    assert lines[:7] == [
        "aux-secrets-store: 1",
        "name: github/deploy-token",
        "created: 2026-11-22T04:03:47Z",
        "updated: 2026-11-23T05:00:00Z",
        "version: 1",
        "expires: 2027-01-31",
        "nonce: AAECAwQFBgcICQoLDA0ODxAREhMUFRYX",
    ]
    assert lines[7] == ""
    assert data.endswith(b"\n") and not data.endswith(b"\n\n")


def test_large_value_lines_are_64_wide() -> None:
    data = make(value=bytes(5000))
    body = data.split(b"\n\n", 1)[1].split(b"\n")[:-1]
    assert all(len(line) == 64 for line in body[:-1]) and 0 < len(body[-1]) <= 64


def test_secret_repr_hides_values() -> None:
    secret = sf.StoredSecret("n", b"SENSITIVE", (b"OLDSENSITIVE",), (1,), "NOTESENSITIVE")
    assert "SENSITIVE" not in repr(secret)
    assert "SENSITIVE" not in repr(sf.Payload(b"SENSITIVE", "SENSITIVE"))


# --- limits ----------------------------------------------------------------------


def test_value_at_limit_is_accepted_and_over_is_refused() -> None:
    data = make(value=b"v" * sf.MAX_VALUE)
    assert sf.decrypt_file(KEY, data, "github/deploy-token")[1].value == b"v" * sf.MAX_VALUE
    with pytest.raises(InputError, match=r"github/deploy-token.*1 MiB"):
        make(value=b"v" * (sf.MAX_VALUE + 1))


def test_note_and_retired_limits() -> None:
    with pytest.raises(InputError, match="note"):
        make(note="n" * (sf.MAX_NOTE + 1))
    with pytest.raises(InputError, match="retired"):
        make(retired=tuple(sf.RetiredValue(i, b"") for i in range(1, sf.MAX_KEEP + 2)))


def test_file_over_limit_is_refused_before_parsing() -> None:
    with pytest.raises(InputError, match="larger than"):
        sf.parse_file(b"x" * (sf.MAX_FILE + 1), "store secret a")


# --- bad input -------------------------------------------------------------------


def test_every_flipped_byte_is_refused() -> None:
    data = make(value=b"v", expires=date(2027, 1, 31), note="n")
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            bad = bytearray(data)
            bad[i] ^= bit
            with pytest.raises(AuxError) as info:
                sf.decrypt_file(KEY, bytes(bad), "github/deploy-token")
            assert "github/deploy-token" in info.value.message or "store file" in str(info.value)


def test_every_truncation_is_refused() -> None:
    data = make(value=b"value", note="n")
    for n in range(len(data)):
        with pytest.raises(AuxError) as info:
            sf.decrypt_file(KEY, data[:n], "github/deploy-token")
        assert "github/deploy-token" in info.value.message


def test_appended_bytes_are_refused() -> None:
    data = make()
    for extra in (b"\n", b"AAAA\n", b" ", b"x"):
        with pytest.raises(InputError):
            sf.decrypt_file(KEY, data + extra, "github/deploy-token")


def test_wrong_key_is_one_opaque_error() -> None:
    data = make()
    with pytest.raises(DecryptError) as info:
        sf.decrypt_file(OTHER_KEY, data, "github/deploy-token")
    assert info.value.message == sf.opaque_error("github/deploy-token").message
    assert "token" not in info.value.message.replace("deploy-token", "")


def test_renamed_file_is_refused_even_with_the_right_key() -> None:
    data = make(name="github/a")
    # Opened as another name: refused before decryption, same opaque error.
    with pytest.raises(DecryptError) as info:
        sf.decrypt_file(KEY, data, "github/b")
    assert info.value.message == sf.opaque_error("github/b").message
    # Header name edited to match the new name: the associated data differs.
    edited = data.replace(b"name: github/a\n", b"name: github/b\n")
    with pytest.raises(DecryptError):
        sf.decrypt_file(KEY, edited, "github/b")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"version: 1\n", b"version: 2\n"),
        (b"updated: 2026-11-23T05:00:00Z", b"updated: 2026-11-23T05:00:01Z"),
        (b"expires: 2027-01-31", b"expires: 2099-01-31"),
    ],
)
def test_edited_metadata_is_refused(old: bytes, new: bytes) -> None:
    data = make(expires=date(2027, 1, 31))
    assert old in data
    with pytest.raises(DecryptError):
        sf.decrypt_file(KEY, data.replace(old, new), "github/deploy-token")


def test_removed_expiry_line_is_refused() -> None:
    data = make(expires=date(2027, 1, 31))
    with pytest.raises(DecryptError):
        sf.decrypt_file(KEY, data.replace(b"expires: 2027-01-31\n", b""), "github/deploy-token")


@pytest.mark.parametrize("version", [b"2", b"10", b"999"])
def test_future_format_version_is_named(version: bytes) -> None:
    data = make().replace(b"aux-secrets-store: 1\n", b"aux-secrets-store: " + version + b"\n")
    with pytest.raises(FormatVersionError) as info:
        sf.decrypt_file(KEY, data, "github/deploy-token")
    assert f"version {int(version)}" in info.value.message
    assert info.value.hint == "upgrade aux-secrets"
    with pytest.raises(FormatVersionError):
        sf.parse_header(data, "x")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"\x00\x01\x02",
        b"aux-secrets-store: 1\n",
        b"aux-secrets-store: x\n\n",
        b"-----BEGIN AGE ENCRYPTED FILE-----\n",
    ],
)
def test_garbage_is_an_input_error(data: bytes) -> None:
    with pytest.raises(InputError) as info:
        sf.decrypt_file(KEY, data, "a")
    assert "store secret a" in info.value.message


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"version: 1\n", b"version: 01\n"),
        (b"version: 1\n", b"version:  1\n"),
        (b"version: 1\n", b"version: 1 \n"),
        (b"version: 1\n", b"version: 0\n"),
        (b"created: ", b"Created: "),
        (b"created: 2026-11-22T04:03:47Z", b"created: 2026-11-22 04:03:47Z"),
        (b"created: 2026-11-22T04:03:47Z", b"created: 2026-13-22T04:03:47Z"),
        (b"updated: 2026-11-23T05:00:00Z", b"updated: 2026-11-21T05:00:00Z"),
        (b"nonce: AAEC", b"nonce: AAE="),
        (b"\n\n", b"\nextra: 1\n\n"),
        (b"\n\n", b"\n \n"),
    ],
)
def test_non_canonical_headers_are_refused(old: bytes, new: bytes) -> None:
    data = make()
    assert old in data
    with pytest.raises(InputError):
        sf.decrypt_file(KEY, data.replace(old, new, 1), "github/deploy-token")


def test_rewrapped_base64_is_refused() -> None:
    data = make(value=bytes(200))
    header, body = data.split(b"\n\n", 1)
    joined = body.replace(b"\n", b"")
    with pytest.raises(InputError, match="64 wide"):
        sf.decrypt_file(KEY, header + b"\n\n" + joined + b"\n", "github/deploy-token")


# --- replacing values --------------------------------------------------------------


def test_replaced_keeps_retired_newest_first() -> None:
    meta = sf.StoreMeta("n", T0, T0, 1)
    payload = sf.Payload(b"v1", "note")
    for version, value in [(2, b"v2"), (3, b"v3"), (4, b"v4")]:
        meta, payload = sf.replaced(meta, payload, value, T1, keep=2)
        assert meta.version == version
    assert payload.value == b"v4"
    assert payload.retired == (sf.RetiredValue(3, b"v3"), sf.RetiredValue(2, b"v2"))
    assert payload.note == "note"
    assert meta.created == T0 and meta.updated == T1
    meta, payload = sf.replaced(
        meta, payload, b"v5", T1, keep=0, note="new", expires=date(2030, 1, 1)
    )
    assert payload.retired == () and payload.note == "new" and meta.expires == date(2030, 1, 1)
    meta, payload = sf.replaced(meta, payload, b"v6", T1, expires=None)
    assert meta.expires is None
    with pytest.raises(InputError):
        sf.replaced(meta, payload, b"v", T1, keep=sf.MAX_KEEP + 1)


def test_replaced_never_moves_updated_before_created() -> None:
    meta = sf.StoreMeta("n", T1, T1, 1)
    new_meta, _ = sf.replaced(meta, sf.Payload(b""), b"x", T0)
    assert new_meta.updated == T1


def _outcome(parse: object, data: bytes) -> object:
    try:
        return parse(data, "x")  # type: ignore[operator]
    except AuxError as exc:
        return type(exc)


@pytest.mark.parametrize("expires", [None, date(2027, 1, 31)])
def test_fast_header_path_agrees_with_the_line_parser(expires: date | None) -> None:
    data = make(expires=expires)
    header = data[: data.index(b"\n\n") + 2]
    assert sf.parse_header(data, "x") == sf._parse_header_lines(data, "x")
    for i in range(len(header)):
        for replacement in (b" ", b"0", b"9", b"\n", b"-", b"\xc3", b"/", b"A"):
            bad = data[:i] + replacement + data[i + 1 :]
            fast = _outcome(sf.parse_header, bad)
            slow = _outcome(sf._parse_header_lines, bad)
            if isinstance(slow, type):
                assert fast is slow or isinstance(fast, type), (i, replacement)
            else:
                assert fast == slow, (i, replacement)


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=400),
        st.builds(
            lambda head, tail: b"aux-secrets-store: 1\n" + head + b"\n\n" + tail,
            st.binary(max_size=200),
            st.binary(max_size=200),
        ),
    )
)
def test_arbitrary_bytes_only_ever_raise_project_errors(data: bytes) -> None:
    with pytest.raises(AuxError):
        sf.decrypt_file(KEY, data, "github/deploy-token")
