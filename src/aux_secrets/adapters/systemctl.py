"""Asking systemd for restarts and reloads: a configurable systemctl, or NixOS's lists.

``Systemctl`` runs ``<argv...> try-restart UNIT...`` and ``<argv...>
try-reload-or-restart UNIT...`` (argv from the manifest's ``settings.systemctl``), one call
per verb with every unit, sorted. A unit the host does not have makes systemctl exit 5
("Unit X.service not found.") after it has asked for the others; only then is systemd
asked which units it knows (``show --property=Id,LoadState``), and the units with
``LoadState=not-found`` are skipped (returned to the caller) instead of failing the
install. ``ActivationLists`` is for the NixOS activation script:
instead of restarting in the middle of a switch, it appends the units to the lists that
switch-to-configuration reads afterwards (``/run/nixos/activation-restart-list`` and
``/run/nixos/activation-reload-list``), so the switch restarts them in its own order.
Given the new system's unit directory (``$systemConfig/etc/systemd/system``), it skips
and returns the units that have no unit file there: the switch would try to start them
and fail.
"""

from __future__ import annotations

import enum
import errno
import os
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

from aux_secrets.adapters.installer.layout import rooted
from aux_secrets.adapters.installer.safepath import make_dirs
from aux_secrets.errors import ConflictError, ExternalError, UsageError

VERBS = ("try-restart", "try-reload-or-restart")
RESTART_LIST = "/run/nixos/activation-restart-list"
RELOAD_LIST = "/run/nixos/activation-reload-list"


# systemctl's exit status when a unit it was asked for is not loaded (LSB "not installed").
EXIT_NOT_FOUND = 5

# systemd's unit types (systemd.unit(5)); a name ending in none of them means NAME.service.
UNIT_TYPES = frozenset(
    {"service", "socket", "device", "mount", "automount", "swap"}
    | {"target", "path", "timer", "slice", "scope"}
)


