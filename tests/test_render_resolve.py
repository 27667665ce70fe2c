"""resolve: manifest secret specs -> slots and values (derived with rotation, or stored)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aux_secrets.core.auxv1 import AuxV1
from aux_secrets.core.derive import DeriveRequest, derive
from aux_secrets.core.manifest import Manifest, parse_manifest
from aux_secrets.core.rotation import OPEN_NOT_AFTER, OPEN_NOT_BEFORE, parse_instant
from aux_secrets.errors import NotFoundError, UsageError
from aux_secrets.workflows import resolve
from tests.helpers import cli

SCHEME = AuxV1(bytes(range(32)))
AT = parse_instant("2026-11-22T10:00:00Z")


def manifest(secrets: dict[str, object]) -> Manifest:
    doc = {"version": 1, "host": "h", "secrets": secrets}
    return parse_manifest(json.dumps(doc).encode(), filename="m.json")


def test_plain_derived_secret_is_one_open_current_slot() -> None:
    m = manifest({"db": {"source": {"derive": {"realm": "db/web1", "charset": "alnum"}}}})
    secret = resolve.resolve_secret(m.secrets["db"], SCHEME, None, AT)
    [slot] = secret.slots
    assert (slot.role, slot.label, slot.realm) == ("current", "current", "db/web1")
    assert (slot.not_before, slot.not_after) == (OPEN_NOT_BEFORE, OPEN_NOT_AFTER)
    assert slot.value == derive(SCHEME, DeriveRequest("db/web1", charset="alnum"))
    assert secret.public is None
    assert secret.values().current == slot.value
    assert secret.values().retired == ()


def test_rotated_secret_slots_and_values() -> None:
    source = {
        "realm": "api/{period}",
        "type": "raw",
        "length": 16,
        "encoding": "hex",
        "rotation": {"period": "quarterly", "retired": 2, "ahead": 1},
    }
    m = manifest({"api": {"source": {"derive": source}}})
    secret = resolve.resolve_secret(m.secrets["api"], SCHEME, None, AT)
    assert [(s.role, s.realm) for s in secret.slots] == [
        ("current", "api/2026-Q4"),
        ("retired", "api/2026-Q3"),
        ("retired", "api/2026-Q2"),
        ("ahead", "api/2027-Q1"),
    ]
    for s in secret.slots:
        assert s.value == derive(SCHEME, DeriveRequest(s.realm, "raw", 16, encoding="hex"))
    values = secret.values()
    assert values.current == secret.slots[0].value
    assert values.retired == (secret.slots[1].value, secret.slots[2].value)  # not the ahead one


def test_key_type_has_public_half_and_public_files() -> None:
    m = manifest(
        {
            "ssh": {
                "source": {"derive": {"realm": "ssh/h", "type": "ed25519", "encoding": "openssh"}}
            },
            "ssh.pub": {
                "source": {
                    "derive": {
                        "realm": "ssh/h",
                        "type": "ed25519",
                        "encoding": "openssh",
                        "public": True,
                    }
                }
            },
        }
    )
    private = resolve.resolve_secret(m.secrets["ssh"], SCHEME, None, AT)
    public = resolve.resolve_secret(m.secrets["ssh.pub"], SCHEME, None, AT)
    expected_public = derive(SCHEME, DeriveRequest("ssh/h", "ed25519", public=True))
    assert private.public == expected_public
    assert private.slots[0].value.startswith(b"-----BEGIN OPENSSH PRIVATE KEY-----")
    assert public.slots[0].value == derive(
        SCHEME, DeriveRequest("ssh/h", "ed25519", encoding="openssh", public=True)
    )
    assert public.slots[0].value.startswith(b"ssh-ed25519 ")


@pytest.mark.parametrize("encoding", [None, "openssh"])
def test_rsa_key_and_its_public_half_are_one_prime_search(
    encoding: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An RSA key is a prime search: the bundle's public half comes from the same key, not
    # from a second search over the same stream.
    from aux_secrets.core import derive as derive_module

    searches: list[int] = []
    real = derive_module.rsa_private

    def counting(stream: object, bits: int) -> object:
        searches.append(bits)
        return real(stream, bits)  # type: ignore[arg-type]

    source: dict[str, object] = {"realm": "ssh/rsa", "type": "rsa2048"}
    if encoding is not None:
        source["encoding"] = encoding
    m = manifest({"k": {"source": {"derive": source}}})
    monkeypatch.setattr(derive_module, "rsa_private", counting)
    secret = resolve.resolve_secret(m.secrets["k"], SCHEME, None, AT)
    assert searches == [2048]
    monkeypatch.undo()
    assert secret.slots[0].value == derive(
        SCHEME, DeriveRequest("ssh/rsa", "rsa2048", encoding=encoding)
    )
    assert secret.public == derive(SCHEME, DeriveRequest("ssh/rsa", "rsa2048", public=True))


def test_rotated_key_public_half_is_the_current_slots() -> None:
    source = {
        "realm": "wg/{period}",
        "type": "x25519",
        "encoding": "wireguard",
        "rotation": {"period": "monthly", "retired": 1, "ahead": 1},
    }
    m = manifest({"wg": {"source": {"derive": source}}})
    secret = resolve.resolve_secret(m.secrets["wg"], SCHEME, None, AT)
    assert secret.slots[0].role == "current"
    realm = secret.slots[0].realm
    assert secret.public == derive(SCHEME, DeriveRequest(realm, "x25519", public=True))
    assert secret.public != derive(
        SCHEME, DeriveRequest(secret.slots[1].realm, "x25519", public=True)
    )


class Stored:
    def __init__(self, current: bytes, retired: tuple[bytes, ...], versions: tuple[int, ...]):
        self.current, self.retired, self.retired_versions = current, retired, versions


def test_store_secret_slots() -> None:
    m = manifest(
        {
            "tok": {"source": {"store": "github/token", "retired": 2}},
            "none": {"source": {"store": "github/token"}},
            "one": {"source": {"store": "github/token", "retired": 1}},
        }
    )
    calls: list[str] = []

    def read(name: str) -> Stored:
        calls.append(name)
        return Stored(b"new", (b"old2", b"old1"), (2, 1))

    # Retired store values reach a host only as far as its manifest asks, per secret.
    none = resolve.resolve_secret(m.secrets["none"], SCHEME, read, AT)
    assert [(s.role, s.value) for s in none.slots] == [("current", b"new")]
    one = resolve.resolve_secret(m.secrets["one"], SCHEME, read, AT)
    assert [(s.role, s.value) for s in one.slots] == [("current", b"new"), ("retired", b"old2")]
    calls.clear()
    secret = resolve.resolve_secret(m.secrets["tok"], SCHEME, read, AT)
    assert calls == ["github/token"]
    assert [(s.role, s.label, s.value) for s in secret.slots] == [
        ("current", "current", b"new"),
        ("retired", "v2", b"old2"),
        ("retired", "v1", b"old1"),
    ]
    assert all(
        (s.not_before, s.not_after) == (OPEN_NOT_BEFORE, OPEN_NOT_AFTER) for s in secret.slots
    )
    assert secret.values().retired == (b"old2", b"old1")


def test_store_errors_name_the_secret() -> None:
    m = manifest({"tok": {"source": {"store": "github/token"}}})
    with pytest.raises(NotFoundError, match="secret 'tok': needs store secret 'github/token'"):
        resolve.resolve_secret(m.secrets["tok"], SCHEME, None, AT)

    def read(name: str) -> Stored:
        raise NotFoundError(f"store secret {name} does not exist", hint="see 'store list'")

    with pytest.raises(NotFoundError, match="secret 'tok': store secret github/token") as info:
        resolve.resolve_secret(m.secrets["tok"], SCHEME, read, AT)
    assert info.value.hint == "see 'store list'"


def test_derive_errors_name_the_secret() -> None:
    m = manifest({"db": {"source": {"derive": {"realm": "db"}}}})
    spec = m.secrets["db"]
    bad = type(spec.source)(realm="db", type="pass", length=99999)  # type: ignore[call-arg]
    with pytest.raises(UsageError, match="secret 'db': password length 99999"):
        resolve.resolve_secret(type(spec)(**{**spec.__dict__, "source": bad}), SCHEME, None, AT)


def test_resolve_manifest_subset_sorted() -> None:
    m = manifest({n: {"source": {"derive": {"realm": n}}} for n in ("b", "a", "c")})
    assert list(resolve.resolve_manifest(m, SCHEME, None, AT)) == ["a", "b", "c"]
    assert list(resolve.resolve_manifest(m, SCHEME, None, AT, names=["c", "a"])) == ["a", "c"]


def test_bundle_secrets_from_a_real_vault(tmp_path: Path) -> None:
    from aux_secrets.adapters.vault import Vault

    pw = tmp_path / "pw"
    pw.write_bytes(b"resolve tests\n")
    root = tmp_path / "vault"
    assert (
        cli(
            "init", root, "--password-file", pw, "--argon2-memory", "8", "--argon2-time", "1"
        ).returncode
        == 0
    )
    added = cli(
        "store", "add", "tok", "--vault", root, "--password-file", pw, "--no-commit", input=b"T0KEN"
    )
    assert added.returncode == 0, added.stderr
    vault = Vault.load(root)
    scheme = vault.unlock(b"resolve tests")
    m = manifest(
        {
            "tok": {"source": {"store": "tok"}},
            "h": {
                "source": {
                    "derive": {
                        "realm": "h/{period}",
                        "rotation": {"period": "daily", "retired": 1, "ahead": 1},
                    }
                }
            },
        }
    )
    bundle = resolve.bundle_secrets(vault, scheme, m, AT)
    assert bundle["tok"].slots[0].value == b"T0KEN"
    assert [s.label for s in bundle["h"].slots] == ["2026-11-22", "2026-11-21", "2026-11-23"]
    derived = cli("derive", "h/2026-11-22", "--vault", root, "--password-file", pw)
    assert bundle["h"].slots[0].value == derived.stdout
