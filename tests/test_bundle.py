"""Bundle payload v1: canonical encoding, strict decoding, frozen vectors."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aux_secrets.core.bundle import (
    OPEN_NOT_AFTER,
    OPEN_NOT_BEFORE,
    BundlePayload,
    BundleSecret,
    BundleSlot,
    decode_payload,
    encode_payload,
    load_json,
)
from aux_secrets.core.fingerprint import fingerprint, is_fingerprint
from aux_secrets.errors import FormatVersionError, InputError
from tests.helpers import VECTORS

VEC = VECTORS / "bundle"


def make_payload(
    serial: int = 1, host: str = "web1", secrets: dict[str, bytes] | None = None
) -> BundlePayload:
    values = {"db": b"hunter2"} if secrets is None else secrets
    return BundlePayload(
        host=host,
        serial=serial,
        created=datetime(2026, 11, 22, 12, 0, tzinfo=UTC),
        bundle_id=f"{serial:032x}",
        fingerprint_key=b"\x07" * 32,
        secrets={
            name: BundleSecret(
                slots=(BundleSlot("current", "static", OPEN_NOT_BEFORE, OPEN_NOT_AFTER, value),)
            )
            for name, value in values.items()
        },
    )


def vector_doc() -> dict[str, Any]:
    doc = json.loads((VEC / "payload.json").read_bytes())
    assert isinstance(doc, dict)
    return doc


def encode_doc(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def test_vector_decodes_and_reencodes_identically() -> None:
    data = (VEC / "payload.json").read_bytes()
    payload = decode_payload(data)
    assert payload.host == "web1"
    assert payload.serial == 1763769600
    assert payload.created == datetime(2026, 11, 22, tzinfo=UTC)
    assert payload.fingerprint_key == bytes(range(32))
    assert sorted(payload.secrets) == ["db", "talos/hmac", "wg/key"]
    hmac_slots = payload.secrets["talos/hmac"].slots
    assert [s.role for s in hmac_slots] == ["current", "retired", "ahead"]
    assert hmac_slots[0].not_before == datetime(2026, 11, 1, tzinfo=UTC)
    assert hmac_slots[0].not_after == datetime(2026, 12, 1, tzinfo=UTC)
    assert hmac_slots[0].value == bytes(range(32))
    assert payload.secrets["db"].current_slot().value == b"correct horse"
    assert payload.secrets["db"].slots[1].not_after == OPEN_NOT_AFTER
    assert payload.secrets["wg/key"].public == b"public\n"
    assert payload.secrets["db"].public is None
    assert encode_payload(payload) == data


def test_fingerprint_vectors_from_openssl() -> None:
    payload = decode_payload((VEC / "payload.json").read_bytes())
    lines = [ln for ln in (VEC / "fingerprints.txt").read_text().splitlines() if ln[:1] != "#"]
    assert len(lines) == 3
    for line in lines:
        name, label, expected = line.split()
        slot = next(s for s in payload.secrets[name].slots if s.label == label)
        assert fingerprint(payload.fingerprint_key, name, slot.value) == expected


def test_fingerprint_is_keyed_and_separates_names() -> None:
    a = fingerprint(b"\x01" * 32, "db", b"1234")
    assert is_fingerprint(a)
    assert a != fingerprint(b"\x02" * 32, "db", b"1234")
    assert a != fingerprint(b"\x01" * 32, "db2", b"1234")
    assert a != fingerprint(b"\x01" * 32, "db", b"1235")
    with pytest.raises(InputError):
        fingerprint(b"short", "db", b"1234")


def test_value_never_in_repr() -> None:
    payload = make_payload(secrets={"db": b"s3cr3t-value"})
    assert "s3cr3t-value" not in repr(payload)
    assert "c3Njcj" not in repr(payload)


@pytest.mark.parametrize("cut", [0, 1, 10, 100, -1, -2], ids=lambda c: f"cut{c}")
def test_truncated_payload_refused(cut: int) -> None:
    data = (VEC / "payload.json").read_bytes()
    with pytest.raises(InputError):
        decode_payload(data[:cut])


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\xff\xfe", b"not json", b"[]", b"null", b'"x"', b"{}", b"\xef\xbb\xbf{}"],
)
def test_garbage_refused(data: bytes) -> None:
    with pytest.raises(InputError):
        decode_payload(data)


@pytest.mark.parametrize("version", [0, 2, "1", True, None])
def test_wrong_version_refused(version: object) -> None:
    doc = vector_doc()
    doc["version"] = version
    with pytest.raises(FormatVersionError, match="version"):
        decode_payload(encode_doc(doc))


def mutate(path: list[Any], value: Any) -> bytes:
    doc = vector_doc()
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return encode_doc(doc)


SLOT0 = ["secrets", "db", "slots", 0]


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (["host"], KeyError, "$.host"),
        (["host"], "bad host!", "$.host"),
        (["host"], 5, "$.host"),
        (["serial"], 0, "$.serial"),
        (["serial"], -3, "$.serial"),
        (["serial"], "5", "$.serial"),
        (["serial"], True, "$.serial"),
        (["serial"], 1.5, "$.serial"),
        (["created"], "2026-11-22 00:00:00", "$.created"),
        (["created"], "2026-11-22T00:00:00+01:00", "$.created"),
        (["created"], "2026-13-40T00:00:00Z", "$.created"),
        (["bundleId"], "ABC", "$.bundleId"),
        (["fingerprintKey"], "AAAA", "$.fingerprintKey"),
        (["fingerprintKey"], "!!!", "$.fingerprintKey"),
        (["format"], "other", "format"),
        (["secrets"], [], "$.secrets"),
        (["secrets", "../etc"], {"public": None, "slots": []}, "../etc"),
        (["secrets", "db", "slots"], [], "$.secrets.db.slots"),
        (["critical"], "colour", "$.critical"),
        ([*SLOT0, "critical"], [1], "critical"),
        ([*SLOT0, "role"], "future", "role"),
        ([*SLOT0, "role"], "retired", "current"),
        ([*SLOT0, "label"], "", "label"),
        ([*SLOT0, "label"], "has space", "label"),
        ([*SLOT0, "value"], "not base64!", "value"),
        ([*SLOT0, "value"], "YQ", "value"),
        ([*SLOT0, "value"], KeyError, "value"),
        (["secrets", "talos/hmac", "slots", 0, "notBefore"], "2027-01-01T00:00:00Z", "notBefore"),
        (["secrets", "db", "slots", 1, "label"], "static", "label"),
    ],
)
def test_strict_decode_names_the_field(path: list[Any], value: Any, needle: str) -> None:
    with pytest.raises(InputError) as info:
        decode_payload(mutate(path, value))
    assert needle in info.value.message
    # Never a value in the message.
    assert "Y29ycmVjdCBob3JzZQ" not in info.value.message
    assert "correct horse" not in info.value.message


@pytest.mark.parametrize("path", [["colour"], ["secrets", "db", "colour"], [*SLOT0, "colour"]])
def test_a_newer_writers_field_is_skipped_unless_critical(path: list[Any]) -> None:
    # docs/spec/evolution.md: a field this reader does not know comes from a newer
    # aux-secrets; it is skipped, so an older host still takes the bundle...
    plain = decode_payload(VEC.joinpath("payload.json").read_bytes())
    assert decode_payload(mutate(path, 1)) == plain
    # ...unless its object's critical list names it: then only a newer host may read it.
    critical = mutate([*path[:-1], "critical"], ["colour"])
    doc = json.loads(critical)
    target: Any = doc
    for key in path[:-1]:
        target = target[key]
    target["colour"] = 1
    with pytest.raises(FormatVersionError) as info:
        decode_payload(encode_doc(doc))
    assert info.value.message.endswith(
        "colour: a field this aux-secrets does not know, and its writer marked it critical"
    )
    assert info.value.hint is not None and "upgrade aux-secrets on this host" in info.value.hint
    # A critical list that names only fields the reader knows changes nothing.
    assert decode_payload(mutate([*path[:-1], "critical"], ["colour"])) == plain


def test_a_newer_writers_payload_must_still_be_canonical() -> None:
    doc = json.loads(mutate(["colour"], 1))
    spaced = json.dumps(doc, sort_keys=True).encode()  # ", " and ": " separators
    with pytest.raises(InputError, match="canonical"):
        decode_payload(spaced)


def test_duplicate_keys_and_non_canonical_refused() -> None:
    data = (VEC / "payload.json").read_bytes()
    with pytest.raises(InputError, match="duplicate"):
        decode_payload(b'{"host":"a",' + data[1:])
    with pytest.raises(InputError, match="canonical"):
        decode_payload(json.dumps(json.loads(data), indent=1).encode())
    with pytest.raises(InputError):
        decode_payload(data.replace(b'"serial":1763769600', b'"serial":NaN'))


def test_encode_validates() -> None:
    bad = replace(make_payload(), host="no spaces allowed")
    with pytest.raises(InputError):
        encode_payload(bad)
    with pytest.raises(InputError):
        encode_payload(replace(make_payload(), fingerprint_key=b"x"))
    with pytest.raises(InputError):
        encode_payload(replace(make_payload(), serial=0))


names = st.from_regex(r"[a-z0-9_][a-z0-9_.-]{0,8}(/[a-z0-9_][a-z0-9_-]{0,8}){0,2}", fullmatch=True)


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(names, st.binary(max_size=64), min_size=0, max_size=5),
    st.integers(min_value=1, max_value=2**63 - 1),
)
def test_roundtrip_property(values: dict[str, bytes], serial: int) -> None:
    values = {
        k: v for k, v in values.items() if ".." not in k.split("/") and "." not in k.split("/")
    }
    payload = make_payload(serial, secrets=values)
    data = encode_payload(payload)
    again = decode_payload(data)
    assert again == payload
    assert encode_payload(again) == data


@pytest.mark.parametrize(
    ("data", "needle"), [(b'{"a": 1, "a": 2}', "duplicate field 'a'"), (b"[NaN]", "NaN")]
)
def test_strict_json_refusals_name_the_file(data: bytes, needle: str) -> None:
    # The readers of store.json, audit.head and audit lines share load_json: every
    # refusal must say which file it is about.
    with pytest.raises(InputError) as info:
        load_json(data, "local store metadata /x/store.json")
    assert info.value.message.startswith("local store metadata /x/store.json: ")
    assert needle in info.value.message
