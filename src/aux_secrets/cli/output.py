"""How the CLI talks to people: one line per error, warning or hint, on stderr."""

from __future__ import annotations

import sys

from aux_secrets.core.escape import printable

PROG = "aux-secrets"

# Every line goes through ``printable``: a message may quote a bundle field, a name, a
# path or a host's output, and none of that may start a new line or drive the terminal.


def error(message: str, hint: str | None = None) -> None:
    print(f"{PROG}: error: {printable(message)}", file=sys.stderr)
    if hint:
        print(f"{PROG}: hint: {printable(hint)}", file=sys.stderr)


def os_error(exc: OSError) -> None:
    """Paths and errno text only: an OSError never carries a secret value."""
    where = f" {exc.filename}" if exc.filename else ""
    error(f"{exc.strerror or exc}{':' if where else ''}{where}")


def warning(message: str) -> None:
    print(f"{PROG}: warning: {printable(message)}", file=sys.stderr)


def info(message: str) -> None:
    print(printable(message), file=sys.stderr)


def write_stdout_bytes(data: bytes) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
