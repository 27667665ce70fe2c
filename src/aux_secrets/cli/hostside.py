"""Host-side commands: activate a delivered bundle, show status, verify the audit log.

These run as root on the host. ``--root DIR`` prefixes every path the manifest names
(storeDir, runtimeDir, host keys) and the default manifest path, so tests, image builders
and the demo never touch the real system. ``install`` lives in this module as well.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aux_secrets.adapters.hostroot import (
    DEFAULT_MANIFEST,
    load_manifest,
    manifest_path,
    missing_error,
    open_store,
    resolve_root,
    settings_of,
)

if TYPE_CHECKING:
    from aux_secrets.errors import AuxError

# --------------------------------------------------------------------------- shared options
# Reused by every host-side command (activate, status, audit, install).

MAX_BUNDLE_BYTES = 80 * 1024 * 1024


MANIFEST_HELP = (
    f"The host's manifest (default: ROOT{DEFAULT_MANIFEST}). Taken as given, "
    "not prefixed by --root."
)
ROOT_HELP = "Prefix every path (store, runtime dir, host keys, default manifest) with DIR."

# ``manifest: ManifestOpt = None``, ``root: RootOpt = None``, ``as_json: JsonOpt = False``.
ManifestOpt = Annotated[
    Path | None, typer.Option("--manifest", "-m", metavar="PATH", help=MANIFEST_HELP)
]
RootOpt = Annotated[Path | None, typer.Option("--root", metavar="DIR", help=ROOT_HELP)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]


# --------------------------------------------------------------------------- activate


def activate(
    bundle: str = typer.Option(
        ...,
        "--bundle",
        "-b",
        metavar="FILE|-",
        help="The delivered bundle (age file); - reads stdin.",
    ),
    manifest: ManifestOpt = None,
    root: RootOpt = None,
    host: str | None = typer.Option(
        None, "--host", help="This host's name (default: the manifest's host)."
    ),
    as_json: JsonOpt = False,
    trust_new_signer: bool = typer.Option(
        False,
        "--trust-new-signer",
        help="Accept a bundle from a signer other than the recorded one and record it "
        "(after a deliberate vault change). Pinned settings.bundleSigners still apply.",
    ),
    reset_serial: bool = typer.Option(
        False,
        "--reset-serial",
        help="Accept a serial not above the active one, for a signed bundle made after the "
        "active one (the way back when the active serial was pushed far ahead).",
    ),
    allow_downgrade: bool = typer.Option(
        False,
        "--allow-downgrade",
        help="Accept store secrets at an older store version than the active ones "
        "(going back on purpose; by default such a bundle is refused).",
    ),
) -> None:
    """Open a bundle with the host key, check its signature, seal it into the local store.

    Refuses a bundle that is unsigned or whose signature does not verify, one signed by a
    key not in settings.bundleSigners (or, with none pinned, not the signer recorded from
    the first bundle), one made for another host, and one whose serial is not newer than
    the active one (replay), and one that would take a store secret back to an older
    store version (a vault clone that is behind), changing nothing. Example:

    \b
        aux-secrets activate --bundle /tmp/web1.age
        ssh root@web1 aux-secrets activate --bundle - < web1.age
        aux-secrets activate --trust-new-signer --bundle /tmp/web1.age
        aux-secrets activate --reset-serial --bundle /tmp/web1.age
    """
    import json

    from aux_secrets.adapters.fs import read_bounded
    from aux_secrets.cli import output
    from aux_secrets.core.bundle import format_instant
    from aux_secrets.core.bundle_sign import signer_fingerprint
    from aux_secrets.errors import InputError, UsageError

    root_dir = resolve_root(root)
    parsed = load_manifest(manifest, root_dir, required=host is None)
    this_host = host if host is not None else parsed.host if parsed is not None else None
    if this_host is None:
        raise UsageError("no host name: pass --host NAME or --manifest PATH")
    if parsed is not None and host is not None and host != parsed.host:
        raise UsageError(f"--host {host} differs from the manifest's host {parsed.host}")
    if bundle == "-":
        data = sys.stdin.buffer.read(MAX_BUNDLE_BYTES + 1)
        if len(data) > MAX_BUNDLE_BYTES:
            raise InputError(f"bundle on stdin is larger than {MAX_BUNDLE_BYTES} bytes")
        if not data:
            raise InputError("no bundle on stdin")
    else:
        data = read_bounded(Path(bundle), MAX_BUNDLE_BYTES, what="bundle")
    store = open_store(parsed, root_dir)
    result = store.activate(
        data,
        this_host,
        manifest=parsed,
        trust_new_signer=trust_new_signer,
        reset_serial=reset_serial,
        allow_downgrade=allow_downgrade,
    )
    meta = result.meta
    signer = signer_fingerprint(result.signer)
    for warning in result.warnings:
        output.warning(warning)
    if result.carried_manifest:
        output.info(
            "this host has no manifest yet: sealed as the manifest the bundle carries asks; "
            "install uses that one until the host has its own"
        )
    if result.replaced_signer is not None:
        output.info(
            f"trusting a new bundle signer {signer} "
            f"(replaces {signer_fingerprint(result.replaced_signer)})"
        )
    if as_json:
        report = {
            "host": meta.host,
            "serial": meta.serial,
            "previousSerial": result.previous_serial,
            "bundleId": meta.bundle_id,
            "created": format_instant(meta.created),
            "backend": meta.backend,
            "changed": list(result.changed),
            "removed": list(result.removed),
            "credentials": [str(p) for p in result.credentials],
            "signer": signer,
            "carriedManifest": result.carried_manifest,
        }
        output.write_stdout_bytes(json.dumps(report, indent=2).encode() + b"\n")
        return
    output.info(
        f"activated bundle {meta.bundle_id} serial {meta.serial} for {meta.host} "
        f"(backend {meta.backend}, signed by {signer}): {len(result.changed)} changed, "
        f"{len(result.removed)} removed"
    )
    for name in result.changed:
        output.info(f"  changed  {name}")
    for name in result.removed:
        output.info(f"  removed  {name}")


# --------------------------------------------------------------------------- install


def install(
    manifest: ManifestOpt = None,
    root: RootOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would change; write nothing.")
    ] = False,
    for_users: Annotated[
        bool,
        typer.Option(
            "--for-users",
            help="Install only the neededForUsers secrets into usersDir (before users exist).",
        ),
    ] = False,
    activation_lists: Annotated[
        bool,
        typer.Option(
            "--activation-lists",
            help="Append units to NixOS's /run/nixos/activation-{restart,reload}-list "
            "instead of running systemctl (for the activation script of a switch); "
            "none when there is no previous generation (at boot).",
        ),
    ] = False,
    units_dir: Annotated[
        Path | None,
        typer.Option(
            "--units-dir",
            metavar="DIR",
            help="With --activation-lists: the unit directory of the system being "
            "activated ($systemConfig/etc/systemd/system); a unit with no unit file there "
            "is skipped with a warning instead of listed. Taken as given, not prefixed by "
            "--root.",
        ),
    ] = None,
    at: Annotated[str | None, typer.Option("--at", hidden=True)] = None,
    as_json: JsonOpt = False,
) -> None:
    """Install the manifest's secrets from the local store as a new generation.

    Writes generationsDir/N+1, swaps runtimeDir to it atomically, and asks systemd to
    try-restart / try-reload-or-restart the units of exactly the files that changed.
    Prints the next rotation boundary as 'next rotation: ...' for a timer. Exits 75
    (and installs nothing) when no bundle has been delivered to the host yet, 1 for any
    other failure: the NixOS units accept 75 and fail on the rest. Example:

    \b
        aux-secrets install
        aux-secrets install --root /tmp/demo-root --dry-run
    """
    import json

    from aux_secrets.cli import output
    from aux_secrets.errors import UsageError

    if units_dir is not None and not activation_lists:
        raise UsageError("--units-dir is only used with --activation-lists")
    done = install_from_store(
        manifest,
        root,
        dry_run=dry_run,
        for_users=for_users,
        activation_lists=activation_lists,
        units_dir=units_dir,
        at=at,
    )
    if as_json:
        text = json.dumps(done.doc, indent=2, sort_keys=True) + "\n"
    else:
        text = "\n".join(done.lines) + "\n"
    output.write_stdout_bytes(text.encode())
    if done.missing is not None:
        raise done.missing


@dataclass(frozen=True)
class InstallOutcome:
    """What an install did: its --json document, its human lines, and the error for the
    secrets it could not install (raised after printing, so the report is never lost)."""

    doc: dict[str, object]
    lines: list[str]
    missing: AuxError | None


def install_from_store(
    manifest: Path | None,
    root: Path | None,
    *,
    dry_run: bool = False,
    for_users: bool = False,
    activation_lists: bool = False,
    units_dir: Path | None = None,
    at: str | None = None,
) -> InstallOutcome:
    """The install command's work (shared with pull): warnings go to stderr as they come."""
    from datetime import UTC, datetime

    from aux_secrets.adapters.carried import Recording, carried_manifest, other_manifest_warning
    from aux_secrets.adapters.installer import install as run_install
    from aux_secrets.adapters.installer import report_json, report_lines, report_warnings
    from aux_secrets.adapters.localstore import under_root
    from aux_secrets.adapters.reseal import reseal
    from aux_secrets.adapters.systemctl import ActivationLists, Systemctl
    from aux_secrets.cli import output
    from aux_secrets.core.rotation import parse_instant
    from aux_secrets.errors import NotDeliveredError

    root_dir = resolve_root(root)
    parsed = load_manifest(manifest, root_dir, required=False)
    carried = None
    if parsed is None:  # no manifest on the host: the one its active bundle carries
        carried = carried_manifest(root_dir, manifest_path(manifest, root_dir)[0])
        parsed = carried.manifest
        output.info(
            f"no manifest at {manifest_path(manifest, root_dir)[0]}: installing with the one "
            f"bundle serial {carried.source.payload.serial} carries"
        )
    store = carried.store if carried is not None else open_store(parsed, root_dir)
    # Before anything is written: a --units-dir that is no directory is refused here.
    requester: ActivationLists | Systemctl | None = (
        ActivationLists(root_dir, units_dir)
        if activation_lists
        else Systemctl(parsed.settings.systemctl)
    )
    if store.active_meta() is None:
        raise NotDeliveredError(
            f"no bundle has been delivered to host {parsed.host} yet "
            f"(nothing activated in {store.store_dir}): nothing installed",
            hint=f"aux-secrets provision --host {parsed.host}",
        )
    # A settings change that came with this manifest (backend, credentialKey, TPM PCRs):
    # the store is sealed again in place before anything is installed from it.
    resealed = None if for_users else reseal(store, parsed.host, dry_run=dry_run)
    if resealed is not None:
        output.info(
            f"{'would re-seal' if dry_run else 're-sealed'} the local store in place "
            f"({'; '.join(resealed.changes)}); no copy sealed the old way is left"
        )
    when = parse_instant(at) if at is not None else datetime.now(UTC)
    live = under_root(
        root_dir, parsed.settings.users_dir if for_users else parsed.settings.runtime_dir
    )
    if activation_lists and not live.is_dir():
        # No previous generation: the activation script at boot. Every file "appears", and
        # the next switch would restart (and so start) every unit listed: ask for none.
        requester = None
    preloaded = resealed.payload if resealed is not None else None
    source = carried.source if carried is not None else Recording(store, preloaded)
    report = run_install(
        parsed,
        source,
        root=root_dir,
        at=when,
        requester=requester,
        audit=store.audit,
        credentials=store,
        dry_run=dry_run,
        for_users=for_users,
    )
    for warning in report.warnings:
        output.warning(warning)
    for warning in report_warnings(report, when):
        output.warning(warning)
    if isinstance(source, Recording) and source.payload is not None:
        other = other_manifest_warning(source.payload, parsed, manifest_path(manifest, root_dir)[0])
        if other is not None:
            output.warning(other)
    doc = report_json(report)
    doc["manifest"] = {
        "path": None if carried is not None else str(manifest_path(manifest, root_dir)[0]),
        "carried": carried is not None,
    }
    doc["resealed"] = list(resealed.changes) if resealed is not None else []
    return InstallOutcome(doc, list(report_lines(report)), missing_error(report, parsed.host))


