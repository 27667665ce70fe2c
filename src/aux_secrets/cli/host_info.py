"""`host show`, `host set` and `host list`: what the vault knows of a host, and changing it."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from aux_secrets.cli import fleet, output
from aux_secrets.core.escape import printable
from aux_secrets.errors import UsageError

if TYPE_CHECKING:
    from aux_secrets.adapters.hosts import Host, HostDir

REACH_TIMEOUT = 3.0
UNSET_OPT = typer.Option(
    [], "--unset", metavar="FIELD", help="Clear a setting (repeatable).", show_default=False
)

SHOW_HELP = """Show a host entry: key, how it is reached, its manifest and last bundle.

--reach also tries a TCP connection to the ssh port (no login, no key exchange).

Example:

  aux-secrets host show web1 --reach --json
"""

SET_HELP = """Change how a host is reached without adding it again (its key stays).

Each option given replaces that setting; --unset FIELD clears one (target,
ssh-options, remote-root, remote-manifest, manifest, system, flake).

Examples:

  aux-secrets host set web1 --target root@10.0.0.6 -o Port=2222

  aux-secrets host set web1 --unset flake --manifest hosts/web1.json
"""

LIST_HELP = """List the hosts in the vault: key, target, manifest and last bundle.

--reach adds whether each ssh port answers (a TCP connection, in parallel).

Examples:

  aux-secrets host list --reach

  aux-secrets host list --json
"""

UNSET_FIELDS = {
    "target": "target",
    "ssh-options": "ssh_options",
    "remote-root": "remote_root",
    "remote-manifest": "remote_manifest",
    "manifest": "manifest",
    "system": "system",
    "flake": "flake",
}


def ssh_address(host: Host) -> tuple[str, int] | None:
    """(address, port) the host's ssh target names, or None (no target, not ssh)."""
    if host.transport is not None and getattr(host.transport, "kind", "ssh") != "ssh":
        return None
    if not host.target:
        return None
    address = host.target.rsplit("@", 1)[-1]
    if address.startswith("[") and "]" in address:
        address = address[1 : address.index("]")]
    port = 22
    for option in host.ssh_options:
        key, _, value = option.partition("=")
        if key.strip().lower() == "port" and value.strip().isdigit():
            port = int(value.strip())
    return address, port


def reach(host: Host, timeout: float = REACH_TIMEOUT) -> str:
    """'yes', 'no (reason)' or 'n/a': does the ssh port accept a TCP connection?"""
    where = ssh_address(host)
    if where is None:
        return "n/a"
    try:
        with socket.create_connection(where, timeout=timeout):
            return "yes"
    except OSError as exc:
        return f"no ({exc.strerror or type(exc).__name__})"


def last_bundle(directory: HostDir, name: str) -> dict[str, object]:
    """The last serial and when it was reserved (the serial record's time), or never."""
    serial = directory.last_serial(name)
    if not serial:
        return {"serial": None, "at": None}
    record = directory.serial_path(name)
    at = None
    if record.is_file():
        stamp = datetime.fromtimestamp(record.stat().st_mtime, UTC)
        at = stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"serial": serial, "at": at}


def host_doc(directory: HostDir, host: Host, reached: str | None) -> dict[str, object]:
    from aux_secrets.core.transport import transport_table

    doc: dict[str, object] = {
        "name": host.name,
        "recipient": host.recipient,
        "recipientKind": host.recipient_kind,
        "fingerprint": host.fingerprint,
        "target": host.target,
        "sshOptions": list(host.ssh_options),
        "remoteCommand": host.remote_command,
        "remoteRoot": host.remote_root,
        "remoteManifest": host.remote_manifest,
        "useSudo": host.use_sudo,
        "manifest": host.manifest or host.system or host.flake,
        "manifestKind": next(
            (k for k in ("manifest", "system", "flake") if getattr(host, k)), None
        ),
        "lastBundle": last_bundle(directory, host.name),
        "lastSerial": directory.last_serial(host.name),
    }
    if host.transport is not None:
        doc["transport"] = transport_table(host.transport)
    if reached is not None:
        doc["reachable"] = reached
    return doc


