"""The gokey scheme against frozen vectors: gokey 0.1.2's outputs and issue 2's v2 values."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest

from aux_secrets.core.derive import DeriveRequest, derive
from aux_secrets.core.gokey import (
    AesCtrStream,
    GokeySeeded,
    GokeyUnseeded,
    _hkdf_sha256_32,
    make_seed_file,
)
from tests.helpers import VECTORS

GOKEY = VECTORS / "gokey"
_DATA = json.loads((GOKEY / "vectors.json").read_text(encoding="utf-8"))
PASSWORD = (GOKEY / _DATA["password_file"]).read_bytes().strip()
SEED = (GOKEY / _DATA["seed_file"]).read_bytes()


def _case_id(case: dict[str, Any]) -> str:
    return f"{case['mode']}-{case['type']}-{case['length']}-{case['realm']}-{case.get('skip', 0)}"


def _params() -> list[Any]:
    out = []
    for case in _DATA["cases"]:
        marks = [pytest.mark.slow] if case["type"] == "rsa4096" else []
        out.append(pytest.param(case, id=_case_id(case), marks=marks))
    return out


@pytest.mark.parametrize("case", _params())
def test_gokey_oracle_vector(case: dict[str, Any]) -> None:
    if case["mode"] == "unseeded":
        scheme: GokeyUnseeded | GokeySeeded = GokeyUnseeded(PASSWORD)
    else:
        seed = (GOKEY / case.get("seed", _DATA["seed_file"])).read_bytes()
        scheme = GokeySeeded(PASSWORD, seed, "legacy", skip=case.get("skip", 0))
    request = DeriveRequest(case["realm"], case["type"], length=case["length"])
    assert derive(scheme, request) == base64.b64decode(case["output_base64"])


def test_vectors_cover_every_type_in_both_modes() -> None:
    seen = {(c["mode"], c["type"]) for c in _DATA["cases"]}
    types = ("pass", "raw", "ed25519", "x25519", "ec256", "ec384", "ec521", "rsa2048", "rsa4096")
    assert seen == {(m, t) for m in ("unseeded", "legacy") for t in types}


# --- seed mode v2: values from gokey's fixed code (issue 2) ------------------------------

V2_SEED_SHA256 = "edcbabee155b7e8687a2387aee202cba1f5bdfafefc114cc067fc0b3ab728999"


@pytest.fixture(scope="module")
def v2_seed() -> bytes:
    return make_seed_file(b"correct horse", bytes(range(256)))


def test_make_seed_file_follows_gokeys_recipe(v2_seed: bytes) -> None:
    assert len(v2_seed) == 256
    assert v2_seed[:12] == bytes(range(12))
    assert hashlib.sha256(v2_seed).hexdigest() == V2_SEED_SHA256


def test_v2_pass_raw_ed25519(v2_seed: bytes) -> None:
    scheme = GokeySeeded(b"correct horse", v2_seed, "v2")
    assert derive(scheme, DeriveRequest("example.com")) == b"5tAsg(Z#hR"
    raw = derive(scheme, DeriveRequest("example.com", "raw", encoding="hex"))
    assert raw == b"196fb38ab8fb4ed337edcc81357b3bf695d8e455be693e699797049975a7c36f"
    pem = derive(scheme, DeriveRequest("example.com", "ed25519"))
    assert pem == (
        b"-----BEGIN PRIVATE KEY-----\n"
        b"MC4CAQAwBQYDK2VwBCIEIJTLanhQVV7V4EnviU5BGVKZn+WDPgntSs70L4JlHbiG\n"
        b"-----END PRIVATE KEY-----\n"
    )


def test_legacy_mode_same_inputs(v2_seed: bytes) -> None:
    scheme = GokeySeeded(b"correct horse", v2_seed, "legacy")
    assert derive(scheme, DeriveRequest("example.com")) == b"bE|F8V?Xmd"


def test_legacy_keys_come_from_public_seed_bytes_only(v2_seed: bytes) -> None:
    """CVE-2025-13353: in legacy mode the stream depends only on the seed file's nonce and
    tag, which anyone holding the file can read; v2 also uses the sealed body."""
    legacy = GokeySeeded(b"correct horse", v2_seed, "legacy")
    v2 = GokeySeeded(b"correct horse", v2_seed, "v2")
    public_useed = v2_seed[:12] + bytes(228) + v2_seed[-16:]
    key = _hkdf_sha256_32(public_useed, public_useed[:12] + public_useed[-16:], b"r-raw")
    without_password = AesCtrStream(key).read(32)
    assert derive(legacy, DeriveRequest("r", "raw")) == without_password
    assert derive(v2, DeriveRequest("r", "raw")) != without_password
