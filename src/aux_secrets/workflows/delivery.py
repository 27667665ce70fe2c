"""Deliver a made bundle over the host's transport; ask a host for its status the same way.

The transport comes from the host file's ``[transport]``, else vault.toml's, else ssh
(:func:`aux_secrets.adapters.transport.transport_for`). What the operator says on the
command line wins: ``--local`` and ``--target-host`` mean ssh (or this machine), and
``--publish DIR`` means that publish directory.

- ssh: :func:`aux_secrets.workflows.provision.deliver` (activate and install over ssh);
- command: the program gets the bundle; if its stdout carries what ``activate --json``
  and ``install --json`` print, the report comes from it, else it reads "delivered";
- copy: each destination gets the bundle; the host takes it in on its own;
- publish: the bundle goes into the publish directory; the host pulls it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from aux_secrets.adapters import ssh
from aux_secrets.adapters.transport import Parcel, run_command, run_copy, run_status, transport_for
from aux_secrets.core.transport import (
    CommandTransport,
    CopyTransport,
    PublishTransport,
    SshTransport,
    Transport,
    describe,
)
from aux_secrets.errors import ExternalError, UsageError
from aux_secrets.workflows import provision

if TYPE_CHECKING:
    from aux_secrets.adapters.hosts import Host
    from aux_secrets.adapters.publish import Publisher
    from aux_secrets.adapters.vault import Vault
    from aux_secrets.workflows.provision import Bundle, HostReport, Route


class Publishers:
    """One :class:`Publisher` per publish directory in a run; each index written once."""

    def __init__(self) -> None:
        self._open: dict[Path, Publisher] = {}
        self._mutex = threading.Lock()

    def get(self, directory: Path) -> Publisher:
        from aux_secrets.adapters.publish import Publisher

        key = directory.absolute()
        with self._mutex:
            if key not in self._open:
                self._open[key] = Publisher(key)
            return self._open[key]

    def close(self) -> list[Path]:
        with self._mutex:
            return [publisher.close() for publisher in self._open.values()]


def choose(
    vault: Vault,
    host: Host,
    *,
    local: bool = False,
    target_host: str | None = None,
    publish: Path | None = None,
) -> Transport:
    """The transport for this run: the command line's choice, else the host's."""
    if publish is not None:
        if local or target_host:
            raise UsageError("--publish writes a directory; drop --local and --target-host")
        return PublishTransport(str(publish))
    if local or target_host:
        return SshTransport()
    return transport_for(vault, host)


def publish_dir(vault: Vault, transport: PublishTransport) -> Path:
    path = Path(transport.directory).expanduser()
    return path if path.is_absolute() else vault.root / path


def check_publish_dir(vault: Vault, transport: Transport) -> None:
    """Check a publish transport's index before a bundle is made (nothing is created):
    a damaged index then fails the run before a serial is recorded for nothing."""
    if isinstance(transport, PublishTransport):
        from aux_secrets.adapters.publish import read_index

        read_index(publish_dir(vault, transport))


def parcel(bundle: Bundle, route: Route) -> Parcel:
    return Parcel(bundle.host, route.target, route.ssh_options, bundle.data, bundle.serial)


def deliver(
    vault: Vault,
    transport: Transport,
    bundle: Bundle,
    route: Route,
    *,
    publishers: Publishers,
    steps: tuple[str, ...] = ("activate", "install"),
    timeout: float = 300.0,
) -> HostReport:
    """Hand ``bundle`` to ``transport``; a failed delivery raises one line naming the host."""
    if isinstance(transport, SshTransport):
        if steps == ("activate", "install"):
            return provision.deliver(bundle, route, timeout=timeout)
        result = provision.run_on_host(route, list(steps), bundle.data, timeout)
        if result.returncode != 0:
            raise ExternalError(
                f"host {bundle.host} ({route.where}): {provision.host_error(result)}",
                hint=provision.host_hint(result),
            )
        return provision.report_from_output(bundle, route.where, result.stdout, result.stderr)
    where = describe(transport)
    if isinstance(transport, CommandTransport):
        result = run_command(transport, parcel(bundle, route))
        if result.returncode != 0:
            raise ExternalError(
                f"host {bundle.host} ({where}): {provision.host_error(result)}",
                hint=provision.host_hint(result),
            )
        report = provision.report_from_output(bundle, where, result.stdout, result.stderr)
        took = any("previousSerial" in doc for doc in provision.parse_host_output(result.stdout))
        return report if took else _delivered(report)
    if isinstance(transport, CopyTransport):
        done = run_copy(transport, parcel(bundle, route))
        return _delivered(provision.report_from_output(bundle, ", ".join(done), b"", b""))
    publisher = publishers.get(publish_dir(vault, transport))
    made = publisher.put(bundle.host, bundle.data, serial=bundle.serial, created=bundle.created)
    return _delivered(provision.report_from_output(bundle, str(made.path), b"", b""))


def _delivered(report: HostReport) -> HostReport:
    return replace(report, delivered=True, no_change=False)


def status_runner(
    transport: Transport, route: Route, host: str, *, timeout: float = 120.0
) -> Callable[[], ssh.CommandResult]:
    """How ``verify`` asks this host for ``status --json`` over its transport."""
    if isinstance(transport, SshTransport):
        return lambda: provision.run_on_host(route, ["status"], b"", timeout)
    if isinstance(transport, CommandTransport) and transport.status is not None:
        status = transport
        return lambda: run_status(status, Parcel(host, route.target, route.ssh_options, b"", 0))
    raise UsageError(
        f"host {host}'s transport ({describe(transport)}) cannot ask the host for its status",
        hint="give the command transport a 'status' argv, or verify with --target-host",
    )
