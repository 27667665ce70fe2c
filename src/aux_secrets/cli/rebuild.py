"""`rebuild`: nixos-rebuild with the host's secrets delivered between build and switch."""

from __future__ import annotations

from pathlib import Path

import typer

from aux_secrets.cli import common, fleet, output
from aux_secrets.errors import UsageError

REBUILD_HELP = """nixos-rebuild with secrets: build, provision from the built system, then switch.

Runs 'nixos-rebuild build ARGS', provisions the host named in the built system's
manifest over its transport (ssh: activate only, the switch's install unit
installs them; a command, copy or publish transport as configured), then
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
    remote_command: str | None = fleet.REMOTE_COMMAND_OPT,
    vault: Path | None = fleet.VAULT_OPT,
    password_file: Path | None = fleet.PASSWORD_FILE_OPT,
    password_command: str | None = fleet.PASSWORD_COMMAND_OPT,
) -> None:
    import dataclasses
    import os
    import subprocess

    from aux_secrets.adapters.hosts import HostDir
    from aux_secrets.adapters.transport import transport_for
    from aux_secrets.errors import AuxError, ExternalError
    from aux_secrets.workflows import delivery, provision

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
    transport = transport_for(opened, entry)
    delivery.check_publish_dir(opened, transport)
    bundle = provision.make_bundle(opened, scheme, entry, manifest, label=source.label)
    publishers = delivery.Publishers()
    try:
        report = delivery.deliver(
            opened, transport, bundle, route, publishers=publishers, steps=("activate",)
        )
    except AuxError as exc:
        raise type(exc)(
            f"delivery to {name} failed: {exc.message}",
            hint="the system was built but not switched",
        ) from None
    finally:
        publishers.close()
    if report.delivered:
        output.info(f"delivered {name}'s bundle serial {bundle.serial} to {report.where}")
    else:
        output.info(f"provisioned {name} ({report.where}): bundle serial {bundle.serial}")
    switch = [nixos_rebuild, action, *rest]
    output.info("$ " + " ".join(switch))
    done = subprocess.run(switch, check=False)
    if done.returncode != 0:
        raise typer.Exit(done.returncode)


def register(app: typer.Typer) -> None:
    app.command(
        "rebuild",
        help=REBUILD_HELP,
        context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    )(rebuild_command)
