"""settings.bundleSigners: strict parsing in Python, the same acceptance in nix/checks.nix."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from aux_secrets.core.bundle_sign import public_key
from aux_secrets.core.manifest import manifest_to_dict, parse_manifest
from aux_secrets.errors import InputError
from tests.bundles import OTHER_SIGNER_SEED, TEST_SIGNER_LINE
from tests.test_nix_manifest import cfg_with, failed, manifest_of

BARE = base64.b64encode(public_key(OTHER_SIGNER_SEED)).decode()
GOOD = [TEST_SIGNER_LINE, " ".join(TEST_SIGNER_LINE.split()[:2]), BARE]
BAD = [
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7",
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAOhB7",
    BARE[:-2],
    "",
]


def manifest(signers: object) -> bytes:
    doc = {
        "version": 1,
        "host": "web1",
        "settings": {"bundleSigners": signers},
        "secrets": {"a": {"source": {"store": "a"}}},
    }
    return json.dumps(doc).encode()


def test_default_is_empty_and_written_out() -> None:
    parsed = parse_manifest(b'{"version":1,"host":"h","secrets":{}}', filename="m.json")
    assert parsed.settings.bundle_signers == ()
    assert manifest_to_dict(parsed)["settings"]["bundleSigners"] == []


def test_good_signers_kept_as_written() -> None:
    parsed = parse_manifest(manifest(GOOD), filename="m.json")
    assert parsed.settings.bundle_signers == tuple(GOOD)


@pytest.mark.parametrize("bad", BAD)
def test_bad_signer_refused_with_its_json_path(bad: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_manifest(manifest([TEST_SIGNER_LINE, bad]), filename="m.json")
    # The path names the list item the way every manifest list is named.
    assert '$.settings.bundleSigners["1"]' in caught.value.message
    assert "ssh-ed25519" in caught.value.message or "must not be empty" in caught.value.message


def test_not_a_list_refused() -> None:
    with pytest.raises(InputError, match=r"\$\.settings\.bundleSigners: expected a list"):
        parse_manifest(manifest(TEST_SIGNER_LINE), filename="m.json")


def test_nix_passes_signers_through_and_checks_them(tmp_path: Path) -> None:
    listed = "[ " + " ".join(json.dumps(s) for s in GOOD) + " ]"
    cfg = cfg_with(settings=f"{{ bundleSigners = {listed}; }}")
    produced = manifest_of(cfg, tmp_path)
    assert produced["settings"]["bundleSigners"] == GOOD  # type: ignore[index]
    assert failed(cfg, tmp_path) == []
    for bad in BAD:
        messages = failed(
            cfg_with(settings=f"{{ bundleSigners = [ {json.dumps(bad)} ]; }}"), tmp_path
        )
        assert len(messages) == 1 and "aux.settings.bundleSigners" in messages[0], (bad, messages)
