"""Provisioning: manifest -> bundle payload -> age file -> host -> the host's report.

The operator's side of the data flow in docs/spec/provision.md:

- :func:`make_bundle` resolves what a manifest asks for (through
  :mod:`aux_secrets.workflows.resolve`), stamps host, serial, time, bundle id and the
  host's fingerprint key, and seals it to the host's recipient;
- :func:`deliver` streams that file to ``aux-secrets activate --bundle -`` and
  then ``aux-secrets install`` on the host, over ssh or as a local process;
- :func:`run_fleet` does a job for many hosts with bounded concurrency, one
  failure never stopping the others;
- :func:`verify_fingerprints` compares what a host reports with the vault.

Values only ever travel inside the sealed bundle on a process's stdin.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aux_secrets.adapters import ssh
from aux_secrets.adapters.hosts import Host, HostDir
from aux_secrets.errors import (
    AuxError,
    ExternalError,
    NotFoundError,
    UnreachableError,
    UsageError,
)

if TYPE_CHECKING:
    from aux_secrets.adapters.vault import Vault
    from aux_secrets.core.bundle import BundlePayload, BundleSecret
    from aux_secrets.core.keystream import Scheme
    from aux_secrets.core.manifest import Manifest

SYSTEM_MANIFEST = "etc/aux-secrets/manifest.json"
MANIFEST_LIMIT = 16 * 1024 * 1024
# The flake attribute under nixosConfigurations.NAME that holds the manifest (modules/).
FLAKE_MANIFEST_ATTR = "config.aux.manifest"
FINGERPRINT_REALM = "aux-secrets/host/{host}/fingerprint-key/v1"

T = TypeVar("T")


# --------------------------------------------------------------------------- manifests


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


# --------------------------------------------------------------------------- bundles


@dataclass(frozen=True)
class Bundle:
    host: str
    serial: int
    bundle_id: str
    created: datetime
    secrets: int
    data: bytes = field(repr=False)


def fingerprint_key(scheme: Scheme, host: str) -> bytes:
    """The host's fingerprint key: derived from the vault, so verify can recompute it."""
    return scheme.stream(FINGERPRINT_REALM.format(host=host), "raw").read(32)


def resolve_secrets(
    vault: Vault, scheme: Scheme, manifest: Manifest, at: datetime
) -> dict[str, BundleSecret]:
    """Every secret the manifest names, with its slots, as bundle entries."""
    from aux_secrets.workflows.resolve import bundle_secrets

    return bundle_secrets(vault, scheme, manifest, at)


def build_payload(
    vault: Vault,
    scheme: Scheme,
    manifest: Manifest,
    host: str,
    *,
    serial: int,
    at: datetime,
    bundle_id: str,
) -> BundlePayload:
    from aux_secrets.core.bundle import BundlePayload

    return BundlePayload(
        host=host,
        serial=serial,
        created=at,
        bundle_id=bundle_id,
        fingerprint_key=fingerprint_key(scheme, host),
        secrets=resolve_secrets(vault, scheme, manifest, at),
        manifest=manifest,
    )


def check_manifest_host(manifest: Manifest, host: str, label: str) -> None:
    if manifest.host and manifest.host != host:
        raise UsageError(
            f"manifest {label} is for host {manifest.host!r}, not {host!r}",
            hint=f"pass --host {manifest.host}, or the manifest of {host}",
        )


