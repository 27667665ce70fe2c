"""`host`, `bundle`, `provision`, `verify` and `rebuild`: the operator's side of delivery."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from aux_secrets.cli import common, output
from aux_secrets.errors import UsageError

if TYPE_CHECKING:
    from aux_secrets.adapters.hosts import Host
    from aux_secrets.provision import Outcome, Route

host_app = typer.Typer(
    help="Hosts in the vault: their keys and how to reach them.\n\n"
    "Example:\n\n"
    "    aux-secrets host keyscan web1 10.0.0.5\n\n"
    "    aux-secrets host add web1 --ssh-host-key 'ssh-ed25519 AAAA...' --target root@10.0.0.5",
    no_args_is_help=True,
    rich_markup_mode=None,
)


# --------------------------------------------------------------------------- option helpers


def _host_opt() -> Any:
    return typer.Option(None, "--host", metavar="NAME", help="Host entry in the vault.")


def _manifest_opt() -> Any:
    return typer.Option(None, "--manifest", "-m", metavar="FILE", help="The host's manifest.")


def _system_opt() -> Any:
    return typer.Option(
        None,
        "--system",
        metavar="PATH",
        help="A built NixOS system (e.g. ./result); reads its etc/aux-secrets/manifest.json.",
    )


def _flake_opt() -> Any:
    return typer.Option(
        None,
        "--flake",
        metavar="REF#NAME",
        help="Read the manifest with 'nix eval --json' of nixosConfigurations.NAME.",
    )


def _ssh_option_opt() -> Any:
    return typer.Option(
        [],
        "--ssh-option",
        "-o",
        metavar="NAME=VALUE",
        help="OpenSSH option, repeatable (NIX_SSHOPTS is honoured too).",
        show_default=False,
    )


def _target_opt() -> Any:
    return typer.Option(
        None,
        "--target-host",
        metavar="USER@ADDR",
        help="Reach the host here (overrides the vault).",
    )


def _sudo_opt() -> Any:
    return typer.Option(
        None,
        "--use-sudo/--no-sudo",
        help="Run the host side through 'sudo -n' (default: the host entry's choice).",
        show_default=False,
    )


def _remote_command_opt() -> Any:
    return typer.Option(
        None,
        "--remote-command",
        metavar="CMD",
        help="How the host runs aux-secrets (default: the host entry's, else 'aux-secrets').",
    )


def _root_opt() -> Any:
    return typer.Option(
        None,
        "--root",
        metavar="DIR",
        help="Pass --root DIR to the host side (image builders, tests, demos).",
    )


def _remote_manifest_opt() -> Any:
    return typer.Option(
        None,
        "--remote-manifest",
        metavar="PATH",
        help="Manifest path as the host sees it (default: the host's own default).",
    )


def _jobs_opt() -> Any:
    return typer.Option(4, "--jobs", "-j", metavar="N", help="Hosts at once with --all.")


def _at_opt() -> Any:
    return typer.Option(
        None,
        "--at",
        metavar="INSTANT",
        help="Resolve rotations for this UTC instant (default: now).",
    )


HOST_OPT = _host_opt()
MANIFEST_OPT = _manifest_opt()
SYSTEM_OPT = _system_opt()
FLAKE_OPT = _flake_opt()
SSH_OPTION_OPT = _ssh_option_opt()
TARGET_OPT = _target_opt()
SUDO_OPT = _sudo_opt()
REMOTE_COMMAND_OPT = _remote_command_opt()
ROOT_OPT = _root_opt()
REMOTE_MANIFEST_OPT = _remote_manifest_opt()
JOBS_OPT = _jobs_opt()
AT_OPT = _at_opt()
VAULT_OPT = common.vault_option()
PASSWORD_FILE_OPT = common.password_file_option()
PASSWORD_COMMAND_OPT = common.password_command_option()
OUTPUT_OPT = typer.Option(..., "--output", "-o", metavar="FILE", help="Where ('-': stdout).")


def _parse_at(at: str | None) -> datetime | None:
    if at is None:
        return None
    from aux_secrets.core.rotation import parse_instant

    return parse_instant(at)


def _host_dir(vault: Path | None) -> Any:
    from aux_secrets.adapters.hosts import HostDir

    return HostDir(common.open_vault(vault).hosts_dir)


# --------------------------------------------------------------------------- host


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
    ssh_option: list[str] = SSH_OPTION_OPT,
    remote_command: str | None = REMOTE_COMMAND_OPT,
    remote_root: str | None = typer.Option(
        None, "--remote-root", metavar="DIR", help="Always pass --root DIR to the host side."
    ),
    remote_manifest: str | None = REMOTE_MANIFEST_OPT,
    manifest: str | None = typer.Option(
        None, "--manifest", metavar="FILE", help="Manifest for 'provision --all' (vault-relative)."
    ),
    system: str | None = typer.Option(
        None, "--system", metavar="PATH", help="Built system for 'provision --all'."
    ),
    flake: str | None = typer.Option(
        None, "--flake", metavar="REF#NAME", help="Flake configuration for 'provision --all'."
    ),
    use_sudo: bool = typer.Option(False, "--use-sudo", help="Reach root through 'sudo -n'."),
    replace_existing: bool = typer.Option(False, "--replace", help="Replace an existing entry."),
    vault: Path | None = VAULT_OPT,
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
    hosts = _host_dir(vault)
    if replace_existing and hosts.exists(name):
        host = Host(**{**host.__dict__, "last_serial": hosts.read(name).last_serial})
    hosts.add(host, replace_existing=replace_existing)
    output.info(f"added host {name} ({host.recipient_kind} {host.fingerprint})")


@host_app.command(
    "list",
    help="List the hosts in the vault.\n\nExample:\n\n  aux-secrets host list --json",
)
def host_list(
    as_json: bool = typer.Option(False, "--json", help="One JSON document."),
    vault: Path | None = VAULT_OPT,
) -> None:
    hosts = _host_dir(vault).all()
    if as_json:
        doc = {
            h.name: {
                "recipient": h.recipient,
                "fingerprint": h.fingerprint,
                "target": h.target,
                "lastSerial": h.last_serial,
            }
            for h in hosts
        }
        print(json.dumps(doc, indent=2, sort_keys=True))
        return
    for h in hosts:
        print(f"{h.name}\t{h.recipient_kind}\t{h.fingerprint}\t{h.target or '-'}")


@host_app.command(
    "rm", help="Remove a host from the vault.\n\nExample:\n\n  aux-secrets host rm web1"
)
def host_rm(
    name: str = typer.Argument(..., metavar="NAME"),
    vault: Path | None = VAULT_OPT,
) -> None:
    _host_dir(vault).remove(name)
    output.info(f"removed host {name}")


KEYSCAN_HELP = """Read a host's ssh-ed25519 key with ssh-keyscan and add it after you confirm.

