"""`aux-secrets init` and `aux-secrets seed rewrap` through the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import assert_one_line_error, cli, require_program

FAST = ("--argon2-memory", "8", "--argon2-time", "1")


def pwfile(tmp_path: Path, text: str = "correct horse", name: str = "pw") -> Path:
    path = tmp_path / name
    path.write_text(text + "\n")
    return path


def files(root: Path) -> dict[str, bytes]:
    found = sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".vault.lock")
    return {str(p.relative_to(root)): p.read_bytes() for p in found}


def init(tmp_path: Path, *extra: str, name: str = "vault") -> Path:
    result = cli("init", tmp_path / name, "--password-file", pwfile(tmp_path), *FAST, *extra)
    assert result.returncode == 0, result.stderr
    return tmp_path / name


def derive(vault: Path, password: Path, realm: str = "db/web1") -> bytes:
    result = cli("derive", realm, "--vault", vault, "--password-file", password)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_init_creates_vault_and_refuses_second_time(tmp_path: Path) -> None:
    result = cli("init", tmp_path / "v", "--password-file", pwfile(tmp_path), *FAST, "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["scheme"] == "aux-v1" and info["argon2_memory_kib"] == 8
    assert (tmp_path / "v" / "vault.toml").read_text().count('scheme = "aux-v1"') == 1
    before = files(tmp_path / "v")
    again = cli("init", tmp_path / "v", "--password-file", pwfile(tmp_path), *FAST)
    assert_one_line_error(again, "already holds a vault")
    assert files(tmp_path / "v") == before


def test_init_in_current_directory(tmp_path: Path) -> None:
    result = cli("init", "--password-file", pwfile(tmp_path), *FAST, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "vault.toml").is_file()
    # the nearest vault.toml upward is found without --vault
    (tmp_path / "sub").mkdir()
    found = cli("derive", "x", "--password-file", pwfile(tmp_path), cwd=tmp_path / "sub")
    assert found.returncode == 0, found.stderr
    via_env = cli(
        "derive", "x", "--password-file", pwfile(tmp_path), env={"AUX_SECRETS_VAULT": str(tmp_path)}
    )
    assert via_env.stdout == found.stdout


def test_init_usage_errors_create_nothing(tmp_path: Path) -> None:
    pw = pwfile(tmp_path)
    cases = [
        ("--scheme", "gokey"),
        ("--scheme", "rot13"),
        ("--no-seed",),
        ("--scheme", "gokey", "--no-seed", "--seed-mode", "legacy"),
        ("--argon2-memory", "1"),
        ("--scheme", "gokey", "--import-gokey-seed", str(pw)),  # no --seed-mode
    ]
    for extra in cases:
        result = cli("init", tmp_path / "v", "--password-file", pw, *extra)
        assert_one_line_error(result)
        assert not (tmp_path / "v").exists(), extra


def test_init_without_terminal_or_source_fails_fast(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    result = subprocess.run(
        [sys.executable, "-m", "aux_secrets", "init", str(tmp_path / "v"), *FAST],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # no controlling terminal
        timeout=60,
        check=False,
    )
    assert_one_line_error(result, "no terminal")
    assert b"--password-file" in result.stderr
    assert not (tmp_path / "v").exists()


def test_import_legacy_gokey_seed_warns_and_matches_gokey(tmp_path: Path) -> None:
    gokey = require_program("gokey", "gokey")
    seed = tmp_path / "g.seed"
    subprocess.run([gokey, "-p", "correct horse", "-t", "seed", "-o", str(seed)], check=True)
    pw = pwfile(tmp_path)
    bad = cli(
        "init",
        tmp_path / "bad",
        "--scheme",
        "gokey",
        "--seed-mode",
        "legacy",
        "--import-gokey-seed",
        seed,
        "--password-file",
        pwfile(tmp_path, "wrong", "w"),
    )
    assert_one_line_error(bad, "wrong master password")
    assert not (tmp_path / "bad").exists()
    result = cli(
        "init",
        tmp_path / "v",
        "--scheme",
        "gokey",
        "--seed-mode",
        "legacy",
        "--import-gokey-seed",
        seed,
        "--password-file",
        pw,
    )
    assert result.returncode == 0, result.stderr
    assert b"CVE-2025-13353" in result.stderr
    out = cli("derive", "example.com", "--vault", tmp_path / "v", "--password-file", pw)
    assert out.returncode == 0
    assert b"CVE-2025-13353" in out.stderr
    expected = subprocess.run(
        [gokey, "-P", str(pw), "-s", str(seed), "-r", "example.com"],
        capture_output=True,
        check=True,
    ).stdout
    assert out.stdout == expected


def test_unseeded_gokey_vault_catches_typo(tmp_path: Path) -> None:
    gokey = require_program("gokey", "gokey")
    vault = init(tmp_path, "--scheme", "gokey", "--no-seed")
    pw = pwfile(tmp_path)
    typo = cli(
        "derive", "example.com", "--vault", vault, "--password-file", pwfile(tmp_path, "x", "t")
    )
    assert_one_line_error(typo, "does not match")
    assert typo.stdout == b""
    expected = subprocess.run(
        [gokey, "-P", str(pw), "-r", "example.com"], capture_output=True, check=True
    ).stdout
    assert derive(vault, pw, "example.com") == expected


def test_rewrap_keeps_values_and_drops_old_password(tmp_path: Path) -> None:
    vault = init(tmp_path)
    old, new = pwfile(tmp_path), pwfile(tmp_path, "battery staple", "new")
    before = derive(vault, old)
    result = cli(
        "seed", "rewrap", "--vault", vault, "--password-file", old, "--new-password-file", new
    )
    assert result.returncode == 0, result.stderr
    assert derive(vault, new) == before
    assert_one_line_error(
        cli("derive", "db/web1", "--vault", vault, "--password-file", old), "does not open"
    )


def test_rewrap_failures_change_nothing(tmp_path: Path) -> None:
    vault = init(tmp_path)
    before = files(vault)
    wrong = cli(
        "seed",
        "rewrap",
        "--vault",
        vault,
        "--password-file",
        pwfile(tmp_path, "nope", "n"),
        "--new-password-file",
        pwfile(tmp_path, "a", "a"),
    )
    assert_one_line_error(wrong, "does not open")
    missing = cli(
        "seed",
        "rewrap",
        "--vault",
        vault,
        "--password-file",
        pwfile(tmp_path),
        "--new-password-file",
        tmp_path / "missing",
    )
    assert_one_line_error(missing, "does not exist")
    assert files(vault) == before


def test_rewrap_refused_for_gokey_vault(tmp_path: Path) -> None:
    vault = init(tmp_path, "--scheme", "gokey", "--no-seed")
    before = files(vault)
    result = cli(
        "seed",
        "rewrap",
        "--vault",
        vault,
        "--password-file",
        pwfile(tmp_path),
        "--new-password-file",
        pwfile(tmp_path, "b", "b"),
    )
    assert_one_line_error(result, "gokey scheme")
    assert b"hint:" in result.stderr
    assert files(vault) == before


def test_password_from_environment(tmp_path: Path) -> None:
    pw = pwfile(tmp_path)
    env = {"AUX_SECRETS_PASSWORD_FILE": str(pw)}
    assert cli("init", tmp_path / "v", *FAST, env=env).returncode == 0
    by_file = cli("derive", "x", "--vault", tmp_path / "v", env=env)
    by_command = cli(
        "derive",
        "x",
        "--vault",
        tmp_path / "v",
        env={"AUX_SECRETS_PASSWORD_COMMAND": f"cat {pw}"},
    )
    assert by_file.returncode == 0 and by_file.stdout == by_command.stdout != b""


def test_git_vault_never_shows_lock_files(tmp_path: Path) -> None:
    git = require_program("git", "git")
    vault = init(tmp_path)
    subprocess.run([git, "init", "-q", str(vault)], check=True)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAEGVKQKC44bgmrcHCVH2rHxU+La4OImuQ8LRr03CAlA"
    added = cli("host", "add", "web1", "--ssh-host-key", key, "--vault", vault)
    assert added.returncode == 0, added.stderr
    password = pwfile(tmp_path, "new horse", name="new")
    rewrap = cli(
        "seed",
        "rewrap",
        "--vault",
        vault,
        "--password-file",
        pwfile(tmp_path),
        "--new-password-file",
        password,
        *FAST,
    )
    assert rewrap.returncode == 0, rewrap.stderr
    (vault / "hosts" / ".lock").touch()  # taken by the first bundle's serial
    assert (vault / ".vault.lock").exists()
    status = subprocess.run(
        [git, "-C", str(vault), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert ".lock" not in status, status
    assert "hosts/web1.toml" in status
