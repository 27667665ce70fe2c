"""What a daily user trips over: terminal newlines, typos, weak passwords, host errors."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aux_secrets.adapters import ssh
from aux_secrets.adapters.strength import weakness
from aux_secrets.workflows.provision import host_error
from tests.helpers import assert_one_line_error, cli, require_program

FAST = ("--argon2-memory", "8", "--argon2-time", "1")
STRONG = "plover cistern quietly tangerine 47"


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("frictions")
    pw = root / "pw"
    pw.write_text(STRONG + "\n")
    done = cli("init", root / "v", "--password-file", pw, *FAST)
    assert done.returncode == 0, done.stderr
    return root / "v", pw


def run_in_pty(argv: list[str], answers: list[tuple[bytes, bytes]], env: dict[str, str]) -> bytes:
    """Run ``argv`` on a new terminal (its controlling tty); answer each prompt in turn."""
    pid, fd = pty.fork()
    if pid == 0:  # pragma: no cover - the child
        os.execve(sys.executable, [sys.executable, "-m", "aux_secrets", *argv], env)
    seen = b""
    pending = list(answers)
    position = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        if pending:
            at = seen.find(pending[0][0], position)
            if at >= 0:
                position = at + len(pending[0][0])
                # The prompt switches echo off with TCSAFLUSH, which drops typeahead: wait.
                time.sleep(0.3)
                os.write(fd, pending.pop(0)[1])
    else:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    os.close(fd)
    return seen


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    env["AUX_SECRETS_AGENT"] = "off"
    return env


def test_derive_ends_with_a_newline_on_a_terminal_only(vault: tuple[Path, Path]) -> None:
    root, pw = vault
    piped = cli("derive", "web/db", "--vault", root, "--password-file", pw)
    assert piped.returncode == 0 and not piped.stdout.endswith(b"\n")
    seen = run_in_pty(
        ["derive", "web/db", "--vault", str(root), "--password-file", str(pw)], [], _env()
    )
    assert seen == piped.stdout + b"\r\n"  # the terminal shows \n as \r\n


def test_unknown_placeholder_warns(vault: tuple[Path, Path]) -> None:
    root, pw = vault
    done = cli("derive", "db/{perod}", "--vault", root, "--password-file", pw)
    assert done.returncode == 0
    assert b"warning: realm 'db/{perod}': {perod} is not a placeholder" in done.stderr
    rotated = cli(
        "derive", "db/{period}", "--rotation", "monthly", "--vault", root, "--password-file", pw
    )
    assert rotated.returncode == 0 and b"warning" not in rotated.stderr


def test_adhoc_gokey_seed_without_mode_warns(tmp_path: Path) -> None:
    gokey = require_program("gokey", "gokey")
    pw = tmp_path / "pw"
    pw.write_text("gokey password\n")
    seed = tmp_path / "seed"
    subprocess.run([gokey, "-p", "gokey password", "-t", "seed", "-o", str(seed)], check=True)
    base = ("derive", "example.com", "--scheme", "gokey", "--password-file", pw, "--seed", seed)
    implicit = cli(*base)
    assert implicit.returncode == 0
    assert b"no --seed-mode: using v2" in implicit.stderr
    explicit = cli(*base, "--seed-mode", "v2")
    assert explicit.stdout == implicit.stdout
    assert b"warning" not in explicit.stderr
    assert_one_line_error(cli(*base, "--seed-mode", "v3"), "unknown seed mode")


def test_store_name_typo_gets_did_you_mean(vault: tuple[Path, Path]) -> None:
    root, pw = vault
    args = ("--vault", root, "--password-file", pw)
    assert cli("store", "add", "api/token", "--no-commit", *args, input=b"v").returncode == 0
    done = cli("store", "get", "api/tokne", *args)
    assert_one_line_error(done, "store secret api/tokne does not exist")
    assert b"hint: did you mean api/token?" in done.stderr
    far = cli("store", "get", "zzz/nothing", *args)
    assert b"hint: see 'aux-secrets store list'" in far.stderr


def test_weak_master_password_warns_at_init(tmp_path: Path) -> None:
    weak = tmp_path / "weak"
    weak.write_text("password1\n")
    done = cli("init", tmp_path / "a", "--password-file", weak, *FAST)
    assert done.returncode == 0
    assert b"warning: the master password is weak" in done.stderr
    assert b"password1" not in done.stderr
    strong = tmp_path / "strong"
    strong.write_text(STRONG + "\n")
    done = cli("init", tmp_path / "b", "--password-file", strong, *FAST)
    assert done.returncode == 0 and b"is weak" not in done.stderr
    # seed rewrap checks the new one too.
    done = cli(
        "seed",
        "rewrap",
        "--vault",
        tmp_path / "b",
        "--password-file",
        strong,
        "--new-password-file",
        weak,
    )
    assert done.returncode == 0 and b"warning: the master password is weak" in done.stderr


def test_strength_without_zxcvbn_falls_back_to_length(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zxcvbn", None)  # import fails as if not installed
    assert weakness(b"short") is not None and "shorter than 12" in str(weakness(b"short"))
    assert weakness(STRONG.encode()) is None


def test_repeat_mismatch_asks_again_and_prompt_names_the_vault(tmp_path: Path) -> None:
    target = tmp_path / "v"
    seen = run_in_pty(
        ["init", str(target), *FAST],
        [
            (b"New master password for", STRONG.encode() + b"\n"),
            (b"Repeat:", b"something else\n"),
            (b"New master password for", STRONG.encode() + b"\n"),
            (b"Repeat:", STRONG.encode() + b"\n"),
        ],
        _env(),
    )
    assert f"New master password for {target}: ".encode() in seen
    assert b"do not match; try again" in seen
    assert (target / "vault.toml").exists(), seen
    # The unlock prompt names the vault as well.
    seen = run_in_pty(
        ["derive", "x", "--vault", str(target)],
        [(b"Master password for", STRONG.encode() + b"\n")],
        _env(),
    )
    assert f"Master password for {target}: ".encode() in seen


def _result(stderr: bytes, code: int = 1) -> ssh.CommandResult:
    return ssh.CommandResult(code, b"", stderr)


def test_host_error_is_the_last_meaningful_lines() -> None:
    noisy = (
        b"Warning: Permanently added '[127.0.0.1]:2222' (ED25519) to the list of known hosts.\r\n"
        b"Traceback (most recent call last):\n"
        b'  File "/nix/store/x/bin/aux-secrets", line 9, in <module>\n'
        b"    sys.exit(run())\n"
        b"PermissionError: [Errno 13] Permission denied: '/var/lib/aux-secrets'\n"
    )
    text = host_error(_result(noisy))
    assert text.startswith("File ")  # the last three meaningful lines, not the first
    assert text.endswith("PermissionError: [Errno 13] Permission denied: '/var/lib/aux-secrets'")
    assert "Permanently added" not in text
    ours = b"aux-secrets: warning: first\naux-secrets: error: the real one\naux-secrets: hint: x\n"
    assert host_error(_result(ours)) == "the real one"
    assert host_error(_result(b"")) == "exit status 1"
    assert "\x1b" not in host_error(_result(b"sh: \x1b[31mred\x1b[0m: not found\n"))