Compare the fingerprint shown with 'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub'
run on the host itself (or its console) before you answer yes.

Example:

  aux-secrets host keyscan web1 10.0.0.5
"""


@host_app.command("keyscan", help=KEYSCAN_HELP)
def host_keyscan(
    name: str = typer.Argument(..., metavar="NAME"),
    address: str = typer.Argument(..., metavar="ADDR"),
    port: int | None = typer.Option(None, "--port", "-p", help="ssh port (default 22)."),
    target: str | None = typer.Option(
        None, "--target", metavar="USER@ADDR", help="ssh target to store (default root@ADDR)."
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="Store without asking (scripts)."),
    replace_existing: bool = typer.Option(False, "--replace", help="Replace an existing entry."),
    vault: Path | None = VAULT_OPT,
) -> None:
    from aux_secrets.adapters.hosts import Host, check_host_name, keyscan, recipient_fingerprint

    check_host_name(name)
    hosts = _host_dir(vault)
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
        ssh_options=(f"Port={port}",) if port is not None else (),
    )
    hosts.add(host, replace_existing=replace_existing)
    output.info(f"added host {name}")


# --------------------------------------------------------------------------- bundle


BUNDLE_HELP = """Make a host's bundle: every secret its manifest asks for, sealed to the host.

The file is a standard age file; on the host 'age -d -i /etc/ssh/ssh_host_ed25519_key'
opens it and 'aux-secrets activate --bundle FILE' takes it in.

Example:

  aux-secrets bundle --host web1 --manifest web1.json -o web1.age
