"""`aux-secrets store ...`: fixed secrets (imported tokens), one encrypted file each."""

from __future__ import annotations

import json
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aux_secrets.cli import common, output, store_edit
from aux_secrets.core.expiry import EXPIRY_WARNING_DAYS
from aux_secrets.errors import AuxError, InputError, UsageError

if TYPE_CHECKING:
    from aux_secrets.adapters.store import ListEntry, VaultStore
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


# --- helpers -------------------------------------------------------------------


def _open_store(vault: Vault, no_commit: bool = False) -> VaultStore:
    from aux_secrets.adapters.store import vault_store

    def report(exc: AuxError) -> None:
        output.warning(f"the change is saved but was not committed: {exc.message}")

    return vault_store(vault, commit=False if no_commit else None, on_commit_error=report)


def _read_value(
    name: str, from_file: Path | None, from_command: str | None, strip_newline: bool
) -> bytes:
    from aux_secrets.adapters.fs import read_bounded
    from aux_secrets.core import storefile as sf

    if from_file is not None and from_command is not None:
        raise UsageError("give --from-file or --from-command, not both")
    if from_file is not None:
        value = read_bounded(from_file, sf.MAX_VALUE, what="value file")
    elif from_command is not None:
        value = _run_value_command(name, from_command)
    elif sys.stdin.isatty():
        value = _prompt_value(name)
    else:
        value = sys.stdin.buffer.read(sf.MAX_VALUE + 1)
    sf.check_value(name, value)
    if strip_newline:
        value = value[:-2] if value.endswith(b"\r\n") else value.removesuffix(b"\n")
    elif value.endswith(b"\n") and b"\n" not in value[:-1].rstrip(b"\r"):
        output.warning(
            f"the value for {name} ends with a newline (as `echo` adds); it is stored with "
            "it, and env files refuse it: if it is not part of the "
            "value, run again with --strip-newline (or pipe it with printf %s)"
        )
    if not value:
        output.warning(f"the value for {name} is empty")
    return value


def _run_value_command(name: str, command: str) -> bytes:
    import subprocess

    from aux_secrets.core import storefile as sf
    from aux_secrets.errors import ExternalError

    try:
        with subprocess.Popen(command, shell=True, stdout=subprocess.PIPE) as proc:
            assert proc.stdout is not None
            value = proc.stdout.read(sf.MAX_VALUE + 1)
            if len(value) > sf.MAX_VALUE:
                proc.kill()
            code = proc.wait()
    except OSError as exc:
        raise ExternalError(f"--from-command could not be started: {exc.strerror}") from None
    if len(value) <= sf.MAX_VALUE and code != 0:
        raise ExternalError(f"--from-command for {name} failed with exit status {code}")
    return value


def _prompt_value(name: str) -> bytes:
    import getpass

    first = getpass.getpass(f"Value for {name}: ")
    if getpass.getpass("Repeat: ") != first:
        raise InputError("the two values do not match")
    return first.encode("utf-8")


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


# --- commands ------------------------------------------------------------------


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


GET_HELP = """Print a stored secret's value, exactly (binary-safe, no newline added).

--retired N prints the N-th retired value (1 = the one replaced last); --note prints
the note instead. Names under an external source ([store.sources] in vault.toml) run
that source's command.

Example:

  aux-secrets store get github/deploy-token --output /tmp/token
"""


def get(
    name: NameArg,
    output_file: Annotated[
        Path | None,
        typer.Option(
            "--output",
            metavar="FILE",
            help="Write to FILE (mode 0600, atomically) instead of standard output ('-').",
            show_default=False,
        ),
    ] = None,
    retired: Annotated[
        int,
        typer.Option("--retired", metavar="N", help="Print the N-th retired value instead."),
    ] = 0,
    show_note: Annotated[bool, typer.Option("--note", help="Print the note instead.")] = False,
    vault: common.VaultOpt = None,
    password_file: common.PasswordFileOpt = None,
    password_command: common.PasswordCommandOpt = None,
) -> None:
    from aux_secrets.adapters.fs import atomic_write
    from aux_secrets.adapters.store import match_source, run_source
    from aux_secrets.core.storefile import StoredSecret, validate_name
    from aux_secrets.errors import NotFoundError

    validate_name(name)
    if retired < 0:
        raise UsageError("--retired must be 1 or more")
    store = _open_store(common.open_vault(vault))
    matched = match_source(store.sources, name)
    if matched is None:
        if not store.dir.exists(name):
            raise NotFoundError(f"store secret {name} does not exist", hint=store.dir.suggest(name))
        _, scheme = common.unlock_vault(vault, password_file, password_command)
        secret = store.dir.read(scheme, name)
    else:
        if retired or show_note:
            raise UsageError(f"{name} comes from an external source: no retired values or note")
        secret = StoredSecret(name, run_source(matched[1], matched[0], name))
    if show_note:
        data = secret.note.encode("utf-8")
    elif retired:
        if retired > len(secret.retired):
            raise NotFoundError(f"store secret {name} has {len(secret.retired)} retired values")
        data = secret.retired[retired - 1]
    else:
        data = secret.current
    if output_file is not None and str(output_file) != "-":
        atomic_write(output_file, data, mode=0o600)
    else:
        output.write_stdout_bytes(data)