def make_bundle(
    vault: Vault,
    scheme: Scheme,
    host: Host,
    manifest: Manifest,
    *,
    at: datetime | None = None,
    label: str = "manifest",
) -> Bundle:
    """Resolve, stamp with a serial that only grows (recorded in the vault), sign with
    the vault's bundle signer (docs/spec/bundle.md section 2), and seal to the host."""
    from aux_secrets.adapters.bundle_age import seal_bundle
    from aux_secrets.core.bundle import encode_payload
    from aux_secrets.core.bundle_sign import sign_payload, signer_seed

    check_manifest_host(manifest, host.name, label)
    at = (at or datetime.now(UTC)).replace(microsecond=0)
    hosts = HostDir(vault.hosts_dir)
    # Resolve before reserving a serial: a vault error then burns no serial.
    secrets = resolve_secrets(vault, scheme, manifest, at)
    serial = hosts.next_serial(host.name, int(at.timestamp()))
    bundle_id = os.urandom(16).hex()
    from aux_secrets.core.bundle import BundlePayload

    payload = BundlePayload(
        host=host.name,
        serial=serial,
        created=at,
        bundle_id=bundle_id,
        fingerprint_key=fingerprint_key(scheme, host.name),
        secrets=secrets,
        manifest=manifest,  # a host without a manifest yet installs with this one
    )
    sealed = seal_bundle(
        sign_payload(signer_seed(scheme), encode_payload(payload)), [host.recipient]
    )
    return Bundle(host.name, serial, bundle_id, at, len(secrets), sealed)


# --------------------------------------------------------------------------- delivery


@dataclass(frozen=True)
class Route:
    """How to reach a host: over ssh to ``target`` or, with ``local``, this machine."""

    local: bool = False
    target: str | None = None
    ssh_options: tuple[str, ...] = ()
    use_sudo: bool = False
    remote_command: str = "aux-secrets"
    root: str | None = None
    manifest: str | None = None  # manifest path as the host sees it (None: the host's default)
    host_name: str | None = None  # passed to activate as --host (a host with no manifest yet)
    allow_downgrade: bool = False  # activate --allow-downgrade: older store versions on purpose

    @classmethod
    def for_host(
        cls,
        host: Host,
        *,
        local: bool = False,
        target: str | None = None,
        ssh_options: Sequence[str] = (),
        use_sudo: bool | None = None,
        remote_command: str | None = None,
        root: str | None = None,
        manifest: str | None = None,
    ) -> Route:
        """Command-line values over the host entry's; explicit ssh options come first."""
        return cls(
            local=local,
            target=target or host.target,
            ssh_options=(*ssh_options, *host.ssh_options),
            use_sudo=host.use_sudo if use_sudo is None else use_sudo,
            remote_command=remote_command or host.remote_command,
            root=root if root is not None else host.remote_root,
            manifest=manifest if manifest is not None else host.remote_manifest,
            # A host with no manifest yet (its first deployment) still knows who it is.
            host_name=host.name,
        )

    @property
    def where(self) -> str:
        return "local" if self.local else (self.target or "?")


def host_commands(route: Route, steps: Sequence[str]) -> list[list[str]]:
    """The argv of each step (``activate``, ``install``, ``status``) as run on the host."""
    if route.local:
        base = ssh.self_command()
    else:
        try:
            base = shlex.split(route.remote_command)
        except ValueError:
            raise UsageError(f"remote command {route.remote_command!r} is not valid") from None
        if not base:
            raise UsageError("remote command is empty")
    if route.use_sudo:
        base = ["sudo", "-n", *base]
    common: list[str] = []
    if route.root is not None:
        common += ["--root", route.root]
    if route.manifest is not None:
        common += ["--manifest", route.manifest]
    out: list[list[str]] = []
    for step in steps:
        if step == "activate":
            named = ["--host", route.host_name] if route.host_name else []
            if route.allow_downgrade:
                named.append("--allow-downgrade")
            out.append([*base, "activate", "--bundle", "-", "--json", *named, *common])
        elif step == "install":
            out.append([*base, "install", "--json", *common])
        elif step == "status":
            out.append([*base, "status", "--json", *common])
        else:
            raise ValueError(step)
    return out


def remote_line(commands: Sequence[Sequence[str]]) -> str:
    """One shell line for the host: each command quoted, joined by ``&&``."""
    return " && ".join(shlex.join(c) for c in commands)