"""


def register(app: typer.Typer) -> None:
    app.add_typer(host_app, name="host")
    app.command("bundle", help=BUNDLE_HELP)(bundle_command)
    app.command("provision", help=PROVISION_HELP)(provision_command)
    app.command("verify", help=VERIFY_HELP)(verify_command)
    app.command("signer", help=SIGNER_HELP)(signer_command)
    app.command(
        "rebuild",
        help=REBUILD_HELP,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(rebuild_command)


def bundle_command(
    host: str = typer.Option(..., "--host", metavar="NAME", help="Host entry in the vault."),
    out: Path = OUTPUT_OPT,
    manifest: Path | None = MANIFEST_OPT,
    system: Path | None = SYSTEM_OPT,
    flake: str | None = FLAKE_OPT,
    at: str | None = AT_OPT,
    vault: Path | None = VAULT_OPT,
    password_file: Path | None = PASSWORD_FILE_OPT,
    password_command: str | None = PASSWORD_COMMAND_OPT,
) -> None:
    from aux_secrets import provision
    from aux_secrets.adapters.fs import atomic_write
    from aux_secrets.adapters.hosts import HostDir

    instant = _parse_at(at)
    opened, scheme = common.unlock_vault(vault, password_file, password_command)
    entry = HostDir(opened.hosts_dir).read(host)
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


# --------------------------------------------------------------------------- provision


PROVISION_HELP = """Deliver a host's secrets: bundle, stream over ssh, activate and install.

The bundle travels on ssh's stdin to 'aux-secrets activate --bundle -' followed by
'aux-secrets install' on the host (as root, or with --use-sudo through 'sudo -n');
no value is ever on a command line. --local does the same on this machine. --all
provisions every host in the vault, -j at once, using each host entry's manifest.
A rerun makes a new serial and changes nothing on the host.

Examples:

  aux-secrets provision --host web1 --manifest web1.json --target-host root@10.0.0.5

  aux-secrets provision --host web1 --system ./result

  aux-secrets provision --all -j 8
