"""Master password sources: file, command, environment, terminal (and no terminal)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from aux_secrets.adapters import password
from aux_secrets.errors import ExternalError, InputError, NotFoundError, UsageError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(password.ENV_FILE, raising=False)
    monkeypatch.delenv(password.ENV_COMMAND, raising=False)


def test_file_is_trimmed_like_gokey(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_bytes(b"  correct horse \n\n")
    assert password.get_password(f) == b"correct horse"


def test_empty_missing_and_unreadable_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b" \n")
    with pytest.raises(InputError, match="empty"):
        password.get_password(empty)
    with pytest.raises(NotFoundError, match="password file"):
        password.get_password(tmp_path / "missing")
    with pytest.raises(InputError, match="is a directory"):
        password.get_password(tmp_path)


def test_unreadable_file(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_bytes(b"x")
    f.chmod(0)
    if not os.access(f, os.R_OK):
        with pytest.raises(InputError, match="not readable"):
            password.get_password(f)
        return
    # Root reads anything: check as an unprivileged user in a child process.
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 3
        try:
            os.setgid(65534)
            os.setuid(65534)
            password.get_password(f)
            code = 1
        except InputError as exc:
            code = 0 if "not readable" in exc.message else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_command_strips_one_newline_only() -> None:
    assert password.get_password(None, "printf 'a b \\n\\n'") == b"a b \n"
    assert password.get_password(None, "printf 'xyz'") == b"xyz"


def test_failing_command_does_not_echo_output() -> None:
    with pytest.raises(ExternalError) as info:
        password.get_password(None, "echo supersecret; exit 3")
    assert "supersecret" not in info.value.message
    assert "3" in info.value.message
    with pytest.raises(InputError, match="empty"):
        password.get_password(None, "true")


def test_both_options_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        password.get_password(tmp_path / "pw", "echo x")


def test_order_options_then_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f1, f2 = tmp_path / "one", tmp_path / "two"
    f1.write_bytes(b"from-option")
    f2.write_bytes(b"from-env-file")
    monkeypatch.setenv(password.ENV_FILE, str(f2))
    monkeypatch.setenv(password.ENV_COMMAND, "printf from-env-command")
    assert password.get_password(f1) == b"from-option"
    assert password.get_password(None, "printf from-command") == b"from-command"
    assert password.get_password() == b"from-env-file"
    monkeypatch.delenv(password.ENV_FILE)
    assert password.get_password() == b"from-env-command"


def test_no_tty_and_no_source_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(password, "_open_tty", lambda: None)
    with pytest.raises(UsageError) as info:
        password.get_password()
    assert "no terminal" in info.value.message
    assert info.value.hint is not None and "--password-file" in info.value.hint


def _typist(master: int, lines: list[bytes]) -> threading.Thread:
    """Type each line after its prompt appears (the prompt flushes earlier typeahead)."""

    def run() -> None:
        for line in lines:
            seen = b""
            while b": " not in seen:
                seen += os.read(master, 1024)
            time.sleep(0.05)
            os.write(master, line)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_prompt_reads_without_echo_from_a_pty(monkeypatch: pytest.MonkeyPatch) -> None:
    import termios

    master, slave = os.openpty()
    echo_during: list[bool] = []
    real_tcsetattr = termios.tcsetattr

    def record(fd: int, when: int, attrs: list[Any]) -> None:
        echo_during.append(bool(attrs[3] & termios.ECHO))
        real_tcsetattr(fd, when, attrs)

    try:
        monkeypatch.setattr(password, "_open_tty", lambda: os.dup(slave))
        monkeypatch.setattr(termios, "tcsetattr", record)
        typist = _typist(master, [b"secret one\n"])
        assert password.get_password() == b"secret one"
        typist.join(5)
        assert echo_during[0] is False  # echo off while reading
        assert echo_during[-1] is True  # and restored afterwards
    finally:
        os.close(master)
        os.close(slave)


def test_prompt_twice_must_match(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = os.openpty()
    try:
        monkeypatch.setattr(password, "_open_tty", lambda: os.dup(slave))
        # A mismatch asks again, up to three times.
        typist = _typist(master, [b"one\n", b"two\n"] * password.CONFIRM_ATTEMPTS)
        with pytest.raises(InputError, match="did not match in 3 attempts"):
            password.get_password(confirm=True)
        typist.join(5)
        typist = _typist(master, [b"one\n", b"two\n", b"same\n", b"same\n"])
        assert password.get_password(confirm=True) == b"same"
        typist.join(5)
        typist = _typist(master, [b"same\n", b"same\n"])
        assert password.get_password(confirm=True) == b"same"
        typist.join(5)
    finally:
        os.close(master)
        os.close(slave)
