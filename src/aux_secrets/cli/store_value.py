"""Where a new store value comes from: standard input, --from-file, --from-command, or
a prompt on the terminal (asked twice, without echo)."""

from __future__ import annotations

import sys
from pathlib import Path

from aux_secrets.cli import output
from aux_secrets.errors import InputError, UsageError


def _read_value(
    name: str, from_file: Path | None, from_command: str | None, strip_newline: bool
) -> bytes:
    from aux_secrets.adapters.fs import read_bounded
    from aux_secrets.core import storefile as sf

    if from_file is not None and from_command is not None:
        raise UsageError("give --from-file or --from-command, not both")
    if from_file is not None:
        value = read_bounded(from_file, sf.MAX_VALUE, what="value file")
    elif from_command is not None:
        value = _run_value_command(name, from_command)
    elif sys.stdin.isatty():
        value = _prompt_value(name)
    else:
        value = sys.stdin.buffer.read(sf.MAX_VALUE + 1)
    sf.check_value(name, value)
    if strip_newline:
        value = value[:-2] if value.endswith(b"\r\n") else value.removesuffix(b"\n")
    elif value.endswith(b"\n") and b"\n" not in value[:-1].rstrip(b"\r"):
        output.warning(
            f"the value for {name} ends with a newline (as `echo` adds); it is stored with "
            "it, and env files refuse it: if it is not part of the "
            "value, run again with --strip-newline (or pipe it with printf %s)"
        )
    if not value:
        output.warning(f"the value for {name} is empty")
    return value


def _run_value_command(name: str, command: str) -> bytes:
    import subprocess

    from aux_secrets.core import storefile as sf
    from aux_secrets.errors import ExternalError

    try:
        with subprocess.Popen(command, shell=True, stdout=subprocess.PIPE) as proc:
            assert proc.stdout is not None
            value = proc.stdout.read(sf.MAX_VALUE + 1)
            if len(value) > sf.MAX_VALUE:
                proc.kill()
            code = proc.wait()
    except OSError as exc:
        raise ExternalError(f"--from-command could not be started: {exc.strerror}") from None
    if len(value) <= sf.MAX_VALUE and code != 0:
        raise ExternalError(f"--from-command for {name} failed with exit status {code}")
    return value


def _prompt_value(name: str) -> bytes:
    import getpass

    first = getpass.getpass(f"Value for {name}: ")
    if getpass.getpass("Repeat: ") != first:
        raise InputError("the two values do not match")
    return first.encode("utf-8")
