"""`host`: the hosts in the vault, their keys and how to reach them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from aux_secrets.cli import fleet, output
from aux_secrets.errors import UsageError

if TYPE_CHECKING:
    from aux_secrets.adapters.hosts import Host, HostDir

host_app = typer.Typer(
    help="Hosts in the vault: their keys and how to reach them.\n\n"
    "Example:\n\n"
    "    aux-secrets host keyscan web1 10.0.0.5\n\n"
    "    aux-secrets host add web1 --ssh-host-key 'ssh-ed25519 AAAA...' --target root@10.0.0.5",
    no_args_is_help=True,
    rich_markup_mode=None,
)


HOST_ADD_HELP = """Add a host: its recipient and how to reach it.

The recipient is the host's ssh-ed25519 host key (bundles then open with
/etc/ssh/ssh_host_ed25519_key) or an age1 X25519 recipient.

Example:

  aux-secrets host add web1 --ssh-host-key "$(cat web1_host_ed25519_key.pub)" --target root@10.0.0.5
"""


@host_app.command("add", help=HOST_ADD_HELP)
def host_add(
    name: str = typer.Argument(..., metavar="NAME"),
    ssh_host_key: str | None = typer.Option(
        None, "--ssh-host-key", metavar="KEY", help="'ssh-ed25519 AAAA...' host public key."
    ),
    age: str | None = typer.Option(None, "--age", metavar="AGE1", help="age1 X25519 recipient."),
    target: str | None = typer.Option(None, "--target", metavar="USER@ADDR", help="ssh target."),
    ssh_option: list[str] = fleet.SSH_OPTION_OPT,
    remote_command: str | None = fleet.REMOTE_COMMAND_OPT,
    remote_root: str | None = fleet.REMOTE_ROOT_OPT,
    remote_manifest: str | None = fleet.REMOTE_MANIFEST_OPT,
    manifest: str | None = fleet.HOST_MANIFEST_OPT,
    system: str | None = fleet.HOST_SYSTEM_OPT,
    flake: str | None = fleet.HOST_FLAKE_OPT,
    use_sudo: bool = typer.Option(False, "--use-sudo", help="Reach root through 'sudo -n'."),
    replace_existing: bool = typer.Option(False, "--replace", help="Replace an existing entry."),
    vault: Path | None = fleet.VAULT_OPT,
) -> None:
    from aux_secrets.adapters.hosts import Host, check_host_name, options_list, parse_recipient

    check_host_name(name)
    if (ssh_host_key is None) == (age is None):
        raise UsageError("pass exactly one of --ssh-host-key and --age")
    recipient = parse_recipient(ssh_host_key if ssh_host_key is not None else str(age))
    host = Host(
        name=name,
        recipient=recipient,
        target=target,
        ssh_options=options_list(ssh_option),
        remote_command=remote_command or "aux-secrets",
        remote_root=remote_root,
        remote_manifest=remote_manifest,
        use_sudo=use_sudo,
        manifest=manifest,
        flake=flake,
        system=system,
    )
    hosts = fleet.host_dir(vault)
    if replace_existing and hosts.exists(name):
        # The serial only grows; a hand-written [transport] is not an option here: kept.
        old = hosts.read(name)
        host = Host(**{**host.__dict__, "last_serial": old.last_serial, "transport": old.transport})
    hosts.add(host, replace_existing=replace_existing)
    output.info(f"added host {name} ({host.recipient_kind} {host.fingerprint})")
    warn_shared_recipient(hosts, host)


def warn_shared_recipient(hosts: HostDir, host: Host) -> None:
    """Warn when another host in the vault has the same recipient."""
    shared = hosts.sharing_recipient(host)
    if shared:
        output.warning(
            f"host {host.name} has the same key as {', '.join(shared)}: each of them can "
            "open the others' bundles"
        )


RM_HELP = """Remove a host from the vault, first printing what it held and what to rotate.

The host keeps every value it had (including the ahead periods of rotating secrets)
until its disk is wiped: see docs/running.md, "Decommissioning a host".

Example:

  aux-secrets host rm web1
"""


@host_app.command("rm", help=RM_HELP)
def host_rm(
    name: str = typer.Argument(..., metavar="NAME"),
    vault: Path | None = fleet.VAULT_OPT,
) -> None:
    from aux_secrets.errors import AuxError

    hosts = fleet.host_dir(vault)
    hosts.read(name)  # an unknown host is an error before anything is printed
    try:
        _print_decommission(vault, name)
    except AuxError as exc:
        output.warning(f"what host {name} held cannot be listed: {exc.message}")
    hosts.remove(name)
    output.info(f"removed host {name}")


DECOMMISSION_HELP = """Show what a host held, which other hosts share each value, and what
to rotate (changes nothing).

For each secret of the host's manifest: its source, the other hosts of the vault whose
manifests use the same realm or store secret, and the step to take (a new realm for a
derived secret; 'store revoke' for a stored one). Then remove it with 'host rm'.

Examples:

  aux-secrets host decommission web1

  aux-secrets host decommission web1 --json
