"""`store add`, `store set`, `store rm` and `store rename`: changing the store's files."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import typer

from aux_secrets.cli import common, output
from aux_secrets.cli.store_common import (
    ExpiresOpt,
    FromCommandOpt,
    FromFileOpt,
    NameArg,
    NoCommitOpt,
    NoteOpt,
    StripOpt,
    _open_store,
    _parse_expires,
    check_keep,
)
from aux_secrets.cli.store_value import _read_value
from aux_secrets.errors import UsageError

ADD_HELP = """Store a new fixed secret (an API token, a WiFi password, a certificate).

The value comes from standard input (exact bytes; binary is fine), --from-file or
--from-command; on a terminal it is asked for twice without echo. An existing name
is refused (use 'store set'). Values over 1 MiB are refused; an empty one is
stored with a warning. In a git vault the change is committed ('store add NAME').

Example:

  printf %s "$TOKEN" | aux-secrets store add github/deploy-token --expires 2027-01-31
"""


def add(
    name: NameArg,
    from_file: FromFileOpt = None,
    from_command: FromCommandOpt = None,
    strip_newline: StripOpt = False,
    note: NoteOpt = None,
    expires: ExpiresOpt = None,
    no_commit: NoCommitOpt = False,
    vault: common.VaultOpt = None,
    password_file: common.PasswordFileOpt = None,
    password_command: common.PasswordCommandOpt = None,
) -> None:
    from aux_secrets.core.storefile import validate_name
    from aux_secrets.errors import ConflictError

    validate_name(name)
    until = _parse_expires(expires)
    store = _open_store(common.open_vault(vault), no_commit)
    store.refuse_external(name, "add")
    if store.dir.exists(name):
        raise ConflictError(
            f"store secret {name} already exists",
            hint=f"use 'aux-secrets store set {name}' to replace its value",
        )
    value = _read_value(name, from_file, from_command, strip_newline)
    _, scheme = common.unlock_vault(vault, password_file, password_command)
    store.dir.add(scheme, name, value, note=note or "", expires=until)
    output.info(f"stored {name}")


SET_HELP = """Replace a stored secret's value; the previous value is kept as retired.

Services that accept a current and a previous token can then roll over without
downtime (bundles carry retired values). --keep N keeps at most N retired values
(default 1, 0 drops them). For a leaked value use 'store revoke' instead: it keeps
none. The value is read as for 'store add'. --keep-value
changes only the note or the expiry.

Example:

  aux-secrets store set github/deploy-token --from-file new-token.txt --keep 2

  aux-secrets store set github/deploy-token --keep-value --expires 2027-06-30
"""


def set_(
    name: NameArg,
    from_file: FromFileOpt = None,
    from_command: FromCommandOpt = None,
    strip_newline: StripOpt = False,
    keep: Annotated[
        int, typer.Option("--keep", metavar="N", help="Retired values to keep (0..8).")
    ] = 1,
    note: NoteOpt = None,
    expires: ExpiresOpt = None,
    no_expires: Annotated[bool, typer.Option("--no-expires", help="Clear the expiry.")] = False,
    keep_value: Annotated[
        bool,
        typer.Option(
            "--keep-value", help="Keep the value; change only --note or --expires / --no-expires."
        ),
    ] = False,
    no_commit: NoCommitOpt = False,
    vault: common.VaultOpt = None,
    password_file: common.PasswordFileOpt = None,
    password_command: common.PasswordCommandOpt = None,
) -> None:
    from aux_secrets.core import storefile as sf
    from aux_secrets.errors import NotFoundError

    sf.validate_name(name)
    check_keep(keep)
    if expires is not None and no_expires:
        raise UsageError("give --expires or --no-expires, not both")
    until: date | sf.Unchanged | None = None if no_expires else sf.KEEP
    if expires is not None:
        until = _parse_expires(expires)
    store = _open_store(common.open_vault(vault), no_commit)
    store.refuse_external(name, "change")
    if not store.dir.exists(name):
        raise NotFoundError(
            f"store secret {name} does not exist",
            hint=f"add it with 'aux-secrets store add {name}'",
        )
    value: bytes | None = None
    if keep_value:
        if from_file is not None or from_command is not None or strip_newline:
            raise UsageError("--keep-value reads no value: drop --from-file/--from-command")
        if note is None and expires is None and not no_expires:
            raise UsageError("--keep-value needs --note, --expires or --no-expires")
    else:
        value = _read_value(name, from_file, from_command, strip_newline)
    _, scheme = common.unlock_vault(vault, password_file, password_command)
    store.dir.set(
        scheme, name, value, keep=keep, note=sf.KEEP if note is None else note, expires=until
    )
    output.info(f"updated {name}")


RM_HELP = """Remove a stored secret (no password needed; git keeps its history).

Example:

  aux-secrets store rm github/old-token
"""


def rm(
    name: NameArg,
    no_commit: NoCommitOpt = False,
    vault: common.VaultOpt = None,
) -> None:
    from aux_secrets.core.storefile import validate_name

    validate_name(name)
    store = _open_store(common.open_vault(vault), no_commit)
    store.refuse_external(name, "remove")
    store.dir.remove(name)
    output.info(f"removed {name}")


RENAME_HELP = """Rename a stored secret (re-encrypted under the new name's key).

Times, version, expiry, note and retired values are kept; an existing NEW is refused.

Example:

  aux-secrets store rename github/deploy-token github/ci/deploy-token
"""


def rename(
    old: Annotated[str, typer.Argument(metavar="OLD", help="Current name.")],
    new: Annotated[str, typer.Argument(metavar="NEW", help="New name.")],
    no_commit: NoCommitOpt = False,
    vault: common.VaultOpt = None,
    password_file: common.PasswordFileOpt = None,
    password_command: common.PasswordCommandOpt = None,
) -> None:
    from aux_secrets.core.storefile import validate_name
    from aux_secrets.errors import ConflictError, NotFoundError

    validate_name(old)
    validate_name(new)
    store = _open_store(common.open_vault(vault), no_commit)
    store.refuse_external(old, "rename")
    store.refuse_external(new, "rename")
    if not store.dir.exists(old):
        raise NotFoundError(f"store secret {old} does not exist", hint=store.dir.suggest(old))
    if store.dir.exists(new):
        raise ConflictError(f"store secret {new} already exists")
    _, scheme = common.unlock_vault(vault, password_file, password_command)
    store.dir.rename(scheme, old, new)
    output.info(f"renamed {old} to {new}")
