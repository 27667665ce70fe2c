"""What a host says back: its JSON documents as a :class:`HostReport`, its errors in one line.

:func:`report_from_output` reads what ``activate --json`` and ``install --json``
print; :func:`host_error` and :func:`host_hint` pick the host's own error and hint
lines out of its stderr, without ssh's chatter and without control sequences.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aux_secrets.adapters import ssh
    from aux_secrets.workflows.bundles import Bundle


@dataclass(frozen=True)
class HostReport:
    """What one provision did on one host (names and units only, never a value)."""

    host: str
    where: str
    serial: int
    bundle_id: str
    secrets: int
    store_changed: tuple[str, ...] = ()  # secrets whose value the local store took in
    changed: tuple[str, ...] = ()  # installed files that changed, appeared or went
    restarted: tuple[str, ...] = ()
    reloaded: tuple[str, ...] = ()
    not_found: tuple[str, ...] = ()  # units to restart or reload that the host lacks
    no_change: bool = False
    generation: int | None = None
    output: str = ""  # the host's stderr (warnings)
    delivered: bool = False  # handed to a copy, command or publish transport: the host takes it in

    def summary(self) -> str:
        if self.delivered:
            return f"serial {self.serial}: delivered to {self.where}"
        if self.no_change:
            return f"serial {self.serial}: no change"
        parts = [f"serial {self.serial}: {len(self.changed)} changed"]
        if self.restarted:
            parts.append("restarted " + ", ".join(self.restarted))
        if self.reloaded:
            parts.append("reloaded " + ", ".join(self.reloaded))
        if self.not_found:
            parts.append("not on the host " + ", ".join(self.not_found))
        return "; ".join(parts)

    @property
    def warnings(self) -> tuple[str, ...]:
        """The host's warning lines, without the program prefix."""
        prefix = "aux-secrets: warning: "
        return tuple(
            line.strip()[len(prefix) :]
            for line in self.output.splitlines()
            if line.strip().startswith(prefix)
        )


def parse_host_output(stdout: bytes) -> list[dict[str, Any]]:
    """The JSON objects that ``activate --json`` and ``install --json`` print, in order."""
    text = stdout.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    docs: list[dict[str, Any]] = []
    pos = 0
    while True:
        start = text.find("{", pos)
        if start < 0:
            break
        try:
            doc, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            pos = start + 1
            continue
        pos = end
        if isinstance(doc, dict):
            docs.append(doc)
    return docs


def _names(value: object) -> tuple[str, ...]:
    """Names from a list of strings or of ``{"name": ...}`` objects."""
    if not isinstance(value, list | tuple):
        return ()
    out: list[str] = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str) and name not in out:
            out.append(name)
    return tuple(out)


def _not_found(value: object) -> tuple[str, ...]:
    """The units of install's ``notFound`` list (``[{"verb": ..., "units": [...]}]``)."""
    if not isinstance(value, list):
        return ()
    units: list[str] = []
    for entry in value:
        for unit in _names(entry.get("units") if isinstance(entry, dict) else None):
            if unit not in units:
                units.append(unit)
    return tuple(units)


def report_from_output(bundle: Bundle, where: str, stdout: bytes, stderr: bytes) -> HostReport:
    activated: dict[str, Any] = {}
    installed: dict[str, Any] = {}
    for doc in parse_host_output(stdout):
        if "bundleId" in doc and "previousSerial" in doc:
            activated = doc
        elif "generation" in doc:
            installed = doc
    return host_report(bundle, where, activated, installed, stderr.decode("utf-8", "replace"))


def host_report(
    bundle: Bundle,
    where: str,
    activated: Mapping[str, Any],
    installed: Mapping[str, Any],
    output: str,
) -> HostReport:
    """The report from the ``activate --json`` and ``install --json`` documents."""
    files = _names(installed.get("changed")) + _names(installed.get("appeared"))
    removed = _names(installed.get("removed"))
    not_found = _not_found(installed.get("notFound"))
    restarted = tuple(u for u in _names(installed.get("tryRestart")) if u not in not_found)
    reloaded = tuple(u for u in _names(installed.get("tryReloadOrRestart")) if u not in not_found)
    return HostReport(
        host=bundle.host,
        where=where,
        serial=bundle.serial,
        bundle_id=bundle.bundle_id,
        secrets=bundle.secrets,
        store_changed=_names(activated.get("changed")),
        changed=files + tuple(n for n in removed if n not in files),
        restarted=restarted,
        reloaded=reloaded,
        not_found=not_found,
        no_change=not files and not removed and not restarted and not reloaded,
        generation=installed.get("generation")
        if isinstance(installed.get("generation"), int)
        else None,
        output=output.strip(),
    )


# ssh's own chatter on stderr, which says nothing about why the host side failed.
SSH_NOISE = (
    "Warning: Permanently added",
    "Pseudo-terminal will not be allocated",
    "** WARNING: connection is not using a post-quantum",
    "** This session may be vulnerable",
    "** The server may need to be upgraded",
)
HOST_ERROR_LINES = 3


def _printable(text: str) -> str:
    """A host's bytes never reach our terminal as control sequences."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def host_error(result: ssh.CommandResult) -> str:
    """The host's real error: its last ``aux-secrets: error:`` line, else the last few
    meaningful stderr lines (a traceback's exception, a shell's complaint), in one line."""
    lines = [
        _printable(line.strip())
        for line in result.stderr_text.splitlines()
        if line.strip() and not line.lstrip().startswith(SSH_NOISE)
    ]
    errors = [line for line in lines if ": error: " in line]
    if errors:
        return errors[-1].split(": error: ", 1)[1]
    if not lines:
        return f"exit status {result.returncode}"
    return " | ".join(lines[-HOST_ERROR_LINES:])


def host_hint(result: ssh.CommandResult) -> str | None:
    """The host's own ``aux-secrets: hint:`` line, if it printed one."""
    for line in result.stderr_text.splitlines():
        if line.startswith("aux-secrets: hint: "):
            return line.split(": hint: ", 1)[1]
    return None
