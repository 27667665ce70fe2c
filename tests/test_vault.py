"""The vault adapter: create, load, discover, unlock, rewrap, tables of other parts."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from aux_secrets.adapters.vault import (
    ENV_VAULT,
    Vault,
    create_vault,
)
from aux_secrets.core.derive import DeriveRequest, derive
from aux_secrets.errors import (
    ConflictError,
    FormatVersionError,
    InputError,
    NotFoundError,
    PolicyError,
    UsageError,
    WrongPasswordError,
)
from tests.helpers import require_program

FAST = {"memory_kib": 8, "time_cost": 1, "parallelism": 1}
PW = b"correct horse"


def make(tmp_path: Path, **kwargs: object) -> Vault:
    return create_vault(tmp_path / "vault", PW, **FAST, **kwargs)  # type: ignore[arg-type]


def snapshot(root: Path) -> dict[str, bytes]:
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".vault.lock")
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_create_aux_v1_and_unlock(tmp_path: Path) -> None:
    vault = make(tmp_path)
    assert vault.scheme_name == "aux-v1"
    assert (vault.root / "vault.toml").stat().st_mode & 0o777 == 0o600
    assert (vault.root / "seed.aux-v1").stat().st_mode & 0o777 == 0o600
    assert vault.root.stat().st_mode & 0o777 == 0o700
    assert vault.store_dir == vault.root / "store" and vault.hosts_dir == vault.root / "hosts"
    scheme = Vault.load(vault.root).unlock(PW)
    assert scheme.name == "aux-v1"
    assert derive(scheme, DeriveRequest("a")) == derive(vault.unlock(PW), DeriveRequest("a"))
    with pytest.raises(WrongPasswordError):
        vault.unlock(b"correct horsE")


def test_two_vaults_have_different_seeds(tmp_path: Path) -> None:
    a = create_vault(tmp_path / "a", PW, **FAST)  # type: ignore[arg-type]
    b = create_vault(tmp_path / "b", PW, **FAST)  # type: ignore[arg-type]
    assert derive(a.unlock(PW), DeriveRequest("x")) != derive(b.unlock(PW), DeriveRequest("x"))


def test_create_refuses_existing_vault(tmp_path: Path) -> None:
    vault = make(tmp_path)
    before = snapshot(vault.root)
    with pytest.raises(ConflictError, match="already holds a vault"):
        make(tmp_path)
    assert snapshot(vault.root) == before


def test_create_refuses_stray_seed_file_and_leaves_nothing(tmp_path: Path) -> None:
    root = tmp_path / "vault"
    root.mkdir()
    (root / "seed.aux-v1").write_bytes(b"keep me")
    with pytest.raises(ConflictError):
        make(tmp_path)
    assert snapshot(root) == {"seed.aux-v1": b"keep me"}


def test_create_rejects_bad_params(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="memory"):
        create_vault(tmp_path / "v", PW, memory_kib=1, time_cost=1)
    with pytest.raises(UsageError, match="need --scheme gokey"):
        create_vault(tmp_path / "v", PW, seed_mode="legacy", **FAST)  # type: ignore[arg-type]
    assert not (tmp_path / "v").exists()


def test_rewrap_keeps_every_value(tmp_path: Path) -> None:
    vault = make(tmp_path)
    requests = [DeriveRequest("db"), DeriveRequest("k", type="ed25519"), DeriveRequest("r", "raw")]
    before = [derive(vault.unlock(PW), r) for r in requests]
    old_blob = vault.read_seed_file()
    vault.rewrap(PW, b"new password")
    assert vault.read_seed_file() != old_blob
    with pytest.raises(WrongPasswordError):
        vault.unlock(PW)
    assert [derive(vault.unlock(b"new password"), r) for r in requests] == before


def test_rewrap_with_wrong_old_password_changes_nothing(tmp_path: Path) -> None:
    vault = make(tmp_path)
    before = snapshot(vault.root)
    with pytest.raises(WrongPasswordError):
        vault.rewrap(b"nope", b"new")
    assert snapshot(vault.root) == before


def test_rewrap_refused_for_gokey(tmp_path: Path) -> None:
    vault = make(tmp_path, scheme="gokey")
    with pytest.raises(PolicyError, match="change every derived secret"):
        vault.rewrap(PW, b"new")


def test_unseeded_gokey_vault_verifies_password(tmp_path: Path) -> None:
    from aux_secrets.core.gokey import GokeyUnseeded

    vault = make(tmp_path, scheme="gokey")
    assert vault.verifier is not None and vault.seed_file is None
    expected = derive(GokeyUnseeded(PW), DeriveRequest("example.com"))
    assert derive(Vault.load(vault.root).unlock(PW), DeriveRequest("example.com")) == expected
    with pytest.raises(WrongPasswordError):
        vault.unlock(b"typo")


def test_import_gokey_seed_checks_password_first(tmp_path: Path) -> None:
    gokey = require_program("gokey", "gokey")
    seed = tmp_path / "gokey.seed"
    subprocess.run([gokey, "-p", "correct horse", "-t", "seed", "-o", str(seed)], check=True)
    with pytest.raises(WrongPasswordError):
        create_vault(
            tmp_path / "bad",
            b"wrong",
            scheme="gokey",
            seed_mode="legacy",
            gokey_seed=seed.read_bytes(),
        )
    assert not (tmp_path / "bad").exists()
    vault = make(tmp_path, scheme="gokey", seed_mode="legacy", gokey_seed=seed.read_bytes())
    assert vault.is_legacy
    assert (vault.root / "seed.gokey").read_bytes() == seed.read_bytes()
    pwfile = tmp_path / "pw"
    pwfile.write_bytes(PW)
    ours = derive(vault.unlock(PW), DeriveRequest("example.com"))
    theirs = subprocess.run(
        [gokey, "-P", str(pwfile), "-s", str(seed), "-r", "example.com", "-t", "pass"],
        capture_output=True,
        check=True,
    ).stdout
    assert ours == theirs


# -- discovery ------------------------------------------------------------------


def test_discover_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outer = make(tmp_path)
    other = create_vault(tmp_path / "other", PW, **FAST)  # type: ignore[arg-type]
    deep = outer.root / "a" / "b"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    monkeypatch.delenv(ENV_VAULT, raising=False)
    assert Vault.discover().root == outer.root
    monkeypatch.setenv(ENV_VAULT, str(other.root))
    assert Vault.discover().root == other.root
    assert Vault.discover(outer.root).root == outer.root
    assert Vault.discover(outer.root / "vault.toml").root == outer.root


def test_discover_nothing_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAULT, raising=False)
    with pytest.raises(NotFoundError) as info:
        Vault.discover()
    assert info.value.hint is not None and "aux-secrets init" in info.value.hint
    with pytest.raises(NotFoundError, match="not a vault"):
        Vault.discover(tmp_path)
    with pytest.raises(NotFoundError, match="does not exist"):
        Vault.discover(tmp_path / "nope")


# -- vault.toml readers -----------------------------------------------------------

BAD_TOML = {
    "garbage": (b"\x00\xff\xfe not toml", InputError, "not UTF-8"),
    "syntax": (b"version = = 1", InputError, "not valid TOML"),
    "truncated": (b'version = 1\nscheme = "aux-v', InputError, "not valid TOML"),
    "empty": (b"", InputError, "missing field 'version'"),
    "wrong-version": (b'version = 2\nscheme = "aux-v1"\n', FormatVersionError, "version 2"),
    "version-string": (b'version = "1"\n', InputError, "must be an integer"),
    "unknown-scheme": (b'version = 1\nscheme = "rot13"\n', InputError, "unknown scheme"),
    "no-seed": (b'version = 1\nscheme = "aux-v1"\n', InputError, "needs a [seed]"),
    "seed-path": (
        b'version = 1\nscheme = "aux-v1"\n[seed]\nfile = "../x"\n',
        InputError,
        "plain file name",
    ),
    "unknown-seed-field": (
        b'version = 1\nscheme = "aux-v1"\n[seed]\nfile = "s"\nmode = "v2"\n',
        InputError,
        "unknown field 'mode'",
    ),
    "gokey-bad-mode": (
        b'version = 1\nscheme = "gokey"\n[seed]\nfile = "s"\nmode = "v3"\nskip = 0\n',
        InputError,
        "'v2' or 'legacy'",
    ),
    "gokey-neither": (b'version = 1\nscheme = "gokey"\n', InputError, "either"),
    "verifier-short-hash": (
        b'version = 1\nscheme = "gokey"\n[verifier]\nkdf = "argon2id"\nmemory_kib = 8\n'
        b'time_cost = 1\nparallelism = 1\nsalt = "00000000000000000000000000000000"\n'
        b'hash = "00"\n',
        InputError,
        "'hash' must be 32 bytes",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_TOML))
def test_bad_vault_toml(tmp_path: Path, name: str) -> None:
    data, kind, needle = BAD_TOML[name]
    (tmp_path / "vault.toml").write_bytes(data)
    with pytest.raises(kind) as info:
        Vault.load(tmp_path)
    assert needle in str(info.value)
    assert str(tmp_path / "vault.toml") in str(info.value)


def test_tampered_verifier_is_wrong_password(tmp_path: Path) -> None:
    vault = make(tmp_path, scheme="gokey")
    text = vault.toml_path.read_text()
    assert vault.verifier is not None
    digest = vault.verifier.digest.hex()
    flipped = ("1" if digest[0] != "1" else "2") + digest[1:]
    vault.toml_path.write_text(text.replace(digest, flipped))
    with pytest.raises(WrongPasswordError):
        Vault.load(vault.root).unlock(PW)


# -- seed file readers -----------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "kind", "needle"),
    [
        (lambda b: b[:40], InputError, "truncated"),
        (lambda b: b"", InputError, "truncated"),
        (lambda b: b + b"\x00", InputError, "trailing"),
        (lambda b: os.urandom(len(b)), InputError, "not an aux-v1 seed file"),
        (lambda b: b[:9] + b"\x09" + b[10:], FormatVersionError, "version 9"),
        (lambda b: b[:70] + bytes([b[70] ^ 4]) + b[71:], WrongPasswordError, "does not open"),
    ],
    ids=["truncated", "empty", "trailing", "garbage", "wrong-version", "tampered"],
)
def test_bad_seed_file(tmp_path: Path, edit: object, kind: type[Exception], needle: str) -> None:
    vault = make(tmp_path)
    assert vault.seed_file is not None
    vault.seed_file.write_bytes(edit(vault.seed_file.read_bytes()))  # type: ignore[operator]
    with pytest.raises(kind) as info:
        Vault.load(vault.root).unlock(PW)
    assert needle in str(info.value)
    assert str(vault.seed_file) in str(info.value)


def test_missing_seed_file(tmp_path: Path) -> None:
    vault = make(tmp_path)
    assert vault.seed_file is not None
    vault.seed_file.unlink()
    with pytest.raises(NotFoundError, match="seed file"):
        vault.unlock(PW)


def test_bad_gokey_seed_in_vault(tmp_path: Path) -> None:
    from aux_secrets.core.gokey import make_seed_file

    seed = make_seed_file(PW, bytes(range(256)))
    with pytest.raises(UsageError, match="needs --seed-mode"):
        make(tmp_path, scheme="gokey", gokey_seed=seed)
    assert not (tmp_path / "vault").exists()
    vault = make(tmp_path, scheme="gokey", seed_mode="v2", gokey_seed=seed)
    assert vault.seed_file is not None
    for data, kind in [
        (seed[:100], InputError),
        (b"", InputError),
        (seed + b"\x00", InputError),
        (seed[:50] + bytes([seed[50] ^ 1]) + seed[51:], WrongPasswordError),
    ]:
        vault.seed_file.write_bytes(data)
        with pytest.raises(kind):
            vault.unlock(PW)
    vault.seed_file.write_bytes(seed)
    with pytest.raises(WrongPasswordError):
        vault.unlock(b"wrong")
    assert hashlib.sha256(vault.seed_file.read_bytes()).digest() == hashlib.sha256(seed).digest()


# -- tables other parts keep ------------------------------------------------------


def test_sections_round_trip_and_keep_everything_else(tmp_path: Path) -> None:
    vault = make(tmp_path, scheme="gokey")
    assert vault.section("store") == {}
    vault.update_section("store", {"compress": False, "recipients": ["a", "b"]})
    vault.update_section("hosts", {"web1": {"address": "127.0.0.1"}})
    again = Vault.load(vault.root)
    assert again.section("store") == {"compress": False, "recipients": ["a", "b"]}
    assert again.section("hosts") == {"web1": {"address": "127.0.0.1"}}
    assert again.verifier == vault.verifier
    again.unlock(PW)


def test_sections_cannot_touch_own_keys(tmp_path: Path) -> None:
    vault = make(tmp_path)
    before = snapshot(vault.root)
    for name in ("seed", "version", "scheme", "verifier", "bad name", ""):
        with pytest.raises(UsageError):
            vault.update_section(name, {})
    with pytest.raises(InputError):
        vault.update_section("store", {"x": None})
    assert snapshot(vault.root) == before


def test_rewrap_can_retune_argon2(tmp_path: Path) -> None:
    from aux_secrets.core.auxv1 import Argon2Params, parse_header

    vault = make(tmp_path)
    before = derive(vault.unlock(PW), DeriveRequest("db"))
    vault.rewrap(PW, PW, params=Argon2Params(16, 2, 2))
    assert parse_header(vault.read_seed_file()).params == Argon2Params(16, 2, 2)
    assert derive(vault.unlock(PW), DeriveRequest("db")) == before
