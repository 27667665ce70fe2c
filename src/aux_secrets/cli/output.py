"""How the CLI talks to people: one line per error, warning or hint, on stderr."""

from __future__ import annotations

import sys

PROG = "aux-secrets"


def error(message: str, hint: str | None = None) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    if hint:
        print(f"{PROG}: hint: {hint}", file=sys.stderr)


def warning(message: str) -> None:
    print(f"{PROG}: warning: {message}", file=sys.stderr)


def info(message: str) -> None:
    print(message, file=sys.stderr)


def write_stdout_bytes(data: bytes) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
