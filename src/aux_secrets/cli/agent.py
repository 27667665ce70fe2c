"""`aux-secrets agent ...`: unlock once, and every command uses the unlocked vault."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from aux_secrets.cli import common, output

AGENT_HELP = """The unlock agent: a per-user process holding unlocked vaults for a while.

When you type the master password, the vault is unlocked in the agent (started on
demand) and every later command uses it until the timeout ($AUX_SECRETS_AGENT_TIMEOUT,
default 900 s) or 'agent lock'. The seed never leaves the agent and is never written
anywhere; only processes of your own uid may use its socket. AUX_SECRETS_AGENT=off
turns it off.

Example:

  aux-secrets agent unlock --timeout 3600
"""

UNLOCK_HELP = """Unlock the vault in the agent (starting one if none runs).

The password comes from the usual sources (--password-file, --password-command, the
terminal). Later commands on this vault ask for no password until the timeout.

Example:

  aux-secrets agent unlock --timeout 3600
"""

LOCK_HELP = """Forget every unlocked vault now; the agent exits.

Example:

  aux-secrets agent lock
"""

STATUS_HELP = """Show whether an agent runs and which vaults it holds, for how long.

Exit 1 when no agent runs.

Example:

  aux-secrets agent status --json
"""

TimeoutOpt = Annotated[
    int | None,
    typer.Option(
        "--timeout",
        metavar="SECONDS",
        help="Hold the vault this long (default: $AUX_SECRETS_AGENT_TIMEOUT, else 900).",
        show_default=False,
    ),
]


def unlock(
    timeout: TimeoutOpt = None,
    vault: common.VaultOpt = None,
    password_file: common.PasswordFileOpt = None,
    password_command: common.PasswordCommandOpt = None,
) -> None:
    from aux_secrets.adapters import agent
    from aux_secrets.adapters.password import get_password

    seconds = agent.check_timeout(timeout) if timeout is not None else agent.default_timeout()
    found = common.open_vault(vault)
    if found.is_legacy:
        common.legacy_warning()
    password = get_password(password_file, password_command, prompt=common.prompt_for(found))
    agent.unlock_in_agent(found, password, seconds)
    output.info(f"unlocked {found.root} in the agent for {seconds} s")


def lock() -> None:
    from aux_secrets.adapters import agent

    client = agent.AgentClient.connect()
    if client is None:
        output.info("no agent is running")
        return
    client.lock()
    output.info("the agent forgot every vault and exits")


def status(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    from aux_secrets.adapters import agent

    client = agent.AgentClient.connect()
    doc: dict[str, object] = {"running": client is not None, "socket": str(agent.socket_path())}
    if client is not None:
        answer = client.status()
        doc |= {"pid": answer.get("pid"), "vaults": answer.get("vaults", [])}
    if as_json:
        print(json.dumps(doc, indent=2, sort_keys=True))
    elif client is None:
        print(f"no agent is running ({doc['socket']})")
    else:
        vaults = answer.get("vaults", [])
        print(f"agent pid {doc['pid']} on {doc['socket']}: {len(vaults)} vault(s) unlocked")
        for v in vaults:
            print(f"  {v['root']}\t{v['scheme']}\t{v['expiresIn']} s left")
    if client is None:
        raise typer.Exit(1)


def serve(
    detach: Annotated[bool, typer.Option("--detach", help="Fork into the background.")] = False,
) -> None:
    """Run the agent in the foreground (commands start it on demand; scripts and tests
    may run it directly)."""
    from aux_secrets.adapters import agent
    from aux_secrets.adapters.agent_server import serve as run

    raise typer.Exit(run(agent.agent_dir(), detach=detach))


def register(app: typer.Typer) -> None:
    agent_app = typer.Typer(help=AGENT_HELP, no_args_is_help=True, rich_markup_mode=None)
    agent_app.command("unlock", help=UNLOCK_HELP)(unlock)
    agent_app.command("lock", help=LOCK_HELP)(lock)
    agent_app.command("status", help=STATUS_HELP)(status)
    agent_app.command(
        "serve",
        hidden=True,
        help="Run the agent process.\n\nExample:\n\n  aux-secrets agent serve",
    )(serve)
    app.add_typer(agent_app, name="agent")