"""


@host_app.command("decommission", help=DECOMMISSION_HELP)
def host_decommission(
    name: str = typer.Argument(..., metavar="NAME"),
    as_json: bool = typer.Option(False, "--json", help="One JSON document."),
    vault: Path | None = fleet.VAULT_OPT,
) -> None:
    if as_json:
        from aux_secrets.cli import common
        from aux_secrets.workflows.usage import decommission_report

        opened = common.open_vault(vault)
        held, unknown = decommission_report(opened.root, opened.hosts_dir, name)
        doc = {
            "host": name,
            "secrets": {
                h.secret: {
                    "source": h.source,
                    "sharedWith": list(h.shared_with),
                    "rotate": h.rotate,
                }
                for h in held
            },
            "unreadable": {u.host: u.error for u in unknown},
        }
        print(json.dumps(doc, indent=2, sort_keys=True))
        return
    _print_decommission(vault, name)


def _print_decommission(vault: Path | None, name: str) -> None:
    from aux_secrets.cli import common
    from aux_secrets.workflows.usage import decommission_report

    opened = common.open_vault(vault)
    held, unknown = decommission_report(opened.root, opened.hosts_dir, name)
    shared = [h for h in held if h.shared_with]
    output.info(
        f"host {name} held {len(held)} secrets, {len(shared)} of them shared with other hosts"
    )
    for h in held:
        also = f"  (also on {', '.join(h.shared_with)})" if h.shared_with else ""
        output.info(f"  {h.secret}: {h.source}{also}")
        output.info(f"    -> {h.rotate}")
    for u in unknown:
        output.warning(f"host {u.host}: its manifest cannot be read, so sharing is unknown")


KEYSCAN_HELP = """Read a host's ssh-ed25519 key with ssh-keyscan and add it after you confirm.

Compare the fingerprint shown with 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub'
run on the host itself (or its console) before you answer yes.

It takes the same options as 'host add' (ssh options, remote command, manifest...)
and stores them with the key. ssh-keyscan itself uses only the port.

Example:

  aux-secrets host keyscan web1 10.0.0.5 -o Port=2222 --manifest hosts/web1.json
"""


@host_app.command("keyscan", help=KEYSCAN_HELP)
def host_keyscan(
    name: str = typer.Argument(..., metavar="NAME"),
    address: str = typer.Argument(..., metavar="ADDR"),
    port: int | None = typer.Option(None, "--port", "-p", help="ssh port (default 22)."),
    target: str | None = typer.Option(
        None, "--target", metavar="USER@ADDR", help="ssh target to store (default root@ADDR)."
    ),
    ssh_option: list[str] = fleet.SSH_OPTION_OPT,
    remote_command: str | None = fleet.REMOTE_COMMAND_OPT,
    remote_root: str | None = fleet.REMOTE_ROOT_OPT,
    remote_manifest: str | None = fleet.REMOTE_MANIFEST_OPT,
    manifest: str | None = fleet.HOST_MANIFEST_OPT,
    system: str | None = fleet.HOST_SYSTEM_OPT,
    flake: str | None = fleet.HOST_FLAKE_OPT,
    use_sudo: bool = typer.Option(False, "--use-sudo", help="Reach root through 'sudo -n'."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Store without asking (scripts)."),
    replace_existing: bool = typer.Option(False, "--replace", help="Replace an existing entry."),
    vault: Path | None = fleet.VAULT_OPT,
) -> None:
    from aux_secrets.adapters.hosts import (
        Host,
        check_host_name,
        keyscan,
        options_list,
        recipient_fingerprint,
    )

    check_host_name(name)
    options = list(options_list(ssh_option))
    named_port = [o for o in options if o.partition("=")[0].strip().lower() == "port"]
    if port is not None and named_port:
        raise UsageError("give the port once: --port or -o Port=N")
    if port is None and named_port:
        text = named_port[-1].partition("=")[2].strip()
        if not text.isdigit():
            raise UsageError(f"-o {named_port[-1]}: the port must be a number")
        port = int(text)
    elif port is not None:
        options.append(f"Port={port}")
    others = [o for o in options if o not in named_port and not o.startswith("Port=")]
    if others:
        output.warning(
            "ssh-keyscan connects to ADDR directly: " + ", ".join(others) + " are stored "
            "for provisioning but not used for the scan"
        )
    hosts = fleet.host_dir(vault)
    if hosts.exists(name) and not replace_existing:
        from aux_secrets.errors import ConflictError

        raise ConflictError(f"host {name} is already in the vault", hint="pass --replace")
    keys = keyscan(address, port=port)
    key = keys[0]
    print(f"{address}: ssh-ed25519 {recipient_fingerprint(key)}")
    if len(keys) > 1:
        raise UsageError(f"{address} offered {len(keys)} different ed25519 keys; add one by hand")
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                "refusing to store an unconfirmed key without a terminal", hint="pass --yes"
            )
        if not typer.confirm("Is this the host's key?", default=False):
            raise typer.Exit(1)
    host = Host(
        name=name,
        recipient=key,
        target=target or f"root@{address}",
        ssh_options=tuple(options),
        remote_command=remote_command or "aux-secrets",
        remote_root=remote_root,
        remote_manifest=remote_manifest,
        use_sudo=use_sudo,
        manifest=manifest,
        flake=flake,
        system=system,
    )
    hosts.add(host, replace_existing=replace_existing)
    output.info(f"added host {name}")


def register(app: typer.Typer) -> None:
    from aux_secrets.cli import host_info

    host_info.register(host_app)
    app.add_typer(host_app, name="host")
