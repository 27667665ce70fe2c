"""docs/spec/evolution.md: what a newer aux-secrets wrote, read by this one.

A NixOS rollback runs an older aux-secrets on the state a newer one left (the local
store, the audit log), and an older host takes a newer operator's bundles. Vectors in
tests/vectors/evolution/ (frozen, made with the standard library only) carry fields this
reader does not know: skipped, unless their object's ``critical`` list names them.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from aux_secrets.core.audit import decode_head, verify_log
from aux_secrets.core.bundle import canonical_json, decode_payload
from aux_secrets.core.localstore import decode_meta
from aux_secrets.errors import FormatVersionError, InputError
from tests.helpers import assert_one_line_error, cli
from tests.test_localstore_support import Host, rotating_payload

VECTORS = Path(__file__).parent / "vectors"
NEWER = VECTORS / "evolution"
UPGRADE = "upgrade aux-secrets on this host"


def test_a_newer_audit_log_verifies_and_its_new_field_is_hashed() -> None:
    data = (NEWER / "audit-newer.jsonl").read_bytes()
    entries = verify_log(data, decode_head((NEWER / "audit-newer.head").read_bytes()))
    plain = verify_log((VECTORS / "audit-log/audit.jsonl").read_bytes(), None)
    assert [e.event for e in entries] == [e.event for e in plain[:2]]
    assert entries[1].event == plain[1].event  # the same entry, the new field skipped
    # The skipped field is still under the hash: changing it is a changed entry.
    tampered = data.replace(b'"kind":"tpm2-quote"', b'"kind":"tpm2-quotf"')
    assert tampered != data
    with pytest.raises(InputError, match="hash does not match"):
        verify_log(tampered, None)


def test_a_critical_audit_field_is_refused() -> None:
    with pytest.raises(FormatVersionError, match="attestation") as info:
        verify_log((NEWER / "audit-critical.jsonl").read_bytes(), None)
    assert info.value.hint is not None and UPGRADE in info.value.hint


def test_a_newer_store_json_reads_as_the_one_without_its_fields() -> None:
    plain = decode_meta((VECTORS / "local-store/store.json").read_bytes())
    assert decode_meta((NEWER / "store-newer.json").read_bytes()) == plain
    with pytest.raises(FormatVersionError, match="recovery") as info:
        decode_meta((NEWER / "store-critical.json").read_bytes())
    assert info.value.hint is not None and UPGRADE in info.value.hint


def test_a_newer_bundle_payload_reads_as_the_one_without_its_fields() -> None:
    plain = decode_payload((VECTORS / "bundle/payload.json").read_bytes())
    assert decode_payload((NEWER / "payload-newer.json").read_bytes()) == plain
    with pytest.raises(FormatVersionError, match="owner") as info:
        decode_payload((NEWER / "payload-critical.json").read_bytes())
    assert info.value.hint is not None and UPGRADE in info.value.hint


def _newer_payload(serial: int, critical: bool = False) -> bytes:
    """This host's payload as a newer operator would send it: new fields at each level."""
    doc = json.loads(canonical_json(json.loads(_encoded(serial))))
    doc["origin"] = "ci.example.org"
    doc["secrets"]["db"]["owner"] = "team-db"
    doc["secrets"]["db"]["slots"][0]["sealedAt"] = "2026-11-22T00:00:00Z"
    if critical:
        doc["critical"] = ["origin"]
    return canonical_json(doc)


def _encoded(serial: int) -> bytes:
    from aux_secrets.core.bundle import encode_payload

    return encode_payload(rotating_payload(serial))


def test_a_host_after_a_rollback_still_installs_and_reports(tmp_path: Path) -> None:
    """What a newer aux-secrets left on the host, read through the real CLI."""
    host = Host(tmp_path)

    def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        return cli(*args, *host.cli_args(), env=host.cli_env)

    bundle = tmp_path / "newer.age"
    bundle.write_bytes(host.bundle_bytes(_newer_payload(1)))
    done = run("activate", "--bundle", str(bundle))
    assert done.returncode == 0, done.stderr
    meta_path = host.store_dir / "store.json"
    doc = json.loads(meta_path.read_bytes())
    doc["recovery"] = {"escrow": "none"}
    meta_path.write_bytes(canonical_json(doc) + b"\n")
    for args in (("install",), ("status", "--json")):
        result = run(*args)
        assert result.returncode == 0, result.stderr
    status = json.loads(run("status", "--json").stdout)
    assert status["active"]["serial"] == 1
    assert (host.store_dir / "credentials/db.cred").is_file()

    # The same with a field its writer marked critical: one line, nothing changed.
    doc["critical"] = ["recovery"]
    meta_path.write_bytes(canonical_json(doc) + b"\n")
    before = host.snapshot()
    refused = run("install")
    line = assert_one_line_error(refused, "recovery", "marked it critical")
    assert line and UPGRADE in refused.stderr.decode()
    assert host.snapshot() == before


def test_a_critical_field_in_a_bundle_is_refused_by_activate(tmp_path: Path) -> None:
    host = Host(tmp_path)
    bundle = tmp_path / "critical.age"
    bundle.write_bytes(host.bundle_bytes(_newer_payload(1, critical=True)))
    refused = cli("activate", "--bundle", bundle, *host.cli_args(), env=host.cli_env)
    assert_one_line_error(refused, "origin", "marked it critical")
    assert UPGRADE in refused.stderr.decode()
    assert host.snapshot() == {}
