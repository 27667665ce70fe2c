"""Frozen audit-log and local-store vectors (hashes checked with sha256sum)."""

from __future__ import annotations

import hashlib

import pytest

from aux_secrets.core.audit import decode_head, verify_log
from aux_secrets.core.bundle import decode_payload
from aux_secrets.core.localstore import decode_meta, encode_meta, open_blob, parse_blob
from aux_secrets.errors import DecryptError, InputError
from tests.helpers import VECTORS

AUDIT = VECTORS / "audit-log"
STORE = VECTORS / "local-store"


def test_audit_vector_verifies() -> None:
    data = (AUDIT / "audit.jsonl").read_bytes()
    head = decode_head((AUDIT / "audit.head").read_bytes())
    entries = verify_log(data, head)
    assert [e.event.event for e in entries] == ["activate", "install", "install"]
    assert entries[1].event.restart_units == ("postgresql.service",)
    assert entries[1].event.generation == 1
    expected = [
        line.split()[1]
        for line in (AUDIT / "hashes.txt").read_text().splitlines()
        if not line.startswith("#")
    ]
    assert [e.hash for e in entries] == expected
    assert entries[2].prev == expected[1]


def test_audit_vector_each_line_tampered() -> None:
    data = (AUDIT / "audit.jsonl").read_bytes()
    head = decode_head((AUDIT / "audit.head").read_bytes())
    for index in range(0, len(data) - 1, 37):
        if data[index : index + 1] in (b"\n",):
            continue
        tampered = data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]
        with pytest.raises(InputError):
            verify_log(tampered, head)


def test_local_store_vector_opens() -> None:
    payload = (VECTORS / "bundle" / "payload.json").read_bytes()
    meta_bytes = (STORE / "store.json").read_bytes()
    meta = decode_meta(meta_bytes)
    assert encode_meta(meta) == meta_bytes
    blob_bytes = (STORE / meta.blob).read_bytes()
    assert hashlib.sha256(blob_bytes).hexdigest() == meta.blob_sha256
    blob = parse_blob(blob_bytes)
    opened = open_blob(
        blob, blob.key_blob, host=meta.host, serial=meta.serial, bundle_id=meta.bundle_id
    )
    assert opened == payload
    assert decode_payload(opened).bundle_id == meta.bundle_id
    fps = {
        (name, label): fp
        for name, label, fp in (
            line.split()
            for line in (VECTORS / "bundle" / "fingerprints.txt").read_text().splitlines()
            if not line.startswith("#")
        )
    }
    for (name, label), fp in fps.items():
        slot = next(s for s in meta.secrets[name].slots if s.label == label)
        assert slot.fingerprint == fp


def test_local_store_vector_tampered() -> None:
    meta = decode_meta((STORE / "store.json").read_bytes())
    data = (STORE / meta.blob).read_bytes()
    for index in (len(data) // 3, len(data) - 1):
        tampered = data[:index] + bytes([data[index] ^ 0x80]) + data[index + 1 :]
        blob = parse_blob(tampered)
        with pytest.raises(DecryptError):
            open_blob(
                blob, blob.key_blob, host=meta.host, serial=meta.serial, bundle_id=meta.bundle_id
            )
