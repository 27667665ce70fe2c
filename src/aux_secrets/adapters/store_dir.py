"""The vault's store/ directory: one file per fixed secret, locked atomic writes.

The file format is aux_secrets.core.storefile; this module owns paths, the lock,
the clock and randomness. The rekey and its journal are in
:mod:`aux_secrets.adapters.store_rekey`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from aux_secrets.adapters.fs import (
    atomic_write,
    file_lock,
    fsync_dir,
    read_bounded,
    remove_stale_temps,
)
from aux_secrets.adapters.store_rekey import JOURNAL, PENDING, RekeyResult, recover, rekey
from aux_secrets.core import storefile as sf
from aux_secrets.core.keystream import Scheme
from aux_secrets.errors import (
    AuxError,
    ConflictError,
    InputError,
    NotFoundError,
    PolicyError,
    UsageError,
)

LOCK = ".lock"
GITIGNORE = ".gitignore"
GITIGNORE_TEXT = (
    b"# aux-secrets store: the lock and the rekey journal are not secrets\n"
    b"/.lock\n/.rekey-*\n.*.tmp\n.*.rekey\n"
)
HEADER_READ = 4096

Committer = Callable[[Sequence[Path], str], None]


def store_key(scheme: Scheme, name: str) -> bytes:
    """The 32-byte key of ``name``'s file: the reserved realm's raw stream."""
    return scheme.stream(sf.store_realm(name), "raw").read(sf.KEY_SIZE)


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class ListEntry:
    """One file as ``store list`` sees it: readable metadata, or why it is unreadable."""

    name: str
    meta: sf.StoreMeta | None
    problem: str | None = None


@dataclass(frozen=True)
class VerifyReport:
    good: tuple[str, ...]
    bad: tuple[tuple[str, str], ...]  # (name, one-line message)
    stray: tuple[str, ...]  # paths relative to the store that are not store files


class StoreDir:
    """A store directory (normally ``<vault>/store``).

    ``committer``, when set, is called under the lock after each change with the
    touched paths and a message such as ``store add github/deploy-token``.
    """

    def __init__(
        self,
        root: Path,
        *,
        committer: Committer | None = None,
        random: Callable[[int], bytes] = os.urandom,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.root = Path(root)
        self.committer = committer
        self._random = random
        self._clock = clock

    # --- paths and listing ---------------------------------------------------

    def path_for(self, name: str) -> Path:
        sf.validate_name(name)
        return self.root.joinpath(*name.split("/")).with_name(name.split("/")[-1] + sf.SUFFIX)

    def names(self) -> list[str]:
        """Every secret name in the store, sorted (reads no file)."""
        self._wait_for_rekey()
        return sorted(name for name, _ in self._walk())

    def _exists(self) -> bool:
        """Whether the store directory exists (absent: an empty store; a file: an error)."""
        if self.root.is_symlink():
            # A vault is shared through git: a planted link must not redirect writes.
            raise InputError(f"store directory {self.root} is a symbolic link; refused")
        if self.root.is_dir():
            return True
        if self.root.exists() or self.root.is_symlink():
            raise InputError(f"store directory {self.root} is not a directory")
        return False

    def _walk(self) -> Iterator[tuple[str, str]]:
        """(name, path) of every store file; strings, as this runs once per file."""
        if not self._exists():
            return
        top = str(self.root)
        for directory, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel = os.path.relpath(directory, top)
            prefix = "" if rel == "." else rel + "/"
            for file in files:
                if file.startswith(".") or not file.endswith(sf.SUFFIX):
                    continue
                yield prefix + file[: -len(sf.SUFFIX)], os.path.join(directory, file)

    def _strays(self) -> list[str]:
        strays: list[str] = []
        if not self._exists():
            return strays
        for directory, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if d != ".git"]
            for file in files:
                rel = os.path.relpath(os.path.join(directory, file), self.root)
                if rel in (LOCK, GITIGNORE):
                    continue
                if file.startswith(".") or not file.endswith(sf.SUFFIX):
                    strays.append(rel)
                    continue
                try:
                    sf.validate_name(rel[: -len(sf.SUFFIX)])
                except PolicyError:
                    strays.append(rel)
        return sorted(strays)

    def exists(self, name: str) -> bool:
        path = self.path_for(name)
        return path.exists() or path.is_symlink()

    def entries(self) -> list[ListEntry]:
        """Names and readable metadata of every file; no key, no decryption."""
        self._wait_for_rekey()
        entries = []
        for name, path in sorted(self._walk()):
            try:
                with open(path, "rb") as handle:
                    head = handle.read(512)
                    if b"\n\n" not in head:
                        head += handle.read(HEADER_READ)
                meta, _, _ = sf.parse_header(head, f"store secret {name}")
                if meta.name != name:
                    raise InputError(f"store secret {name}: the file holds another name (renamed?)")
            except (AuxError, OSError) as exc:
                message = (
                    exc.message if isinstance(exc, AuxError) else f"store secret {name}: {exc}"
                )
                entries.append(ListEntry(name, None, message))
                continue
            entries.append(ListEntry(name, meta))
        return entries

    # --- reading ---------------------------------------------------------------

    def _require(self, name: str) -> Path:
        path = self.path_for(name)
        if not path.exists() and not path.is_symlink():
            raise NotFoundError(f"store secret {name} does not exist", hint=self.suggest(name))
        return path

    def suggest(self, name: str) -> str:
        """'did you mean' the nearest existing names, else where to look."""
        import difflib

        try:
            close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.75)
        except (AuxError, OSError):
            close = []
        if close:
            return "did you mean " + " or ".join(close) + "?"
        return "see 'aux-secrets store list'"

    def _load(self, name: str) -> bytes:
        path = self._require(name)
        return read_bounded(path, sf.MAX_FILE, what=f"store file for {name}")

    def _decrypt(self, scheme: Scheme, name: str) -> tuple[sf.StoreMeta, sf.Payload]:
        return sf.decrypt_file(store_key(scheme, name), self._load(name), name)

    def read(self, scheme: Scheme, name: str) -> sf.StoredSecret:
        """Decrypt ``name``: current value, retired values (newest first), note, metadata."""
        self._wait_for_rekey()
        return sf.to_secret(*self._decrypt(scheme, name))

    def verify(self, scheme: Scheme) -> VerifyReport:
        """Decrypt every file; collect each failure by name instead of stopping."""
        self._wait_for_rekey()
        good: list[str] = []
        bad: list[tuple[str, str]] = []
        for name, _ in sorted(self._walk()):
            try:
                self._decrypt(scheme, name)
            except AuxError as exc:
                bad.append((name, exc.message))
            else:
                good.append(name)
        return VerifyReport(tuple(good), tuple(bad), tuple(self._strays()))

    # --- writing ---------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[list[Path]]:
        """Hold the store lock (creating the store); yields a list of paths created here."""
        created: list[Path] = []
        if not self._exists():
            self.root.mkdir(mode=0o700, parents=True)
        ignore = self.root / GITIGNORE
        if not ignore.exists():
            with contextlib.suppress(ConflictError):
                atomic_write(ignore, GITIGNORE_TEXT, mode=0o644, exclusive=True)
                created.append(ignore)
        with file_lock(self.root / LOCK, what="store lock"):
            self._recover()
            yield created

    def _write(self, name: str, data: bytes, *, exclusive: bool) -> Path:
        path = self.path_for(name)
        self._refuse_links(path.parent, name)
        self._make_dirs(path.parent)
        # Writers hold the store lock: a temp file here is one a killed write left.
        remove_stale_temps(path.parent, lambda target: target.endswith(sf.SUFFIX))
        try:
            atomic_write(path, data, mode=0o600, exclusive=exclusive)
        except ConflictError:
            raise ConflictError(
                f"store secret {name} already exists",
                hint=f"use 'aux-secrets store set {name}' to replace its value",
            ) from None
        return path

    def _refuse_links(self, directory: Path, name: str) -> None:
        """No group directory between the store and a secret's file may be a link."""
        while directory != self.root:
            if directory.is_symlink():
                raise InputError(f"store secret {name}: {directory} is a symbolic link; refused")
            directory = directory.parent

    def _make_dirs(self, directory: Path) -> None:
        missing = []
        while not directory.is_dir():
            missing.append(directory)
            directory = directory.parent
        for d in reversed(missing):
            d.mkdir(mode=0o700)
            fsync_dir(d.parent)

    def _prune_dirs(self, directory: Path) -> None:
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except OSError:
                return
            fsync_dir(directory.parent)
            directory = directory.parent

    def _changed(self, paths: Sequence[Path], message: str) -> None:
        if self.committer is not None:
            self.committer(paths, message)

    def _seal(self, scheme: Scheme, meta: sf.StoreMeta, payload: sf.Payload) -> bytes:
        return sf.encrypt_file(
            store_key(scheme, meta.name), self._random(sf.NONCE_SIZE), meta, payload
        )

    def add(
        self,
        scheme: Scheme,
        name: str,
        value: bytes,
        *,
        note: str = "",
        expires: date | None = None,
    ) -> Path:
        """Store a new secret (version 1); an existing name is refused."""
        sf.validate_name(name)
        sf.check_value(name, value)
        now = self._clock()
        meta = sf.StoreMeta(name, now, now, 1, expires)
        data = self._seal(scheme, meta, sf.Payload(value, note))
        with self.locked() as created:
            if self.exists(name):
                raise ConflictError(
                    f"store secret {name} already exists",
                    hint=f"use 'aux-secrets store set {name}' to replace its value",
                )
            path = self._write(name, data, exclusive=True)
            self._changed([*created, path], f"store add {name}")
        return path

    def set(
        self,
        scheme: Scheme,
        name: str,
        value: bytes | None,
        *,
        keep: int = 1,
        note: str | sf.Unchanged = sf.KEEP,
        expires: date | sf.Unchanged | None = sf.KEEP,
    ) -> Path:
        """Replace the value; the previous one becomes the newest retired value.

        ``value=None`` keeps the value and the retired values and changes only the
        note or the expiry (still a new version).
        """
        sf.validate_name(name)
        if value is not None:
            sf.check_value(name, value)
        self._require(name)  # before locked(), which would create the store
        with self.locked() as created:
            meta, payload = self._decrypt(scheme, name)
            if value is None:
                meta, payload = sf.edited(meta, payload, self._clock(), note=note, expires=expires)
            else:
                meta, payload = sf.replaced(
                    meta, payload, value, self._clock(), keep=keep, note=note, expires=expires
                )
            path = self._write(name, self._seal(scheme, meta, payload), exclusive=False)
            self._changed([*created, path], f"store set {name}")
        return path

    def remove(self, name: str) -> Path:
        """Delete a secret's file (no key needed; git keeps the history)."""
        self._require(name)
        with self.locked() as created:
            path = self._require(name)
            path.unlink()
            fsync_dir(path.parent)
            self._prune_dirs(path.parent)
            self._changed([*created, path], f"store rm {name}")
        return path

    def rename(self, scheme: Scheme, old: str, new: str) -> tuple[Path, Path]:
        """Move a secret to a new name: re-encrypted under the new name's key.

        Times, version, expiry, note and retired values are kept. A crash between
        writing the new file and removing the old leaves both, never neither.
        """
        sf.validate_name(new)
        if old == new:
            raise UsageError(f"store rename: the old and the new name are both {old}")
        self._require(old)
        with self.locked() as created:
            meta, payload = self._decrypt(scheme, old)
            if self.exists(new):
                raise ConflictError(
                    f"store secret {new} already exists",
                    hint=f"remove it first with 'aux-secrets store rm {new}'",
                )
            new_meta = sf.StoreMeta(new, meta.created, meta.updated, meta.version, meta.expires)
            new_path = self._write(new, self._seal(scheme, new_meta, payload), exclusive=True)
            old_path = self.path_for(old)
            old_path.unlink()
            fsync_dir(old_path.parent)
            self._prune_dirs(old_path.parent)
            self._changed([*created, old_path, new_path], f"store rename {old} {new}")
        return old_path, new_path

    def _wait_for_rekey(self) -> None:
        """Readers take no lock, except to finish or undo an interrupted rekey."""
        if (self.root / PENDING).exists() or (self.root / JOURNAL).exists():
            with file_lock(self.root / LOCK, what="store lock"):
                self._recover()

    def _recover(self) -> None:
        recover(self.root)

    def rekey(self, old: Scheme, new: Scheme, *, source: StoreDir | None = None) -> RekeyResult:
        """Re-encrypt every file from ``old``'s keys to ``new``'s, all or none
        (:func:`aux_secrets.adapters.store_rekey.rekey`)."""
        return rekey(self, old, new, source=source)
