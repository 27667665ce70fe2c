"""Rekey of a store directory: every file re-encrypted from old keys to new, all or none.

The new files are staged beside the old ones (``.NAME.aux.rekey``) under a
``.rekey-pending`` marker; the ``.rekey-journal`` that lists them is the commit point.
A crash before it rolls back (the staged files go), after it rolls forward (they are
renamed into place); :func:`recover` does whichever is due, under the store lock.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aux_secrets.adapters.fs import atomic_write, fsync_dir, write_all_and_sync
from aux_secrets.core import storefile as sf
from aux_secrets.core.keystream import Scheme
from aux_secrets.errors import AuxError, ConflictError, DecryptError

if TYPE_CHECKING:
    from aux_secrets.adapters.store_dir import StoreDir

PENDING = ".rekey-pending"
JOURNAL = ".rekey-journal"
REKEY_SUFFIX = ".rekey"


@dataclass(frozen=True)
class RekeyResult:
    count: int
    already: bool = False
    paths: tuple[Path, ...] = ()


def rekey(
    store: StoreDir, old: Scheme, new: Scheme, *, source: StoreDir | None = None
) -> RekeyResult:
    """Re-encrypt every file from ``old``'s keys to ``new``'s, all or none.

    With ``source`` (another store directory, e.g. the old vault's), its files
    are read and the results written here; this store must then hold no secret.
    """
    with store.locked() as created:
        src = store if source is None else source
        if src is not store and src.root.resolve() == store.root.resolve():
            src = store
        if src is not store:
            src._wait_for_rekey()
            if any(True for _ in store._walk()):
                raise ConflictError(
                    f"store {store.root} already holds secrets; rekey from another store "
                    "only into an empty one"
                )
        names = sorted(name for name, _ in src._walk())
        pending = store.root / PENDING
        atomic_write(pending, b"rekey in progress\n", exclusive=True)
        staged: list[tuple[Path, Path]] = []
        bad: list[str] = []
        try:
            for name in names:
                try:
                    meta, payload = src._decrypt(old, name)
                except AuxError:
                    bad.append(name)
                    continue
                if bad:
                    continue
                target = store.path_for(name)
                store._make_dirs(target.parent)
                temp = target.with_name("." + target.name + REKEY_SUFFIX)
                _write_new(temp, store._seal(new, meta, payload))
                staged.append((temp, target))
            if bad and _already_rekeyed(new, src, names, bad):
                roll_back(store.root)
                return RekeyResult(0, already=True)
            if bad:
                raise _rekey_failure(bad)
            for directory in {t.parent for t, _ in staged}:
                fsync_dir(directory)
        except BaseException:
            roll_back(store.root)
            raise
        journal = "".join(os.path.relpath(t, store.root) + "\n" for _, t in staged)
        atomic_write(store.root / JOURNAL, journal.encode("utf-8"))
        roll_forward(store.root)
        targets = tuple(target for _, target in staged)
        if targets:
            count = f"{len(targets)} secret{'s' if len(targets) != 1 else ''}"
            store._changed([*created, *targets], f"store rekey ({count})")
    return RekeyResult(len(targets), paths=targets)


def _already_rekeyed(new: Scheme, src: StoreDir, names: list[str], bad: list[str]) -> bool:
    """Every file failed with the old keys: are they all under the new ones already?"""
    if len(bad) != len(names):
        return False
    try:
        for name in names:
            src._decrypt(new, name)
    except AuxError:
        return False
    return True


def _rekey_failure(bad: list[str]) -> AuxError:
    shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    return DecryptError(
        f"{len(bad)} store secret{'s' if len(bad) != 1 else ''} cannot be decrypted with "
        f"the old keys: {shown}; "
        "nothing was changed",
        hint="check the old vault and its password; 'aux-secrets store verify' lists them",
    )


def recover(root: Path) -> None:
    """Finish (journal written) or undo (only staged) an interrupted rekey."""
    if (root / JOURNAL).exists():
        roll_forward(root)
    elif (root / PENDING).exists():
        roll_back(root)


def roll_forward(root: Path) -> None:
    journal = root / JOURNAL
    dirs: set[Path] = set()
    for rel in journal.read_text("utf-8").splitlines():
        target = root / rel
        temp = target.with_name("." + target.name + REKEY_SUFFIX)
        if temp.exists():
            os.replace(temp, target)
            dirs.add(target.parent)
    for directory in dirs:
        fsync_dir(directory)
    journal.unlink()
    (root / PENDING).unlink(missing_ok=True)
    fsync_dir(root)


def roll_back(root: Path) -> None:
    """Delete every staged file, and directories a rekey created that are left empty."""
    for directory, _, files in os.walk(root, topdown=False):
        if ".git" in Path(directory).relative_to(root).parts:
            continue
        for file in files:
            if file.startswith(".") and file.endswith(sf.SUFFIX + REKEY_SUFFIX):
                os.unlink(os.path.join(directory, file))
        if directory != str(root):
            with contextlib.suppress(OSError):
                os.rmdir(directory)  # only succeeds when empty
    (root / PENDING).unlink(missing_ok=True)
    fsync_dir(root)


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        write_all_and_sync(fd, data)
    finally:
        os.close(fd)