def run_on_host(
    route: Route, steps: Sequence[str], stdin: bytes, timeout: float
) -> ssh.CommandResult:
    commands = host_commands(route, steps)
    if route.local:
        combined: ssh.CommandResult | None = None
        out, err = b"", b""
        data = stdin
        for argv in commands:
            combined = ssh.run(argv, stdin=data, timeout=timeout, env=_child_env())
            data = b""
            out += combined.stdout
            err += combined.stderr
            if combined.returncode != 0:
                break
        assert combined is not None
        return ssh.CommandResult(combined.returncode, out, err)
    if not route.target:
        raise UsageError(
            "no target to reach the host",
            hint="pass --target-host USER@ADDR, store one with 'host add --target', or use --local",
        )
    return ssh.run_remote(
        route.target,
        remote_line(commands),
        stdin=stdin,
        options=route.ssh_options,
        timeout=timeout,
    )


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The local host-side run must not pick up the operator's vault settings.
    for key in ("AUX_SECRETS_PASSWORD_FILE", "AUX_SECRETS_PASSWORD_COMMAND"):
        env.pop(key, None)
    return env


@dataclass(frozen=True)
class HostReport:
    """What one provision did on one host (names and units only, never a value)."""

    host: str
    where: str
    serial: int
    bundle_id: str
    secrets: int
    store_changed: tuple[str, ...] = ()  # secrets whose value the local store took in
    changed: tuple[str, ...] = ()  # installed files that changed, appeared or went
    restarted: tuple[str, ...] = ()
    reloaded: tuple[str, ...] = ()
    no_change: bool = False
    generation: int | None = None
    output: str = ""  # the host's stderr (warnings)
    delivered: bool = False  # handed to a copy, command or publish transport: the host takes it in

    def summary(self) -> str:
        if self.delivered:
            return f"serial {self.serial}: delivered to {self.where}"
        if self.no_change:
            return f"serial {self.serial}: no change"
        parts = [f"serial {self.serial}: {len(self.changed)} changed"]
        if self.restarted:
            parts.append("restarted " + ", ".join(self.restarted))
        if self.reloaded:
            parts.append("reloaded " + ", ".join(self.reloaded))
        return "; ".join(parts)


def parse_host_output(stdout: bytes) -> list[dict[str, Any]]:
    """The JSON objects that ``activate --json`` and ``install --json`` print, in order."""
    text = stdout.decode("utf-8", "replace")
    decoder = json.JSONDecoder()
    docs: list[dict[str, Any]] = []
    pos = 0
    while True:
        start = text.find("{", pos)
        if start < 0:
            break
        try:
            doc, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            pos = start + 1
            continue
        pos = end
        if isinstance(doc, dict):
            docs.append(doc)
    return docs


def _names(value: object) -> tuple[str, ...]:
    """Names from a list of strings or of ``{"name": ...}`` objects."""
    if not isinstance(value, list | tuple):
        return ()
    out: list[str] = []
    for item in value:
        name = item.get("name") if isinstance(item, dict) else item
        if isinstance(name, str) and name not in out:
            out.append(name)
    return tuple(out)


def report_from_output(bundle: Bundle, where: str, stdout: bytes, stderr: bytes) -> HostReport:
    activated: dict[str, Any] = {}
    installed: dict[str, Any] = {}
    for doc in parse_host_output(stdout):
        if "bundleId" in doc and "previousSerial" in doc:
            activated = doc
        elif "generation" in doc:
            installed = doc
    return host_report(bundle, where, activated, installed, stderr.decode("utf-8", "replace"))


