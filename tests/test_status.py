"""`aux-secrets status`: metadata only, keyed fingerprints, never a value."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from aux_secrets.cli.status import status_report
from aux_secrets.core.fingerprint import fingerprint
from tests.helpers import assert_one_line_error, cli
from tests.test_localstore_support import FP_KEY, Host, payload, rotating_payload


def test_status_json_before_and_after_activate(tmp_path: Path) -> None:
    host = Host(tmp_path)
    empty = cli("status", "--json", *host.cli_args(), env=host.cli_env)
    assert empty.returncode == 0, empty.stderr
    doc = json.loads(empty.stdout)
    assert doc["active"] is None and doc["backend"] == "systemd-creds"
    assert doc["secrets"]["db"] == {
        "source": "store",
        "inManifest": True,
        "inStore": False,
        "fingerprint": None,
        "label": None,
        "stale": None,
        "valuesEnd": None,
        "runsOutSoon": False,
        "expires": None,
        "installed": None,
        "slots": [],
    }
    p = rotating_payload(4)
    host.store().activate(host.bundle(p), "web1")
    result = cli("status", "--json", *host.cli_args(), env=host.cli_env)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["active"]["serial"] == 4
    assert doc["active"]["bundleId"] == p.bundle_id
    assert doc["active"]["created"] == "2026-11-22T12:00:00Z"
    assert doc["host"] == "web1"
    assert doc["secrets"]["db"]["fingerprint"] == fingerprint(FP_KEY, "db", b"db-pass-4")
    assert doc["secrets"]["db"]["source"] == "store"
    assert doc["secrets"]["talos/hmac"]["source"] == "derive"
    assert len(doc["secrets"]["talos/hmac"]["slots"]) == 3
    for value in (b"db-pass-4", b"hmac-11", b"hmac-12"):
        assert value not in result.stdout
        assert __import__("base64").b64encode(value) not in result.stdout


def test_rotation_picks_the_live_slot_by_the_clock(tmp_path: Path) -> None:
    host = Host(tmp_path, backend="plain")
    host.store().activate(host.bundle(rotating_payload(1)), "web1")
    manifest = host.manifest
    nov = status_report(manifest, host.root, datetime(2026, 11, 20, tzinfo=UTC))
    dec = status_report(manifest, host.root, datetime(2026, 12, 2, tzinfo=UTC))
    later = status_report(manifest, host.root, datetime(2027, 2, 1, tzinfo=UTC))
    hmac = "talos/hmac"
    assert nov["secrets"][hmac]["label"] == "2026-11"
    assert nov["secrets"][hmac]["fingerprint"] == fingerprint(FP_KEY, hmac, b"hmac-11")
    assert nov["nextRotation"] == "2026-12-01T00:00:00Z"
    assert dec["secrets"][hmac]["label"] == "2026-12"
    assert dec["secrets"][hmac]["fingerprint"] == fingerprint(FP_KEY, hmac, b"hmac-12")
    assert dec["nextRotation"] == "2027-01-01T00:00:00Z"
    # The bundle ran out of slots: the last value is still the one served, marked stale.
    assert later["secrets"][hmac]["fingerprint"] == fingerprint(FP_KEY, hmac, b"hmac-12")
    assert later["secrets"][hmac]["stale"] == "values-ran-out"
    assert later["secrets"][hmac]["valuesEnd"] == "2027-01-01T00:00:00Z"
    assert later["stale"] == [hmac]
    assert later["nextRotation"] is None
    assert dec["stale"] == [] and not dec["clockBehind"]
    assert nov["clockBehind"]  # 2026-11-20 is before the bundle was made (11-22)
    soon = status_report(manifest, host.root, datetime(2026, 12, 29, tzinfo=UTC))
    assert soon["runningOut"] == [hmac] and soon["stale"] == []
    # A clock before the bundle was made: named, and the bundle's values are the live ones.
    epoch = status_report(manifest, host.root, datetime(1970, 1, 1, tzinfo=UTC))
    assert epoch["clockBehind"] is True
    assert epoch["secrets"][hmac]["label"] == "2026-11"
    assert epoch["nextRotation"] == "2026-12-01T00:00:00Z"
    assert epoch["stale"] == []


def test_status_shows_generation_and_unknown_secrets(tmp_path: Path) -> None:
    host = Host(tmp_path, backend="age", secrets={"db": {"source": {"store": "db"}}})
    host.store().activate(host.bundle(payload(1)), "web1")
    (host.root / "run/aux-secrets.d/7").mkdir(parents=True)
    os.symlink("aux-secrets.d/7", host.root / "run/aux-secrets")
    result = cli("status", "--json", *host.cli_args(), env=host.cli_env)
    doc = json.loads(result.stdout)
    assert doc["generation"] == "7"
    assert doc["backend"] == "age"
    assert doc["secrets"]["api/token"]["inManifest"] is False
    assert doc["secrets"]["api/token"]["inStore"] is True


def test_status_human_output(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.store().activate(host.bundle(payload(2)), "web1")
    result = cli("status", *host.cli_args(), env=host.cli_env)
    assert result.returncode == 0, result.stderr
    text = result.stdout.decode()
    assert "serial 2" in text and "backend systemd-creds" in text
    assert "missing from store" in text  # talos/hmac is in the manifest only
    assert fingerprint(FP_KEY, "db", b"db-pass-2") in text


def test_status_without_manifest_uses_defaults(tmp_path: Path) -> None:
    result = cli("status", "--json", "--root", tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["storeDir"] == str(tmp_path / "var/lib/aux-secrets")
    assert doc["secrets"] == {} and doc["active"] is None


def test_status_bad_metadata_is_one_line(tmp_path: Path) -> None:
    host = Host(tmp_path, backend="plain")
    host.store().activate(host.bundle(payload(1)), "web1")
    meta = host.store_dir / "store.json"
    for bad in (
        b"",
        b"garbage",
        meta.read_bytes()[:50],
        meta.read_bytes().replace(b'"version":1', b'"version":2'),
    ):
        meta.write_bytes(bad)
        assert_one_line_error(cli("status", *host.cli_args()), "store.json")


def test_status_missing_explicit_manifest(tmp_path: Path) -> None:
    assert_one_line_error(
        cli("status", "--manifest", tmp_path / "nope.json", "--root", tmp_path), "nope.json"
    )
