"""`store get NAME` and `derive REALM` answered by the agent, before typer is imported.

When the agent holds the vault, importing typer (with click), or even the modules that
derive and decrypt, costs several times what `pass show` takes in all. So this imports
only ``os`` and, for a command it recognises, the socket and the wire format: it finds
the vault directory, sends the parsed arguments, and the agent, which has everything
loaded, sends back the command's output (adapters/agent_answer.py). It recognises only
the argument lists it fully understands, parsed as click would parse them; anything
else (another option, ``--help``, a repeated option, a value starting with ``-``, no
agent, a vault it does not hold, any error) returns None and the typer command runs,
so errors and help stay exactly the normal ones. Nothing is printed before the answer
is complete, so a fallback never repeats a line.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing and pathlib are not imported at run time: see above
if TYPE_CHECKING:
    from collections.abc import Sequence

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


def _request(args: Sequence[str]) -> tuple[str | None, str, dict[str, object]] | None:
    """(--vault, command, arguments for the agent) when this is a command it answers."""
    if list(args[:2]) == ["store", "get"] and (parsed := parse(args[2:], STORE_GET)):
        name, options = parsed
        return options.get("vault"), "store-get", {"name": name}
    if list(args[:1]) == ["derive"] and (parsed := parse(args[1:], DERIVE)):
        realm, options = parsed
        length = options.get("length")
        if length is not None and not (length.isascii() and length.isdigit()):
            return None
        return (
            options.get("vault"),
            "derive",
            {
                "realm": realm,
                "type": options.get("type", "pass"),
                "length": int(length) if length is not None else None,
                "charset": options.get("charset", "gokey"),
                "encoding": options.get("encoding"),
                "public": "public" in options,
                "json": "json" in options,
            },
        )
    return None


def _ask_agent(
    vault_option: str | None, command: str, arguments: dict[str, object]
) -> tuple[bytes, list[str]] | None:
    """The agent's answer (output, warnings), or None: no agent, or it declined."""
    from aux_secrets.adapters import agent_socket
    from aux_secrets.adapters.vault_locate import locate_vault
    from aux_secrets.core import agent_wire as wire

    if not agent_socket.enabled():
        return None
    root = locate_vault(vault_option)
    if root is None:
        return None
    path = os.path.join(agent_socket.socket_dir(), agent_socket.SOCKET_NAME)
    sock = agent_socket.open_agent_socket(path)
    if sock is None:
        return None
    request = {"op": "answer", "root": os.path.realpath(root), "command": command}
    try:
        agent_socket.send_frame(sock, request | {"args": arguments})
        reply = agent_socket.recv_frame(sock)
    finally:
        sock.close()
    if reply.get("ok") is not True or reply.get("answered") is not True:
        return None  # declined, or an agent too old to know the request
    warnings = reply.get("warnings")
    if not isinstance(warnings, list) or not all(isinstance(w, str) for w in warnings):
        return None
    return wire.unb64(reply, "data"), warnings


def answer(args: Sequence[str]) -> int | None:
    """The exit code if this answered the command, else None (run the typer command)."""
    if os.environ.get(ENV_OFF) or any(not _utf8(arg) for arg in args):
        return None
    try:
        request = _request(args)
        result = _ask_agent(*request) if request is not None else None
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
