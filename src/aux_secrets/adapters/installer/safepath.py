"""Filesystem steps of the installer that never follow a link planted where it writes.

The installer runs as root; some places it writes to (a custom path's directory) may be
writable by a service user. So every directory is reached by ``walk``: one component at
a time from the ``--root`` anchor, each opened with ``O_NOFOLLOW | O_DIRECTORY`` relative
to the descriptor of its parent, and created (``mkdirat``, then ``fchmod`` through the
new descriptor) when missing. A symlink swapped in anywhere on the way is refused, never
followed, and a directory swapped after it was opened keeps being the one written to.
``walk(..., trusted=True)`` also requires every directory on the way to be one no
unprivileged user can change (see ``untrusted``): the generations directory and the
runtime link's directory must be, so path-based steps inside them are safe.

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
from aux_secrets.errors import ConflictError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_DIR_MODE = 0o755  # services must be able to traverse to their files


class UnsafePlace(ConflictError):
    """A place the installer refuses to act through (a symlink on the way, a directory
    an unprivileged user can change where only root may write)."""


def untrusted(st: os.stat_result) -> str | None:
    """Why an unprivileged user could change directory ``st``, or None if none can.

    Trusted: owned by root (or by the user running the installer, for ``--root`` trees
    built without root) and writable by nobody else, or sticky (like /tmp: others may
    add entries but never rename or remove ours).
    """
    if st.st_uid not in (0, os.geteuid()):
        return f"is owned by uid {st.st_uid}"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not st.st_mode & stat.S_ISVTX:
        return "is writable by its group or by others"
    return None


def walk(root: Path, path: str, *, create: bool = False, trusted: bool = False) -> int:
    """A descriptor of directory ``path`` (absolute, taken below ``root``).

    Each component is opened relative to its parent with ``O_NOFOLLOW | O_DIRECTORY``.
    A missing component is created (0755 root) when ``create``, else FileNotFoundError.
    UnsafePlace names the component that is a symlink or not a directory, or, with
    ``trusted``, one an unprivileged user could change.
    """
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)  # the anchor
    here = str(root).rstrip("/") or "/"
    try:
        for part in [p for p in path.split("/") if p]:
            if trusted and (why := untrusted(os.fstat(fd))):
                raise UnsafePlace(f"{here} {why}; aux-secrets installs below it only as root")
            here = f"{here.rstrip('/')}/{part}"
            try:
                nxt = _open_dir_at(fd, part, here)
            except FileNotFoundError:
                if not create:
                    raise
                nxt = _make_dir_at(fd, part, here)
            os.close(fd)
            fd = nxt
        if trusted and (why := untrusted(os.fstat(fd))):
            raise UnsafePlace(f"{here} {why}; aux-secrets installs there only as root")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_dir_at(fd: int, name: str, here: str) -> int:
    try:
        return os.open(name, DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        raise UnsafePlace(
            f"{here} is a symlink or not a directory; aux-secrets never follows one"
        ) from None


def _make_dir_at(fd: int, name: str, here: str) -> int:
    with contextlib.suppress(FileExistsError):
        os.mkdir(name, NEW_DIR_MODE, dir_fd=fd)
    new = _open_dir_at(fd, name, here)
    if os.fstat(new).st_uid != os.geteuid():  # swapped for someone else's directory
        os.close(new)
        raise UnsafePlace(f"{here} was replaced while it was being created")
    os.fchmod(new, NEW_DIR_MODE)  # mkdir's mode is filtered by the umask
    return new


def make_dirs(root: Path, path: str) -> None:
    """Create directory ``path`` (below ``root``) and its missing parents, through ``walk``."""
    os.close(walk(root, path, create=True))


def entry_at(dir_fd: int, name: str) -> os.stat_result | None:
    """``lstat`` of ``name`` in the directory ``dir_fd``; None if absent."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def link_at(dir_fd: int, name: str) -> str | None:
    """The target of symlink ``name`` in ``dir_fd``; None if absent or not a symlink."""
    st = entry_at(dir_fd, name)
    if st is None or not stat.S_ISLNK(st.st_mode):
        return None
    return os.readlink(name, dir_fd=dir_fd)


def _link_temp_names(names: list[str], link_name: str) -> list[str]:
    prefix, suffix = f".{link_name}.", ".tmp"
    return [
        n
        for n in names
        if n.startswith(prefix) and n.endswith(suffix) and n[len(prefix) : -len(suffix)].isdigit()
    ]


def remove_link_temps(directory: Path, link_name: str) -> None:
    """Remove the temporary symlinks ``.LINK.PID.tmp`` a killed install left beside
    ``link_name`` (only symlinks: the installer makes no other file of that name).
    Call under the install lock."""
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for name in _link_temp_names(os.listdir(directory), link_name):
            st = lstat_or_none(directory / name)
            if st is not None and stat.S_ISLNK(st.st_mode):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(directory / name)


def remove_link_temps_at(dir_fd: int, link_name: str) -> None:
    """``remove_link_temps`` in the directory ``dir_fd``."""
    for stale in _link_temp_names(os.listdir(dir_fd), link_name):
        st = entry_at(dir_fd, stale)
        if st is not None and stat.S_ISLNK(st.st_mode):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(stale, dir_fd=dir_fd)


def replace_symlink_at(dir_fd: int, name: str, target: str) -> None:
    """Point ``name`` in ``dir_fd`` at ``target`` with one rename (never follows)."""
    tmp = f".{name}.{os.getpid()}.tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=dir_fd)
    os.symlink(target, tmp, dir_fd=dir_fd)
    try:
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    os.fsync(dir_fd)


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
