"""How to reach a host and run the host-side steps there.

A :class:`Route` says ssh to a target or this machine, with sudo, the remote command,
root and manifest path; :func:`host_commands` turns the steps (``activate``,
``install``, ``status``) into argv lists and :func:`run_on_host` runs them, the sealed
bundle on the first one's stdin.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from aux_secrets.adapters import ssh
from aux_secrets.adapters.hosts import Host
from aux_secrets.errors import UsageError


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
