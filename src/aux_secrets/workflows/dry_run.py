"""``provision --dry-run``: what provisioning would change on a host, delivering nothing.

The host's ``status --json`` (keyed fingerprints; no value leaves it) is compared with
what the vault would send now, as ``verify`` does. Each secret that is not ``ok`` would
change; the units of those secrets, and of the templates that use them, would be
restarted or reloaded (a unit that would be both is restarted, as the installer does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from aux_secrets.workflows.manifest_source import ManifestSource, load_manifest
from aux_secrets.workflows.route import Route
from aux_secrets.workflows.verify import Drift, verify_host

if TYPE_CHECKING:
    from aux_secrets.adapters import ssh
    from aux_secrets.adapters.hosts import Host
    from aux_secrets.adapters.vault import Vault
    from aux_secrets.core.keystream import Scheme
    from aux_secrets.core.manifest import Manifest

ACTIONS = {"missing": "add", "stale": "update", "changed": "reinstall", "unexpected": "remove"}


@dataclass(frozen=True)
class Change:
    secret: str
    action: str  # add, update, reinstall, remove
    verdict: str
    detail: str


@dataclass(frozen=True)
class DryRun:
    host: str
    where: str
    total: int
    changes: tuple[Change, ...]
    templates: tuple[str, ...]
    restart: tuple[str, ...]
    reload: tuple[str, ...]

    @property
    def no_change(self) -> bool:
        return not self.changes

    def summary(self) -> str:
        if self.no_change:
            return f"no change ({self.total} secrets match)"
        units = len(self.restart) + len(self.reload)
        plural = "" if units == 1 else "s"
        return f"{len(self.changes)} of {self.total} secrets would change, {units} unit{plural}"


def plan_units(
    manifest: Manifest, changed: set[str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(templates re-rendered, units restarted, units reloaded) when ``changed`` change."""
    restart: set[str] = set()
    reload: set[str] = set()
    for name in changed:
        spec = manifest.secrets.get(name)
        if spec is not None:
            restart.update(spec.restart_units)
            reload.update(spec.reload_units)
    templates = []
    for name, template in manifest.templates.items():
        if any(ref in changed for ref, _field in template.references):
            templates.append(name)
            restart.update(template.restart_units)
            reload.update(template.reload_units)
    return tuple(sorted(templates)), tuple(sorted(restart)), tuple(sorted(reload - restart))


def dry_run_host(
    vault: Vault,
    scheme: Scheme,
    host: Host,
    source: ManifestSource,
    route: Route,
    *,
    at: datetime | None = None,
    status: Callable[[], ssh.CommandResult] | None = None,
    where: str | None = None,
) -> DryRun:
    manifest = load_manifest(source)
    drifts: list[Drift] = verify_host(
        vault, scheme, host, source, route, at=at, status=status, where=where
    )
    changes = tuple(
        Change(d.secret, ACTIONS.get(d.verdict, d.verdict), d.verdict, d.detail)
        for d in drifts
        if d.verdict != "ok"
    )
    templates, restart, reload = plan_units(manifest, {c.secret for c in changes})
    return DryRun(
        host=host.name,
        where=where or route.where,
        total=len(manifest.secrets),
        changes=changes,
        templates=templates,
        restart=restart,
        reload=reload,
    )
