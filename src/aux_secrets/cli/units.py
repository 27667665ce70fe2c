"""``aux-secrets units``: the systemd units for Debian, Ubuntu, Fedora and other hosts
without the NixOS module (the boot-time install, the rotation timer, the RAM mount)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aux_secrets.cli.hostside import JsonOpt, ManifestOpt, RootOpt

if TYPE_CHECKING:
    from aux_secrets.core.manifest import Settings

units_app = typer.Typer(
    help="systemd units for hosts without the NixOS module.\n\nExample: aux-secrets units install",
    no_args_is_help=True,
    rich_markup_mode=None,
)

PullSourceOpt = Annotated[
    str | None,
    typer.Option(
        "--pull-source",
        metavar="URL|DIR",
        help="Also the pull timer, pulling from URL|DIR (kept 0600 in /etc/aux-secrets/pull.env).",
    ),
]
IncomingOpt = Annotated[
    bool,
    typer.Option(
        "--incoming",
        help="Also the path unit that takes in bundles dropped into storeDir/incoming.",
    ),
]
HostOpt = Annotated[
    str | None,
    typer.Option(
        "--host",
        metavar="NAME",
        help="This host's name for pull and incoming, for a host whose manifest comes with "
        "its first bundle (kept in /etc/aux-secrets/delivery.env; default at run time: the "
        "manifest's host, else the active bundle's, else the system's short hostname).",
    ),
]
SignerOpt = Annotated[
    str | None,
    typer.Option(
        "--signer",
        metavar="KEY",
        help="The vault's signer (the line 'aux-secrets signer' prints) that pull and "
        "incoming require, for a host with no manifest to pin it in (delivery.env).",
    ),
]
ProgramOpt = Annotated[
    str | None,
    typer.Option(
        "--program",
        metavar="PATH",
        help="The aux-secrets the units run, as the host sees it "
        "(default: this aux-secrets; with --root: /usr/local/bin/aux-secrets).",
    ),
]


def _program(program: str | None, root: Path) -> str:
    import shutil

    if program is not None:
        return program
    if root != Path("/"):
        return "/usr/local/bin/aux-secrets"
    found = shutil.which("aux-secrets")
    if found is not None:
        return str(Path(found).absolute())
    return str(Path(sys.argv[0]).absolute())


def _settings(manifest: Path | None, root: Path) -> tuple[Settings, str]:
    """The manifest's settings (built-in ones when there is no manifest yet) and the
    manifest path the units name, as the host sees it."""
    from aux_secrets.adapters.hostroot import DEFAULT_MANIFEST, load_manifest, settings_of

    parsed = load_manifest(manifest, root, required=False)
    named = str(manifest) if manifest is not None and root == Path("/") else DEFAULT_MANIFEST
    return settings_of(parsed), named


@units_app.command("install")
def units_install(
    root: RootOpt = None,
    manifest: ManifestOpt = None,
    program: ProgramOpt = None,
    enable: Annotated[
        bool,
        typer.Option("--enable/--no-enable", help="Enable the units (systemctl enable)."),
    ] = True,
    now: Annotated[
        bool,
        typer.Option("--now", help="Also start the RAM mount and the rotation timer."),
    ] = False,
    pull_source: PullSourceOpt = None,
    incoming: IncomingOpt = False,
    host: HostOpt = None,
    signer: SignerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write the units into ROOT/etc/systemd/system and enable them.

    The boot-time install runs before sysinit.target, so every service starts with its
    secrets in place; with a TPM2 credential key it waits for the TPM device. The paths
    come from the manifest's settings (built-in ones when there is none yet).

    A host with no manifest yet gets one with its first bundle, by pull or incoming too:
    --host NAME says which bundle is its own (default: the system's short hostname) and
    --signer KEY which vault it takes bundles from.

    Examples:

    \b
        aux-secrets units install --now
        aux-secrets units install --root /srv/image --program /opt/aux/bin/aux-secrets
        aux-secrets units install --now --pull-source https://secrets.example.org/fleet/
        aux-secrets units install --now --incoming --host web1 --signer "$(cat signer.pub)"
    """
    import json

    from aux_secrets.adapters.hostroot import resolve_root
    from aux_secrets.adapters.units import install_units
    from aux_secrets.cli import output
    from aux_secrets.errors import UsageError

    if (host is not None or signer is not None) and pull_source is None and not incoming:
        raise UsageError(
            "--host and --signer are for the pull and incoming units",
            hint="add --pull-source URL|DIR or --incoming",
        )
    root_dir = resolve_root(root)
    settings, manifest_named = _settings(manifest, root_dir)
    result = install_units(
        settings,
        root_dir,
        program=_program(program, root_dir),
        manifest=manifest_named,
        enable=enable,
        now=now,
        pull_source=pull_source,
        incoming=incoming,
        host=host,
        signer=signer,
    )
    if as_json:
        doc = {
            "written": [str(p) for p in result.written],
            "unchanged": [str(p) for p in result.unchanged],
            "enabled": list(result.enabled),
            "started": list(result.started),
            "reloaded": result.live,
        }
        output.write_stdout_bytes(json.dumps(doc, indent=2).encode() + b"\n")
        return
    for path in result.written:
        output.info(f"wrote     {path}")
    for path in result.unchanged:
        output.info(f"unchanged {path}")
    if result.enabled:
        output.info(f"enabled   {' '.join(result.enabled)}")
    if result.started:
        output.info(f"started   {' '.join(result.started)}")
    if now and not result.live:
        output.warning("--now: systemd is not running on this root; nothing was started")


@units_app.command("show")
def units_show(
    root: RootOpt = None,
    manifest: ManifestOpt = None,
    program: ProgramOpt = None,
    pull: Annotated[bool, typer.Option("--pull", help="Include the pull timer.")] = False,
    incoming: IncomingOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Print the units `units install` would write, without writing anything.

    Example:

    \b
        aux-secrets units show
        aux-secrets units show --json | jq -r '.[].path'
    """
    import json

    from aux_secrets.adapters.hostroot import resolve_root
    from aux_secrets.adapters.units import planned
    from aux_secrets.cli import output

    root_dir = resolve_root(root)
    settings, manifest_named = _settings(manifest, root_dir)
    files = planned(
        settings,
        program=_program(program, root_dir),
        manifest=manifest_named,
        pull=pull,
        incoming=incoming,
    )
    if as_json:
        doc = [{"path": "/" + f.path, "enable": f.enable, "text": f.text} for f in files]
        output.write_stdout_bytes(json.dumps(doc, indent=2).encode() + b"\n")
        return
    text = "".join(f"# /{f.path}\n{f.text}\n" for f in files)
    output.write_stdout_bytes(text.encode())


def register(app: typer.Typer) -> None:
    app.add_typer(units_app, name="units")
