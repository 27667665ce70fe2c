"""Provisioning: manifest -> bundle payload -> age file -> host -> the host's report.

The operator's side of the data flow in docs/spec/provision.md. This module joins
the steps; each step lives in its own module and is re-exported here:

- :mod:`aux_secrets.workflows.manifest_source`: where the manifest comes from;
- :mod:`aux_secrets.workflows.bundles`: :func:`make_bundle` resolves, stamps, signs
  and seals to the host's recipient;
- :mod:`aux_secrets.workflows.route`: how to reach the host and run its steps;
- :mod:`aux_secrets.workflows.host_report`: what the host says back;
- :mod:`aux_secrets.workflows.fleet`: :func:`run_fleet` does a job for many hosts
  with bounded concurrency, one failure never stopping the others.

:func:`deliver` streams the sealed file to ``aux-secrets activate --bundle -`` and
then ``aux-secrets install`` on the host, over ssh or as a local process.
Values only ever travel inside the sealed bundle on a process's stdin.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from aux_secrets.adapters.hosts import Host, HostDir
from aux_secrets.errors import AuxError, ExternalError
from aux_secrets.workflows.bundles import FINGERPRINT_REALM as FINGERPRINT_REALM
from aux_secrets.workflows.bundles import Bundle as Bundle
from aux_secrets.workflows.bundles import build_payload as build_payload
from aux_secrets.workflows.bundles import check_manifest_host as check_manifest_host
from aux_secrets.workflows.bundles import fingerprint_key as fingerprint_key
from aux_secrets.workflows.bundles import make_bundle as make_bundle
from aux_secrets.workflows.bundles import resolve_secrets as resolve_secrets
from aux_secrets.workflows.fleet import Outcome as Outcome
from aux_secrets.workflows.fleet import run_fleet as run_fleet
from aux_secrets.workflows.host_report import HOST_ERROR_LINES as HOST_ERROR_LINES
from aux_secrets.workflows.host_report import SSH_NOISE as SSH_NOISE
from aux_secrets.workflows.host_report import HostReport as HostReport
from aux_secrets.workflows.host_report import host_error as host_error
from aux_secrets.workflows.host_report import host_hint as host_hint
from aux_secrets.workflows.host_report import host_report as host_report
from aux_secrets.workflows.host_report import parse_host_output as parse_host_output
from aux_secrets.workflows.host_report import report_from_output as report_from_output
from aux_secrets.workflows.manifest_source import FLAKE_MANIFEST_ATTR as FLAKE_MANIFEST_ATTR
from aux_secrets.workflows.manifest_source import MANIFEST_LIMIT as MANIFEST_LIMIT
from aux_secrets.workflows.manifest_source import SYSTEM_MANIFEST as SYSTEM_MANIFEST
from aux_secrets.workflows.manifest_source import ManifestSource as ManifestSource
from aux_secrets.workflows.manifest_source import flake_eval_argv as flake_eval_argv
from aux_secrets.workflows.manifest_source import load_manifest as load_manifest
from aux_secrets.workflows.manifest_source import manifest_for_host as manifest_for_host
from aux_secrets.workflows.manifest_source import manifest_from_file as manifest_from_file
from aux_secrets.workflows.manifest_source import manifest_from_flake as manifest_from_flake
from aux_secrets.workflows.manifest_source import manifest_from_system as manifest_from_system
from aux_secrets.workflows.route import Route as Route
from aux_secrets.workflows.route import host_commands as host_commands
from aux_secrets.workflows.route import remote_line as remote_line
from aux_secrets.workflows.route import run_on_host as run_on_host

if TYPE_CHECKING:
    from aux_secrets.adapters.vault import Vault
    from aux_secrets.core.keystream import Scheme


def deliver(bundle: Bundle, route: Route, *, timeout: float = 300.0) -> HostReport:
    """Stream the sealed bundle to activate, then run install; the host's failure raises.
    On this machine without sudo, both steps run in this process (local_host)."""
    if route.local and not route.use_sudo:
        here = _deliver_here(bundle, route)
        if here is not None:
            return here
    result = run_on_host(route, ["activate", "install"], bundle.data, timeout)
    if result.returncode != 0:
        raise ExternalError(
            f"host {bundle.host} ({route.where}): {host_error(result)}", hint=host_hint(result)
        )
    return report_from_output(bundle, route.where, result.stdout, result.stderr)


def _deliver_here(bundle: Bundle, route: Route) -> HostReport | None:
    from aux_secrets.workflows.local_host import activate_and_install

    try:
        run = activate_and_install(
            bundle.data,
            root=route.root,
            manifest=route.manifest,
            allow_downgrade=route.allow_downgrade,
        )
    except AuxError as exc:
        where = f"host {bundle.host} ({route.where})"
        raise ExternalError(f"{where}: {exc.message}", hint=exc.hint) from None
    except OSError as exc:  # as the CLI says it: paths and errno text, never a value
        path = f": {exc.filename}" if exc.filename else ""
        raise ExternalError(
            f"host {bundle.host} ({route.where}): {exc.strerror or exc}{path}"
        ) from None
    if run is None:
        return None  # no manifest of its own: the host commands install the carried one
    output = "".join(f"aux-secrets: warning: {w}\n" for w in run.warnings)
    return host_report(bundle, route.where, run.activated, run.installed, output)


def provision_host(
    vault: Vault,
    scheme: Scheme,
    host: Host,
    source: ManifestSource,
    route: Route,
    *,
    at: datetime | None = None,
    timeout: float = 300.0,
) -> HostReport:
    manifest = load_manifest(source)
    bundle = make_bundle(vault, scheme, host, manifest, at=at, label=source.label)
    return deliver(bundle, route, timeout=timeout)


def provision_local(
    vault: Vault,
    scheme: Scheme,
    host: str | Host,
    manifest: Path,
    root: Path,
    *,
    at: datetime | None = None,
) -> HostReport:
    """The ``--local`` path for one host into ``root`` (what the README demo calls)."""
    entry = host if isinstance(host, Host) else HostDir(vault.hosts_dir).read(host)
    route = Route(local=True, root=str(root), manifest=str(manifest))
    return provision_host(vault, scheme, entry, manifest_from_file(manifest), route, at=at)
