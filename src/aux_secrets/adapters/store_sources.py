"""External sources of store secrets: ``[store.sources]`` in vault.toml, prefix -> command.

A name under a configured prefix is not read from a file: the command template is
split like a shell, ``{name}`` and ``{fullname}`` filled per argument, and the
program's output (one trailing newline removed) is the value.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Mapping

from aux_secrets.core import storefile as sf
from aux_secrets.errors import ExternalError, InputError


def parse_sources(table: object) -> dict[str, str]:
    """Validate ``[store.sources]``: prefix -> command template."""
    if table is None:
        return {}
    if not isinstance(table, Mapping):
        raise InputError("vault.toml: [store.sources] must be a table of prefix = command")
    sources: dict[str, str] = {}
    for prefix, template in table.items():
        where = f"vault.toml: store.sources.{prefix!r}"
        if not isinstance(prefix, str) or not prefix or prefix.startswith(("/", "-", ".")):
            raise InputError(f"{where}: the prefix must be a non-empty relative name prefix")
        if not isinstance(template, str) or not template.strip():
            raise InputError(f"{where}: the command template must be a non-empty string")
        try:
            argv = shlex.split(template)
        except ValueError as exc:
            raise InputError(f"{where}: the command does not parse ({exc})") from None
        if not argv or "{" in argv[0]:
            raise InputError(f"{where}: the program name must be fixed, not a placeholder")
        sources[prefix] = template
    return sources


def match_source(sources: Mapping[str, str], name: str) -> tuple[str, str] | None:
    """(prefix, template) of the longest prefix of ``name``, or None."""
    best = max(
        (p for p in sources if name.startswith(p) and len(name) > len(p)), key=len, default=None
    )
    return None if best is None else (best, sources[best])


def source_argv(template: str, prefix: str, name: str) -> list[str]:
    """The argument vector: the template split like a shell, placeholders filled per argument."""
    sf.validate_name(name)
    rest = name[len(prefix) :]
    return [
        arg.replace("{name}", rest).replace("{fullname}", name) for arg in shlex.split(template)
    ]


def run_source(template: str, prefix: str, name: str) -> bytes:
    """Run an external source for ``name`` and return its output (one trailing newline removed)."""
    argv = source_argv(template, prefix, name)
    try:
        with subprocess.Popen(argv, stdout=subprocess.PIPE) as proc:
            assert proc.stdout is not None
            out = proc.stdout.read(sf.MAX_VALUE + 2)
            too_big = len(out) > sf.MAX_VALUE + 1
            if too_big:
                proc.kill()
            code = proc.wait()
    except FileNotFoundError:
        raise ExternalError(
            f"external source for {name}: program {argv[0]!r} not found",
            hint="check [store.sources] in vault.toml",
        ) from None
    if too_big:
        raise InputError(f"external source for {name} printed more than {sf.MAX_VALUE} bytes")
    if code != 0:
        raise ExternalError(f"external source for {name}: {argv[0]} exited with status {code}")
    if out.endswith(b"\n"):
        out = out[:-1]
    sf.check_value(name, out)
    return out
