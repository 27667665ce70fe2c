"""A store secret's expiry date travels in the bundle; the host's `status` warns ahead of it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from aux_secrets.core.bundle import BundleSecret, decode_payload, encode_payload
from aux_secrets.core.localstore import decode_meta, encode_meta, meta_for
from tests.bundles import signed_bundle
from tests.helpers import assert_one_line_error, cli
from tests.provision_helpers import HostRoot, Vault, make_host_root, make_vault
from tests.test_localstore_support import Host, payload
from tests.test_provision_local import _host_key

STORE_SECRETS = {
    "api/token": {"source": {"store": "api-token"}},
    "ci/key": {"source": {"store": "ci-key"}},
}


def _provisioned(tmp_path: Path, expires: str) -> tuple[Vault, HostRoot]:
    """api-token expires on ``expires``, ci-key has no expiry; provisioned with --local."""
    vault = make_vault(tmp_path)
    key, pub = _host_key(tmp_path)
    host = make_host_root(tmp_path, "web1", key, STORE_SECRETS)
    added = cli(
        "store", "add", "api-token", "--expires", expires, *vault.args(), input=b"SENSITIVE-TOKEN"
    )
    assert added.returncode == 0, added.stderr
    assert cli("store", "add", "ci-key", *vault.args(), input=b"SENSITIVE-KEY").returncode == 0
    registered = cli(
        "host", "add", "web1", "--ssh-host-key", pub, "--manifest", host.manifest,
        "--vault", vault.root,
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    done = cli("provision", "--host", "web1", "--local", "--root", host.root, *vault.args())
    assert done.returncode == 0, done.stderr
    return vault, host


def test_status_warns_of_a_store_value_that_expires_soon(tmp_path: Path) -> None:
    soon = (datetime.now(UTC).date() + timedelta(days=5)).isoformat()
    _, host = _provisioned(tmp_path, soon)
    shown = cli("status", "--root", host.root)
    assert shown.returncode == 0, shown.stderr
    warnings = [line for line in shown.stderr.decode().splitlines() if "api/token" in line]
    assert len(warnings) == 1
    assert f"its store value expires on {soon} (in 5 days)" in warnings[0]
    assert "ci/key" not in shown.stderr.decode()
    assert f"EXPIRES {soon}" in shown.stdout.decode()
    as_json = cli("status", "--json", "--root", host.root)
    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["secrets"]["api/token"]["expires"] == soon
    assert doc["secrets"]["ci/key"]["expires"] is None
    assert doc["expiring"] == ["api/token"]
    assert b"SENSITIVE" not in as_json.stdout + as_json.stderr + shown.stdout + shown.stderr
    meta = json.loads((host.root / "var/lib/aux-secrets/store.json").read_bytes())
    assert meta["secrets"]["api/token"]["expires"] == soon
    assert "expires" not in meta["secrets"]["ci/key"]


def test_status_names_an_expired_value_and_not_a_distant_one(tmp_path: Path) -> None:
    from aux_secrets.cli.status import status_report, warning_lines

    far = (datetime.now(UTC).date() + timedelta(days=60)).isoformat()
    _, host = _provisioned(tmp_path, far)
    shown = cli("status", "--json", "--root", host.root)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["expiring"] == []
    assert "api/token" not in shown.stderr.decode()
    # The same store, read 61 days later: the value has expired.
    later = datetime.now(UTC).replace(microsecond=0) + timedelta(days=61)
    report = status_report(None, host.root, later)
    assert report["expiring"] == ["api/token"]
    assert any(f"its store value EXPIRED on {far}" in line for line in warning_lines(report))


def test_an_old_payload_without_expires_still_activates(tmp_path: Path) -> None:
    host = Host(tmp_path)
    bundle = host.bundle(payload(1))
    done = cli(
        "activate", "--bundle", "-", *host.cli_args(), input=bundle, env=host.cli_env
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = cli("status", "--json", *host.cli_args(), env=host.cli_env)
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    assert doc["expiring"] == []
    assert doc["secrets"]["db"]["expires"] is None


def test_expires_round_trips_in_payload_and_metadata() -> None:
    p = payload(3)
    dated = BundleSecret(slots=p.secrets["db"].slots, expires=date(2027, 3, 1))
    p = replace(p, secrets={**p.secrets, "db": dated})
    data = encode_payload(p)
    assert b'"expires":"2027-03-01"' in data
    back = decode_payload(data)
    assert back.secrets["db"].expires == date(2027, 3, 1)
    assert back.secrets["api/token"].expires is None
    meta = meta_for(
        back, backend="plain", credential_key=None, blob="store-3.bin", blob_sha256="0" * 64
    )
    again = decode_meta(encode_meta(meta))
    assert again.secrets["db"].expires == date(2027, 3, 1)
    assert again.secrets["api/token"].expires is None


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ('"soon"', "expected a date like 2026-12-31"),
        ("20270301", "expected a date like 2026-12-31"),
        ("null", "expected a date like 2026-12-31"),
        ('"2027-02-30"', "is not a valid date"),
        ('"2027-3-01"', "expected a date like 2026-12-31"),
    ],
)
def test_a_malformed_expires_is_refused_naming_the_field(value: str, needle: str) -> None:
    from aux_secrets.errors import InputError

    data = encode_payload(payload(3))
    bad = data.replace(b'"db":{', b'"db":{"expires":' + value.encode() + b",", 1)
    assert bad != data
    with pytest.raises(InputError) as caught:
        decode_payload(bad)
    assert "$.secrets.db.expires" in caught.value.message and needle in caught.value.message
    assert "\n" not in caught.value.message
    meta_doc = json.loads(
        encode_meta(
            meta_for(
                payload(3),
                backend="plain",
                credential_key=None,
                blob="store-3.bin",
                blob_sha256="0" * 64,
            )
        )
    )
    meta_doc["secrets"]["db"]["expires"] = json.loads(value)
    with pytest.raises(InputError) as in_meta:
        decode_meta(json.dumps(meta_doc).encode())
    assert "$.secrets.db.expires" in in_meta.value.message


def test_a_bundle_with_a_malformed_expires_is_refused_by_activate(tmp_path: Path) -> None:
    host = Host(tmp_path)
    data = encode_payload(payload(1))
    bad = data.replace(b'"db":{', b'"db":{"expires":17,', 1)
    done = cli(
        "activate", "--bundle", "-", *host.cli_args(),
        input=signed_bundle(bad, [host.recipient]), env=host.cli_env,
    )  # fmt: skip
    assert_one_line_error(done, "$.secrets.db.expires", "expected a date")
    assert not (host.store_dir / "store.json").exists()


def test_host_and_operator_warn_over_the_same_window(tmp_path: Path) -> None:
    """`status`, `store list` and provision/verify's notes flag a value EXPIRY_WARNING_DAYS
    ahead and not a day earlier (the host once said 14 and the operator side 30)."""
    from aux_secrets.adapters.vault import Vault as OpenVault
    from aux_secrets.cli.status import status_report
    from aux_secrets.cli.store import _expiry_state
    from aux_secrets.core.expiry import EXPIRY_WARNING_DAYS
    from aux_secrets.core.manifest import parse_manifest
    from aux_secrets.workflows.usage import expiry_notes

    assert EXPIRY_WARNING_DAYS == 30
    now = datetime.now(UTC).replace(microsecond=0)
    edge = (now + timedelta(days=EXPIRY_WARNING_DAYS)).date()
    vault, host = _provisioned(tmp_path, edge.isoformat())
    day_before = now - timedelta(days=1)
    assert status_report(None, host.root, now)["expiring"] == ["api/token"]
    assert status_report(None, host.root, day_before)["expiring"] == []

    manifest = parse_manifest(host.manifest.read_bytes(), filename="manifest.json")
    opened = OpenVault.discover(vault.root)
    (note,) = expiry_notes(opened, manifest, now.date())
    assert note[0] == "api/token" and f"(in {EXPIRY_WARNING_DAYS} days)" in note[1]
    assert expiry_notes(opened, manifest, day_before.date()) == []

    listed = json.loads(cli("store", "list", "--json", "--vault", vault.root).stdout)
    flags = {row["name"]: (row["expiring"], row["flag"]) for row in listed["secrets"]}
    assert flags == {
        "api-token": (True, f"expires in {EXPIRY_WARNING_DAYS} days"),
        "ci-key": (False, ""),
    }
    assert _expiry_state(edge, day_before.date()) == (EXPIRY_WARNING_DAYS + 1, "")
    status_help = cli("status", "--help").stdout.decode()
    assert f"within {EXPIRY_WARNING_DAYS} days" in " ".join(status_help.split())