"""


def _route(
    entry: Host,
    *,
    local: bool,
    target_host: str | None,
    ssh_option: list[str],
    use_sudo: bool | None,
    remote_command: str | None,
    root: Path | None,
    remote_manifest: str | None,
    manifest: Path | None,
    system: Path | None,
) -> Route:
    from aux_secrets import provision
    from aux_secrets.adapters.hosts import options_list

    if local and target_host:
        raise UsageError("pass either --local or --target-host, not both")
    if local and remote_manifest is None:
        # On this machine the manifest we read is also the one to install from.
        if manifest is not None:
            remote_manifest = str(manifest.resolve())
        elif system is not None:
            remote_manifest = str((system / provision.SYSTEM_MANIFEST).resolve())
    return provision.Route.for_host(
        entry,
        local=local,
        target=target_host,
        ssh_options=options_list(ssh_option),
        use_sudo=use_sudo,
        remote_command=remote_command,
        root=str(root) if root is not None else None,
        manifest=remote_manifest,
    )


def _fleet_names(all_hosts: bool, host: str | None, hosts: Any, what: str) -> list[str]:
    if all_hosts == (host is not None):
        raise UsageError(f"{what} needs --host NAME or --all")
    names: list[str] = hosts.names() if all_hosts or host is None else [host]
    if not names:
        raise UsageError("the vault has no hosts", hint="aux-secrets host add NAME ...")
    return names


def _run_with_progress(names: list[str], job: Any, jobs: int, title: str) -> list[Outcome[Any]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from aux_secrets import provision

    console = Console(stderr=True)
    with Progress(
        TextColumn(f"{title} " + "{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as progress:
        task = progress.add_task("", total=len(names))
        running: set[str] = set()

        def start(name: str) -> None:
            running.add(name)
            progress.update(task, description=", ".join(sorted(running)))

        def done(outcome: Outcome[Any]) -> None:
            running.discard(outcome.host)
            progress.update(task, advance=1, description=", ".join(sorted(running)))

        return provision.run_fleet(names, job, jobs=jobs, on_start=start, on_done=done)


def _print_table(title: str, rows: list[tuple[str, str, str]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    table.add_column("host")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for host, result, detail in rows:
        style = "green" if result in ("ok", "no change", "changed") else "red"
        table.add_row(host, f"[{style}]{result}[/{style}]", detail)
    Console(width=max(100, Console().width)).print(table)


def provision_command(
    host: str | None = HOST_OPT,
    all_hosts: bool = typer.Option(False, "--all", help="Every host in the vault."),
    jobs: int = JOBS_OPT,
    manifest: Path | None = MANIFEST_OPT,
    system: Path | None = SYSTEM_OPT,
    flake: str | None = FLAKE_OPT,
    target_host: str | None = TARGET_OPT,
    local: bool = typer.Option(False, "--local", help="Provision this machine, no ssh."),
    use_sudo: bool | None = SUDO_OPT,
    ssh_option: list[str] = SSH_OPTION_OPT,
    remote_command: str | None = REMOTE_COMMAND_OPT,
    root: Path | None = ROOT_OPT,
    remote_manifest: str | None = REMOTE_MANIFEST_OPT,
    at: str | None = AT_OPT,
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    vault: Path | None = VAULT_OPT,
    password_file: Path | None = PASSWORD_FILE_OPT,
    password_command: str | None = PASSWORD_COMMAND_OPT,
) -> None:
    from aux_secrets import provision
    from aux_secrets.adapters.hosts import HostDir

    instant = _parse_at(at)
    opened = common.open_vault(vault)
    hosts = HostDir(opened.hosts_dir)
    names = _fleet_names(all_hosts, host, hosts, "provision")
    if all_hosts and (manifest or system or flake or target_host or local):
        raise UsageError(
            "--all uses each host entry's manifest and target",
            hint="drop --manifest/--system/--flake/--target-host/--local, or use --host NAME",
        )
    if not all_hosts:
        hosts.read(names[0])  # an unknown host fails before the password is asked for
    opened, scheme = common.unlock_vault(vault, password_file, password_command)

    def job(name: str) -> provision.HostReport:
        entry = hosts.read(name)  # in the job: one bad host file fails only that host
        source = provision.manifest_for_host(
            entry, opened.root, manifest=manifest, system=system, flake=flake
        )
        route = _route(
            entry,
            local=local,
            target_host=target_host,
            ssh_option=ssh_option,
            use_sudo=use_sudo,
            remote_command=remote_command,
            root=root,
            remote_manifest=remote_manifest,
            manifest=manifest,
            system=system,
        )
        return provision.provision_host(opened, scheme, entry, source, route, at=instant)

    if not all_hosts:
        report = job(names[0])
        if as_json:
            print(json.dumps(_report_doc(report), indent=2, sort_keys=True))
        else:
            _print_report(report)
        return
    outcomes = _run_with_progress(names, job, jobs, "provisioning")
    failed = [o for o in outcomes if not o.ok]
    if as_json:
        doc = {
            o.host: _report_doc(o.value) if o.value else {"error": o.error, "hint": o.hint}
            for o in outcomes
        }
        print(json.dumps(doc, indent=2, sort_keys=True))
    else:
        rows: list[tuple[str, str, str]] = []
        for o in outcomes:
            if o.value is not None:
                rows.append(
                    (o.host, "no change" if o.value.no_change else "changed", o.value.summary())
                )
            else:
                rows.append((o.host, "FAILED", o.error or ""))
        _print_table(f"provisioned {len(outcomes) - len(failed)} of {len(outcomes)} hosts", rows)
    if failed:
        output.error(
            f"{len(failed)} of {len(outcomes)} hosts failed: " + ", ".join(o.host for o in failed)
        )
        raise typer.Exit(1)


def _report_doc(report: Any) -> dict[str, object]:
    return {
        "host": report.host,
        "where": report.where,
        "serial": report.serial,
        "bundleId": report.bundle_id,
        "secrets": report.secrets,
        "storeChanged": list(report.store_changed),
        "changed": list(report.changed),
        "restarted": list(report.restarted),
        "reloaded": list(report.reloaded),
        "generation": report.generation,
        "noChange": report.no_change,
    }


def _print_report(report: Any) -> None:
    for line in report.output.splitlines():
        output.info(f"{report.host}: {line}")
    print(
        f"{report.host} ({report.where}): bundle serial {report.serial}, "
        f"{report.secrets} secrets, generation {report.generation}"
    )
    for name in report.changed:
        print(f"  changed    {name}")
    for unit in report.restarted:
        print(f"  restarted  {unit}")
    for unit in report.reloaded:
        print(f"  reloaded   {unit}")
    if report.no_change:
        print("  no change")


# --------------------------------------------------------------------------- verify


VERIFY_HELP = """Check that hosts hold the secrets the vault says they should.

