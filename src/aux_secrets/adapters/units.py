"""Writing the non-NixOS units under a root and enabling them with the real systemctl.

The templates are package data (``aux_secrets/data/units``); :mod:`aux_secrets.core.units`
renders them. Enabling goes through ``systemctl --root=DIR enable`` (which needs no running
systemd, so image builders use it too); on the live system (root ``/`` with systemd as
PID 1) the manager is reloaded afterwards, and ``now`` starts the mount and the timer.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from aux_secrets.adapters.fs import atomic_write
from aux_secrets.adapters.localstore import under_root
from aux_secrets.core.manifest import Settings
from aux_secrets.core.units import (
    ROTATE_TIMER,
    SYSUSERS_PATH,
    TEMPLATES,
    UnitFile,
    mount_unit_name,
    render_units,
)
from aux_secrets.errors import ExternalError

SYSTEMCTL_TIMEOUT = 120.0


def templates() -> dict[str, str]:
    """The unit templates shipped in the package, by file name."""
    folder = resources.files("aux_secrets") / "data" / "units"
    return {name: (folder / name).read_text(encoding="utf-8") for name in TEMPLATES}


@dataclass(frozen=True)
class UnitsResult:
    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]
    enabled: tuple[str, ...]
    started: tuple[str, ...]
    live: bool  # the running systemd was reloaded


def planned(
    settings: Settings,
    *,
    program: str,
    manifest: str,
    pull: bool = False,
    incoming: bool = False,
) -> list[UnitFile]:
    """The units for these settings, with the optional pull and incoming units."""
    from aux_secrets.core.delivery_units import DELIVERY_TEMPLATES, render_delivery_units

    files = render_units(templates(), settings, program=program, manifest=manifest)
    if pull or incoming:
        folder = resources.files("aux_secrets") / "data" / "units"
        texts = {n: (folder / n).read_text(encoding="utf-8") for n in DELIVERY_TEMPLATES}
        files += render_delivery_units(
            texts, settings, program=program, manifest=manifest, pull=pull, incoming=incoming
        )
    return files


def _make_dirs(root: Path, relative: Path) -> None:
    """Create the parents of a unit file, 0755 as systemd's own folders are."""
    current = root
    for part in relative.parts:
        current = current / part
        if not current.is_dir():
            current.mkdir(mode=0o755)
            os.chmod(current, 0o755)


def _run(argv: Sequence[str]) -> None:
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=SYSTEMCTL_TIMEOUT,
            check=False,
        )
    except FileNotFoundError:
        raise ExternalError(f"{argv[0]} is not installed", hint="apt-get install systemd") from None
    except subprocess.TimeoutExpired:
        raise ExternalError(
            f"{' '.join(argv[:3])} did not finish in {SYSTEMCTL_TIMEOUT:g}s"
        ) from None
    if done.returncode != 0:
        last = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ExternalError(
            f"{' '.join(argv)} failed: {last[-1] if last else f'exit {done.returncode}'}"
        )


def _write_env_files(
    root: Path, pull_source: str | None, host: str | None, signer: str | None
) -> tuple[list[Path], list[Path]]:
    """pull.env and delivery.env, both checked before either is written (0600: a source
    URL may carry a password; the pair says which bundles this host takes in): the
    files written and those already as wanted."""
    from aux_secrets.core.delivery_units import (
        DELIVERY_ENV_PATH,
        PULL_ENV_PATH,
        delivery_env,
        pull_env,
    )

    files: list[tuple[str, bytes]] = []
    if pull_source is not None:
        files.append((PULL_ENV_PATH, pull_env(pull_source)))
    if host is not None or signer is not None:
        files.append((DELIVERY_ENV_PATH, delivery_env(host, signer)))
    written, unchanged = [], []
    for relative, data in files:
        target = under_root(root, "/" + relative)
        if _holds(target, data) and stat.S_IMODE(target.stat().st_mode) == 0o600:
            unchanged.append(target)
            continue
        _make_dirs(root, Path(relative).parent)
        atomic_write(target, data, mode=0o600)
        written.append(target)
    return written, unchanged


def _holds(target: Path, data: bytes) -> bool:
    return target.is_file() and not target.is_symlink() and target.read_bytes() == data


def systemd_running(root: Path) -> bool:
    """The manager to reload: only on the live system booted with systemd."""
    return root == Path("/") and Path("/run/systemd/system").is_dir()


def install_units(
    settings: Settings,
    root: Path,
    *,
    program: str,
    manifest: str,
    enable: bool = True,
    now: bool = False,
    systemctl: str = "systemctl",
    sysusers: str = "systemd-sysusers",
    pull_source: str | None = None,
    incoming: bool = False,
    host: str | None = None,
    signer: str | None = None,
) -> UnitsResult:
    """Write every unit (atomically, 0644), create the group, enable, reload the manager.

    With ``pull_source`` also the pull timer and ``/etc/aux-secrets/pull.env`` (0600);
    with ``incoming`` the path unit that takes in dropped bundles; with ``host`` or
    ``signer`` ``/etc/aux-secrets/delivery.env`` (0600) that both their services read."""
    files = planned(
        settings,
        program=program,
        manifest=manifest,
        pull=pull_source is not None,
        incoming=incoming,
    )
    written, unchanged = _write_env_files(root, pull_source, host, signer)
    for unit in files:
        target = under_root(root, "/" + unit.path)
        data = unit.text.encode()
        if _holds(target, data):
            unchanged.append(target)
            continue
        _make_dirs(root, Path(unit.path).parent)
        atomic_write(target, data, mode=0o644)
        written.append(target)
    root_flag = [] if root == Path("/") else [f"--root={root}"]
    if any(u.path == SYSUSERS_PATH for u in files):
        _run([sysusers, *root_flag, Path(SYSUSERS_PATH).name])
    live = systemd_running(root)
    if live:
        _run([systemctl, "daemon-reload"])
    names = [Path(u.path).name for u in files if u.enable]
    if enable:
        _run([systemctl, *root_flag, "enable", *names])
    started: list[str] = []
    if now and live:
        started = [mount_unit_name(settings.generations_dir), ROTATE_TIMER]
        started += [Path(u.path).name for u in files if u.path.endswith((".path", "pull.timer"))]
        _run([systemctl, "start", *started])
    return UnitsResult(
        tuple(written), tuple(unchanged), tuple(names) if enable else (), tuple(started), live
    )
