"""`aux-secrets store edit NAME`: change a stored value in $EDITOR, never via a disk file."""

from __future__ import annotations

import os
import subprocess
from typing import Annotated

import typer

from aux_secrets.cli import common, output
from aux_secrets.cli.store_common import NoCommitOpt, check_keep
from aux_secrets.errors import ExternalError

EDIT_HELP = """Edit a stored secret's value in $VISUAL or $EDITOR (default vi).

The value is written to a private directory (mode 0700) on a RAM filesystem
($AUX_SECRETS_EDIT_DIR, $XDG_RUNTIME_DIR or /dev/shm; a disk is refused), the editor
runs on it, and the file is wiped and removed afterwards. It is saved only if it
changed, with the same checks as 'store set' (the old value is kept as retired). A
final newline the editor adds is dropped when the old value had none.

vim and neovim are started with -n -i NONE and a -c command that turns off their
swap, backup and undo files and viminfo/ShaDa for this run, so no copy of the value
lands under $HOME. Any other editor runs exactly as $EDITOR says.

Example:

  EDITOR=nano aux-secrets store edit wifi/home
"""


def edit(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Secret name, e.g. wifi/home.")],
    keep: Annotated[
        int, typer.Option("--keep", metavar="N", help="Retired values to keep (0..8).")
    ] = 1,
    no_commit: NoCommitOpt = False,
    vault: common.VaultOpt = None,
    password_file: common.PasswordFileOpt = None,
    password_command: common.PasswordCommandOpt = None,
) -> None:
    from aux_secrets.adapters.editor import editor_argv, editor_command
    from aux_secrets.adapters.ramdir import private_ram_dir, ram_base
    from aux_secrets.adapters.store import vault_store
    from aux_secrets.core import storefile as sf
    from aux_secrets.errors import AuxError, NotFoundError

    sf.validate_name(name)
    check_keep(keep)
    command = editor_command()
    ram_base()  # refuse a disk before the password is asked for

    def report(exc: AuxError) -> None:
        output.warning(f"the change is saved but was not committed: {exc.message}")

    store = vault_store(
        common.open_vault(vault), commit=False if no_commit else None, on_commit_error=report
    )
    store.refuse_external(name, "change")
    if not store.dir.exists(name):
        raise NotFoundError(f"store secret {name} does not exist", hint=store.dir.suggest(name))
    _, scheme = common.unlock_vault(vault, password_file, password_command)
    old = store.dir.read(scheme, name).current
    with private_ram_dir("aux-secrets-edit-") as directory:
        path = directory / name.rsplit("/", 1)[-1]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(old)
        program = command[0]
        try:
            done = subprocess.run(editor_argv(command, path), check=False)
        except OSError as exc:
            raise ExternalError(f"editor {program} could not be started: {exc.strerror}") from None
        if done.returncode != 0:
            raise ExternalError(f"editor {program} exited with status {done.returncode}; not saved")
        try:
            with open(path, "rb") as handle:
                new = handle.read(sf.MAX_VALUE + 1)
        except FileNotFoundError:
            raise ExternalError("the editor removed the file; not saved") from None
    if not old.endswith(b"\n") and new.endswith(b"\n"):
        new = new[:-2] if new.endswith(b"\r\n") else new[:-1]
    if new == old:
        output.info(f"{name}: no change, nothing saved")
        return
    sf.check_value(name, new)
    if not new:
        output.warning(f"the value for {name} is empty")
    store.dir.set(scheme, name, new, keep=keep)
    output.info(f"updated {name}")