class Systemctl:
    def __init__(self, argv: Sequence[str], *, timeout: float = 300) -> None:
        if not argv:
            raise UsageError("the systemctl command is empty")
        self.argv = tuple(argv)
        self.timeout = timeout

    def request(self, verb: str, units: Sequence[str]) -> tuple[str, ...]:
        """Ask for ``verb`` on ``units``; the units skipped because the host lacks them.

        One call when every unit exists. When the call fails, the units systemd reports as
        ``not-found`` are skipped; the others are asked for again, unless the failure was
        only about the skipped ones (systemctl had already asked for the rest).
        """
        if verb not in VERBS:
            raise UsageError(f"unknown systemctl verb {verb!r}")
        if not units:
            return ()
        wanted = sorted(units)
        first = self._run(verb, wanted)
        if first.returncode == 0:
            return ()
        states = self._load_states(wanted)
        missing = [u for u in wanted if states.get(u, ("", ""))[1] == "not-found"]
        if not missing:
            raise self._failure(verb, wanted, first)
        known = [u for u in wanted if u not in missing]
        names = {name for u in missing for name in (u, states[u][0])}
        if known and not only_not_found(first, names):
            again = self._run(verb, known)
            if again.returncode != 0:
                raise self._failure(verb, known, again)
        return tuple(missing)

    def _run(self, verb: str, args: Sequence[str]) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(
                [*self.argv, verb, *args],
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

    def _load_states(self, units: Sequence[str]) -> dict[str, tuple[str, str]]:
        """unit -> (Id, LoadState) as systemd reports them; empty when it cannot tell."""
        done = self._run("show", ["--property=Id,LoadState", "--", *units])
        if done.returncode != 0:
            return {}
        blocks = parse_show(done.stdout.decode(errors="replace"))
        if len(blocks) != len(units):
            return {}
        return {
            unit: (block.get("Id", ""), block.get("LoadState", ""))
            for unit, block in zip(units, blocks, strict=True)
        }

    def _failure(
        self, verb: str, units: Sequence[str], result: subprocess.CompletedProcess[bytes]
    ) -> ExternalError:
        detail = result.stderr.decode(errors="replace").strip().splitlines()
        tail = f": {detail[-1]}" if detail else ""
        return ExternalError(
            f"{self.argv[0]} {verb} {' '.join(units)} failed (exit {result.returncode}){tail}"
        )


def parse_show(text: str) -> list[dict[str, str]]:
    """``systemctl show`` output: one ``KEY=VALUE`` block per unit, blank-line separated."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in [*text.splitlines(), ""]:
        if not line.strip():
            if current:
                blocks.append(current)
            current = {}
            continue
        key, sep, value = line.partition("=")
        if sep:
            current[key] = value
    return blocks


def only_not_found(result: subprocess.CompletedProcess[bytes], names: set[str]) -> bool:
    """Whether a failed call complained about nothing but units it did not find.

    systemctl asks for every unit it can and exits 5 with one "Unit X not found." line per
    unknown unit; any other line (a unit that failed, a wrapper's own error) means the
    known units' outcome is unknown, so they are asked for again.
    """
    if result.returncode != EXIT_NOT_FOUND:
        return False
    lines = [x for x in result.stderr.decode(errors="replace").splitlines() if x.strip()]
    return bool(lines) and all(
        any(name and f"Unit {name} not found" in line for name in names) for line in lines
    )


def full_unit_name(name: str) -> str:
    """``name`` as systemctl reads it: without a unit type suffix it means ``NAME.service``."""
    stem, dot, suffix = name.rpartition(".")
    return name if dot and stem and suffix in UNIT_TYPES else f"{name}.service"


def unit_file_names(unit: str) -> tuple[str, ...]:
    """The file names that can define ``unit`` (a full name), in systemd's order: the unit
    itself, then for a template instance ``foo@bar.service`` its template ``foo@.service``."""
    stem, _, suffix = unit.rpartition(".")
    prefix, at, instance = stem.partition("@")
    return (unit, f"{prefix}@.{suffix}") if at and prefix and instance else (unit,)


class UnitFile(enum.Enum):
    PRESENT = "present"
    MASKED = "masked"
    MISSING = "missing"


def unit_file_state(units_dir: Path, unit: str) -> UnitFile:
    """Whether ``units_dir`` defines ``unit`` (a full name), as systemd would load it.

    The first of ``unit_file_names`` that is there decides: a symlink to ``/dev/null`` or
    an empty file masks the unit (systemd loads either as masked); any other regular file,
    or a symlink to one (an alias, a unit of a package), defines it. A dangling link, a
    link loop or a directory defines nothing.
    """
    if "/" in unit or "\0" in unit:  # no unit name, and it must not reach out of the directory
        return UnitFile.MISSING
    for name in unit_file_names(unit):
        path = units_dir / name
        if os.path.realpath(path) == os.devnull:
            return UnitFile.MASKED
        try:
            info = path.stat()
        except OSError:  # dangling, a loop, or unreadable: nothing systemd could load
            continue
        if stat.S_ISREG(info.st_mode):
            return UnitFile.MASKED if info.st_size == 0 else UnitFile.PRESENT
    return UnitFile.MISSING


# Where systemd's generators write the units they make at boot and at daemon-reload.
GENERATOR_DIRS = (
    "/run/systemd/generator.early",
    "/run/systemd/generator",
    "/run/systemd/generator.late",
)


class ActivationLists:
    """Append units to NixOS switch-to-configuration's restart and reload lists.

    ``units_dir`` is the unit directory of the system being activated. Without it (an
    older module) every unit is listed and none skipped. A unit it lacks may still be
    one a generator made at boot: the ``.mount`` of a ``fileSystems`` entry (from
    /etc/fstab), a ``.swap``, a ``systemd-cryptsetup@`` unit. Those are in the running
    system's generator directories under ``root``, and are listed.
    """

    def __init__(self, root: Path, units_dir: Path | None = None) -> None:
        if units_dir is not None and not units_dir.is_dir():
            raise UsageError(f"the units directory {units_dir} is not a directory")
        self.root = root
        self.units_dir = units_dir

    def request(self, verb: str, units: Sequence[str]) -> tuple[str, ...]:
        """Append ``units`` (full names); the units the new system lacks are skipped.

        switch-to-configuration starts a listed unit that is not active, so a unit with no
        unit file ends the switch with "Unit X not found" (status 4), and a masked one with
        "Unit X is masked": neither is listed. A masked unit is no unit the host lacks
        (nothing to report: the switch stops it if it runs), so only the missing ones are
        returned.
        """
        if verb not in VERBS:
            raise UsageError(f"unknown systemctl verb {verb!r}")
        names = {unit: full_unit_name(unit) for unit in units}
        states = {unit: self._state(name) for unit, name in names.items()}
        listed = sorted({names[u] for u, state in states.items() if state is UnitFile.PRESENT})
        if listed:
            self._append(RESTART_LIST if verb == "try-restart" else RELOAD_LIST, listed)
        return tuple(sorted(u for u, state in states.items() if state is UnitFile.MISSING))

    def _state(self, unit: str) -> UnitFile:
        if self.units_dir is None:
            return UnitFile.PRESENT
        state = unit_file_state(self.units_dir, unit)
        for generated in GENERATOR_DIRS:
            if state is not UnitFile.MISSING:
                break
            state = unit_file_state(rooted(self.root, generated), unit)
        return state

    def _append(self, name: str, units: Sequence[str]) -> None:
        path = rooted(self.root, name)
        make_dirs(self.root, os.path.dirname(name))
        data = "".join(f"{unit}\n" for unit in units).encode()
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


__all__ = [
    "EXIT_NOT_FOUND",
    "GENERATOR_DIRS",
    "RELOAD_LIST",
    "RESTART_LIST",
    "UNIT_TYPES",
    "VERBS",
    "ActivationLists",
    "Systemctl",
    "UnitFile",
    "full_unit_name",
    "only_not_found",
    "parse_show",
    "unit_file_names",
    "unit_file_state",
]
