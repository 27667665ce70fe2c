"""Whole commands the agent answers for the fast path: ``store get`` and ``derive``.

The client (cli/fastpath.py) finds the vault directory and sends the parsed arguments;
the agent loads that vault, and answers only if it holds it (same vault id) and the
command is one it fully understands: the output bytes and the warnings the command
would print. Anything else, or any error, is declined (``answered: false``) and the
client runs the ordinary command, so errors and help stay the normal ones. The value
leaves the agent as the command's own output would; the seed does not.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aux_secrets.core import agent_wire as wire

if TYPE_CHECKING:
    from aux_secrets.adapters.vault import Vault
    from aux_secrets.core.keystream import Scheme

Held = Callable[[str], "Scheme | None"]  # vault id -> the scheme the agent holds
Result = tuple[bytes, list[str]] | None  # (output, warnings), or None: declined


def answer_command(message: dict[str, Any], held: Held) -> dict[str, Any]:
    """The answer frame for an ``answer`` request."""
    root = wire.field(message, "root", str)
    command = wire.field(message, "command", str)
    args = wire.field(message, "args", dict)
    handler = COMMANDS.get(command)
    result: Result = None
    if handler is not None and os.path.isabs(root):
        try:
            result = handler(Path(root), args, held)
        except Exception:  # any doubt: the ordinary command says what is wrong
            result = None
    if result is None:
        return {"ok": True, "answered": False}
    data, warnings = result
    return {"ok": True, "answered": True, "data": wire.b64(data), "warnings": warnings}


def _held_vault(root: Path, held: Held) -> tuple[Vault, Scheme] | None:
    from aux_secrets.adapters.agent import vault_id
    from aux_secrets.adapters.vault import Vault

    vault = Vault.load(root)
    if vault.is_legacy:  # its warning is the ordinary command's business
        return None
    scheme = held(vault_id(vault))
    return None if scheme is None else (vault, scheme)


def store_get(root: Path, args: dict[str, Any], held: Held) -> Result:
    from aux_secrets.adapters.store import match_source, vault_store
    from aux_secrets.core.storefile import validate_name

    name = wire.field(args, "name", str)
    validate_name(name)
    found = _held_vault(root, held)
    if found is None:
        return None
    vault, scheme = found
    store = vault_store(vault)
    if match_source(store.sources, name) is not None or not store.dir.exists(name):
        return None
    return store.dir.read(scheme, name).current, []


def derive(root: Path, args: dict[str, Any], held: Held) -> Result:
    from aux_secrets.cli.derive_emit import json_line, json_value, unknown_placeholders
    from aux_secrets.core.derive import DeriveRequest
    from aux_secrets.core.derive import derive as derive_value
    from aux_secrets.core.realm import check_user_realm

    length = wire.optional_field(args, "length", int)
    request = DeriveRequest(
        realm=wire.field(args, "realm", str),
        type=wire.field(args, "type", str),
        length=length,
        charset=wire.field(args, "charset", str),
        encoding=wire.optional_field(args, "encoding", str),
        public=wire.field(args, "public", bool),
    )
    if "{period}" in request.realm:  # rotation: the ordinary command explains
        return None
    check_user_realm(request.realm)
    found = _held_vault(root, held)
    if found is None:
        return None
    value = derive_value(found[1], request)
    as_json = wire.field(args, "json", bool)
    data = json_line(json_value(request, value)) if as_json else value
    return data, unknown_placeholders(request.realm)


COMMANDS: dict[str, Callable[[Path, dict[str, Any], Held], Result]] = {
    "store-get": store_get,
    "derive": derive,
}
