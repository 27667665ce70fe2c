"""Filesystem primitives every writer uses: atomic replace, locks, bounded reads."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from aux_secrets.adapters.umask import PRIVATE_UMASK as PRIVATE_UMASK
from aux_secrets.adapters.umask import set_private_umask as set_private_umask
from aux_secrets.errors import ConflictError, InputError, NotFoundError


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600, exclusive: bool = False) -> None:
    """Replace ``path`` with ``data`` so readers see the old bytes or the new, never a mix.

    Temp file in the same directory, fsync, rename, fsync of the directory. With
    ``exclusive`` an existing ``path`` is refused instead of replaced.
    """
    with atomic_stream(path, mode=mode, exclusive=exclusive) as write:
        write(data)


@contextlib.contextmanager
def atomic_stream(
    path: Path, *, mode: int = 0o600, exclusive: bool = False
) -> Iterator[Callable[[bytes], object]]:
    """``atomic_write`` for data produced piece by piece: the block gets a ``write``
    function; ``path`` is replaced when the block ends, and untouched if it raises."""
    directory = path.parent
    if not directory.is_dir():
        raise NotFoundError(f"directory {directory} does not exist")
    if path.is_dir() and not path.is_symlink():
        # rename() would fail naming the temp file; name what the caller asked for.
        raise InputError(f"{path} is a directory", hint="give a file path inside it")
    if path.exists() and not path.is_file():
        # rename() would replace a device node (/dev/null) or the link /dev/stdout with a
        # regular file holding the data.
        raise InputError(
            f"{path} is not a regular file (a device, pipe or socket); only files are written",
            hint="leave out --output to print to standard output",
        )
    if exclusive and (path.exists() or path.is_symlink()):
        raise ConflictError(f"{path} already exists")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    tmp = Path(tmp_name)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle.write
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            # link() fails if the name appeared meanwhile, unlike rename().
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise ConflictError(f"{path} already exists") from None
            tmp.unlink()
        else:
            os.replace(tmp, path)
        fsync_dir(directory)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


# mkstemp(prefix=".NAME.", suffix=".tmp"): eight characters from [a-z0-9_] in between.
_TEMP_RE = re.compile(r"\.(?P<target>.+)\.[a-z0-9_]{8}\.tmp")


def remove_stale_temps(directory: Path, targets: Callable[[str], bool]) -> list[str]:
    """Remove the temp files ``atomic_write`` left in ``directory`` for names ``targets``
    accepts (a process killed between creating the temp file and renaming it).

    Call it only while holding the lock that serialises every writer of those names:
    then no temp file of theirs can be in use. Returns the names removed.
    """
    removed = []
    try:
        entries = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    for name in entries:
        match = _TEMP_RE.fullmatch(name)
        if match is None or not targets(match["target"]):
            continue
        path = directory / name
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and not path.is_symlink():
                path.unlink()
                removed.append(name)
    return sorted(removed)


def write_all_and_sync(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` to ``fd`` (os.write may write less) and fsync it."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_bounded(path: Path, limit: int, *, what: str = "file") -> bytes:
    """Read a whole file, refusing one larger than ``limit`` bytes with a clear error."""
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise NotFoundError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise InputError(f"{what} {path} is a directory") from None
    except PermissionError:
        raise InputError(f"{what} {path} is not readable (permission denied)") from None
    if len(data) > limit:
        raise InputError(f"{what} {path} is larger than {limit} bytes")
    return data


@contextlib.contextmanager
def file_lock(lock_path: Path, *, wait: bool = True, what: str = "lock") -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (created 0600) for the block."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        flags = fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB
        try:
            fcntl.flock(fd, flags)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise ConflictError(f"{what} {lock_path} is held by another process") from None
            raise
        yield
    finally:
        os.close(fd)
