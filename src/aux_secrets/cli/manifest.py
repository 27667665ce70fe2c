"""``aux-secrets manifest check``: validate a host manifest (the NixOS build runs this)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

MAX_MANIFEST_BYTES = 16 * 1024 * 1024

manifest_app = typer.Typer(
    name="manifest",
    help="Check host manifests (the JSON the NixOS module writes, or TOML by hand).\n\n"
    "Example: aux-secrets manifest check /etc/aux-secrets/manifest.json",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@manifest_app.command("check")
def check(
    file: Annotated[Path, typer.Argument(help="Manifest file (.json, or .toml); '-' reads stdin.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Validate a manifest strictly and print a summary; exit non-zero naming the JSON path.

    Example: aux-secrets manifest check /etc/aux-secrets/manifest.json
    """
    from aux_secrets.adapters.fs import read_bounded
    from aux_secrets.cli import output
    from aux_secrets.core.manifest import parse_manifest
    from aux_secrets.errors import InputError

    if str(file) == "-":
        data = sys.stdin.buffer.read(MAX_MANIFEST_BYTES + 1)
        if len(data) > MAX_MANIFEST_BYTES:
            raise InputError(f"manifest on stdin is larger than {MAX_MANIFEST_BYTES} bytes")
        name = "<stdin>"
    else:
        data = read_bounded(file, MAX_MANIFEST_BYTES, what="manifest")
        name = str(file)
    manifest = parse_manifest(data, filename=name)
    summary = _summary(manifest)
    for finding in summary["warnings"]:
        output.warning(f"{finding['secret']}: {finding['message']} [{finding['code']}]")
    if as_json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return
    print(
        f"{name}: manifest version {summary['version']} for host {summary['host']}: "
        f"{len(summary['secrets'])} secrets, {len(summary['templates'])} templates, "
        f"backend {summary['backend']}"
    )
    for entry in summary["secrets"]:
        print(
            f"  secret   {entry['name']}  {entry['source']}  -> {entry['path']} "
            f"{entry['owner']}:{entry['group']} {entry['mode']}"
        )
    for entry in summary["templates"]:
        uses = ", ".join(entry["uses"]) or "no secrets"
        print(
            f"  template {entry['name']}  ({uses})  -> {entry['path']} "
            f"{entry['owner']}:{entry['group']} {entry['mode']}"
        )


def _summary(manifest: Any) -> dict[str, Any]:
    from aux_secrets.core.lint import no_ahead
    from aux_secrets.core.manifest import DeriveSource

    secrets = []
    warnings = []
    for name, spec in manifest.secrets.items():
        rotation = spec.source.rotation if isinstance(spec.source, DeriveSource) else None
        finding = no_ahead(name, rotation.period, rotation.ahead) if rotation else None
        if finding is not None:
            warnings.append({"secret": name, "code": finding.code, "message": finding.message})
        if isinstance(spec.source, DeriveSource):
            realm = spec.source.realm
            shown = realm if realm.isprintable() else repr(realm)  # no terminal escapes
            source = f"derive {spec.source.type} from {shown}"
            if spec.source.rotation is not None:
                source += f" ({spec.source.rotation.period})"
        else:
            source = f"store {spec.source.name}"
        secrets.append(
            {
                "name": name,
                "source": source,
                "path": spec.path,
                "owner": spec.owner,
                "group": spec.group,
                "mode": spec.mode,
                "neededForUsers": spec.needed_for_users,
                "credential": None if spec.credential is None else spec.credential.name,
            }
        )
    templates = [
        {
            "name": name,
            "uses": [f"{secret}:{field}" for secret, field in spec.references],
            "path": spec.path,
            "owner": spec.owner,
            "group": spec.group,
            "mode": spec.mode,
        }
        for name, spec in manifest.templates.items()
    ]
    return {
        "ok": True,
        "version": manifest.version,
        "host": manifest.host,
        "backend": manifest.settings.backend,
        "secrets": secrets,
        "templates": templates,
        "warnings": warnings,
    }


def register(app: typer.Typer) -> None:
    app.add_typer(manifest_app)
