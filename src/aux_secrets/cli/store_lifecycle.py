"""`store revoke` (a leaked value never delivered again) and `store check` (expiry, for
monitoring): the end of a stored value's life."""

from __future__ import annotations

import json

import typer

from aux_secrets.cli import common, output
from aux_secrets.cli.store_common import (
    FromCommandOpt,
    FromFileOpt,
    JsonOpt,
    NameArg,
    NoCommitOpt,
    StripOpt,
    _expiry_state,
    _open_store,
    _today,
)
from aux_secrets.cli.store_value import _read_value
from aux_secrets.core.expiry import EXPIRY_WARNING_DAYS
from aux_secrets.errors import NotFoundError, PolicyError, UsageError

REVOKE_HELP = """Revoke a stored secret's value: replace it and drop every older value.

The new value is read as for 'store add'. Unlike 'store set', no retired value is
kept, so no bundle made from now on carries the old one; and because the store
version goes up, hosts refuse a bundle from a vault clone that still has the old
value (it would be a lower version). Prints the hosts whose manifests use the
secret: provision them now. The revoked value stays in git history: revoke it
where it was issued too.

Example:

  aux-secrets store revoke github/deploy-token --from-file new-token.txt
"""


def revoke(
    name: NameArg,
    from_file: FromFileOpt = None,
    from_command: FromCommandOpt = None,
    strip_newline: StripOpt = False,
    no_commit: NoCommitOpt = False,
    vault: common.VaultOpt = None,
    password_file: common.PasswordFileOpt = None,
    password_command: common.PasswordCommandOpt = None,
) -> None:
    from aux_secrets.core import storefile as sf
    from aux_secrets.workflows.usage import uses

    sf.validate_name(name)
    opened = common.open_vault(vault)
    store = _open_store(opened, no_commit)
    store.refuse_external(name, "revoke")
    if not store.dir.exists(name):
        raise NotFoundError(f"store secret {name} does not exist")
    value = _read_value(name, from_file, from_command, strip_newline)
    opened, scheme = common.unlock_vault(vault, password_file, password_command)
    old = store.dir.read(scheme, name)
    if value == old.current or value in old.retired:
        raise PolicyError(
            f"the new value of {name} is one it held before: a revoked value must not come back",
            hint="issue a new value where the secret comes from, then revoke with it",
        )
    store.dir.set(scheme, name, value, keep=0)
    before = old.meta.version if old.meta is not None else 0
    output.info(
        f"revoked {name}: version {before + 1} replaces version {before}; "
        f"{1 + len(old.retired)} older value{'s' if old.retired else ''} dropped from the store"
    )
    used = uses(opened.root, opened.hosts_dir, "store", name)
    for use in used:
        if use.error is not None:
            output.warning(f"host {use.host}: cannot tell whether it uses {name}: {use.error}")
    hosts = [u.host for u in used if u.secrets]
    if hosts:
        output.info("hosts that use it, to provision now: " + ", ".join(hosts))
        output.info("  " + " && ".join(f"aux-secrets provision --host {h}" for h in hosts))
    else:
        output.info("no host of this vault uses it")


CHECK_HELP = f"""Check stored secrets' expiry: exit 1 when any has expired or expires within
{EXPIRY_WARNING_DAYS} days (--days N), for monitoring (cron, a systemd timer, an alert).

Example:

  aux-secrets store check

  aux-secrets store check --days 7 --json
"""


def check(
    days: int = typer.Option(
        EXPIRY_WARNING_DAYS, "--days", metavar="N", help="Warn this many days ahead."
    ),
    as_json: JsonOpt = False,
    vault: common.VaultOpt = None,
) -> None:
    if days < 0:
        raise UsageError("--days must be 0 or more")
    store = _open_store(common.open_vault(vault))
    today = _today()
    problems: list[dict[str, object]] = []
    for entry in store.dir.entries():
        meta = entry.meta
        if meta is None:
            problems.append({"name": entry.name, "problem": entry.problem or "cannot be read"})
            continue
        if meta.expires is None:
            continue
        left = (meta.expires - today).days
        if left <= days:
            flag = _expiry_state(meta.expires, today)[1] or f"expires in {left} days"
            problems.append(
                {
                    "name": meta.name,
                    "expires": meta.expires.isoformat(),
                    "daysLeft": left,
                    "flag": flag,
                }
            )
    if as_json:
        print(json.dumps({"ok": not problems, "secrets": problems}, indent=2, sort_keys=True))
    else:
        for p in problems:
            shown = p.get("flag") or p.get("problem")
            print(f"{p['name']}: {shown}" + (f" ({p['expires']})" if "expires" in p else ""))
    if problems:
        raise PolicyError(
            f"{len(problems)} stored secret{'s' if len(problems) > 1 else ''} expired, "
            f"expiring within {days} days or unreadable",
            hint="renew them: aux-secrets store set NAME (or store revoke NAME)",
        )
    output.info(f"no stored secret expires within {days} days")


__all__ = ["CHECK_HELP", "REVOKE_HELP", "check", "revoke"]
