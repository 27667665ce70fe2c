"""`store get` (a value, exactly) and `store list` (names, versions, expiry; never values)."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aux_secrets.cli import common, output
from aux_secrets.cli.store_common import JsonOpt, NameArg, _expiry_state, _open_store, _today
from aux_secrets.core.expiry import EXPIRY_WARNING_DAYS
from aux_secrets.errors import InputError, UsageError

if TYPE_CHECKING:
    from aux_secrets.adapters.store import ListEntry


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
