"""Options and helpers shared by the commands that reach hosts (host, bundle, provision, ...)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from aux_secrets.cli import common
from aux_secrets.errors import UsageError

if TYPE_CHECKING:
    from aux_secrets.adapters.hosts import Host
    from aux_secrets.adapters.vault import Vault
    from aux_secrets.workflows.manifest_source import ManifestSource
    from aux_secrets.workflows.provision import Outcome, Route

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
# What a host file stores for the host side and for 'provision --all' (host add/set/keyscan).
REMOTE_ROOT_OPT: Any = typer.Option(
    None, "--remote-root", metavar="DIR", help="Always pass --root DIR to the host side."
)
HOST_MANIFEST_OPT: Any = typer.Option(
    None, "--manifest", metavar="FILE", help="Manifest for 'provision --all' (vault-relative)."
)
HOST_SYSTEM_OPT: Any = typer.Option(
    None, "--system", metavar="PATH", help="Built system for 'provision --all'."
)
HOST_FLAKE_OPT: Any = typer.Option(
    None, "--flake", metavar="REF#NAME", help="Flake configuration for 'provision --all'."
)
AT_OPT = _at_opt()
VAULT_OPT = common.vault_option()
PASSWORD_FILE_OPT = common.password_file_option()
PASSWORD_COMMAND_OPT = common.password_command_option()
OUTPUT_OPT = typer.Option(..., "--output", "-o", metavar="FILE", help="Where ('-': stdout).")


def parse_at(at: str | None) -> datetime | None:
    if at is None:
        return None
    from aux_secrets.core.rotation import parse_instant

    return parse_instant(at)


def host_dir(vault: Path | None) -> Any:
    from aux_secrets.adapters.hosts import HostDir

    return HostDir(common.open_vault(vault).hosts_dir)


# --------------------------------------------------------------------------- fleet runs


@dataclass(frozen=True)
class HostOptions:
    """Where the command line says a host's manifest comes from and how to reach it; the
    host entry in the vault fills in what is not given."""

    manifest: Path | None
    system: Path | None
    flake: str | None
    local: bool
    target_host: str | None
    ssh_option: list[str]
    use_sudo: bool | None
    remote_command: str | None
    root: Path | None
    remote_manifest: str | None

    def source(self, entry: Host, vault_root: Path) -> ManifestSource:
        from aux_secrets.workflows.manifest_source import manifest_for_host

        return manifest_for_host(
            entry, vault_root, manifest=self.manifest, system=self.system, flake=self.flake
        )

    def route(self, entry: Host) -> Route:
        from aux_secrets.adapters.hosts import options_list
        from aux_secrets.workflows import provision

        if self.local and self.target_host:
            raise UsageError("pass either --local or --target-host, not both")
        remote_manifest = self.remote_manifest
        if self.local and remote_manifest is None:
            # On this machine the manifest we read is also the one to install from.
            if self.manifest is not None:
                remote_manifest = str(self.manifest.resolve())
            elif self.system is not None:
                remote_manifest = str((self.system / provision.SYSTEM_MANIFEST).resolve())
        return provision.Route.for_host(
            entry,
            local=self.local,
            target=self.target_host,
            ssh_options=options_list(self.ssh_option),
            use_sudo=self.use_sudo,
            remote_command=self.remote_command,
            root=str(self.root) if self.root is not None else None,
            manifest=remote_manifest,
        )

    def status(self, vault: Vault, entry: Host, route: Route) -> tuple[Any, str]:
        """How to ask the host for ``status --json`` (verify, dry runs), and where it is."""
        from aux_secrets.core.transport import describe
        from aux_secrets.workflows import delivery

        transport = delivery.choose(vault, entry, local=self.local, target_host=self.target_host)
        status = delivery.status_runner(transport, route, entry.name)
        return status, route.where if transport.kind == "ssh" else describe(transport)


def fleet_names(all_hosts: bool, host: str | None, hosts: Any, what: str) -> list[str]:
    if all_hosts == (host is not None):
        raise UsageError(f"{what} needs --host NAME or --all")
    names: list[str] = hosts.names() if all_hosts or host is None else [host]
    if not names:
        raise UsageError("the vault has no hosts", hint="aux-secrets host add NAME ...")
    return names


def run_with_progress(names: list[str], job: Any, jobs: int, title: str) -> list[Outcome[Any]]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from aux_secrets.workflows import provision

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


def print_table(title: str, rows: list[tuple[str, str, str]]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from aux_secrets.core.escape import printable

    table = Table(title=escape(printable(title)), show_lines=False)
    table.add_column("host")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for host, result, detail in rows:
        style = "green" if result in ("ok", "no change", "changed", "delivered") else "red"
        table.add_row(
            escape(printable(host)),
            f"[{style}]{escape(printable(result))}[/{style}]",
            escape(printable(detail)),
        )
    Console(width=max(100, Console().width)).print(table)
