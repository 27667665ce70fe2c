"""The session's layer: this checkout installed into the cached root, without network.

The wheel of this checkout and its dependencies' wheels (downloaded outside, see
:func:`tests.host.cache.wheels`) are copied into an overlay of the root filesystem and
installed there with ``pip --no-index`` into ``/opt/aux-secrets``, with
``/usr/local/bin/aux-secrets`` on root's PATH, as an administrator would on a Debian host.
The overlay's upper directory is the layer every host of the session boots from.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.host.cache import wheels

VENV = "/opt/aux-secrets"
PROGRAM = "/usr/local/bin/aux-secrets"


def _chroot(root: Path, *argv: str) -> None:
    done = subprocess.run(
        ["/usr/sbin/chroot", str(root), "sh", "-c", 'umask 022; exec "$@"', "sh", *argv],
        capture_output=True,
        text=True,
        timeout=600,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/root"},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in the host root: {done.stderr.strip()}")


def build_layer(rootfs: Path, project: Path, workdir: Path) -> Path:
    """Install this checkout into an overlay of ``rootfs``; the overlay's upper directory."""
    upper, work, merged = workdir / "upper", workdir / "work", workdir / "merged"
    for d in (upper, work, merged):
        d.mkdir(parents=True)
        d.chmod(0o755)  # the overlay's root is the host's /: not the test suite's umask 077
    subprocess.run(
        [
            "mount",
            "-t",
            "overlay",
            "overlay",
            "-o",
            f"lowerdir={rootfs},upperdir={upper},workdir={work}",
            str(merged),
        ],
        check=True,
        timeout=30,
    )
    try:
        files = merged / "opt/aux-wheels"
        wheels(project, files)
        _chroot(merged, "python3", "-m", "venv", VENV)
        _chroot(
            merged,
            f"{VENV}/bin/pip",
            "install",
            "-q",
            "--no-index",
            "--no-cache-dir",
            "--disable-pip-version-check",
            "--find-links",
            "/opt/aux-wheels",
            "aux-secrets",
        )
        (merged / PROGRAM.lstrip("/")).symlink_to(f"{VENV}/bin/aux-secrets")
        shutil.rmtree(files)
    finally:
        subprocess.run(["umount", str(merged)], check=False, timeout=30)
    shutil.rmtree(work, ignore_errors=True)
    return upper
