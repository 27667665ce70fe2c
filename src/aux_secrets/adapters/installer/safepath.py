"""Filesystem steps of the installer that never follow a link planted where it writes.

Files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and owned and chmodded through
their descriptor; a symlink is replaced by ``rename`` (which never follows what is at the
destination); reads open with ``O_NOFOLLOW`` and accept regular files only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from pathlib import Path

from aux_secrets.adapters.fs import fsync_dir, write_all_and_sync
from aux_secrets.adapters.installer.layout import DIR_MODE


def lstat_or_none(path: str | Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def open_nofollow(path: str | Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)


def read_nofollow(path: str | Path, limit: int) -> bytes | None:
    """Bytes of a regular file, or None if it is missing, a symlink or not a regular file."""
    try:
        fd = open_nofollow(path)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        size = 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """Create ``path`` and missing parents as 0755 root (whatever the umask: services must
    be able to traverse to their files). Existing directories are left as they are."""
    missing = []
    while lstat_or_none(path) is None:
        missing.append(path)
        path = path.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, 0o755)
            os.chmod(d, 0o755)


def mkdir_owned(path: str | Path, gid: int) -> None:
    """A new directory, mode 0751 root:``gid`` (fails if anything is there)."""
    os.mkdir(path, DIR_MODE)
    os.chown(path, 0, gid, follow_symlinks=False)
    os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask


def write_file(path: str | Path, data: bytes, uid: int, gid: int, mode: int) -> None:
    """A new file (never an existing one, never through a link), owned and durable."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        write_all_and_sync(fd, data)
    finally:
        os.close(fd)


def replace_symlink(link: Path, target: str) -> None:
    """Point ``link`` at ``target`` with one rename (never follows what is at ``link``)."""
    tmp = link.parent / f".{link.name}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(link.parent)


def no_space(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)
