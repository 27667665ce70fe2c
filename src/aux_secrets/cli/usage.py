"""`where-used`: which hosts use a realm or a store secret (rotation, decommissioning)."""

from __future__ import annotations

import json

import typer

from aux_secrets.cli import common, output
from aux_secrets.errors import ExternalError, UsageError

WHERE_USED_HELP = """List the hosts (and their secrets) that use a realm or a store secret.

Reads every host entry's manifest (--manifest, --system or --flake of 'host add'); a
host whose manifest cannot be read is named and makes the command exit 1, as the
answer is then incomplete. No password needed. A realm matches a derived secret's
realm template, or the template with {period} filled in.

Examples:

  aux-secrets where-used --store github/deploy-token

  aux-secrets where-used --realm db/web1 --json
"""


def where_used(
    realm: str | None = typer.Option(None, "--realm", metavar="REALM", help="A derived realm."),
    store: str | None = typer.Option(None, "--store", metavar="NAME", help="A store secret."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    vault: common.VaultOpt = None,
) -> None:
    from aux_secrets.workflows.usage import Kind, uses

    if (realm is None) == (store is None):
        raise UsageError("pass one of --realm REALM and --store NAME")
    opened = common.open_vault(vault)
    kind: Kind = "realm" if realm is not None else "store"
    name = realm if realm is not None else store
    assert name is not None
    found = uses(opened.root, opened.hosts_dir, kind, name)
    unknown = [u for u in found if u.error is not None]
    if as_json:
        doc = {
            "kind": kind,
            "name": name,
            "hosts": {
                u.host: {"secrets": list(u.secrets), "error": u.error}
                for u in found
                if u.secrets or u.error
            },
        }
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        for u in found:
            if u.secrets:
                print(f"{u.host:<20} {', '.join(u.secrets)}")
        if not any(u.secrets for u in found):
            output.info(f"no host of this vault uses {kind} {name}")
    for u in unknown:
        output.warning(f"host {u.host}: its manifest cannot be read: {u.error}")
    if unknown:
        raise ExternalError(
            f"{len(unknown)} host manifest{'s' if len(unknown) > 1 else ''} could not be read: "
            "the answer may be incomplete",
            hint="fix the host entries' manifest paths (aux-secrets host add NAME --replace ...)",
        )


def register(app: typer.Typer) -> None:
    app.command("where-used", help=WHERE_USED_HELP)(where_used)
