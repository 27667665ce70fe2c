"""The frozen aux-v1 vectors (tests/vectors/aux-v1): read, never regenerated."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aux_secrets.core import auxv1
from aux_secrets.core.derive import DeriveRequest, derive
from aux_secrets.errors import FormatVersionError, InputError, WrongPasswordError
from tests.helpers import VECTORS

DIR = VECTORS / "aux-v1"
SCENARIOS: list[dict[str, Any]] = json.loads((DIR / "seed-files.json").read_text())
DERIVED: dict[str, Any] = json.loads((DIR / "derived.json").read_text())
STREAMS: dict[str, Any] = json.loads((DIR / "stream-keys.json").read_text())


@pytest.mark.parametrize("case", SCENARIOS, ids=lambda c: f"{c['file']}-{c['expect']}")
def test_seed_file_scenarios(case: dict[str, Any]) -> None:
    blob = (DIR / case["file"]).read_bytes()
    password = case["password"].encode()
    expect = case["expect"]
    if expect == "success":
        assert auxv1.unwrap_seed(blob, password).hex() == case["seed"]
        return
    kind: type[Exception] = {
        "wrong password": WrongPasswordError,
        "input error": InputError,
        "version error": FormatVersionError,
    }[expect]
    with pytest.raises(kind) as info:
        auxv1.unwrap_seed(blob, password)
    if expect == "input error":
        assert not isinstance(info.value, FormatVersionError)
    assert case.get("error", "") in str(info.value)


def test_seed_vector_opens_with_libsodium() -> None:
    """A second implementation (libsodium via PyNaCl) agrees on the wrapped seed."""
    import nacl.bindings
    import nacl.pwhash.argon2id

    blob = (DIR / "seed-ok.bin").read_bytes()
    header = auxv1.parse_header(blob)
    assert header.params.parallelism == 1  # libsodium's Argon2id has one lane
    key = nacl.pwhash.argon2id.kdf(
        32,
        DERIVED["password"].encode(),
        header.salt,
        opslimit=header.params.time_cost,
        memlimit=header.params.memory_kib * 1024,
    )
    seed = nacl.bindings.crypto_aead_chacha20poly1305_ietf_decrypt(
        blob[auxv1.HEADER_LEN :], blob[: auxv1.HEADER_LEN], header.nonce, key
    )
    assert seed.hex() == STREAMS["seed"]


@pytest.mark.parametrize("case", STREAMS["keys"], ids=lambda c: f"{c['purpose']}:{c['realm']}")
def test_stream_key_vectors(case: dict[str, Any]) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    seed = bytes.fromhex(STREAMS["seed"])
    scheme = auxv1.AuxV1(seed)
    assert scheme.stream_key(case["realm"], case["purpose"]).hex() == case["key"]
    assert scheme.stream(case["realm"], case["purpose"]).read(64).hex() == case["stream64"]
    info = b"aux-secrets/aux-v1/" + case["purpose"].encode() + b"\x00" + case["realm"].encode()
    independent = HKDF(hashes.SHA256(), 32, b"aux-secrets/aux-v1/seed", info).derive(seed)
    assert independent.hex() == case["key"]


@pytest.fixture(scope="module")
def vector_scheme() -> auxv1.AuxV1:
    blob = (DIR / DERIVED["seed_file"]).read_bytes()
    return auxv1.AuxV1(auxv1.unwrap_seed(blob, DERIVED["password"].encode()))


@pytest.mark.parametrize(
    "case", DERIVED["outputs"], ids=lambda c: "-".join(str(v) for v in c["request"].values())
)
def test_derived_vectors(case: dict[str, Any], vector_scheme: auxv1.AuxV1) -> None:
    value = derive(vector_scheme, DeriveRequest(**case["request"]))
    assert value.decode() == case["value"]
