"""Asking systemd for restarts and reloads: a configurable systemctl, or NixOS's lists.

``Systemctl`` runs ``<argv...> try-restart UNIT...`` and ``<argv...>
try-reload-or-restart UNIT...`` (argv from the manifest's ``settings.systemctl``), one call
per verb with every unit, sorted. ``ActivationLists`` is for the NixOS activation script:
instead of restarting in the middle of a switch, it appends the units to the lists that
switch-to-configuration reads afterwards (``/run/nixos/activation-restart-list`` and
``/run/nixos/activation-reload-list``), so the switch restarts them in its own order.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

from aux_secrets.adapters.installer.layout import rooted
from aux_secrets.adapters.installer.safepath import make_dirs
from aux_secrets.errors import ConflictError, ExternalError, UsageError

VERBS = ("try-restart", "try-reload-or-restart")
RESTART_LIST = "/run/nixos/activation-restart-list"
RELOAD_LIST = "/run/nixos/activation-reload-list"


class Systemctl:
    def __init__(self, argv: Sequence[str], *, timeout: float = 300) -> None:
        if not argv:
            raise UsageError("the systemctl command is empty")
        self.argv = tuple(argv)
        self.timeout = timeout

    def request(self, verb: str, units: Sequence[str]) -> None:
        if verb not in VERBS:
            raise UsageError(f"unknown systemctl verb {verb!r}")
        if not units:
            return
        command = [*self.argv, verb, *sorted(units)]
        try:
            result = subprocess.run(
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self.timeout,
                check=False,
            )
        except FileNotFoundError:
            raise ExternalError(
                f"{self.argv[0]} not found (settings.systemctl in the manifest)"
            ) from None
        except subprocess.TimeoutExpired:
            raise ExternalError(
                f"{self.argv[0]} {verb} did not finish in {self.timeout:g} s"
            ) from None
        if result.returncode != 0:
            detail = result.stderr.decode(errors="replace").strip().splitlines()
            tail = f": {detail[-1]}" if detail else ""
            raise ExternalError(
                f"{self.argv[0]} {verb} {' '.join(sorted(units))} failed "
                f"(exit {result.returncode}){tail}"
            )


class ActivationLists:
    """Append units to NixOS switch-to-configuration's restart and reload lists."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def request(self, verb: str, units: Sequence[str]) -> None:
        if verb not in VERBS:
            raise UsageError(f"unknown systemctl verb {verb!r}")
        if not units:
            return
        path = rooted(self.root, RESTART_LIST if verb == "try-restart" else RELOAD_LIST)
        make_dirs(self.root, os.path.dirname(RESTART_LIST))
        data = "".join(f"{unit}\n" for unit in sorted(units)).encode()
        try:
            fd = os.open(
                path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
            )
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise ConflictError(
                f"{path} is a symlink; aux-secrets does not follow it",
                hint=f"remove {path}, then run aux-secrets install again",
            ) from None
        try:
            os.write(fd, data)
        finally:
            os.close(fd)


__all__ = ["RELOAD_LIST", "RESTART_LIST", "VERBS", "ActivationLists", "Systemctl"]