def host_show(
    name: str = typer.Argument(..., metavar="NAME"),
    check_reach: bool = typer.Option(False, "--reach", help="Try the ssh port."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document."),
    vault: Path | None = fleet.VAULT_OPT,
) -> None:
    directory = fleet.host_dir(vault)
    host = directory.read(name)
    doc = host_doc(directory, host, reach(host) if check_reach else None)
    if as_json:
        print(json.dumps(doc, indent=2, sort_keys=True))
        return
    bundle = doc["lastBundle"]
    assert isinstance(bundle, dict)
    rows: list[tuple[str, Any]] = [
        ("name", host.name),
        ("key", f"{host.recipient_kind} {host.fingerprint}"),
        ("target", host.target or "-"),
        ("ssh options", " ".join(host.ssh_options) or "-"),
        ("remote command", host.remote_command + (" (through sudo -n)" if host.use_sudo else "")),
        ("remote root", host.remote_root or "-"),
        ("remote manifest", host.remote_manifest or "-"),
        ("manifest", f"{doc['manifestKind']} {doc['manifest']}" if doc["manifest"] else "-"),
        ("transport", host.transport.kind if host.transport else "the vault's (ssh by default)"),
        (
            "last bundle",
            f"serial {bundle['serial']}" + (f" at {bundle['at']}" if bundle["at"] else "")
            if bundle["serial"]
            else "never",
        ),
    ]
    if check_reach:
        rows.append(("reachable", doc["reachable"]))
    for label, value in rows:
        print(f"{label + ':':<17}{printable(str(value))}")


def host_set(
    name: str = typer.Argument(..., metavar="NAME"),
    target: str | None = typer.Option(None, "--target", metavar="USER@ADDR", help="ssh target."),
    ssh_option: list[str] = fleet.SSH_OPTION_OPT,
    remote_command: str | None = fleet.REMOTE_COMMAND_OPT,
    remote_root: str | None = fleet.REMOTE_ROOT_OPT,
    remote_manifest: str | None = fleet.REMOTE_MANIFEST_OPT,
    manifest: str | None = fleet.HOST_MANIFEST_OPT,
    system: str | None = fleet.HOST_SYSTEM_OPT,
    flake: str | None = fleet.HOST_FLAKE_OPT,
    use_sudo: bool | None = typer.Option(
        None,
        "--use-sudo/--no-sudo",
        help="Reach root through 'sudo -n', or not.",
        show_default=False,
    ),
    unset: list[str] = UNSET_OPT,
    vault: Path | None = fleet.VAULT_OPT,
) -> None:
    import dataclasses

    from aux_secrets.adapters.hosts import options_list

    changes: dict[str, object] = {}
    for field in unset:
        if field not in UNSET_FIELDS:
            raise UsageError(
                f"--unset {field}: not a field that can be cleared",
                hint="one of " + ", ".join(UNSET_FIELDS),
            )
        changes[UNSET_FIELDS[field]] = () if field == "ssh-options" else None
    given: dict[str, object] = {
        "target": target,
        "remote_command": remote_command,
        "remote_root": remote_root,
        "remote_manifest": remote_manifest,
        "manifest": manifest,
        "system": system,
        "flake": flake,
        "use_sudo": use_sudo,
    }
    if ssh_option:
        given["ssh_options"] = options_list(ssh_option)
    for key, value in given.items():
        if value is None:
            continue
        if key in changes:
            raise UsageError(f"--unset and a new value for the same setting ({key})")
        changes[key] = value
    if not changes:
        raise UsageError("nothing to change", hint="see 'aux-secrets host set --help'")
    directory = fleet.host_dir(vault)
    old = directory.read(name)
    new = dataclasses.replace(old, **changes)
    directory.add(new, replace_existing=True)
    changed = sorted(k.replace("_", "-") for k in changes)
    output.info(f"updated host {name}: {', '.join(changed)}")


def host_list(
    check_reach: bool = typer.Option(False, "--reach", help="Try each host's ssh port."),
    as_json: bool = typer.Option(False, "--json", help="One JSON document."),
    vault: Path | None = fleet.VAULT_OPT,
) -> None:
    directory = fleet.host_dir(vault)
    hosts = directory.all()
    reached: list[str | None] = [None] * len(hosts)
    if check_reach and hosts:
        with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
            reached = list(pool.map(reach, hosts))
    docs = [host_doc(directory, h, r) for h, r in zip(hosts, reached, strict=True)]
    if as_json:
        print(json.dumps({d["name"]: d for d in docs}, indent=2, sort_keys=True))
        return
    if not docs:
        output.info("no hosts in the vault (aux-secrets host add NAME ...)")
        return
    header = ["HOST", "KEY", "TARGET", "MANIFEST", "LAST BUNDLE"]
    if check_reach:
        header.append("REACHABLE")
    rows = [header]
    for d in docs:
        bundle = d["lastBundle"]
        assert isinstance(bundle, dict)
        row = [
            str(d["name"]),
            f"{d['recipientKind']} {d['fingerprint']}",
            str(d["target"] or "-"),
            str(d["manifest"] or "-"),
            str(bundle["at"] or bundle["serial"] or "never"),
        ]
        if check_reach:
            row.append(str(d["reachable"]))
        rows.append([printable(c) for c in row])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def register(host_app: typer.Typer) -> None:
    host_app.command("show", help=SHOW_HELP)(host_show)
    host_app.command("set", help=SET_HELP)(host_set)
    host_app.command("list", help=LIST_HELP)(host_list)
