"""What the `store` commands share: their options, opening the vault's store, expiry days."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aux_secrets.cli import output
from aux_secrets.core.expiry import EXPIRY_WARNING_DAYS
from aux_secrets.errors import AuxError, UsageError

if TYPE_CHECKING:
    from aux_secrets.adapters.store import VaultStore
    from aux_secrets.adapters.vault import Vault


NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="Secret name, e.g. github/deploy-token.")
]
NoCommitOpt = Annotated[
    bool,
    typer.Option(
        "--no-commit",
        help="Do not commit the change even if the vault is a git repository.",
    ),
]
FromFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--from-file", metavar="FILE", help="Read the value from FILE.", show_default=False
    ),
]
FromCommandOpt = Annotated[
    str | None,
    typer.Option(
        "--from-command",
        metavar="CMD",
        help="Run CMD through the shell; its standard output is the value.",
        show_default=False,
    ),
]
StripOpt = Annotated[
    bool,
    typer.Option(
        "--strip-newline", help="Drop one trailing newline from the value (as `echo` adds)."
    ),
]
NoteOpt = Annotated[
    str | None,
    typer.Option(
        "--note",
        metavar="TEXT",
        help="A note kept encrypted with the value (visible in the process list meanwhile).",
        show_default=False,
    ),
]
ExpiresOpt = Annotated[
    str | None,
    typer.Option(
        "--expires",
        metavar="YYYY-MM-DD",
        help=(
            "The day the value stops being valid; 'store list' flags it"
            f" {EXPIRY_WARNING_DAYS} days ahead."
        ),
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _open_store(vault: Vault, no_commit: bool = False) -> VaultStore:
    from aux_secrets.adapters.store import vault_store

    def report(exc: AuxError) -> None:
        output.warning(f"the change is saved but was not committed: {exc.message}")

    return vault_store(vault, commit=False if no_commit else None, on_commit_error=report)


def _parse_expires(text: str | None) -> date | None:
    from aux_secrets.core.storefile import parse_date

    return None if text is None else parse_date(text, "--expires")


def _today() -> date:
    return datetime.now(UTC).date()


def _expiry_state(expires: date | None, today: date) -> tuple[int | None, str]:
    if expires is None:
        return None, ""
    days = (expires - today).days
    if days <= 0:
        return days, "EXPIRED" if days < 0 else "EXPIRES TODAY"
    if days <= EXPIRY_WARNING_DAYS:
        return days, f"expires in {days} days"
    return days, ""


def check_keep(keep: int) -> None:
    """--keep: how many retired values a store file keeps."""
    from aux_secrets.core.storefile import MAX_KEEP

    if not 0 <= keep <= MAX_KEEP:
        raise UsageError(f"--keep must be between 0 and {MAX_KEEP}")
