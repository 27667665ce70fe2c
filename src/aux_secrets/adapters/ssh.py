"""OpenSSH client transport: run a command on a host, bytes in on stdin, bytes out.

Options come from ``NIX_SSHOPTS`` (whitespace-split, as nixos-rebuild does) and
from ``-o NAME=VALUE`` options the caller passes. The remote command line is
built only from program names, paths and flags; values travel on stdin.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aux_secrets.errors import ExternalError, UnreachableError, UsageError

# Exit status ssh uses for its own failures (connection refused, auth, host key).
SSH_FAILURE = 255
DEFAULT_TIMEOUT = 300.0
# A host that drops packets fails in this many seconds, not after the TCP timeout.
CONNECT_TIMEOUT = 15


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: bytes
    stderr: bytes

    @property
    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace").strip()


def nix_sshopts(env: Mapping[str, str] | None = None) -> list[str]:
    """``NIX_SSHOPTS`` split like a shell would (nixos-rebuild splits on whitespace)."""
    text = (env if env is not None else os.environ).get("NIX_SSHOPTS", "")
    try:
        return shlex.split(text)
    except ValueError:
        raise UsageError("NIX_SSHOPTS is not a valid option list (unbalanced quotes)") from None


def ssh_argv(
    destination: str,
    remote_argv: Sequence[str] | str,
    *,
    options: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    program: str = "ssh",
) -> list[str]:
    """The full ssh command: ``ssh -o OPT... NIX_SSHOPTS... -o BatchMode=yes ... -T -- DEST 'cmd'``.

    ssh keeps the first value it sees for an option, so the explicit ``-o``
    options come first and win over NIX_SSHOPTS; BatchMode and ConnectTimeout
    come last so a caller can still change them. A remote argv is quoted for the remote shell; a
    string is taken as an already quoted command line.
    """
    if not destination or destination.startswith("-"):
        raise UsageError(f"ssh destination {destination!r} is not valid")
    line = remote_argv if isinstance(remote_argv, str) else shlex.join(remote_argv)
    argv = [program]
    for option in options:
        argv += ["-o", option]
    argv += nix_sshopts(env)
    argv += ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={CONNECT_TIMEOUT}"]
    argv += ["-T", "--", destination, line]
    return argv


def run(
    argv: Sequence[str],
    *,
    stdin: bytes = b"",
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
) -> CommandResult:
    """Run a local program with ``stdin`` bytes; never raises on a non-zero exit."""
    try:
        done = subprocess.run(
            list(argv),
            input=stdin,
            capture_output=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            check=False,
        )
    except FileNotFoundError:
        raise ExternalError(
            f"{argv[0]} is not installed",
            hint="apt-get install openssh-client" if argv[0] == "ssh" else None,
        ) from None
    except subprocess.TimeoutExpired:
        raise ExternalError(f"{Path(argv[0]).name} did not finish within {timeout:g}s") from None
    return CommandResult(done.returncode, done.stdout, done.stderr)


def run_remote(
    destination: str,
    remote_argv: Sequence[str] | str,
    *,
    stdin: bytes = b"",
    options: Sequence[str] = (),
    timeout: float = DEFAULT_TIMEOUT,
) -> CommandResult:
    """Run ``remote_argv`` on ``destination`` over ssh; ssh's own failure -> ExternalError."""
    result = run(ssh_argv(destination, remote_argv, options=options), stdin=stdin, timeout=timeout)
    if result.returncode == SSH_FAILURE:
        last = result.stderr_text.splitlines()[-1] if result.stderr_text else "no output"
        raise UnreachableError(
            f"ssh to {destination} failed: {last}",
            hint="check the address, port (--ssh-option Port=N or NIX_SSHOPTS) and host key",
        )
    return result


def self_command() -> list[str]:
    """How to run this aux-secrets as a subprocess (the --local path)."""
    return [sys.executable, "-m", "aux_secrets"]
