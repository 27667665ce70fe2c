"""`store verify` (decrypt every file, report failures by name) and `store rekey` (move
every file to this vault's keys, all or none)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from aux_secrets.cli import common, output
from aux_secrets.cli.store_common import JsonOpt, NoCommitOpt, _open_store
from aux_secrets.errors import UsageError

VERIFY_HELP = """Decrypt every stored secret and report each one that fails, by name.

Exits non-zero if any file is damaged, tampered with, renamed, from another vault
or not under this vault's keys. Files in store/ that are not store files are warned about.

Example:

  aux-secrets store verify
"""


def verify(
    as_json: JsonOpt = False,
    vault: common.VaultOpt = None,
    password_file: common.PasswordFileOpt = None,
    password_command: common.PasswordCommandOpt = None,
) -> None:
    found, scheme = common.unlock_vault(vault, password_file, password_command)
    report = _open_store(found).dir.verify(scheme)
    if as_json:
        print(
            json.dumps(
                {
                    "good": list(report.good),
                    "bad": [{"name": n, "error": m} for n, m in report.bad],
                    "stray": list(report.stray),
                },
                indent=2,
            )
        )
    for stray in report.stray:
        output.warning(f"store/{stray} is not a store file")
    for _, message in report.bad:
        output.warning(message)
    total = len(report.good) + len(report.bad)
    if report.bad:
        from aux_secrets.errors import DecryptError

        raise DecryptError(
            f"{len(report.bad)} of {total} store secrets failed verification",
            hint="restore damaged files from git ('git log -- store/NAME.aux')",
        )
    if not as_json:
        print(f"verified {total} store secret{'s' if total != 1 else ''}")


REKEY_HELP = """Re-encrypt every stored secret after a change of scheme or seed, all or none.

The old keys come from the old vault (--from-vault DIR, e.g. a copy of this vault
kept before its seed changed, or the gokey vault being migrated from) and its
password (--old-password-file / --old-password-command, else asked on the terminal);
the new keys from this vault. With --copy-store the files are read from the old
vault's store/ into this (empty) store; otherwise this store's files are rekeyed in
place. A crash leaves every file under the old keys or every file under the new.

Example:

  aux-secrets store rekey --vault ~/new-vault --from-vault ~/old-vault --copy-store
"""


def rekey(
    from_vault: Annotated[
        Path,
        typer.Option(
            "--from-vault", metavar="DIR", help="The vault whose keys the files are under now."
        ),
    ],
    old_password_file: Annotated[
        Path | None,
        typer.Option(
            "--old-password-file",
            metavar="FILE",
            help="Master password of the old vault, from FILE.",
            show_default=False,
        ),
    ] = None,
    old_password_command: Annotated[
        str | None,
        typer.Option(
            "--old-password-command",
            metavar="CMD",
            help="Master password of the old vault, from CMD's output.",
            show_default=False,
        ),
    ] = None,
    copy_store: Annotated[
        bool, typer.Option("--copy-store", help="Read the files from the old vault's store/.")
    ] = False,
    no_commit: NoCommitOpt = False,
    vault: common.VaultOpt = None,
    password_file: common.PasswordFileOpt = None,
    password_command: common.PasswordCommandOpt = None,
) -> None:
    from aux_secrets.adapters.password import (
        prompt_password,
        read_password_file,
        run_password_command,
    )
    from aux_secrets.adapters.store import StoreDir

    found = common.open_vault(vault)
    old_vault = common.open_vault(from_vault)
    if old_vault.root.resolve() == found.root.resolve():
        raise UsageError("--from-vault names this same vault; give the vault the files came from")
    store = _open_store(found, no_commit)
    source = StoreDir(old_vault.store_dir) if copy_store else None
    if source is None and not store.dir.names() and StoreDir(old_vault.store_dir).names():
        raise UsageError(
            "this vault's store is empty but the old vault's is not",
            hint="add --copy-store to re-encrypt the old vault's files into this vault",
        )
    if old_password_file is not None and old_password_command is not None:
        raise UsageError("give --old-password-file or --old-password-command, not both")
    if old_password_file is not None:
        old_password = read_password_file(old_password_file)
    elif old_password_command is not None:
        old_password = run_password_command(old_password_command)
    else:
        old_password = prompt_password(f"Master password of {old_vault.root}: ")
    if old_vault.is_legacy:
        common.legacy_warning()
    old_scheme = old_vault.unlock(old_password)
    _, new_scheme = common.unlock_vault(vault, password_file, password_command)
    result = store.dir.rekey(old_scheme, new_scheme, source=source)
    if result.already:
        output.info("every store secret is already under this vault's keys; nothing changed")
    else:
        plural = "s" if result.count != 1 else ""
        output.info(f"re-encrypted {result.count} store secret{plural} under this vault's keys")
