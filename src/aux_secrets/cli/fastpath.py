"""`store get NAME` and `derive REALM` answered from the agent without typer.

Importing typer (with click) costs more than the rest of such a command when the agent
holds the vault. This recognises only the argument lists it fully understands, parsed as
click would parse them; anything else (another option, ``--help``, a repeated option, a
value starting with ``-``, no agent, a vault it does not hold, any error) returns None
and the typer command runs, so errors and help stay exactly the normal ones. Nothing is
printed before the answer is complete, so a fallback never repeats a line.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aux_secrets.adapters.agent import RemoteScheme
    from aux_secrets.adapters.vault import Vault

ENV_OFF = "_AUX_SECRETS_NO_FASTPATH"  # tests: always take the typer path

# option spelling -> (key, takes a value)
Spec = dict[str, tuple[str, bool]]
STORE_GET: Spec = {"--vault": ("vault", True)}
DERIVE: Spec = {
    "--type": ("type", True),
    "-t": ("type", True),
    "--length": ("length", True),
    "-l": ("length", True),
    "--charset": ("charset", True),
    "--encoding": ("encoding", True),
    "-e": ("encoding", True),
    "--public": ("public", False),
    "--json": ("json", False),
    "--vault": ("vault", True),
}


def parse(args: Sequence[str], spec: Spec) -> tuple[str, dict[str, str]] | None:
    """One positional argument and options from ``spec`` (each at most once), or None.

    Accepts ``--opt VALUE``, ``--opt=VALUE``, ``-o VALUE`` and ``-oVALUE``, in any order
    around the argument, as click does; values may not be empty or start with ``-``.
    """
    positional: list[str] = []
    options: dict[str, str] = {}
    rest = list(args)
    while rest:
        arg = rest.pop(0)
        if not arg.startswith("-"):
            positional.append(arg)
            continue
        value: str | None = None
        if arg.startswith("--") and "=" in arg:
            arg, value = arg.split("=", 1)
        elif not arg.startswith("--") and len(arg) > 2:
            arg, value = arg[:2], arg[2:]
        if arg not in spec:
            return None
        key, takes_value = spec[arg]
        if key in options:
            return None
        if not takes_value:
            if value is not None:
                return None
            options[key] = ""
            continue
        if value is None:
            if not rest:
                return None
            value = rest.pop(0)
        if not value or value.startswith("-"):
            return None
        options[key] = value
    if len(positional) != 1 or not positional[0]:
        return None
    return positional[0], options


def _vault(option: str | None) -> Vault:
    from aux_secrets.adapters.vault import Vault

    return Vault.discover(Path(option) if option is not None else None)


def _held(found: Vault) -> RemoteScheme | None:
    from aux_secrets.adapters import agent

    if found.is_legacy:  # its warning is the typer path's business
        return None
    return agent.held_scheme(found)


def _store_get(name: str, options: dict[str, str]) -> tuple[bytes, list[str]] | None:
    from aux_secrets.adapters.store import match_source, vault_store
    from aux_secrets.core.storefile import validate_name

    validate_name(name)
    found = _vault(options.get("vault"))
    store = vault_store(found)
    if match_source(store.sources, name) is not None or not store.dir.exists(name):
        return None
    scheme = _held(found)
    if scheme is None:
        return None
    return store.dir.read(scheme, name).current, []


def _derive(realm: str, options: dict[str, str]) -> tuple[bytes, list[str]] | None:
    from aux_secrets.cli.derive_emit import json_line, json_value, unknown_placeholders
    from aux_secrets.core.derive import DeriveRequest, derive
    from aux_secrets.core.realm import check_user_realm

    length = options.get("length")
    if "{period}" in realm or (length is not None and not length.isascii()):
        return None
    if length is not None and not length.isdigit():
        return None
    request = DeriveRequest(
        realm=realm,
        type=options.get("type", "pass"),
        length=int(length) if length is not None else None,
        charset=options.get("charset", "gokey"),
        encoding=options.get("encoding"),
        public="public" in options,
    )
    check_user_realm(realm)
    scheme = _held(_vault(options.get("vault")))
    if scheme is None:
        return None
    value = derive(scheme, request)
    data = json_line(json_value(request, value)) if "json" in options else value
    return data, unknown_placeholders(realm)


def answer(args: Sequence[str]) -> int | None:
    """The exit code if this answered the command, else None (run the typer command)."""
    if os.environ.get(ENV_OFF) or any(not _utf8(arg) for arg in args):
        return None
    try:
        if list(args[:2]) == ["store", "get"] and (parsed := parse(args[2:], STORE_GET)):
            result = _store_get(*parsed)
        elif list(args[:1]) == ["derive"] and (parsed := parse(args[1:], DERIVE)):
            result = _derive(*parsed)
        else:
            return None
    except Exception:  # any doubt: the typer command says what is wrong
        return None
    except KeyboardInterrupt:
        from aux_secrets.cli import output

        output.error("interrupted")
        return 130
    if result is None:
        return None
    from aux_secrets.cli import output
    from aux_secrets.cli.derive_emit import emit

    data, warnings = result
    try:
        for message in warnings:
            output.warning(message)
        # store get writes the bytes as they are; derive adds a newline on a terminal only.
        emit(data, None, terminal_newline=args[0] == "derive")
    except OSError as exc:  # as the typer path (click) reports it
        import errno

        if exc.errno != errno.EPIPE:
            output.os_error(exc)
            return 1
        # A closed pipe exits 1 silently; what is still buffered goes nowhere at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        return 1
    return 0


def _utf8(arg: str) -> bool:
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
