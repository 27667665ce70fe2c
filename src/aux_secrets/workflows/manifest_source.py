"""Where a host's manifest comes from: a file, a built NixOS system, or a flake.

:class:`ManifestSource` carries the manifest's bytes and a label for messages;
:func:`manifest_for_host` picks the command line's choice, else the host entry's;
:func:`load_manifest` parses it (docs/spec/manifest.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aux_secrets.adapters import ssh
from aux_secrets.errors import ExternalError, NotFoundError, UsageError

if TYPE_CHECKING:
    from aux_secrets.adapters.hosts import Host
    from aux_secrets.core.manifest import Manifest

SYSTEM_MANIFEST = "etc/aux-secrets/manifest.json"
MANIFEST_LIMIT = 16 * 1024 * 1024
# The flake attribute under nixosConfigurations.NAME that holds the manifest (modules/).
FLAKE_MANIFEST_ATTR = "config.aux.manifest"


@dataclass(frozen=True)
class ManifestSource:
    """Where a manifest came from: its bytes, a label for messages, and a local path if any."""

    data: bytes
    label: str
    path: Path | None


def manifest_from_file(path: Path) -> ManifestSource:
    from aux_secrets.adapters.fs import read_bounded

    return ManifestSource(read_bounded(path, MANIFEST_LIMIT, what="manifest"), str(path), path)


def manifest_from_system(system: Path) -> ManifestSource:
    """A built NixOS system (``./result``) carries its manifest in etc/aux-secrets/."""
    path = system / SYSTEM_MANIFEST
    if not path.is_file():
        raise NotFoundError(
            f"{system} has no {SYSTEM_MANIFEST}",
            hint="is aux-secrets enabled in this system's configuration?",
        )
    return manifest_from_file(path)


def flake_eval_argv(flake: str, *, nix: str = "nix") -> list[str]:
    """``nix eval --json FLAKE#nixosConfigurations.NAME.<manifest attr>`` for ``.#NAME``."""
    if "#" not in flake:
        raise UsageError(f"--flake {flake!r} has no '#NAME'", hint="e.g. --flake .#web1")
    ref, _, name = flake.partition("#")
    if not name or any(c in name for c in " \"'\\"):
        raise UsageError(f"--flake {flake!r} does not name a configuration")
    attr = f"nixosConfigurations.{json.dumps(name)}.{FLAKE_MANIFEST_ATTR}"
    return [
        nix,
        "--extra-experimental-features",
        "nix-command flakes",
        "eval",
        "--json",
        f"{ref or '.'}#{attr}",
    ]


def manifest_from_flake(flake: str, *, nix: str = "nix") -> ManifestSource:
    argv = flake_eval_argv(flake, nix=nix)
    result = ssh.run(argv, timeout=600)
    if result.returncode != 0:
        last = result.stderr_text.splitlines()[-1] if result.stderr_text else "no output"
        raise ExternalError(f"nix eval of {flake} failed: {last}")
    return ManifestSource(result.stdout, f"{flake} (nix eval)", None)


def load_manifest(source: ManifestSource) -> Manifest:
    from aux_secrets.core.manifest import parse_manifest

    return parse_manifest(source.data, filename=source.label)


def manifest_for_host(
    host: Host,
    vault_root: Path,
    *,
    manifest: Path | None = None,
    system: Path | None = None,
    flake: str | None = None,
) -> ManifestSource:
    """The command line's choice, else the host entry's ``manifest``/``system``/``flake``."""
    given = [x for x in (manifest, system, flake) if x is not None]
    if len(given) > 1:
        raise UsageError("pass only one of --manifest, --system and --flake")
    if manifest is not None:
        return manifest_from_file(manifest)
    if system is not None:
        return manifest_from_system(system)
    if flake is not None:
        return manifest_from_flake(flake)
    if host.manifest:
        return manifest_from_file(vault_root / host.manifest)
    if host.system:
        return manifest_from_system(vault_root / host.system)
    if host.flake:
        return manifest_from_flake(host.flake)
    raise UsageError(
        f"no manifest for host {host.name}",
        hint=f"pass --manifest FILE, --system PATH or --flake .#{host.name}",
    )
