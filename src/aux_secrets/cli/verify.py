"""`verify`: do the hosts hold what the vault says, by keyed fingerprints."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from aux_secrets.cli import common, fleet, output

UNCHECKED_EXIT = 2

VERIFY_HELP = """Check that hosts hold the secrets the vault says they should.

Runs 'aux-secrets status --json' on the host (over ssh, or the 'status' argv of
the host's command transport) and compares its keyed fingerprints
with the vault's: ok, stale (another or older value), missing, unexpected, changed
(the installed file is not what was installed). Values never leave the host. Exit 1
on any drift; exit 2 when there is none but a host could not be checked
(UNREACHABLE, or FAILED).

Examples:

  aux-secrets verify --host web1 --manifest web1.json

  aux-secrets verify --all
"""


def verify_command(
    host: str | None = fleet.HOST_OPT,
    all_hosts: bool = typer.Option(False, "--all", help="Every host in the vault."),
    jobs: int = fleet.JOBS_OPT,
    manifest: Path | None = fleet.MANIFEST_OPT,
    system: Path | None = fleet.SYSTEM_OPT,
    flake: str | None = fleet.FLAKE_OPT,
    target_host: str | None = fleet.TARGET_OPT,
    local: bool = typer.Option(False, "--local", help="Check this machine, no ssh."),
    use_sudo: bool | None = fleet.SUDO_OPT,
    ssh_option: list[str] = fleet.SSH_OPTION_OPT,
    remote_command: str | None = fleet.REMOTE_COMMAND_OPT,
    root: Path | None = fleet.ROOT_OPT,
    remote_manifest: str | None = fleet.REMOTE_MANIFEST_OPT,
    at: str | None = fleet.AT_OPT,
    as_json: bool = typer.Option(False, "--json", help="Print the verdicts as JSON."),
    vault: Path | None = fleet.VAULT_OPT,
    password_file: Path | None = fleet.PASSWORD_FILE_OPT,
    password_command: str | None = fleet.PASSWORD_COMMAND_OPT,
) -> None:
    from aux_secrets.adapters.hosts import HostDir
    from aux_secrets.workflows import provision, verify

    instant = fleet.parse_at(at)
    opened = common.open_vault(vault)
    hosts = HostDir(opened.hosts_dir)
    names = fleet.fleet_names(all_hosts, host, hosts, "verify")
    if not all_hosts:
        hosts.read(names[0])
    opened, scheme = common.unlock_vault(vault, password_file, password_command)

    options = fleet.HostOptions(
        manifest, system, flake, local, target_host, ssh_option, use_sudo, remote_command,
        root, remote_manifest,
    )  # fmt: skip

    def job(name: str) -> list[verify.Drift]:
        entry = hosts.read(name)  # in the job: one bad host file fails only that host
        source, route = options.source(entry, opened.root), options.route(entry)
        status, where = options.status(opened, entry, route)
        return verify.verify_host(
            opened, scheme, entry, source, route, at=instant, status=status, where=where
        )

    outcomes = (
        fleet.run_with_progress(names, job, jobs, "verifying")
        if all_hosts
        else provision.run_fleet(names, job, jobs=1)
    )
    drifted: list[str] = []
    unchecked: list[str] = []
    doc: dict[str, object] = {}
    rows: list[tuple[str, str, str]] = []
    for o in outcomes:
        if o.value is None:
            unchecked.append(o.host)
            state = "unreachable" if o.unreachable else "failed"
            doc[o.host] = {"error": o.error, "state": state}
            rows.append((o.host, state.upper(), o.error or ""))
            if not all_hosts and not as_json:
                output.error(o.error or "verify failed", o.hint)
                raise typer.Exit(UNCHECKED_EXIT)
            continue
        bad = [d for d in o.value if d.verdict != "ok"]
        if bad:
            drifted.append(o.host)
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
        fleet.print_table("verify", rows)
    if drifted:
        more = f"; {len(unchecked)} could not be checked" if unchecked else ""
        output.error(
            "drift found: the hosts do not all hold what the vault says "
            f"({', '.join(drifted)}){more}"
        )
        raise typer.Exit(1)
    if unchecked:
        output.error(
            f"no drift on the hosts checked, but {len(unchecked)} could not be checked "
            f"(unreachable or failed): {', '.join(unchecked)}"
        )
        raise typer.Exit(UNCHECKED_EXIT)


def register(app: typer.Typer) -> None:
    app.command("verify", help=VERIFY_HELP)(verify_command)