def host_report(
    bundle: Bundle,
    where: str,
    activated: Mapping[str, Any],
    installed: Mapping[str, Any],
    output: str,
) -> HostReport:
    """The report from the ``activate --json`` and ``install --json`` documents."""
    files = _names(installed.get("changed")) + _names(installed.get("appeared"))
    removed = _names(installed.get("removed"))
    restarted = _names(installed.get("tryRestart"))
    reloaded = _names(installed.get("tryReloadOrRestart"))
    return HostReport(
        host=bundle.host,
        where=where,
        serial=bundle.serial,
        bundle_id=bundle.bundle_id,
        secrets=bundle.secrets,
        store_changed=_names(activated.get("changed")),
        changed=files + tuple(n for n in removed if n not in files),
        restarted=restarted,
        reloaded=reloaded,
        no_change=not files and not removed and not restarted and not reloaded,
        generation=installed.get("generation")
        if isinstance(installed.get("generation"), int)
        else None,
        output=output.strip(),
    )


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


# ssh's own chatter on stderr, which says nothing about why the host side failed.
SSH_NOISE = (
    "Warning: Permanently added",
    "Pseudo-terminal will not be allocated",
    "** WARNING: connection is not using a post-quantum",
    "** This session may be vulnerable",
    "** The server may need to be upgraded",
)
HOST_ERROR_LINES = 3


def _printable(text: str) -> str:
    """A host's bytes never reach our terminal as control sequences."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def host_error(result: ssh.CommandResult) -> str:
    """The host's real error: its last ``aux-secrets: error:`` line, else the last few
    meaningful stderr lines (a traceback's exception, a shell's complaint), in one line."""
    lines = [
        _printable(line.strip())
        for line in result.stderr_text.splitlines()
        if line.strip() and not line.lstrip().startswith(SSH_NOISE)
    ]
    errors = [line for line in lines if ": error: " in line]
    if errors:
        return errors[-1].split(": error: ", 1)[1]
    if not lines:
        return f"exit status {result.returncode}"
    return " | ".join(lines[-HOST_ERROR_LINES:])


def host_hint(result: ssh.CommandResult) -> str | None:
    """The host's own ``aux-secrets: hint:`` line, if it printed one."""
    for line in result.stderr_text.splitlines():
        if line.startswith("aux-secrets: hint: "):
            return line.split(": hint: ", 1)[1]
    return None


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


# --------------------------------------------------------------------------- fleets


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """One host's result in a fleet run: a value, or the one-line error and its hint."""

    host: str
    value: T | None = None
    error: str | None = None
    hint: str | None = None
    seconds: float = 0.0
    unreachable: bool = False  # the host could not be reached at all (not a host failure)

    @property
    def ok(self) -> bool:
        return self.error is None


def run_fleet(
    names: Sequence[str],
    job: Callable[[str], T],
    *,
    jobs: int = 4,
    on_start: Callable[[str], None] | None = None,
    on_done: Callable[[Outcome[T]], None] | None = None,
) -> list[Outcome[T]]:
    """Run ``job(name)`` for every host, at most ``jobs`` at once; results in ``names`` order.

    A job that raises is that host's failure and nothing more: the others run on.
    """
    if jobs < 1:
        raise UsageError("-j must be at least 1")

    def one(name: str) -> Outcome[T]:
        if on_start is not None:
            on_start(name)
        started = time.monotonic()
        try:
            value = job(name)
            outcome: Outcome[T] = Outcome(name, value=value)
        except AuxError as exc:
            gone = isinstance(exc, UnreachableError)
            outcome = Outcome(name, error=exc.message, hint=exc.hint, unreachable=gone)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            outcome = Outcome(name, error=f"{exc.strerror or type(exc).__name__}{where}")
        except Exception as exc:  # a bug on one host must not stop the fleet
            outcome = Outcome(name, error=f"internal error ({type(exc).__name__})")
        outcome = Outcome(
            outcome.host,
            outcome.value,
            outcome.error,
            outcome.hint,
            time.monotonic() - started,
            outcome.unreachable,
        )
        if on_done is not None:
            on_done(outcome)
        return outcome

    if not names:
        return []
    with ThreadPoolExecutor(max_workers=min(jobs, len(names))) as pool:
        return list(pool.map(one, names))