# --------------------------------------------------------------------------- audit


audit_app = typer.Typer(
    help="The host's audit log (storeDir/audit.jsonl).\n\n"
    "Example: aux-secrets audit show --last 10",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@audit_app.command("verify")
def audit_verify(
    manifest: ManifestOpt = None,
    root: RootOpt = None,
) -> None:
    """Check the audit log's hash chain: a changed, removed or reordered entry fails.

    Example:

    \b
        aux-secrets audit verify
        aux-secrets audit verify --root /tmp/demo-root
    """
    from aux_secrets.adapters.audit import AuditLog
    from aux_secrets.adapters.localstore import under_root
    from aux_secrets.cli import output

    root_dir = resolve_root(root)
    settings = settings_of(load_manifest(manifest, root_dir, required=False))
    log = AuditLog(under_root(root_dir, settings.store_dir))
    entries = log.verify()
    last = (
        f", last {entries[-1].event.event} at {entries[-1].event.time:%Y-%m-%dT%H:%M:%SZ}"
        if entries
        else ""
    )
    output.write_stdout_bytes(f"audit log {log.path}: ok, {len(entries)} entries{last}\n".encode())


# --------------------------------------------------------------------------- registration


def register(app: typer.Typer) -> None:
    app.command("activate")(activate)
    app.command("install")(install)
    from aux_secrets.cli import audit_show

    audit_show.register(audit_app)
    app.add_typer(audit_app, name="audit")
