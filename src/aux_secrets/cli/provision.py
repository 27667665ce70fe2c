"""`provision`: bundle, stream over ssh, activate and install on hosts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from aux_secrets.cli import common, fleet, output
from aux_secrets.errors import UsageError

PROVISION_HELP = """Deliver a host's secrets: bundle, send over its transport, activate and install.

By default the bundle travels on ssh's stdin to 'aux-secrets activate --bundle -'
followed by 'aux-secrets install' on the host (as root, or with --use-sudo through
'sudo -n'); no value is ever on a command line. A [transport] table in vault.toml or
the host file sends it through a command, a copy list or a publish directory
instead (docs/transports/). --local does it on this machine, --target-host over
ssh there, --publish DIR writes the bundle into DIR for the host to pull. --all
provisions every host in the vault, -j at once, using each host entry's manifest.
A rerun makes a new serial and changes nothing on the host.

Examples:

  aux-secrets provision --host web1 --manifest web1.json --target-host root@10.0.0.5

  aux-secrets provision --host web1 --system ./result

  aux-secrets provision --all -j 8

  aux-secrets provision --all --dry-run

  aux-secrets provision --all --publish /srv/www/aux-secrets
"""

PUBLISH_OPT = typer.Option(
    None,
    "--publish",
    metavar="DIR",
    help="Write each host's bundle into DIR (and DIR/index.json) for 'aux-secrets pull'.",
)


def provision_command(
    host: str | None = fleet.HOST_OPT,
    all_hosts: bool = typer.Option(False, "--all", help="Every host in the vault."),
    jobs: int = fleet.JOBS_OPT,
    manifest: Path | None = fleet.MANIFEST_OPT,
    system: Path | None = fleet.SYSTEM_OPT,
    flake: str | None = fleet.FLAKE_OPT,
    target_host: str | None = fleet.TARGET_OPT,
    local: bool = typer.Option(False, "--local", help="Provision this machine, no ssh."),
    publish: Path | None = PUBLISH_OPT,
    use_sudo: bool | None = fleet.SUDO_OPT,
    ssh_option: list[str] = fleet.SSH_OPTION_OPT,
    remote_command: str | None = fleet.REMOTE_COMMAND_OPT,
    root: Path | None = fleet.ROOT_OPT,
    remote_manifest: str | None = fleet.REMOTE_MANIFEST_OPT,
    at: str | None = fleet.AT_OPT,
    allow_downgrade: bool = typer.Option(
        False,
        "--allow-downgrade",
        help="Let hosts take store secrets at an older store version than they hold "
        "(going back on purpose; by default they refuse).",
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Show what would change on each host and which units would restart; deliver nothing.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON."),
    vault: Path | None = fleet.VAULT_OPT,
    password_file: Path | None = fleet.PASSWORD_FILE_OPT,
    password_command: str | None = fleet.PASSWORD_COMMAND_OPT,
) -> None:
    import dataclasses
    from datetime import UTC, datetime

    from aux_secrets.adapters.hosts import HostDir
    from aux_secrets.workflows import delivery, provision
    from aux_secrets.workflows.usage import expiry_notes

    instant = fleet.parse_at(at)
    opened = common.open_vault(vault)
    hosts = HostDir(opened.hosts_dir)
    names = fleet.fleet_names(all_hosts, host, hosts, "provision")
    if all_hosts and (manifest or system or flake or target_host or local):
        raise UsageError(
            "--all uses each host entry's manifest and target",
            hint="drop --manifest/--system/--flake/--target-host/--local, or use --host NAME",
        )
    if not all_hosts:
        hosts.read(names[0])  # an unknown host fails before the password is asked for
    if dry_run and publish is not None:
        raise UsageError("--dry-run asks the hosts; it writes no --publish directory")
    opened, scheme = common.unlock_vault(vault, password_file, password_command)
    common.warn_if_behind(opened.root)
    publishers = delivery.Publishers()

    options = fleet.HostOptions(
        manifest, system, flake, local, target_host, ssh_option, use_sudo, remote_command,
        root, remote_manifest,
    )  # fmt: skip

    def dry_job(name: str) -> Any:
        from aux_secrets.workflows.dry_run import dry_run_host

        entry = hosts.read(name)
        source, route = options.source(entry, opened.root), options.route(entry)
        status, where = options.status(opened, entry, route)
        return dry_run_host(
            opened, scheme, entry, source, route, at=instant, status=status, where=where
        )

    if dry_run:
        from aux_secrets.cli import dry_run as shown

        runs = (
            fleet.run_with_progress(names, dry_job, jobs, "asking")
            if all_hosts
            else provision.run_fleet(names, dry_job, jobs=1)
        )
        shown.report(runs, all_hosts=all_hosts, as_json=as_json)
        return

    def job(name: str) -> provision.HostReport:
        entry = hosts.read(name)  # in the job: one bad host file fails only that host
        source, route = options.source(entry, opened.root), options.route(entry)
        if allow_downgrade:
            route = dataclasses.replace(route, allow_downgrade=True)
        transport = delivery.choose(
            opened, entry, local=local, target_host=target_host, publish=publish
        )
        delivery.check_publish_dir(opened, transport)
        loaded = provision.load_manifest(source)
        for secret, note in expiry_notes(opened, loaded, (instant or datetime.now(UTC)).date()):
            output.warning(f"host {name}: {secret}: {note}")
        made = provision.make_bundle(opened, scheme, entry, loaded, at=instant, label=source.label)
        return delivery.deliver(opened, transport, made, route, publishers=publishers)

    if not all_hosts:
        try:
            report = job(names[0])
        finally:
            publishers.close()
        _relay_host_output(report)
        if as_json:
            print(json.dumps(_report_doc(report), indent=2, sort_keys=True))
        else:
            _print_report(report)
        return
    try:
        outcomes = fleet.run_with_progress(names, job, jobs, "provisioning")
    finally:
        publishers.close()
    failed = [o for o in outcomes if not o.ok]
    for o in outcomes:
        if o.value is not None:
            _relay_host_output(o.value)
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
                result = "delivered" if o.value.delivered else "changed"
                result = "no change" if o.value.no_change else result
                rows.append((o.host, result, o.value.summary()))
            else:
                rows.append((o.host, "FAILED", o.error or ""))
        fleet.print_table(
            f"provisioned {len(outcomes) - len(failed)} of {len(outcomes)} hosts", rows
        )
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
        "notFound": list(report.not_found),
        "warnings": list(report.warnings),
        "generation": report.generation,
        "noChange": report.no_change,
        "delivered": report.delivered,
    }


def _relay_host_output(report: Any) -> None:
    """The host's own warnings, on stderr whatever the output format."""
    for line in report.output.splitlines():
        output.info(f"{report.host}: {line}")


def _print_report(report: Any) -> None:
    """What the host reported; its names and units are the host's text: shown escaped."""
    from aux_secrets.core.escape import printable

    def say(line: str) -> None:
        print(printable(line))

    if report.delivered:
        say(
            f"{report.host}: bundle serial {report.serial}, {report.secrets} secrets, "
            f"delivered to {report.where} (the host takes it in)"
        )
        return
    say(
        f"{report.host} ({report.where}): bundle serial {report.serial}, "
        f"{report.secrets} secrets, generation {report.generation}"
    )
    for name in report.changed:
        say(f"  changed    {name}")
    for unit in report.restarted:
        say(f"  restarted  {unit}")
    for unit in report.reloaded:
        say(f"  reloaded   {unit}")
    for unit in report.not_found:
        say(f"  not found  {unit} (not on the host: skipped)")
    if report.no_change:
        print("  no change")


def register(app: typer.Typer) -> None:
    app.command("provision", help=PROVISION_HELP)(provision_command)
