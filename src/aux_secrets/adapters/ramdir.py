"""A private directory on a RAM filesystem, for a value that must pass through a file.

``store edit`` hands the value to ``$EDITOR`` as a file. That file (and the editor's
swap and backup files beside it) must never reach a disk: the directory is made in
``$AUX_SECRETS_EDIT_DIR`` when set, else ``$XDG_RUNTIME_DIR``, else ``/dev/shm``, and
only if the filesystem there is tmpfs or ramfs (read from /proc/self/mountinfo).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from aux_secrets.errors import PolicyError

ENV_EDIT_DIR = "AUX_SECRETS_EDIT_DIR"
RAM_FILESYSTEMS = frozenset({"tmpfs", "ramfs"})
MOUNTINFO = Path("/proc/self/mountinfo")


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes."""
    for code in ("\\040", "\\011", "\\012", "\\134"):
        field = field.replace(code, chr(int(code[1:], 8)))
    return field


def filesystem_type(path: Path, mountinfo: str | None = None) -> str | None:
    """The type of the filesystem ``path`` is on: its longest mount point prefix."""
    text = mountinfo if mountinfo is not None else MOUNTINFO.read_text()
    real = os.path.realpath(path)
    best: tuple[int, str] | None = None
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        fields = left.split()
        if not sep or len(fields) < 5 or not right.split():
            continue
        point = _unescape(fields[4])
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and (best is None or len(point) >= best[0]):
            best = (len(point), right.split()[0])
    return best[1] if best else None


def candidates() -> list[Path]:
    explicit = os.environ.get(ENV_EDIT_DIR)
    if explicit:
        return [Path(explicit)]
    found = []
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        found.append(Path(runtime))
    found.append(Path("/dev/shm"))
    return found


def ram_base() -> Path:
    """The first candidate that is a directory on a RAM filesystem; else PolicyError."""
    tried = []
    for base in candidates():
        if base.is_dir():
            kind = filesystem_type(base)
            if kind in RAM_FILESYSTEMS:
                return base
            tried.append(f"{base} ({kind or 'unknown'})")
        else:
            tried.append(f"{base} (missing)")
    raise PolicyError(
        "no RAM filesystem for the value's temporary file; refusing to put it on a disk: "
        + ", ".join(tried),
        hint=f"set {ENV_EDIT_DIR} or XDG_RUNTIME_DIR to a tmpfs directory, or use 'store set'",
    )


@contextlib.contextmanager
def private_ram_dir(prefix: str = "aux-secrets-") -> Iterator[Path]:
    """A fresh 0700 directory on a RAM filesystem, wiped and removed afterwards."""
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=ram_base()))
    try:
        os.chmod(directory, 0o700)
        yield directory
    finally:
        for path in directory.rglob("*"):
            with contextlib.suppress(OSError):
                if path.is_file() and not path.is_symlink():
                    size = path.stat().st_size
                    with open(path, "r+b") as handle:
                        handle.write(b"\0" * size)
        shutil.rmtree(directory, ignore_errors=True)
