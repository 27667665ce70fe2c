"""Where the master password comes from: a file, a command, or the terminal.

Order: ``--password-file``, ``--password-command``, ``AUX_SECRETS_PASSWORD_FILE``,
``AUX_SECRETS_PASSWORD_COMMAND``, then a prompt on ``/dev/tty`` (no echo). Without a
terminal and without a source the result is a clear error, never a hang.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from aux_secrets.adapters.fs import read_bounded
from aux_secrets.errors import ExternalError, InputError, UsageError

ENV_FILE = "AUX_SECRETS_PASSWORD_FILE"
ENV_COMMAND = "AUX_SECRETS_PASSWORD_COMMAND"
MAX_PASSWORD_FILE = 64 * 1024
CONFIRM_ATTEMPTS = 3
SOURCES_HINT = (
    "give --password-file FILE or --password-command CMD, or set "
    f"{ENV_FILE} or {ENV_COMMAND}, or run from a terminal"
)


def read_password_file(path: Path) -> bytes:
    """The file's bytes with surrounding whitespace trimmed (as gokey's -P does)."""
    data = read_bounded(path, MAX_PASSWORD_FILE, what="password file").strip()
    if not data:
        raise InputError(f"password file {path} is empty")
    return data


def run_password_command(command: str) -> bytes:
    """Run ``command`` through the shell; its stdout minus one final newline is the password.

    stderr and stdin stay connected to ours (a command may ask for a PIN); stdout is
    never echoed, not even in the error for a failing command.
    """
    try:
        result = subprocess.run(
            command, shell=True, stdout=subprocess.PIPE, check=False, close_fds=True
        )
    except OSError as exc:
        raise ExternalError(f"password command could not be started: {exc.strerror}") from None
    if result.returncode != 0:
        raise ExternalError(f"password command failed with exit status {result.returncode}")
    data = result.stdout
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data:
        raise InputError("password command printed an empty password")
    return data


def _open_tty() -> int | None:
    try:
        return os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None


def _read_hidden(fd: int, prompt: str) -> bytes:
    import termios

    os.write(fd, prompt.encode())
    old = termios.tcgetattr(fd)
    new = termios.tcgetattr(fd)
    new[3] &= ~termios.ECHO
    try:
        termios.tcsetattr(fd, termios.TCSAFLUSH, new)
        chunks = []
        while True:
            chunk = os.read(fd, 1024)
            if not chunk:
                break
            chunks.append(chunk)
            if b"\n" in chunk:
                break
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, old)
        os.write(fd, b"\n")
    line = b"".join(chunks)
    return line.split(b"\n", 1)[0].rstrip(b"\r")


def prompt_password(prompt: str = "Master password: ", *, confirm: bool = False) -> bytes:
    """Ask on the terminal without echo; with ``confirm`` twice, asking again on a mismatch."""
    fd = _open_tty()
    if fd is None:
        raise UsageError("no master password source and no terminal to ask on", hint=SOURCES_HINT)
    try:
        for _attempt in range(CONFIRM_ATTEMPTS):
            first = _read_hidden(fd, prompt)
            if not first:
                raise InputError("the master password is empty")
            if not confirm or _read_hidden(fd, "Repeat: ") == first:
                return first
            os.write(fd, b"The two passwords do not match; try again.\n")
        raise InputError(f"the two passwords did not match in {CONFIRM_ATTEMPTS} attempts")
    finally:
        os.close(fd)


def will_prompt(password_file: Path | None, password_command: str | None) -> bool:
    """True when :func:`get_password` would ask on the terminal (no other source set)."""
    return (
        password_file is None
        and password_command is None
        and not os.environ.get(ENV_FILE)
        and not os.environ.get(ENV_COMMAND)
    )


def get_password(
    password_file: Path | None = None,
    password_command: str | None = None,
    *,
    confirm: bool = False,
    prompt: str = "Master password: ",
) -> bytes:
    """The master password from the first source that is set (see the module docstring)."""
    if password_file is not None and password_command is not None:
        raise UsageError("give --password-file or --password-command, not both")
    if password_file is not None:
        return read_password_file(password_file)
    if password_command is not None:
        return run_password_command(password_command)
    env_file = os.environ.get(ENV_FILE)
    if env_file:
        return read_password_file(Path(env_file))
    env_command = os.environ.get(ENV_COMMAND)
    if env_command:
        return run_password_command(env_command)
    return prompt_password(prompt, confirm=confirm)