Runs 'aux-secrets status --json' on the host and compares its keyed fingerprints
with the vault's: ok, stale (another or older value), missing, unexpected. Values
never leave the host. Exit 1 on any drift.

Examples:

  aux-secrets verify --host web1 --manifest web1.json

  aux-secrets verify --all
"""


def verify_command(
    host: str | None = HOST_OPT,
    all_hosts: bool = typer.Option(False, "--all", help="Every host in the vault."),
    jobs: int = JOBS_OPT,
    manifest: Path | None = MANIFEST_OPT,
    system: Path | None = SYSTEM_OPT,
    flake: str | None = FLAKE_OPT,
    target_host: str | None = TARGET_OPT,
    local: bool = typer.Option(False, "--local", help="Check this machine, no ssh."),
    use_sudo: bool | None = SUDO_OPT,
    ssh_option: list[str] = SSH_OPTION_OPT,
    remote_command: str | None = REMOTE_COMMAND_OPT,
    root: Path | None = ROOT_OPT,
    remote_manifest: str | None = REMOTE_MANIFEST_OPT,
    at: str | None = AT_OPT,
    as_json: bool = typer.Option(False, "--json", help="Print the verdicts as JSON."),
    vault: Path | None = VAULT_OPT,
    password_file: Path | None = PASSWORD_FILE_OPT,
    password_command: str | None = PASSWORD_COMMAND_OPT,
) -> None:
    from aux_secrets import provision
    from aux_secrets.adapters.hosts import HostDir

    instant = _parse_at(at)
    opened = common.open_vault(vault)
    hosts = HostDir(opened.hosts_dir)
    names = _fleet_names(all_hosts, host, hosts, "verify")
    if not all_hosts:
        hosts.read(names[0])
    opened, scheme = common.unlock_vault(vault, password_file, password_command)

    def job(name: str) -> list[provision.Drift]:
        entry = hosts.read(name)  # in the job: one bad host file fails only that host
        source = provision.manifest_for_host(
            entry, opened.root, manifest=manifest, system=system, flake=flake
        )
        route = _route(
            entry,
            local=local,
            target_host=target_host,
            ssh_option=ssh_option,
            use_sudo=use_sudo,
            remote_command=remote_command,
            root=root,
            remote_manifest=remote_manifest,
            manifest=manifest,
            system=system,
        )
        return provision.verify_host(opened, scheme, entry, source, route, at=instant)

    outcomes = (
        _run_with_progress(names, job, jobs, "verifying")
        if all_hosts
        else provision.run_fleet(names, job, jobs=1)
    )
    drift = False
    doc: dict[str, object] = {}
    rows: list[tuple[str, str, str]] = []
    for o in outcomes:
        if o.value is None:
            drift = True
            doc[o.host] = {"error": o.error}
            rows.append((o.host, "FAILED", o.error or ""))
            if not all_hosts and not as_json:
                output.error(o.error or "verify failed", o.hint)
                raise typer.Exit(1)
            continue
        bad = [d for d in o.value if d.verdict != "ok"]
        drift = drift or bool(bad)
        doc[o.host] = {d.secret: {"verdict": d.verdict, "detail": d.detail} for d in o.value}
        ok_count = len(o.value) - len(bad)
        detail = "; ".join(f"{d.secret}: {d.verdict} ({d.detail})" for d in bad)
        rows.append(
            (o.host, "drift" if bad else "ok", detail or f"{ok_count} secrets match the vault")
        )
        if not all_hosts and not as_json:
            for d in o.value:
                print(
                    f"{d.verdict:<10} {o.host}:{d.secret}" + (f"  {d.detail}" if d.detail else "")
                )
    if as_json:
        print(json.dumps(doc, indent=2, sort_keys=True))
    elif all_hosts:
        _print_table("verify", rows)
    if drift:
        output.error("drift found: the hosts do not all hold what the vault says")
        raise typer.Exit(1)


# --------------------------------------------------------------------------- rebuild


REBUILD_HELP = """nixos-rebuild with secrets: build, provision from the built system, then switch.

