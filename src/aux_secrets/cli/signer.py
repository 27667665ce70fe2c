"""`signer`: the vault's bundle signer, to pin on hosts."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from aux_secrets.cli import common, fleet, output
from aux_secrets.errors import UsageError

SIGNER_HELP = """Print the vault's bundle signer, to pin it on hosts.

Every bundle is signed with an Ed25519 key derived from the vault (never stored).
Hosts accept only bundles from the signers in aux.settings.bundleSigners (or, with
none pinned, the signer of the first bundle they took). Prints an
'ssh-ed25519 AAAA... aux-secrets-signer' line for the NixOS configuration and its
fingerprint on stderr; --ssh prints only the line, --json all forms.

Examples:

  aux-secrets signer

  aux-secrets signer --json
"""


def signer_command(
    as_json: bool = typer.Option(False, "--json", help="Print the signer as JSON."),
    ssh: bool = typer.Option(False, "--ssh", help="Print only the ssh-ed25519 line."),
    vault: Path | None = fleet.VAULT_OPT,
    password_file: Path | None = fleet.PASSWORD_FILE_OPT,
    password_command: str | None = fleet.PASSWORD_COMMAND_OPT,
) -> None:
    import base64

    from aux_secrets.core.bundle_sign import (
        public_key,
        signer_fingerprint,
        signer_seed,
        signer_ssh_line,
    )

    if as_json and ssh:
        raise UsageError("--json and --ssh exclude each other")
    _opened, scheme = common.unlock_vault(vault, password_file, password_command)
    key = public_key(signer_seed(scheme))
    line = signer_ssh_line(key)
    if as_json:
        doc = {
            "ssh": line,
            "publicKey": base64.b64encode(key).decode("ascii"),
            "fingerprint": signer_fingerprint(key),
        }
        output.write_stdout_bytes(json.dumps(doc, indent=2).encode() + b"\n")
        return
    output.write_stdout_bytes(line.encode() + b"\n")
    if not ssh:
        output.info(f"{signer_fingerprint(key)}: pin it in aux.settings.bundleSigners")


def register(app: typer.Typer) -> None:
    app.command("signer", help=SIGNER_HELP)(signer_command)
