"""How a bundle reaches a host: the transport model and its validation (pure).

A transport is read from the ``[transport]`` table of ``vault.toml`` (every host's
default) or of a host file (that host's own, replacing the vault's as a whole). Format:
docs/spec/transport.md. Four kinds:

- ``ssh`` (the default): stream the bundle to ``aux-secrets activate`` over ssh;
- ``command``: run a program (an argv template, or a ``/bin/sh`` script) with the
  sealed bundle on stdin; the host's name, target and bundle path are in its
  environment and, for an argv, in ``{host}``/``{target}``/``{bundle}`` placeholders;
- ``copy``: copy the bundle to each destination of a list of source/destination
  pairs (a local path, or ``HOST:PATH`` through scp or the given program);
- ``publish``: write the bundle into a directory that hosts pull from.

Only public things are ever substituted (names, addresses, paths): values travel
inside the sealed bundle, never on a command line.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aux_secrets.errors import InputError, UsageError

KINDS = ("ssh", "command", "copy", "publish")
PLACEHOLDERS = ("host", "target", "bundle")
COPY_SOURCES = ("bundle",)
DEFAULT_TIMEOUT = 300.0
MAX_TIMEOUT = 24 * 3600.0

_KEYS: dict[str, frozenset[str]] = {
    "ssh": frozenset({"kind"}),
    "command": frozenset({"kind", "command", "script", "status", "timeout"}),
    "copy": frozenset({"kind", "copy", "program", "timeout"}),
    "publish": frozenset({"kind", "directory"}),
}


@dataclass(frozen=True)
class SshTransport:
    kind: str = "ssh"


@dataclass(frozen=True)
class CommandTransport:
    """Exactly one of ``argv`` (no shell) and ``script`` (run by ``/bin/sh -c``)."""

    argv: tuple[str, ...] | None = None
    script: str | None = None
    status: tuple[str, ...] | None = None  # prints ``aux-secrets status --json`` (verify)
    timeout: float = DEFAULT_TIMEOUT
    kind: str = "command"


@dataclass(frozen=True)
class CopyPair:
    source: str  # one of COPY_SOURCES
    destination: str  # a template: an absolute local path, or HOST:PATH


@dataclass(frozen=True)
class CopyTransport:
    pairs: tuple[CopyPair, ...]
    program: tuple[str, ...] | None = None  # for HOST:PATH (default: scp with the host's options)
    timeout: float = DEFAULT_TIMEOUT
    kind: str = "copy"


@dataclass(frozen=True)
class PublishTransport:
    directory: str  # absolute, or relative to the vault directory
    kind: str = "publish"


Transport = SshTransport | CommandTransport | CopyTransport | PublishTransport


# --------------------------------------------------------------------------- parsing


def parse_transport(table: object, where: str) -> Transport:
    """A ``[transport]`` table -> its model; any mistake is one InputError naming the key."""
    if not isinstance(table, Mapping):
        raise InputError(f"{where}: 'transport' must be a table")
    kind = table.get("kind", "ssh")
    if kind not in KINDS:
        raise InputError(
            f"{where}: transport kind {kind!r} is not known (known: {', '.join(KINDS)})"
        )
    unknown = sorted(set(table) - _KEYS[kind])
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} in a {kind} transport")
    if kind == "ssh":
        return SshTransport()
    if kind == "command":
        return _parse_command(table, where)
    if kind == "copy":
        return _parse_copy(table, where)
    directory = table.get("directory")
    if not isinstance(directory, str) or not directory.strip():
        raise InputError(f"{where}: a publish transport needs 'directory' (a path)")
    _reject_controls(directory, f"{where}: 'directory'")
    return PublishTransport(directory)


def _parse_command(table: Mapping[str, object], where: str) -> CommandTransport:
    has_argv, has_script = "command" in table, "script" in table
    if has_argv == has_script:
        raise InputError(
            f"{where}: a command transport needs exactly one of 'command' and 'script'"
        )
    argv = _argv(table["command"], f"{where}: 'command'") if has_argv else None
    script: str | None = None
    if has_script:
        value = table["script"]
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{where}: 'script' must be a non-empty string")
        script = value
    status = _argv(table["status"], f"{where}: 'status'") if "status" in table else None
    return CommandTransport(argv, script, status, _timeout(table, where))


def _parse_copy(table: Mapping[str, object], where: str) -> CopyTransport:
    items = table.get("copy")
    if not isinstance(items, list) or not items:
        raise InputError(f"{where}: a copy transport needs 'copy', a list of pairs")
    pairs: list[CopyPair] = []
    for index, item in enumerate(items):
        at = f"{where}: copy[{index}]"
        if not isinstance(item, Mapping):
            raise InputError(f"{at} must be a table with 'source' and 'destination'")
        unknown = sorted(set(item) - {"source", "destination"})
        if unknown:
            raise InputError(f"{at}: unknown key {unknown[0]!r}")
        source = item.get("source", "bundle")
        if source not in COPY_SOURCES:
            raise InputError(f"{at}: source {source!r} is not one of {', '.join(COPY_SOURCES)}")
        destination = item.get("destination")
        if not isinstance(destination, str) or not destination:
            raise InputError(f"{at}: 'destination' must be a non-empty string")
        check_template(destination, f"{at}: 'destination'")
        if destination.startswith("-"):
            raise InputError(f"{at}: 'destination' must not start with '-'")
        if not is_remote(destination) and not destination.startswith(("/", "{")):
            raise InputError(
                f"{at}: local destination {destination!r} is not an absolute path",
                hint="write /srv/aux-secrets/{host}.age, or HOST:PATH for a remote copy",
            )
        pairs.append(CopyPair(str(source), destination))
    program = _argv(table["program"], f"{where}: 'program'") if "program" in table else None
    return CopyTransport(tuple(pairs), program, _timeout(table, where))


def _argv(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where} must be a non-empty list of strings (argv, no shell)")
    for part in value:
        check_template(part, where)
    if not value[0]:
        raise InputError(f"{where}: the program name is empty")
    return tuple(value)


def _timeout(table: Mapping[str, object], where: str) -> float:
    value = table.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where}: 'timeout' must be a number of seconds")
    if not 0 < value <= MAX_TIMEOUT:
        raise InputError(f"{where}: 'timeout' must be more than 0 and at most {MAX_TIMEOUT:g}")
    return float(value)


def _reject_controls(text: str, where: str) -> None:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise InputError(f"{where} contains a control character")


def check_template(text: str, where: str) -> None:
    """Only ``{host}``, ``{target}`` and ``{bundle}`` (``{{``/``}}`` for braces)."""
    _reject_controls(text, where)
    try:
        parsed = [(n, s, c) for _, n, s, c in string.Formatter().parse(text) if n is not None]
    except ValueError:
        raise InputError(f"{where}: unbalanced '{{' or '}}' in {text!r}") from None
    for name, _spec, _conv in parsed:
        if name not in PLACEHOLDERS:
            raise InputError(
                f"{where}: unknown placeholder {{{name}}} "
                f"(known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
            )
    if any(spec or conv for _, spec, conv in parsed):
        raise InputError(f"{where}: placeholders take no format spec or conversion")


# --------------------------------------------------------------------------- expansion


def expand(template: str, values: Mapping[str, str | None], where: str) -> str:
    """Fill a checked template; a placeholder whose value is missing is a UsageError."""
    out: list[str] = []
    for literal, name, _spec, _conv in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        value = values.get(name)
        if value is None:
            raise UsageError(
                f"{where} uses {{{name}}}, but there is none",
                hint="store one with 'host add --target USER@ADDR'" if name == "target" else None,
            )
        out.append(value)
    return "".join(out)


def expand_argv(argv: Sequence[str], values: Mapping[str, str | None], where: str) -> list[str]:
    return [expand(part, values, where) for part in argv]


def is_remote(destination: str) -> bool:
    """``HOST:PATH`` as scp and rsync read it: a colon before any slash."""
    head, colon, _ = destination.partition(":")
    return bool(colon) and bool(head) and "/" not in head


# --------------------------------------------------------------------------- writing


def transport_table(transport: Transport) -> dict[str, object]:
    """The model back as a TOML table (what ``parse_transport`` reads)."""
    if isinstance(transport, SshTransport):
        return {"kind": "ssh"}
    if isinstance(transport, PublishTransport):
        return {"kind": "publish", "directory": transport.directory}
    table: dict[str, object] = {"kind": transport.kind}
    if isinstance(transport, CommandTransport):
        if transport.argv is not None:
            table["command"] = list(transport.argv)
        if transport.script is not None:
            table["script"] = transport.script
        if transport.status is not None:
            table["status"] = list(transport.status)
    else:
        table["copy"] = [
            {"source": p.source, "destination": p.destination} for p in transport.pairs
        ]
        if transport.program is not None:
            table["program"] = list(transport.program)
    if transport.timeout != DEFAULT_TIMEOUT:
        table["timeout"] = transport.timeout
    return table


def describe(transport: Transport) -> str:
    """A short label for reports: ``ssh``, ``command rsync``, ``copy (2)``, ``publish DIR``."""
    if isinstance(transport, CommandTransport):
        return f"command {transport.argv[0]}" if transport.argv else "command (script)"
    if isinstance(transport, CopyTransport):
        return f"copy ({len(transport.pairs)})"
    if isinstance(transport, PublishTransport):
        return f"publish {transport.directory}"
    return "ssh"
