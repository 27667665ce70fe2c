"""``provision --local``: the host's ``activate`` and ``install`` steps in this process.

Over ssh the host runs two commands; on this machine the same two steps run here, with
the payload ``activate`` decoded handed to ``install``: it is decoded (and its canonical
form checked) once and the host's manifest parsed once, where two host processes did
each twice and paid two interpreter start-ups. What the steps do and report is what
``aux-secrets activate --json`` and ``aux-secrets install --json`` do and print
(cli/hostside.py); a host without a manifest of its own (which installs with the one
the bundle carries) and a route through sudo still run them as processes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class LocalRun:
    """What the two steps report, in the shape of their ``--json`` documents."""

    activated: dict[str, Any]
    installed: dict[str, Any]
    warnings: tuple[str, ...]


def activate_and_install(
    bundle: bytes, *, root: str | None, manifest: str | None, allow_downgrade: bool = False
) -> LocalRun | None:
    """Activate ``bundle`` into the local store under ``root`` and install from it, as
    ``aux-secrets activate --bundle - && aux-secrets install`` would. None, having done
    nothing, when the host has no manifest of its own. Raises the first step's error; an
    install with missing items raises after installing the others."""
    from aux_secrets.adapters.carried import Loaded, other_manifest_warning
    from aux_secrets.adapters.hostroot import (
        load_manifest,
        manifest_path,
        missing_error,
        open_store,
        resolve_root,
    )
    from aux_secrets.adapters.installer import install, report_json, report_warnings
    from aux_secrets.adapters.systemctl import Systemctl

    root_dir = resolve_root(Path(root) if root is not None else None)
    given = Path(manifest) if manifest is not None else None
    parsed = load_manifest(given, root_dir, required=False)
    if parsed is None:
        return None
    store = open_store(parsed, root_dir)
    result = store.activate(bundle, parsed.host, manifest=parsed, allow_downgrade=allow_downgrade)
    assert result.payload is not None
    now = datetime.now(UTC)
    report = install(
        parsed,
        Loaded(result.payload),
        root=root_dir,
        at=now,
        requester=Systemctl(parsed.settings.systemctl),
        audit=store.audit,
        credentials=store,
    )
    warnings = [*result.warnings, *report.warnings, *report_warnings(report, now)]
    path = manifest_path(given, root_dir)[0]
    other = other_manifest_warning(result.payload, parsed, path)
    if other is not None:
        warnings.append(other)
    missing = missing_error(report, parsed.host)
    if missing is not None:
        raise missing
    installed = report_json(report)
    installed["manifest"] = {"path": str(path), "carried": False}
    return LocalRun(
        activated={"changed": list(result.changed), "removed": list(result.removed)},
        installed=installed,
        warnings=tuple(warnings),
    )
