"""`completion SHELL` and `manpage`: shell completion and a man page from the same help."""

from __future__ import annotations

from typing import Annotated

import typer

from aux_secrets.errors import UsageError

PROG = "aux-secrets"
COMPLETE_VAR = "_AUX_SECRETS_COMPLETE"
SHELLS = ("bash", "zsh", "fish")

COMPLETION_HELP = """Print the shell completion script for bash, zsh or fish.

The script asks aux-secrets itself for the completions, so they follow the installed
version. The Nix package installs all three.

Examples:

  source <(aux-secrets completion bash)                  # in ~/.bashrc

  aux-secrets completion zsh > "${fpath[1]}/_aux-secrets"

  aux-secrets completion fish > ~/.config/fish/completions/aux-secrets.fish
"""

MANPAGE_HELP = """Print the aux-secrets(1) man page (roff), made from every command's help.

Example:

  aux-secrets manpage > aux-secrets.1 && man -l aux-secrets.1
"""


def init_completion() -> None:
    """Register typer's completion classes (only when a shell asks for completions)."""
    from typer._completion_classes import completion_init

    completion_init()


def completion(
    shell: Annotated[str, typer.Argument(metavar="SHELL", help="bash, zsh or fish.")],
) -> None:
    from typer._completion_shared import get_completion_script

    if shell not in SHELLS:
        raise UsageError(f"no completion for shell {shell!r}: use bash, zsh or fish")
    script = get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell)
    print(script.strip())


def manpage() -> None:
    from aux_secrets import __version__
    from aux_secrets.cli.main import app
    from aux_secrets.cli.manpage import render

    print(render(app, __version__), end="")


def register(app: typer.Typer) -> None:
    app.command("completion", help=COMPLETION_HELP)(completion)
    app.command("manpage", help=MANPAGE_HELP)(manpage)
