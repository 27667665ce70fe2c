"""Run a host's transport: a command with the bundle on stdin, or a copy list.

The model is :mod:`aux_secrets.core.transport`. A bundle handed to a transport is
also written, for the command's lifetime only, to ``{bundle}``: a 0600 file named
``HOST.age`` in a private temporary directory, removed afterwards. Programs get
public things only (host name, target, that path, ssh options): the values stay
inside the sealed bundle.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aux_secrets.adapters import ssh
from aux_secrets.adapters.fs import atomic_write
from aux_secrets.core.transport import (
    CommandTransport,
    CopyTransport,
    SshTransport,
    Transport,
    expand,
    expand_argv,
    is_remote,
    parse_transport,
)
from aux_secrets.errors import ExternalError, InputError, NotFoundError

if TYPE_CHECKING:
    from aux_secrets.adapters.hosts import Host
    from aux_secrets.adapters.vault import Vault

SCRIPT_NAME = "aux-secrets-transport"  # $0 of a transport script
# The operator's unlock settings are never handed to a transport program.
_DROPPED_ENV = ("AUX_SECRETS_PASSWORD_FILE", "AUX_SECRETS_PASSWORD_COMMAND")


@dataclass(frozen=True)
class Parcel:
    """One host's sealed bundle and what a transport may know about the host."""

    host: str
    target: str | None
    ssh_options: tuple[str, ...]
    data: bytes
    serial: int


def transport_for(vault: Vault, host: Host) -> Transport:
    """The host file's ``[transport]``, else vault.toml's, else ssh."""
    if host.transport is not None:
        return host.transport
    table = vault.section("transport")
    if not table:
        return SshTransport()
    return parse_transport(table, f"{vault.toml_path} [transport]")


@contextlib.contextmanager
def bundle_file(parcel: Parcel) -> Iterator[Path]:
    """``HOST.age`` (0600) in a fresh 0700 directory, removed when the block ends."""
    directory = Path(tempfile.mkdtemp(prefix="aux-secrets-transport."))
    path = directory / f"{parcel.host}.age"
    try:
        atomic_write(path, parcel.data, mode=0o600)
        yield path
    finally:
        path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            directory.rmdir()


def _values(parcel: Parcel, bundle: Path) -> dict[str, str | None]:
    return {"host": parcel.host, "target": parcel.target, "bundle": str(bundle)}


def program_env(parcel: Parcel, bundle: Path) -> dict[str, str]:
    """The caller's environment without unlock settings, plus the host's public facts."""
    env = {k: v for k, v in os.environ.items() if k not in _DROPPED_ENV}
    env["AUX_SECRETS_HOST"] = parcel.host
    env["AUX_SECRETS_BUNDLE"] = str(bundle)
    env["AUX_SECRETS_SERIAL"] = str(parcel.serial)
    env["AUX_SECRETS_SSH_OPTIONS"] = shlex.join(_dash_o(parcel.ssh_options))
    if parcel.target is not None:
        env["AUX_SECRETS_TARGET"] = parcel.target
    else:
        env.pop("AUX_SECRETS_TARGET", None)
    return env


def _dash_o(options: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for option in options:
        out += ["-o", option]
    return out


def run_command(transport: CommandTransport, parcel: Parcel) -> ssh.CommandResult:
    """Run the command with the bundle on stdin; its exit status and output as they are."""
    with bundle_file(parcel) as bundle:
        env = program_env(parcel, bundle)
        if transport.argv is not None:
            argv = expand_argv(transport.argv, _values(parcel, bundle), "transport command")
        else:
            assert transport.script is not None
            argv = ["/bin/sh", "-c", transport.script, SCRIPT_NAME, parcel.host]
            argv += [parcel.target or "", str(bundle)]
        return ssh.run(argv, stdin=parcel.data, timeout=transport.timeout, env=env)


def run_status(transport: CommandTransport, parcel: Parcel) -> ssh.CommandResult:
    """The ``status`` argv (it prints the host's ``status --json``); stdin is empty."""
    assert transport.status is not None
    with bundle_file(parcel) as bundle:
        argv = expand_argv(transport.status, _values(parcel, bundle), "transport status")
        return ssh.run(argv, timeout=transport.timeout, env=program_env(parcel, bundle))


def copy_argv(
    transport: CopyTransport, parcel: Parcel, source: Path, destination: str
) -> list[str]:
    """scp with the host's ssh options (as ssh gets them), or the given program prefix;
    the source and destination are appended."""
    if transport.program is not None:
        prefix = expand_argv(transport.program, _values(parcel, source), "copy program")
    else:
        prefix = ["scp", "-q", *_dash_o(parcel.ssh_options), *ssh.nix_sshopts()]
        prefix += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={ssh.CONNECT_TIMEOUT}"]
    return [*prefix, str(source), destination]


def run_copy(transport: CopyTransport, parcel: Parcel) -> list[str]:
    """Copy the bundle to every destination in order; the first failure raises.

    A local destination is written atomically (0600; a directory receives ``HOST.age``);
    a remote one goes through the copy program.
    """
    done: list[str] = []
    with bundle_file(parcel) as bundle:
        values = _values(parcel, bundle)
        for index, pair in enumerate(transport.pairs):
            destination = expand(pair.destination, values, f"copy[{index}] destination")
            if is_remote(destination):
                result = ssh.run(
                    copy_argv(transport, parcel, bundle, destination),
                    timeout=transport.timeout,
                    env=program_env(parcel, bundle),
                )
                if result.returncode != 0:
                    raise ExternalError(
                        f"copy to {destination} failed: {first_line(result)}",
                        hint="check the destination directory exists on the host",
                    )
            else:
                destination = str(_copy_local(parcel, destination))
            done.append(destination)
    return done


def _copy_local(parcel: Parcel, destination: str) -> Path:
    path = Path(destination)
    if not path.is_absolute():
        raise InputError(f"copy destination {destination} is not an absolute path")
    if path.is_dir() or destination.endswith("/"):
        path = path / f"{parcel.host}.age"
    if not path.parent.is_dir():
        raise NotFoundError(f"copy destination directory {path.parent} does not exist")
    atomic_write(path, parcel.data, mode=0o600)
    return path


def first_line(result: ssh.CommandResult) -> str:
    """What a failed copy said: its first line (scp's reason; "Connection closed" follows)."""
    lines = [line for line in result.stderr_text.splitlines() if line.strip()]
    return lines[0] if lines else f"exit status {result.returncode}"
