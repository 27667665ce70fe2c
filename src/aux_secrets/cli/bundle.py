"""`bundle`: a host's secrets sealed to it, in a file."""

from __future__ import annotations

from pathlib import Path

import typer

from aux_secrets.cli import common, fleet, output

BUNDLE_HELP = """Make a host's bundle: every secret its manifest asks for, sealed to the host.

The file is a standard age file; on the host 'age -d -i /etc/ssh/ssh_host_ed25519_key'
opens it and 'aux-secrets activate --bundle FILE' takes it in.

Example:

  aux-secrets bundle --host web1 --manifest web1.json -o web1.age
"""


def bundle_command(
    host: str = typer.Option(..., "--host", metavar="NAME", help="Host entry in the vault."),
    out: Path = fleet.OUTPUT_OPT,
    manifest: Path | None = fleet.MANIFEST_OPT,
    system: Path | None = fleet.SYSTEM_OPT,
    flake: str | None = fleet.FLAKE_OPT,
    at: str | None = fleet.AT_OPT,
    vault: Path | None = fleet.VAULT_OPT,
    password_file: Path | None = fleet.PASSWORD_FILE_OPT,
    password_command: str | None = fleet.PASSWORD_COMMAND_OPT,
) -> None:
    from aux_secrets.adapters.fs import atomic_write
    from aux_secrets.adapters.hosts import HostDir
    from aux_secrets.cli.hosts import warn_shared_recipient
    from aux_secrets.workflows import provision

    instant = fleet.parse_at(at)
    opened, scheme = common.unlock_vault(vault, password_file, password_command)
    common.warn_if_behind(opened.root)
    hosts = HostDir(opened.hosts_dir)
    entry = hosts.read(host)
    warn_shared_recipient(hosts, entry)
    source = provision.manifest_for_host(
        entry, opened.root, manifest=manifest, system=system, flake=flake
    )
    made = provision.make_bundle(
        opened, scheme, entry, provision.load_manifest(source), at=instant, label=source.label
    )
    if str(out) == "-":
        output.write_stdout_bytes(made.data)
    else:
        atomic_write(out, made.data, mode=0o600)
    output.info(
        f"bundle for {host}: serial {made.serial}, {made.secrets} secrets"
        + ("" if str(out) == "-" else f" -> {out}")
    )


def register(app: typer.Typer) -> None:
    app.command("bundle", help=BUNDLE_HELP)(bundle_command)
