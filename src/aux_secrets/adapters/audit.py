"""The audit log file under storeDir: append one hash-chained entry, verify the whole chain.

``audit.jsonl`` holds the entries (core/audit.py), ``audit.head`` the count and last
hash so entries cut from the end are noticed. Appends are serialized by ``audit.lock``
and are all or nothing: a line that cannot be written whole (a full file system), or
whose head cannot be recorded, is cut off again before the error is raised. A torn last
line that a crash left anyway is removed by the next append, which records a ``repair``
entry saying how many bytes it dropped. A head lagging by exactly the last line (a
crash between the two writes) is accepted and repaired on the next append.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aux_secrets.adapters.fs import (
    atomic_write,
    file_lock,
    fsync_dir,
    read_bounded,
    remove_stale_temps,
    write_all_and_sync,
)
from aux_secrets.core.audit import (
    GENESIS,
    MAX_LINE_BYTES,
    AuditEntry,
    AuditEvent,
    AuditHead,
    decode_entry,
    decode_head,
    encode_entry,
    encode_head,
    verify_log,
)
from aux_secrets.errors import AuxError, ExternalError, InputError

LOG_NAME = "audit.jsonl"
HEAD_NAME = "audit.head"
LOCK_NAME = "audit.lock"
MAX_LOG_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class _Tail:
    last: AuditEntry | None  # the last complete line
    torn: int  # bytes after it that do not end in a newline


class AuditLog:
    def __init__(self, store_dir: Path) -> None:
        self.store_dir = store_dir
        self.path = store_dir / LOG_NAME
        self.head_path = store_dir / HEAD_NAME

    def _read_head(self) -> AuditHead | None:
        if not self.head_path.exists():
            return None
        return decode_head(
            read_bounded(self.head_path, 4096, what="audit head"), name=str(self.head_path)
        )

    def _tail(self, fd: int) -> _Tail:
        """The last complete line and the torn bytes after it, read from the end."""
        size = os.fstat(fd).st_size
        start = max(0, size - MAX_LINE_BYTES)
        data = os.pread(fd, size - start, start)
        cut = data.rfind(b"\n") + 1  # 0 when no newline at all
        torn = len(data) - cut
        if cut == 0:
            if start > 0:
                raise InputError(f"audit log {self.path}: the last line is too long")
            return _Tail(None, torn)
        lines = data[: cut - 1].split(b"\n")
        if start > 0 and len(lines) < 2:
            raise InputError(f"audit log {self.path}: the last line is too long")
        return _Tail(decode_entry(lines[-1], f"audit log {self.path} last line"), torn)

    def _head_after(self, last: AuditEntry | None) -> AuditHead:
        """The head to chain the next entry to, checked against the log's last line."""
        head = self._read_head()
        if last is None:
            if head is not None and head.count != 0:
                raise InputError(
                    f"audit log {self.path} is missing or empty but {self.head_path} "
                    f"records {head.count} entries",
                    hint="see aux-secrets audit verify",
                )
            return AuditHead(count=0, hash=GENESIS)
        after_last = AuditHead(count=last.seq + 1, hash=last.hash)
        if head is None or head == after_last:
            if head is None and last.seq != 0:
                raise InputError(
                    f"audit head {self.head_path} is missing",
                    hint="see aux-secrets audit verify",
                )
            return after_last
        if head == AuditHead(count=last.seq, hash=last.prev):
            return after_last  # the previous append stopped before it recorded the head
        raise InputError(
            f"audit log {self.path} does not end where {self.head_path} says it does "
            "(entries removed or changed)",
            hint="see aux-secrets audit verify",
        )

    def current_head(self) -> AuditHead:
        """The head the next entry would chain to (a torn last line is not counted)."""
        if not self.path.exists():
            return self._head_after(None)
        fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            return self._head_after(self._tail(fd).last)
        finally:
            os.close(fd)

    def _write(self, fd: int, head: AuditHead, event: AuditEvent) -> AuditHead:
        """Append one line and record the new head, or neither."""
        line, new_head = encode_entry(head, event)
        size = os.fstat(fd).st_size
        try:
            write_all_and_sync(fd, line)
            atomic_write(self.head_path, encode_head(new_head), mode=0o600)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
                os.fsync(fd)
            raise ExternalError(
                f"audit log {self.path}: could not append an entry ({exc.strerror}); "
                "nothing was written to it",
                hint=f"free space on the file system of {self.store_dir}",
            ) from None
        return new_head

    def append(self, event: AuditEvent) -> AuditHead:
        """Add one entry; returns the new head. Creates the log on first use."""
        self.store_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with file_lock(self.store_dir / LOCK_NAME, what="audit log lock"):
            remove_stale_temps(self.store_dir, lambda target: target == HEAD_NAME)
            created = not self.path.exists()
            fd = os.open(
                self.path,
                os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
            )
            try:
                if created:
                    fsync_dir(self.store_dir)
                tail = self._tail(fd)
                head = self._head_after(tail.last)
                if tail.torn:
                    # A crash left part of a line: cut it, and say so in the log itself.
                    os.ftruncate(fd, os.fstat(fd).st_size - tail.torn)
                    os.fsync(fd)
                    repair = AuditEvent(
                        event="repair", time=event.time, host=event.host, dropped=tail.torn
                    )
                    head = self._write(fd, head, repair)
                return self._write(fd, head, event)
            finally:
                os.close(fd)

    def append_or_warn(self, event: AuditEvent, *, done: str) -> tuple[str, ...]:
        """``append``, for callers whose change is already committed (``done`` says what):
        a problem with the log becomes a warning, never a failure of that change."""
        try:
            self.append(event)
        except (AuxError, OSError) as exc:
            why = exc.message if isinstance(exc, AuxError) else str(exc.strerror)
            return (f"{done}, but the audit log did not record it: {why}",)
        return ()

    def verify(self) -> list[AuditEntry]:
        """Every entry, after checking hashes, the chain and the head; InputError otherwise."""
        data = read_bounded(self.path, MAX_LOG_BYTES, what="audit log")
        head = self._read_head()
        if head is None and data:
            raise InputError(f"audit head {self.head_path} is missing (was it removed?)")
        return verify_log(data, head, name=f"audit log {self.path}")


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


__all__ = ["HEAD_NAME", "LOG_NAME", "AuditLog", "now_utc"]
