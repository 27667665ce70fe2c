"""The signed bundle envelope (format 2): frozen vectors, strict decoding, signer forms."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from aux_secrets.adapters.bundle_age import open_bundle
from aux_secrets.core.bundle_sign import (
    BAD_SIGNATURE,
    UNSIGNED,
    open_envelope,
    parse_signer,
    public_key,
    sign_payload,
    signer_fingerprint,
    signer_seed,
    signer_ssh_line,
    verify_signature,
)
from aux_secrets.errors import DecryptError, FormatVersionError, InputError
from tests.bundles import OTHER_SIGNER_SEED, TEST_SIGNER, TEST_SIGNER_LINE, TEST_SIGNER_SEED
from tests.helpers import require_program

VEC = Path(__file__).parent / "vectors" / "bundle"
PAYLOAD = (VEC / "payload.json").read_bytes()
ENVELOPE = (VEC / "envelope.json").read_bytes()
KEY = VEC / "host_ed25519_key"


def doc(data: bytes = ENVELOPE) -> dict[str, object]:
    result = json.loads(data)
    assert isinstance(result, dict)
    return result


def encode(document: dict[str, object]) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def test_vector_envelope_opens_and_is_reproducible() -> None:
    envelope = open_envelope(ENVELOPE)
    assert envelope.payload == PAYLOAD
    assert envelope.signer == TEST_SIGNER
    assert signer_fingerprint(envelope.signer) == (
        "ed25519 SHA256:lbmsoA0yIEcEiVDRnMWuzm+nV+3ZEEpVIURqFoeSspg"
    )
    # Ed25519 is deterministic: signing the same payload again gives the frozen bytes.
    assert sign_payload(TEST_SIGNER_SEED, PAYLOAD) == ENVELOPE


def test_vector_age_files_from_the_age_cli() -> None:
    assert open_envelope(open_bundle((VEC / "envelope.ssh.age").read_bytes(), [KEY])).payload == (
        PAYLOAD
    )
    tampered = open_bundle((VEC / "envelope.tampered.ssh.age").read_bytes(), [KEY])
    with pytest.raises(DecryptError) as caught:
        open_envelope(tampered)
    assert caught.value.message == BAD_SIGNATURE
    forged = open_envelope(open_bundle((VEC / "envelope.forged.ssh.age").read_bytes(), [KEY]))
    assert forged.signer == public_key(OTHER_SIGNER_SEED) != TEST_SIGNER


@pytest.mark.parametrize("name", ["payload.ssh.age"])
def test_v1_bundle_is_refused_as_unsigned(name: str) -> None:
    opened = open_bundle((VEC / name).read_bytes(), [KEY])
    with pytest.raises(FormatVersionError) as caught:
        open_envelope(opened)
    assert caught.value.message == UNSIGNED


def test_signer_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    import subprocess

    keygen = require_program("ssh-keygen", "openssh-client")
    pub = tmp_path / "signer.pub"
    pub.write_text(signer_ssh_line(TEST_SIGNER) + "\n")
    shown = subprocess.run([keygen, "-lf", str(pub)], check=True, capture_output=True, text=True)
    assert shown.stdout.split()[1] == signer_fingerprint(TEST_SIGNER).split()[1]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("signature", base64.b64encode(b"\x00" * 64).decode()),
        ("signer", base64.b64encode(public_key(OTHER_SIGNER_SEED)).decode()),
        ("payload", base64.b64encode(PAYLOAD.replace(b"web1", b"web2")).decode()),
    ],
)
def test_changed_field_fails_the_signature(field: str, value: str) -> None:
    changed = doc()
    changed[field] = value
    with pytest.raises(DecryptError) as caught:
        open_envelope(encode(changed))
    assert caught.value.message == BAD_SIGNATURE


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d.update(extra=1), "$.extra: unknown field"),
        (lambda d: d.pop("signature"), "$.signature: missing field"),
        (lambda d: d.update(version=3), "bundle format 3 is not supported"),
        (lambda d: d.update(version=True), "bundle format True is not supported"),
        (lambda d: d.update(signer="AAAA"), "$.signer: expected 32 bytes"),
        (lambda d: d.update(signature="!!"), "$.signature: not valid base64"),
        (lambda d: d.update(payload=7), "$.payload: expected base64 text"),
    ],
)
def test_malformed_envelope_refused(mutate: object, expected: str) -> None:
    changed = doc()
    mutate(changed)  # type: ignore[operator]
    with pytest.raises((InputError, FormatVersionError)) as caught:
        open_envelope(encode(changed))
    assert expected in caught.value.message


def test_non_canonical_truncated_and_garbage_refused() -> None:
    with pytest.raises(InputError, match="canonical"):
        open_envelope(json.dumps(doc(), indent=1, sort_keys=True).encode())
    for cut in (0, 1, len(ENVELOPE) // 2, len(ENVELOPE) - 1):
        with pytest.raises(InputError):
            open_envelope(ENVELOPE[:cut])
    with pytest.raises(InputError):
        open_envelope(b"\xff\xfe garbage")
    with pytest.raises(InputError, match="expected a JSON object"):
        open_envelope(b"[]")


def test_verify_raises_never_returns_false() -> None:
    envelope = open_envelope(ENVELOPE)
    verify_signature(envelope.signer, envelope.signature, envelope.payload)
    with pytest.raises(DecryptError):
        verify_signature(envelope.signer, envelope.signature, envelope.payload + b" ")
    with pytest.raises(DecryptError):
        verify_signature(b"short", envelope.signature, envelope.payload)


def test_parse_signer_forms() -> None:
    assert parse_signer(TEST_SIGNER_LINE) == TEST_SIGNER
    assert parse_signer(" ".join(TEST_SIGNER_LINE.split()[:2])) == TEST_SIGNER
    assert parse_signer(base64.b64encode(TEST_SIGNER).decode()) == TEST_SIGNER
    for bad in (
        "",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ",
        "ssh-ed25519 AAAA",
        base64.b64encode(b"x" * 31).decode(),
        "ssh-ed25519 !!!",
    ):
        with pytest.raises(InputError):
            parse_signer(bad)


class _Stream:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, n: int) -> bytes:
        return self.data[:n]


class _Scheme:
    """Records which realm and purpose the signer seed comes from."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, str]] = []

    def stream(self, realm: str, purpose: str) -> _Stream:
        self.asked.append((realm, purpose))
        return _Stream(bytes(range(64)))


def test_signer_seed_comes_from_the_reserved_realm() -> None:
    scheme = _Scheme()
    assert signer_seed(scheme) == bytes(range(32))  # type: ignore[arg-type]
    assert scheme.asked == [("aux-secrets/bundle-signer/v1", "key(ED25519)")]
