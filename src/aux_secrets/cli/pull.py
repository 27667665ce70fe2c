"""`pull`: the host fetches its own bundle from a publish directory (HTTP(S) or a path)."""

from __future__ import annotations

import typer

from aux_secrets.cli.hostside import JsonOpt, ManifestOpt, RootOpt

ENV_SOURCE = "AUX_SECRETS_PULL_SOURCE"
ENV_HOST = "AUX_SECRETS_PULL_HOST"
ENV_SIGNER = "AUX_SECRETS_PULL_SIGNER"

PULL_HELP = f"""Fetch this host's bundle from a publish directory; take it in if it is newer.

SOURCE is what 'aux-secrets provision --publish DIR' wrote, served over HTTP(S) or
reached as a directory; this host's file is SOURCE/HOST.age. HOST is --host (default
${ENV_HOST}), else the manifest's host, else the host of the bundle active in the
local store, else the system's short hostname (ROOT/etc/hostname under --root), the
name colmena and deploy-rs give a host: a host without a manifest yet takes its first
bundle, which carries one. The bundle is checked
exactly as a delivered one (host key, signer, host name, serial), then activated
and installed. A source that is missing, unreachable, stale, replayed, foreign or
cut short changes nothing: this host keeps what it has, and the error says so.
Exit 0 also when the source holds nothing newer. --json prints one document
(result "activated" or "up-to-date", serial, what changed), with install's report
under "install" when a bundle was taken in and installed. Boot never needs it: the local
store installs without network. SOURCE defaults to ${ENV_SOURCE} (the
aux-secrets-pull.timer reads it from /etc/aux-secrets/pull.env; --host and --signer
from /etc/aux-secrets/delivery.env, written by 'aux-secrets units install --host').

Examples:

  aux-secrets pull https://secrets.example.org/fleet/

  aux-secrets pull /mnt/usb/aux-secrets --json
"""


def register(app: typer.Typer) -> None:
    app.command("pull", help=PULL_HELP)(pull_command)


def pull_command(
    source: str = typer.Argument(..., metavar="URL|DIR", envvar=ENV_SOURCE, show_envvar=False),
    manifest: ManifestOpt = None,
    root: RootOpt = None,
    host: str | None = typer.Option(
        None,
        "--host",
        metavar="NAME",
        envvar=ENV_HOST,
        show_envvar=False,
        help=f"This host's name (default ${ENV_HOST}, else the manifest's host, else the "
        "active bundle's, else the system's short hostname).",
    ),
    signer: str | None = typer.Option(
        None,
        "--signer",
        metavar="KEY",
        envvar=ENV_SIGNER,
        show_envvar=False,
        help=f"Take only bundles this signer made ('aux-secrets signer'; default ${ENV_SIGNER}).",
    ),
    timeout: float = typer.Option(30.0, "--timeout", metavar="SECONDS", help="Fetch timeout."),
    no_install: bool = typer.Option(
        False, "--no-install", help="Only activate into the local store (install later)."
    ),
    trust_first_signer: bool = typer.Option(
        False,
        "--trust-first-signer",
        help="With no signer pinned and nothing activated yet, record the first bundle's "
        "signer (pin settings.bundleSigners instead where you can).",
    ),
    as_json: JsonOpt = False,
) -> None:
    import json

    from aux_secrets.adapters import hostroot
    from aux_secrets.cli import hostside, output
    from aux_secrets.core.bundle_sign import parse_signer, signer_fingerprint
    from aux_secrets.errors import UsageError
    from aux_secrets.workflows import pull

    if not 0 < timeout <= 3600:
        raise UsageError("--timeout must be more than 0 and at most 3600 seconds")
    pinned = parse_signer(signer, "--signer") if signer is not None else None
    root_dir = hostroot.resolve_root(root)
    parsed = hostroot.load_manifest(manifest, root_dir, required=False)
    store = hostroot.open_store(parsed, root_dir)
    this_host = pull.host_name(host, parsed, store, root_dir)
    result = pull.pull(
        store,
        this_host,
        source,
        manifest=parsed,
        timeout=timeout,
        limit=hostside.MAX_BUNDLE_BYTES,
        trust_first_signer=trust_first_signer,
        signer=pinned,
    )
    done = result.activated
    # Install also on a host without a manifest of its own: the bundle carries one.
    installed = (
        hostside.install_from_store(manifest, root) if done is not None and not no_install else None
    )
    if as_json:
        doc: dict[str, object] = {
            "host": this_host,
            "source": result.where,
            "result": "activated" if done else "up-to-date",
            "serial": result.serial,
        }
        if done is not None:
            doc["previousSerial"] = done.previous_serial
            doc["changed"] = list(done.changed)
            doc["removed"] = list(done.removed)
            doc["signer"] = signer_fingerprint(done.signer)
        if installed is not None:
            doc["install"] = installed.doc
        output.write_stdout_bytes(json.dumps(doc, indent=2).encode() + b"\n")
    elif done is None:
        output.info(f"{this_host}: {result.where} holds nothing newer than serial {result.serial}")
    else:
        output.info(
            f"{this_host}: pulled serial {result.serial} from {result.where} "
            f"(was {done.previous_serial if done.previous_serial is not None else 'none'}): "
            f"{len(done.changed)} changed, {len(done.removed)} removed"
        )
        if installed is not None:
            output.write_stdout_bytes(("\n".join(installed.lines) + "\n").encode())
    if installed is not None and installed.missing is not None:
        raise installed.missing
