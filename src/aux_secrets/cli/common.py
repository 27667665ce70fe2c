"""Options and helpers every vault-using command shares: --vault and the password sources."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aux_secrets.cli import output
from aux_secrets.errors import AuxError, WrongPasswordError

if TYPE_CHECKING:
    from aux_secrets.adapters.vault import Vault
    from aux_secrets.core.keystream import Scheme


VAULT_HELP = "Vault directory (default: $AUX_SECRETS_VAULT, else the nearest vault.toml upward)."
PASSWORD_FILE_HELP = (
    "Read the master password from FILE, whitespace trimmed (default: $AUX_SECRETS_PASSWORD_FILE)."
)
PASSWORD_COMMAND_HELP = (
    "Run CMD through the shell; its output is the master password, e.g. 'pass show aux/master' "
    "(default: $AUX_SECRETS_PASSWORD_COMMAND)."
)


def vault_option() -> Any:
    """``vault: Path | None = vault_option()`` (or use the ``VaultOpt`` annotation)."""
    return typer.Option(None, "--vault", metavar="DIR", help=VAULT_HELP, show_default=False)


def password_file_option() -> Any:
    return typer.Option(
        None, "--password-file", metavar="FILE", help=PASSWORD_FILE_HELP, show_default=False
    )


def password_command_option() -> Any:
    return typer.Option(
        None, "--password-command", metavar="CMD", help=PASSWORD_COMMAND_HELP, show_default=False
    )


# The same options for the ``Annotated`` style (``vault: VaultOpt = None``), which keeps
# ruff's B008 quiet.
VaultOpt = Annotated[
    Path | None, typer.Option("--vault", metavar="DIR", help=VAULT_HELP, show_default=False)
]
PasswordFileOpt = Annotated[
    Path | None,
    typer.Option("--password-file", metavar="FILE", help=PASSWORD_FILE_HELP, show_default=False),
]
PasswordCommandOpt = Annotated[
    str | None,
    typer.Option(
        "--password-command", metavar="CMD", help=PASSWORD_COMMAND_HELP, show_default=False
    ),
]


def open_vault(vault: Path | None) -> Vault:
    """The vault named by --vault, $AUX_SECRETS_VAULT, or the nearest vault.toml upward."""
    from aux_secrets.adapters.vault import Vault

    return Vault.discover(vault)


def legacy_warning() -> None:
    from aux_secrets.adapters.vault import LEGACY_WARNING

    output.warning(LEGACY_WARNING)


def prompt_for(vault: Vault) -> str:
    """The password prompt names the vault it unlocks."""
    return f"Master password for {vault.root}: "


def unlock_vault(
    vault: Path | None, password_file: Path | None, password_command: str | None
) -> tuple[Vault, Scheme]:
    """Find the vault, read the master password, verify it, and return the scheme.

    A vault the agent holds is used from there, with no password. A password typed at
    the terminal unlocks the vault in the agent (started on demand), so the next
    command does not ask; a password from a file or command unlocks here only, so
    scripts never start an agent.
    """
    from aux_secrets.adapters import agent
    from aux_secrets.adapters.password import get_password, will_prompt

    found = open_vault(vault)
    if found.is_legacy:
        legacy_warning()
    held = agent.held_scheme(found)
    if held is not None:
        return found, held
    typed = will_prompt(password_file, password_command)
    password = get_password(password_file, password_command, prompt=prompt_for(found))
    if typed and agent.enabled():
        try:
            return found, agent.unlock_in_agent(found, password)
        except WrongPasswordError:
            raise
        except AuxError as exc:
            output.warning(f"unlocking without the agent: {exc.message}")
    return found, found.unlock(password)


def warn_if_behind(root: Path) -> None:
    """Warn when the vault is behind its git upstream: its store values may be older than
    what hosts already hold (they refuse to go back), or a revoked value may come back."""
    from aux_secrets.adapters.git import behind_upstream

    behind = behind_upstream(root)
    if behind is not None:
        count, upstream = behind
        output.warning(
            f"the vault is {count} commit{'s' if count != 1 else ''} behind {upstream} "
            "(as last fetched): its store values may be older than the hosts' (they refuse "
            "to go back); pull it first (git -C VAULT pull)"
        )