Runs 'nixos-rebuild build ARGS', provisions the host named in the built system's
manifest (activate only: the switch's install unit installs them), then
'nixos-rebuild ACTION ARGS' (ACTION: switch, boot or test; default switch), so
services start with their secrets in place. --target-host and --use-remote-sudo
in ARGS are used for provisioning too; without --target-host this machine is
provisioned locally.

Example:

  aux-secrets rebuild switch --flake .#web1 --target-host root@10.0.0.5
"""

REBUILD_ACTIONS = ("switch", "boot", "test", "dry-activate")


def rebuild_plan(args: list[str]) -> tuple[str, list[str], str | None, bool]:
    """(action, args without the action, --target-host value, sudo) from nixos-rebuild args."""
    action = "switch"
    rest: list[str] = []
    target: str | None = None
    sudo = False
    seen_action = False
    index = 0
    while index < len(args):
        arg = args[index]
        if arg in ("build", "build-vm", "dry-build", "edit", "repl", "list-generations"):
            raise UsageError(f"rebuild does not wrap 'nixos-rebuild {arg}'; run it directly")
        if not seen_action and arg in REBUILD_ACTIONS:
            action, seen_action = arg, True
        else:
            rest.append(arg)
            if arg == "--target-host" and index + 1 < len(args):
                target = args[index + 1]
            elif arg.startswith("--target-host="):
                target = arg.split("=", 1)[1]
            elif arg in ("--use-remote-sudo", "--sudo"):
                sudo = True
        index += 1
    return action, rest, target, sudo


def rebuild_command(
    ctx: typer.Context,
    host: str | None = typer.Option(
        None, "--aux-host", metavar="NAME", help="Host entry (default: the manifest's host)."
    ),
    nixos_rebuild: str = typer.Option(
        "nixos-rebuild", "--nixos-rebuild", metavar="PROGRAM", help="The nixos-rebuild to run."
    ),
    remote_command: str | None = REMOTE_COMMAND_OPT,
    vault: Path | None = VAULT_OPT,
    password_file: Path | None = PASSWORD_FILE_OPT,
    password_command: str | None = PASSWORD_COMMAND_OPT,
) -> None:
    import dataclasses
    import os
    import subprocess

    from aux_secrets import provision
    from aux_secrets.adapters.hosts import HostDir
    from aux_secrets.errors import ExternalError

    action, rest, target, sudo = rebuild_plan(list(ctx.args))
    opened, scheme = common.unlock_vault(vault, password_file, password_command)
    link = Path("result")  # nixos-rebuild build leaves ./result in the working directory
    build = [nixos_rebuild, "build", *rest]
    output.info("$ " + " ".join(build))
    try:
        done = subprocess.run(build, check=False)
    except FileNotFoundError:
        raise ExternalError(f"{nixos_rebuild} is not installed") from None
    if done.returncode != 0:
        raise ExternalError(f"nixos-rebuild build failed (exit {done.returncode})")
    if not link.exists():
        raise ExternalError("nixos-rebuild build made no ./result")
    system = Path(os.path.realpath(link))
    source = provision.manifest_from_system(system)
    manifest = provision.load_manifest(source)
    name = host or manifest.host
    entry = HostDir(opened.hosts_dir).read(name)
    route = provision.Route.for_host(
        entry,
        local=target is None and entry.target is None,
        target=target,
        use_sudo=sudo or None,
        remote_command=remote_command,
    )
    # --host lets a host without a manifest yet (its first deployment) take the bundle.
    route = dataclasses.replace(route, host_name=name)
    bundle = provision.make_bundle(opened, scheme, entry, manifest, label=source.label)
    result = provision.run_on_host(route, ["activate"], bundle.data, 300.0)
    if result.returncode != 0:
        raise ExternalError(
            f"activate on {name} ({route.where}) failed: {provision.host_error(result)}",
            hint="the system was built but not switched",
        )
    output.info(f"provisioned {name} ({route.where}): bundle serial {bundle.serial}")
    switch = [nixos_rebuild, action, *rest]
    output.info("$ " + " ".join(switch))
    done = subprocess.run(switch, check=False)
    if done.returncode != 0:
        raise typer.Exit(done.returncode)


# --------------------------------------------------------------------------- signer


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
    vault: Path | None = VAULT_OPT,
    password_file: Path | None = PASSWORD_FILE_OPT,
    password_command: str | None = PASSWORD_COMMAND_OPT,
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
