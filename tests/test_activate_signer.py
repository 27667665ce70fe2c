"""`aux-secrets activate` only takes bundles signed by the vault's signer.

Anyone with the host's *public* key can make a valid age file; these tests are the
regressions for forged, unsigned and tampered bundles, pinned signers and trust on first use.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import pytest

from aux_secrets.adapters.bundle_age import seal_bundle
from aux_secrets.core.bundle import MAX_SERIAL, encode_payload
from aux_secrets.core.bundle_sign import public_key, sign_payload, signer_fingerprint
from tests.bundles import OTHER_SIGNER_SEED, TEST_SIGNER, TEST_SIGNER_LINE
from tests.helpers import assert_one_line_error, cli
from tests.test_localstore_support import Host, payload, rotating_payload

TEST_FP = signer_fingerprint(TEST_SIGNER)
OTHER_FP = signer_fingerprint(public_key(OTHER_SIGNER_SEED))


def activate(host: Host, bundle: bytes, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return cli(
        "activate", "--bundle", "-", *host.cli_args(), *extra, input=bundle, env=host.cli_env
    )


def status(host: Host) -> dict[str, object]:
    done = cli("status", "--json", *host.cli_args(), env=host.cli_env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert isinstance(result, dict)
    return result


def recorded_signer(host: Host) -> str | None:
    meta = json.loads((host.store_dir / "store.json").read_bytes())
    signer = meta["signer"]
    assert signer is None or isinstance(signer, str)
    return signer


@pytest.mark.parametrize("backend", ["systemd-creds", "age"])
def test_forged_bundle_with_huge_serial_refused_and_real_one_still_activates(
    tmp_path: Path, backend: str
) -> None:
    host = Host(tmp_path, backend=backend)
    assert activate(host, host.bundle(payload(10))).returncode == 0
    before = host.snapshot()
    forged = host.bundle(payload(MAX_SERIAL, values={"db": b"attacker"}), OTHER_SIGNER_SEED)
    result = activate(host, forged)
    assert_one_line_error(result, f"bundle signed by {OTHER_FP}", "but this host trusts")
    assert host.snapshot() == before
    # The replay guard was not poisoned: the vault's next bundle is still accepted.
    assert activate(host, host.bundle(rotating_payload(11))).returncode == 0
    assert status(host)["active"]["serial"] == 11  # type: ignore[index]
    install = cli("install", *host.cli_args(), env=host.cli_env)
    assert install.returncode == 0, install.stderr
    assert (host.root / "run/aux-secrets/db").read_bytes() == b"db-pass-11"


def test_unsigned_v1_bundle_refused(tmp_path: Path) -> None:
    host = Host(tmp_path)
    unsigned = seal_bundle(encode_payload(payload(1)), [host.recipient])
    result = activate(host, unsigned)
    assert_one_line_error(result, "unsigned bundle (format 1) refused")
    assert not (host.store_dir / "store.json").exists()
    assert activate(host, host.bundle(payload(1))).returncode == 0
    before = host.snapshot()
    assert activate(host, seal_bundle(encode_payload(payload(2)), [host.recipient])).returncode
    assert host.snapshot() == before


def _envelope_with(field: str, value: bytes) -> bytes:
    document = json.loads(sign_payload(bytes(range(32)), encode_payload(payload(2))))
    document[field] = base64.b64encode(value).decode()
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("signature", b"\x01" * 64),
        ("payload", encode_payload(payload(2, values={"db": b"changed"}))),
    ],
)
def test_tampered_signature_or_payload_refused(tmp_path: Path, field: str, value: bytes) -> None:
    host = Host(tmp_path)
    assert activate(host, host.bundle(payload(1))).returncode == 0
    before = host.snapshot()
    result = activate(host, seal_bundle(_envelope_with(field, value), [host.recipient]))
    assert_one_line_error(result, "signature does not verify")
    assert host.snapshot() == before


def test_pinned_signer_mismatch_refused_even_on_first_use(tmp_path: Path) -> None:
    host = Host(tmp_path, extra_settings={"bundleSigners": [TEST_SIGNER_LINE]})
    result = activate(host, host.bundle(payload(1), OTHER_SIGNER_SEED))
    assert_one_line_error(
        result, f"bundle signed by {OTHER_FP}, which is not in settings.bundleSigners"
    )
    assert not (host.store_dir / "store.json").exists()
    ok = activate(host, host.bundle(payload(1)))
    assert ok.returncode == 0, ok.stderr
    before = host.snapshot()
    forged = activate(host, host.bundle(payload(MAX_SERIAL), OTHER_SIGNER_SEED))
    assert_one_line_error(forged, "not in settings.bundleSigners")
    assert host.snapshot() == before
    # --trust-new-signer does not override a pin.
    again = activate(host, host.bundle(payload(5), OTHER_SIGNER_SEED), "--trust-new-signer")
    assert_one_line_error(again, "not in settings.bundleSigners")
    assert host.snapshot() == before


def test_pinned_signers_accept_any_listed_key_in_base64_form(tmp_path: Path) -> None:
    other = base64.b64encode(public_key(OTHER_SIGNER_SEED)).decode()
    host = Host(tmp_path, extra_settings={"bundleSigners": [TEST_SIGNER_LINE, other]})
    assert activate(host, host.bundle(payload(1))).returncode == 0
    done = activate(host, host.bundle(payload(2), OTHER_SIGNER_SEED))
    assert done.returncode == 0, done.stderr
    assert status(host)["active"]["signer"] == OTHER_FP  # type: ignore[index]


def test_trust_on_first_use_records_then_requires_the_signer(tmp_path: Path) -> None:
    host = Host(tmp_path)
    first = activate(host, host.bundle(payload(1)))
    assert first.returncode == 0, first.stderr
    assert TEST_FP.encode() in first.stderr
    assert recorded_signer(host) == base64.b64encode(TEST_SIGNER).decode()
    assert status(host)["active"]["signer"] == TEST_FP  # type: ignore[index]
    shown = cli("status", *host.cli_args(), env=host.cli_env)
    assert f"signer     {TEST_FP}".encode() in shown.stdout

    before = host.snapshot()
    refused = activate(host, host.bundle(payload(2), OTHER_SIGNER_SEED))
    assert_one_line_error(refused, f"bundle signed by {OTHER_FP}", f"trusts {TEST_FP}")
    assert b"--trust-new-signer" in refused.stderr
    assert host.snapshot() == before

    trusted = activate(host, host.bundle(payload(2), OTHER_SIGNER_SEED), "--trust-new-signer")
    assert trusted.returncode == 0, trusted.stderr
    assert f"trusting a new bundle signer {OTHER_FP} (replaces {TEST_FP})".encode() in (
        trusted.stderr
    )
    assert status(host)["active"]["signer"] == OTHER_FP  # type: ignore[index]
    # The new signer is now the recorded one: the old vault's bundles are refused.
    old = activate(host, host.bundle(payload(3)))
    assert_one_line_error(old, f"bundle signed by {TEST_FP}", f"trusts {OTHER_FP}")


def test_store_from_before_signing_records_the_first_signer(tmp_path: Path) -> None:
    host = Host(tmp_path)
    assert activate(host, host.bundle(payload(1))).returncode == 0
    meta_path = host.store_dir / "store.json"
    meta = json.loads(meta_path.read_bytes())
    del meta["signer"]  # store.json as written before bundles were signed
    meta_path.write_bytes(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    assert status(host)["active"]["signer"] is None  # type: ignore[index]
    done = activate(host, host.bundle(payload(2), OTHER_SIGNER_SEED))
    assert done.returncode == 0, done.stderr
    assert status(host)["active"]["signer"] == OTHER_FP  # type: ignore[index]


def test_age_backend_store_with_another_signer_is_refused_at_install(tmp_path: Path) -> None:
    host = Host(tmp_path, backend="age")
    assert activate(host, host.bundle(payload(1))).returncode == 0
    meta_path = host.store_dir / "store.json"
    meta = json.loads(meta_path.read_bytes())
    meta["signer"] = base64.b64encode(public_key(OTHER_SIGNER_SEED)).decode()
    meta_path.write_bytes(json.dumps(meta, sort_keys=True, separators=(",", ":")).encode() + b"\n")
    result = cli("install", *host.cli_args(), env=host.cli_env)
    assert_one_line_error(result, "not signed by the recorded bundle signer")
