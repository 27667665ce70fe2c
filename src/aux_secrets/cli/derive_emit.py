"""What `aux-secrets derive` prints, shared by the typer command and the fast path
(adapters/agent_answer.py, for cli/fastpath.py), so both give the same bytes. Imports
nothing heavy."""

from __future__ import annotations

import json
import sys

from aux_secrets.cli import output

TYPE_CHECKING = False  # typing and pathlib are not imported at run time (the fast path)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from aux_secrets.core.derive import DeriveRequest


def unknown_placeholders(realm: str) -> list[str]:
    """A warning for each ``{...}`` that is not ``{period}``: it is derived literally."""
    import re

    from aux_secrets.core.rotation import PLACEHOLDER

    return [
        f"realm {realm!r}: {found} is not a placeholder and is derived as written "
        f"(the only placeholder is {PLACEHOLDER}, with --rotation)"
        for found in sorted(set(re.findall(r"\{[^{}]*\}", realm)) - {PLACEHOLDER})
    ]


def warn_unknown_placeholders(realm: str) -> None:
    for message in unknown_placeholders(realm):
        output.warning(message)


def json_value(request: DeriveRequest, value: bytes, realm: str | None = None) -> dict[str, Any]:
    import base64

    from aux_secrets.core.derive import resolve_encoding

    entry: dict[str, Any] = {"realm": realm or request.realm, "type": request.type}
    text: str | None = None
    if resolve_encoding(request) != "binary":
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError:
            text = None
    if text is None:
        entry["value"] = base64.b64encode(value).decode("ascii")
        entry["encoding"] = "base64"
    else:
        entry["value"] = text
    return entry


def json_line(obj: object) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf-8")


def emit(data: bytes, destination: Path | None, *, terminal_newline: bool = False) -> None:
    """To stdout or a file; with ``terminal_newline`` a newline ends it on a terminal (as
    gokey does), never in a pipe or file, whose bytes stay exactly the secret."""
    if destination is None or str(destination) == "-":
        if terminal_newline and not data.endswith(b"\n") and sys.stdout.isatty():
            data += b"\n"
        output.write_stdout_bytes(data)
        return
    from aux_secrets.adapters.fs import atomic_write

    atomic_write(destination, data, mode=0o600)
