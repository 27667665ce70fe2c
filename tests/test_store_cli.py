"""`aux-secrets store ...` end to end against a real vault.

Most calls run the CLI's ``main`` in this process (same argument parsing, error
mapping and output, without an interpreter start per call); the tests marked
``real process`` run ``python -m aux_secrets`` to check the process contract too.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, cli, require_program

VALUE = b"\x00ghp_\xff\xfe\xc3\x28token\n\x00"
FAST = ("--argon2-memory", "8", "--argon2-time", "1")


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock" and ".git" not in p.parts
    }


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    for key in [k for k in os.environ if k.startswith("AUX_SECRETS_")]:
        del os.environ[key]
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def inproc(
    *args: str | os.PathLike[str], input: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    """``aux-secrets ARGS`` through ``main`` in this process, captured like a subprocess."""
    from aux_secrets.cli.main import main

    argv = [str(a) for a in args]
    out, err = io.BytesIO(), io.BytesIO()
    streams = (sys.stdin, sys.stdout, sys.stderr)
    sys.stdin = io.TextIOWrapper(io.BytesIO(input or b""))
    sys.stdout = io.TextIOWrapper(out, write_through=True)
    sys.stderr = io.TextIOWrapper(err, write_through=True)
    try:
        with _environment(env or {}):
            code = main(argv)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        stdout, stderr = out.getvalue(), err.getvalue()
        for wrapper in (sys.stdin, sys.stdout, sys.stderr):
            wrapper.detach()  # type: ignore[attr-defined]
        sys.stdin, sys.stdout, sys.stderr = streams
    return subprocess.CompletedProcess(argv, code, stdout, stderr)


class Vault:
    def __init__(self, root: Path, password_file: Path) -> None:
        self.root = root
        self.password_file = password_file
        self.env = {
            "AUX_SECRETS_VAULT": str(root),
            "AUX_SECRETS_PASSWORD_FILE": str(password_file),
            "GIT_AUTHOR_NAME": "Test",
            "GIT_AUTHOR_EMAIL": "test@example.invalid",
            "GIT_COMMITTER_NAME": "Test",
            "GIT_COMMITTER_EMAIL": "test@example.invalid",
            "GIT_CONFIG_GLOBAL": "/dev/null",
        }

    def run(
        self, *args: str | Path, input: bytes | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return inproc("store", *args, input=input, env={**self.env, **(env or {})})

    def real(
        self, *args: str | Path, input: bytes | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        return cli("store", *args, input=input, env={**self.env, **(env or {})})

    def ok(
        self, *args: str | Path, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        result = self.run(*args, input=input)
        assert result.returncode == 0, result.stderr.decode()
        return result

    def file(self, name: str) -> Path:
        return self.root / "store" / (name + ".aux")


def make_vault(tmp_path: Path, name: str, password: str, *extra: str) -> Vault:
    password_file = tmp_path / f"{name}.pw"
    password_file.write_text(password + "\n")
    root = tmp_path / name
    result = inproc("init", root, "--password-file", password_file, *FAST, *extra)
    assert result.returncode == 0, result.stderr.decode()
    return Vault(root, password_file)


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return make_vault(tmp_path, "vault", "correct horse")


def test_add_get_binary_round_trip(vault: Vault, tmp_path: Path) -> None:
    """Real process: the value goes through a pipe both ways, byte for byte."""
    added = vault.real("add", "github/deploy-token", input=VALUE)
    assert added.returncode == 0, added.stderr
    assert VALUE not in added.stdout + added.stderr
    got = vault.real("get", "github/deploy-token")
    assert got.returncode == 0 and got.stdout == VALUE
    assert vault.ok("get", "github/deploy-token").stdout == VALUE
    out = tmp_path / "out"
    vault.ok("get", "github/deploy-token", "--output", out)
    assert out.read_bytes() == VALUE
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert stat.S_IMODE(vault.file("github/deploy-token").stat().st_mode) == 0o600


def test_get_output_dash_is_standard_output(vault: Vault, tmp_path: Path) -> None:
    vault.ok("add", "t", input=VALUE)
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = cli("store", "get", "t", "--output", "-", env=vault.env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == VALUE
    assert list(workdir.iterdir()) == []


def test_add_from_file_and_command(vault: Vault, tmp_path: Path) -> None:
    source = tmp_path / "value.bin"
    source.write_bytes(VALUE)
    vault.ok("add", "a", "--from-file", source)
    vault.ok("add", "b", "--from-command", f"cat {source}")
    vault.ok("add", "c", "--strip-newline", input=b"line\n")
    assert vault.ok("get", "a").stdout == VALUE
    assert vault.ok("get", "b").stdout == VALUE
    assert vault.ok("get", "c").stdout == b"line"


def test_add_refuses_existing(vault: Vault) -> None:
    vault.ok("add", "t", input=b"first")
    before = snapshot(vault.root)
    assert_one_line_error(vault.run("add", "t", input=b"second"), "t already exists")
    assert snapshot(vault.root) == before


def test_empty_value_is_stored_with_a_warning(vault: Vault) -> None:
    result = vault.ok("add", "empty", input=b"")
    assert b"aux-secrets: warning: the value for empty is empty" in result.stderr
    assert vault.ok("get", "empty").stdout == b""


def test_value_over_one_mib_is_refused(vault: Vault, tmp_path: Path) -> None:
    big = b"x" * ((1 << 20) + 1)
    assert_one_line_error(vault.run("add", "big", input=big), "big", "1 MiB")
    assert not vault.file("big").exists()
    vault.ok("add", "exact", input=big[:-1])
    vault.ok("add", "small", input=b"s")
    before = snapshot(vault.root)
    assert_one_line_error(vault.run("set", "small", input=big), "1 MiB")
    source = tmp_path / "big"
    source.write_bytes(big)
    assert_one_line_error(vault.run("set", "small", "--from-file", source), "1048576")
    assert snapshot(vault.root) == before


@pytest.mark.parametrize(
    "name", ["../escape", "a/../../escape", "/etc/passwd", "a//b", "-rf", "a/.git", "a\x01b"]
)
def test_traversal_names_are_refused(vault: Vault, name: str) -> None:
    before = snapshot(vault.root.parent)
    result = vault.run("add", "--", name, input=b"x")
    assert_one_line_error(result, "store name")
    assert snapshot(vault.root.parent) == before


def test_group_named_like_a_secret_file_is_refused(vault: Vault) -> None:
    # store/db.aux is secret 'db'; a group 'db.aux/' would share that path.
    vault.ok("add", "db", input=b"x")
    before = snapshot(vault.root)
    assert_one_line_error(vault.run("add", "db.aux/token", input=b"y"), "store name", "'.aux'")
    assert_one_line_error(vault.run("rename", "db", "db.aux/token"), "store name", "'.aux'")
    assert snapshot(vault.root) == before
    assert vault.ok("get", "db").stdout == b"x"


def test_wrong_master_password_changes_nothing(vault: Vault, tmp_path: Path) -> None:
    vault.ok("add", "t", input=b"v")
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("wrong horse\n")
    env = {"AUX_SECRETS_PASSWORD_FILE": str(wrong)}
    before = snapshot(vault.root)
    for args in (("get", "t"), ("set", "t"), ("add", "u"), ("verify",)):
        result = vault.run(*args, input=b"new", env=env)
        assert_one_line_error(result, "password")
        assert b"v" not in result.stdout
    assert snapshot(vault.root) == before


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("where", ["name", "version", "nonce", "ciphertext", "last"])
def test_flipped_byte_is_refused(vault: Vault, where: str) -> None:
    vault.ok("add", "gh/t", "--expires", "2030-01-01", input=b"value")
    path = vault.file("gh/t")
    data = path.read_bytes()
    offset = {
        "name": data.index(b"gh/t"),
        "version": data.index(b"version: 1") + 9,
        "nonce": data.index(b"nonce: ") + 10,
        "ciphertext": data.index(b"\n\n") + 5,
        "last": len(data) - 2,
    }[where]
    _flip(path, offset)
    before = snapshot(vault.root)
    result = vault.run("get", "gh/t")
    assert_one_line_error(result, "gh/t")
    assert result.stdout == b""
    assert_one_line_error(vault.run("set", "gh/t", input=b"x"), "gh/t")
    assert snapshot(vault.root) == before
    out = vault.root.parent / "out"
    out.write_bytes(b"previous contents")
    assert_one_line_error(vault.run("get", "gh/t", "--output", out), "gh/t")
    assert out.read_bytes() == b"previous contents"


def test_truncated_file_is_refused(vault: Vault) -> None:
    vault.ok("add", "t", input=b"value")
    path = vault.file("t")
    data = path.read_bytes()
    for cut in (0, 10, data.index(b"\n\n") + 1, len(data) - 10):
        path.write_bytes(data[:cut])
        assert_one_line_error(vault.run("get", "t"), "t")


def test_file_renamed_over_another_is_refused(vault: Vault) -> None:
    vault.ok("add", "a", input=b"value a")
    vault.ok("add", "b", input=b"value b")
    os.replace(vault.file("a"), vault.file("b"))
    line = assert_one_line_error(vault.real("get", "b"), "store secret b cannot be decrypted")
    assert "value" not in line


def test_file_from_another_vault_is_refused(vault: Vault, tmp_path: Path) -> None:
    other = make_vault(tmp_path, "other", "correct horse")  # same password, other seed
    other.ok("add", "shared", input=b"theirs")
    vault.ok("add", "shared", input=b"mine")
    os.replace(other.file("shared"), vault.file("shared"))
    assert_one_line_error(vault.run("get", "shared"), "shared cannot be decrypted")
    verify = vault.run("verify")
    assert_one_line_error(verify, "1 of 1")
    assert b"warning: store secret shared cannot be decrypted" in verify.stderr


def test_future_format_version_is_refused(vault: Vault) -> None:
    vault.ok("add", "t", input=b"value")
    path = vault.file("t")
    path.write_bytes(path.read_bytes().replace(b"aux-secrets-store: 1", b"aux-secrets-store: 7"))
    assert_one_line_error(vault.run("get", "t"), "t", "version 7")
    result = vault.run("list")
    assert_one_line_error(result, "1 store file cannot be read")
    assert b"version 7" in result.stderr


def test_list_needs_no_password_and_shows_no_values(vault: Vault) -> None:
    soon = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    vault.ok("add", "soon", "--expires", soon, input=b"SENSITIVE-1")
    vault.ok("add", "later", "--expires", "2099-01-01", input=b"SENSITIVE-2")
    vault.ok("add", "gone", "--expires", "2001-01-01", input=b"SENSITIVE-3")
    env = {"AUX_SECRETS_PASSWORD_FILE": "", "AUX_SECRETS_PASSWORD_COMMAND": ""}
    text = vault.run("list", env=env)
    assert text.returncode == 0, text.stderr
    assert b"SENSITIVE" not in text.stdout + text.stderr
    lines = text.stdout.decode().splitlines()
    assert lines[0].split() == ["NAME", "VERSION", "UPDATED", "EXPIRES"]
    assert any(line.startswith("soon ") and "expires in" in line for line in lines)
    assert any(line.startswith("gone ") and "EXPIRED" in line for line in lines)
    assert any(line.startswith("later ") and "(" not in line for line in lines)
    listing = json.loads(vault.run("list", "--json", env=env).stdout)
    assert b"SENSITIVE" not in json.dumps(listing).encode()
    by_name = {row["name"]: row for row in listing["secrets"]}
    assert by_name["soon"]["expiring"] and not by_name["soon"]["expired"]
    assert by_name["gone"]["expired"]
    assert not by_name["later"]["expiring"]
    assert by_name["later"]["version"] == 1


def test_set_keeps_retired_and_note(vault: Vault) -> None:
    vault.ok("add", "t", "--note", "issued by ops", input=b"v1")
    vault.ok("set", "t", input=b"v2")
    vault.ok("set", "t", "--keep", "2", input=b"v3")
    assert vault.ok("get", "t").stdout == b"v3"
    assert vault.ok("get", "t", "--retired", "1").stdout == b"v2"
    assert vault.ok("get", "t", "--retired", "2").stdout == b"v1"
    assert vault.ok("get", "t", "--note").stdout == b"issued by ops"
    assert_one_line_error(vault.run("get", "t", "--retired", "3"), "2 retired values")
    assert_one_line_error(vault.run("set", "t", "--keep", "9", input=b"x"), "--keep")
    assert_one_line_error(vault.run("set", "missing", input=b"x"), "missing does not exist")
    vault.ok("set", "t", "--keep-value", "--expires", "2030-06-30")
    assert vault.ok("get", "t").stdout == b"v3"
    assert vault.ok("get", "t", "--retired", "1").stdout == b"v2"
    assert_one_line_error(vault.run("set", "t", "--keep-value"), "--keep-value needs")
    assert_one_line_error(vault.run("set", "t", "--expires", "2030-02-30", input=b"x"), "date")
    listing = json.loads(vault.ok("list", "--json").stdout)
    assert listing["secrets"][0]["version"] == 4
    assert listing["secrets"][0]["expires"] == "2030-06-30"


def test_rm_and_rename(vault: Vault) -> None:
    vault.ok("add", "a/b", input=b"v")
    vault.ok("rename", "a/b", "c/d")
    assert vault.ok("get", "c/d").stdout == b"v"
    assert_one_line_error(vault.run("get", "a/b"), "a/b does not exist")
    vault.ok("rm", "c/d")
    assert_one_line_error(vault.run("rm", "c/d"), "c/d does not exist")
    assert not (vault.root / "store" / "c").exists()


def test_verify_reports_each_bad_file(vault: Vault) -> None:
    for name in ("a", "b", "c"):
        vault.ok("add", name, input=name.encode())
    assert vault.ok("verify").stdout == b"verified 3 store secrets\n"
    _flip(vault.file("a"), -3)
    vault.file("c").write_bytes(b"")
    result = vault.run("verify")
    assert_one_line_error(result, "2 of 3")
    warnings = [
        line
        for line in result.stderr.decode().splitlines()
        if line.startswith("aux-secrets: warning")
    ]
    assert len(warnings) == 2 and "store secret a" in warnings[0] and "c" in warnings[1]


def test_rekey_from_a_gokey_vault(tmp_path: Path) -> None:
    old = make_vault(tmp_path, "old", "old password", "--scheme", "gokey", "--no-seed")
    old.ok("add", "github/token", input=VALUE)
    old.ok("add", "wifi", input=b"w1")
    old.ok("set", "wifi", input=b"w2")
    before = snapshot(old.root)
    new = make_vault(tmp_path, "new", "new password")
    common = ("rekey", "--from-vault", old.root, "--old-password-file", old.password_file)
    result = new.run(*common)
    assert_one_line_error(result, "empty")
    assert b"--copy-store" in result.stderr
    wrong = new.run(*common[:3], "--old-password-file", new.password_file, "--copy-store")
    assert_one_line_error(wrong, "password")
    assert not (new.root / "store").exists() or not list((new.root / "store").rglob("*.aux"))
    new.ok(*common, "--copy-store")
    assert new.ok("get", "github/token").stdout == VALUE
    assert new.ok("get", "wifi", "--retired", "1").stdout == b"w1"
    assert snapshot(old.root) == before
    # In place: a copy of the new vault with a fresh seed takes over its files.
    again = new.run(*common, "--copy-store")
    assert_one_line_error(again, "already holds secrets")


def test_rekey_in_place_after_a_seed_change(tmp_path: Path) -> None:
    import shutil

    vault = make_vault(tmp_path, "vault", "pw")
    vault.ok("add", "t", input=b"value")
    backup = tmp_path / "backup"
    shutil.copytree(vault.root, backup)
    # Replace the vault's seed by that of a fresh vault (same password).
    fresh = make_vault(tmp_path, "fresh", "pw")
    shutil.copy(fresh.root / "seed.aux-v1", vault.root / "seed.aux-v1")
    assert_one_line_error(vault.run("get", "t"), "cannot be decrypted")
    rekey = ("rekey", "--from-vault", backup, "--old-password-file", vault.password_file)
    require_program("git", "git")
    _git(vault.root, "init", "-q")
    vault.ok(*rekey)
    assert vault.ok("get", "t").stdout == b"value"
    assert _git(vault.root, "log", "--format=%s").splitlines() == ["store rekey (1 secret)"]
    second = vault.ok(*rekey)
    assert b"already under this vault's keys" in second.stderr


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null"},
    ).stdout


def test_git_commits_each_change(vault: Vault) -> None:
    require_program("git", "git")
    _git(vault.root, "init", "-q")
    vault.ok("add", "github/deploy-token", input=b"v")
    vault.ok("set", "github/deploy-token", input=b"v2")
    vault.ok("add", "quiet", "--no-commit", input=b"v")
    vault.ok("rm", "github/deploy-token")
    subjects = _git(vault.root, "log", "--format=%s").splitlines()
    assert subjects == [
        "store rm github/deploy-token",
        "store set github/deploy-token",
        "store add github/deploy-token",
    ]
    assert "store/quiet.aux" in _git(vault.root, "status", "--porcelain")
    from aux_secrets.adapters.vault import Vault as RealVault

    RealVault.load(vault.root).update_section("store", {"commit": False})
    vault.ok("add", "also-quiet", input=b"v")
    assert len(_git(vault.root, "log", "--format=%s").splitlines()) == 3


def test_git_commit_failure_is_a_warning(vault: Vault) -> None:
    require_program("git", "git")
    _git(vault.root, "init", "-q")
    env = {"GIT_AUTHOR_NAME": "", "GIT_COMMITTER_NAME": "", "EMAIL": ""}
    result = vault.run("add", "t", input=b"v", env=env)
    assert result.returncode == 0
    assert b"aux-secrets: warning: the change is saved but was not committed" in result.stderr
    assert vault.ok("get", "t").stdout == b"v"


def test_external_source(vault: Vault, tmp_path: Path) -> None:
    from aux_secrets.adapters.vault import Vault as RealVault

    log = tmp_path / "argv.log"
    script = tmp_path / "fake-pass"
    script.write_text(
        f'#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a" >> {log}; done\n'
        'printf "secret for %s\\n" "$2"\n'
    )
    script.chmod(0o700)
    RealVault.load(vault.root).update_section(
        "store", {"sources": {"team/": f"{script} show 'aux/{{name}}'"}}
    )
    name = "team/db; touch pwned $(id)"
    result = vault.real("get", "--", name, env={"AUX_SECRETS_PASSWORD_FILE": ""})
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"secret for aux/db; touch pwned $(id)"
    assert log.read_text().splitlines() == ["show", "aux/db; touch pwned $(id)"]
    assert not (Path.cwd() / "pwned").exists()
    assert_one_line_error(vault.run("add", "team/x", input=b"v"), "external source")
    assert_one_line_error(vault.run("rm", "team/x"), "external source")
    listing = vault.ok("list").stdout.decode()
    assert "team/*" in listing


@pytest.mark.parametrize(
    "command", ["add", "get", "list", "set", "rm", "rename", "verify", "rekey"]
)
def test_every_command_has_help_with_an_example(command: str) -> None:
    result = inproc("store", command, "--help")
    assert result.returncode == 0
    assert b"Example:" in result.stdout


def test_store_path_that_is_a_file_is_an_error_not_an_empty_store(vault: Vault) -> None:
    (vault.root / "store").write_bytes(b"not a directory")
    for args in (("list",), ("verify",), ("add", "a/b")):
        result = vault.run(*args, input=b"v")
        assert_one_line_error(result, "store", "is not a directory")
    assert (vault.root / "store").read_bytes() == b"not a directory"