LIST_HELP = f"""List stored secrets: names, version, times and expiry. Never values.

Reads only the readable headers, so no password is needed. Secrets that expire
within {EXPIRY_WARNING_DAYS} days (or have expired) are flagged.

Example:

  aux-secrets store list --json
"""


def list_(
    as_json: JsonOpt = False,
    vault: common.VaultOpt = None,
) -> None:
    from aux_secrets.core.storefile import format_time

    store = _open_store(common.open_vault(vault))
    entries = store.dir.entries()
    today = _today()
    broken = [e for e in entries if e.meta is None]
    for entry in broken:
        output.warning(entry.problem or f"store secret {entry.name} cannot be read")
    sources = [{"prefix": p, "command": c} for p, c in sorted(store.sources.items())]
    if as_json:
        rows: list[dict[str, object]] = []
        for entry in entries:
            meta = entry.meta
            if meta is None:
                rows.append({"name": entry.name, "problem": entry.problem})
                continue
            days, flag = _expiry_state(meta.expires, today)
            rows.append(
                {
                    "name": meta.name,
                    "version": meta.version,
                    "created": format_time(meta.created),
                    "updated": format_time(meta.updated),
                    "expires": meta.expires.isoformat() if meta.expires else None,
                    "days_left": days,
                    "expired": days is not None and days <= 0,
                    "expiring": days is not None and days <= EXPIRY_WARNING_DAYS,
                    "flag": flag,
                }
            )
        print(json.dumps({"secrets": rows, "sources": sources}, indent=1))
    else:
        _print_table(entries, sources, today)
    if broken:
        raise InputError(
            f"{len(broken)} store file{'s' if len(broken) > 1 else ''} cannot be read",
            hint="run 'aux-secrets store verify' and restore damaged files from git",
        )


def _print_table(entries: list[ListEntry], sources: list[dict[str, str]], today: date) -> None:
    from aux_secrets.core.storefile import format_time

    good = [e.meta for e in entries if e.meta is not None]
    if not good and not sources:
        output.info("the store is empty; add a secret with 'aux-secrets store add NAME'")
        return
    width = max([len(meta.name) for meta in good] + [4])
    lines = []
    if good:
        lines.append(f"{'NAME':<{width}}  VERSION  UPDATED               EXPIRES")
    for meta in good:
        expires = meta.expires.isoformat() if meta.expires else "-"
        flag = _expiry_state(meta.expires, today)[1] if meta.expires else ""
        lines.append(
            f"{meta.name:<{width}}  {meta.version:<7}  {format_time(meta.updated)}  {expires}"
            + (f"  ({flag})" if flag else "")
        )
    for source in sources:
        lines.append(f"{source['prefix']}*  (external: {source['command']})")
    sys.stdout.write("\n".join(lines) + "\n")


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
    if not 0 <= keep <= sf.MAX_KEEP:
        raise UsageError(f"--keep must be between 0 and {sf.MAX_KEEP}")
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


def register(app: typer.Typer) -> None:
    store_app = typer.Typer(
        help="Fixed secrets that cannot be derived (imported tokens): add, get, list, set, "
        "edit, revoke, check, rm, rename, verify, rekey.\n\n"
        "Example: aux-secrets store add github/deploy-token < token.txt",
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    store_app.command("add", help=ADD_HELP)(add)
    store_app.command("get", help=GET_HELP)(get)
    store_app.command("list", help=LIST_HELP)(list_)
    store_app.command("set", help=SET_HELP)(set_)
    store_app.command("edit", help=store_edit.EDIT_HELP)(store_edit.edit)
    store_app.command("rm", help=RM_HELP)(rm)
    store_app.command("rename", help=RENAME_HELP)(rename)
    store_app.command("verify", help=VERIFY_HELP)(verify)
    store_app.command("rekey", help=REKEY_HELP)(rekey)
    from aux_secrets.cli.store_lifecycle import CHECK_HELP, REVOKE_HELP, check, revoke

    store_app.command("revoke", help=REVOKE_HELP)(revoke)
    store_app.command("check", help=CHECK_HELP)(check)
    app.add_typer(store_app, name="store")
