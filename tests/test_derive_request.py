"""derive(): request validation, purposes, defaults and the realm policy."""

from __future__ import annotations

import pytest

from aux_secrets.core.derive import (
    CHARSETS,
    ENCODINGS,
    TYPES,
    DeriveRequest,
    check_user_realm,
    default_encoding,
    derive,
    purpose_of,
)
from aux_secrets.core.gokey import AesCtrStream
from aux_secrets.errors import AuxError, PolicyError, UsageError


class RecordingScheme:
    """A scheme whose streams are fixed AES-CTR streams; it records what was asked."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def stream(self, realm: str, purpose: str) -> AesCtrStream:
        self.calls.append((realm, purpose))
        return AesCtrStream(bytes(32))


def test_contract_names() -> None:
    assert TYPES == (
        "pass",
        "raw",
        "ed25519",
        "x25519",
        "ec256",
        "ec384",
        "ec521",
        "rsa2048",
        "rsa4096",
    )
    assert CHARSETS == ("gokey", "alnum", "urlsafe", "hex", "base64", "digits")
    assert {t: default_encoding(t) for t in TYPES} == {
        "pass": "text",
        "raw": "binary",
        "ed25519": "pem",
        "x25519": "pem",
        "ec256": "pem",
        "ec384": "pem",
        "ec521": "pem",
        "rsa2048": "pem",
        "rsa4096": "pem",
    }


@pytest.mark.parametrize(
    ("request_", "purpose"),
    [
        (DeriveRequest("r"), "pass"),
        (DeriveRequest("r", charset="urlsafe"), "pass(urlsafe)"),
        (DeriveRequest("r", "raw"), "raw"),
        (DeriveRequest("r", "ed25519"), "key(ED25519)"),
        (DeriveRequest("r", "x25519"), "key(X25519)"),
        (DeriveRequest("r", "ec521"), "key(EC521)"),
        (DeriveRequest("r", "rsa4096"), "key(RSA4096)"),
    ],
)
def test_purposes_are_gokeys_suffixes(request_: DeriveRequest, purpose: str) -> None:
    scheme = RecordingScheme()
    assert purpose_of(request_) == purpose
    if request_.type != "rsa4096":
        derive(scheme, request_)
        assert scheme.calls == [("r", purpose)]


@pytest.mark.parametrize(
    ("request_", "error", "needle"),
    [
        (DeriveRequest("r", "rsa1024"), UsageError, "unknown type 'rsa1024'"),
        (DeriveRequest("r", charset="emoji"), UsageError, "unknown charset 'emoji'"),
        (DeriveRequest("r", "raw", charset="hex"), UsageError, "charset"),
        (DeriveRequest("r", "ed25519", length=32), UsageError, "--length"),
        (DeriveRequest("r", "rsa2048", length=10), UsageError, "--length"),
        (DeriveRequest("r", length=7), PolicyError, "minimum of 8"),
        (DeriveRequest("r", length=0), PolicyError, "minimum of 8"),
        (DeriveRequest("r", length=-3), PolicyError, "minimum"),
        (DeriveRequest("r", charset="alnum", length=0), PolicyError, "minimum of 1"),
        (DeriveRequest("r", length=5000), UsageError, "maximum"),
        (DeriveRequest("r", "raw", length=0), UsageError, "raw length 0"),
        (DeriveRequest(""), PolicyError, "realm is empty"),
        (DeriveRequest("r", encoding="hex"), UsageError, "does not apply to type pass"),
        (DeriveRequest("r", "ec256", encoding="openssh"), UsageError, "ec256"),
        (DeriveRequest("r", "raw", encoding="pem"), UsageError, "binary, hex, base64"),
        (DeriveRequest("r", public=True), UsageError, "no public half"),
        (DeriveRequest("r", "raw", public=True), UsageError, "no public half"),
        (DeriveRequest("r", "ed25519", minimums=(("upper", 1),)), UsageError, "pass only"),
        (DeriveRequest("r", charset="digits", minimums=(("upper", 1),)), PolicyError, "upper"),
        (DeriveRequest("r", charset="alnum", minimums=(("symbol", 1),)), UsageError, "symbol"),
        (
            DeriveRequest("r", charset="alnum", length=4, minimums=(("upper", 3), ("digit", 2))),
            PolicyError,
            "minimum of 5",
        ),
    ],
)
def test_bad_requests_fail_before_any_stream(
    request_: DeriveRequest, error: type[AuxError], needle: str
) -> None:
    scheme = RecordingScheme()
    with pytest.raises(error) as info:
        derive(scheme, request_)
    assert needle in info.value.message
    assert scheme.calls == []


def test_default_lengths() -> None:
    scheme = RecordingScheme()
    assert len(derive(scheme, DeriveRequest("r"))) == 10
    assert len(derive(scheme, DeriveRequest("r", charset="urlsafe"))) == 32
    assert len(derive(scheme, DeriveRequest("r", "raw"))) == 32
    assert len(derive(scheme, DeriveRequest("r", "raw", length=1000))) == 1000


def test_reserved_realms_are_for_callers_to_refuse() -> None:
    check_user_realm("db/web1")
    check_user_realm("aux-secrets")  # only the prefix with the slash is reserved
    for realm in ("", "aux-secrets/store/v1/x", "aux-secrets/"):
        with pytest.raises(PolicyError) as info:
            check_user_realm(realm)
        assert info.value.hint
    # The tool's own keys use the same schemes, so derive() itself does not refuse them.
    assert derive(RecordingScheme(), DeriveRequest("aux-secrets/store/v1/x", "raw"))


def test_every_listed_encoding_works() -> None:
    scheme = RecordingScheme()
    for type, encodings in ENCODINGS.items():
        if type.startswith("rsa"):
            continue  # covered in test_derive_encodings
        outs = {derive(scheme, DeriveRequest("r", type, encoding=e)) for e in encodings}
        assert len(outs) == len(encodings), type


def test_deterministic() -> None:
    request = DeriveRequest("r", "ec384")
    assert derive(RecordingScheme(), request) == derive(RecordingScheme(), request)
