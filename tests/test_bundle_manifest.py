"""The manifest a bundle carries (optional payload field ``manifest``)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from aux_secrets.core.bundle import decode_payload, encode_payload
from aux_secrets.core.manifest import manifest_to_dict, parse_manifest
from aux_secrets.errors import InputError
from tests.helpers import FIXTURES
from tests.test_bundle import encode_doc, make_payload

MANIFESTS = sorted((FIXTURES / "manifests").glob("*.json")) + sorted(
    (FIXTURES / "manifests").glob("*.toml")
)


def _manifest(path: Path, host: str = "web1"):  # type: ignore[no-untyped-def]
    parsed = parse_manifest(path.read_bytes(), filename=path.name)
    return replace(parsed, host=host)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_a_carried_manifest_round_trips(path: Path) -> None:
    manifest = _manifest(path)
    data = encode_payload(replace(make_payload(), manifest=manifest))
    decoded = decode_payload(data)
    assert decoded.manifest is not None
    assert manifest_to_dict(decoded.manifest) == manifest_to_dict(manifest)
    assert encode_payload(decoded) == data


def test_no_manifest_is_the_field_absent() -> None:
    data = encode_payload(make_payload())
    assert b'"manifest"' not in data
    assert decode_payload(data).manifest is None
    doc = json.loads(data)
    doc["manifest"] = None  # absent is written by leaving it out: null is not canonical
    with pytest.raises(InputError):
        decode_payload(encode_doc(doc))


def test_a_manifest_for_another_host_is_refused() -> None:
    other = _manifest(MANIFESTS[0], host="web2")
    with pytest.raises(InputError, match="manifest is not for host 'web1'"):
        encode_payload(replace(make_payload(), manifest=other))
    doc = json.loads(encode_payload(replace(make_payload(), manifest=_manifest(MANIFESTS[0]))))
    doc["manifest"]["host"] = "web2"
    with pytest.raises(InputError, match=r"\$\.manifest\.host"):
        decode_payload(encode_doc(doc))


@pytest.mark.parametrize(
    "bad",
    [[], "x", {"version": 9, "host": "web1"}, {"version": 1, "host": "web1", "colour": 1}],
)
def test_a_garbage_carried_manifest_is_refused_naming_it(bad: object) -> None:
    doc = json.loads(encode_payload(make_payload()))
    doc["manifest"] = bad
    with pytest.raises(InputError) as caught:
        decode_payload(encode_doc(doc))
    assert "manifest" in caught.value.message
