"""The audit log file under storeDir: append one hash-chained entry, verify the whole chain.

``audit.jsonl`` holds the entries (core/audit.py), ``audit.head`` the count and last
hash so entries cut from the end are noticed. Appends are serialized by ``audit.lock``,
the line is fsynced before the head is replaced, and a head lagging by exactly the last
line (a crash between the two writes) is repaired on the next append.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from aux_secrets.adapters.fs import atomic_write, file_lock, fsync_dir, read_bounded
from aux_secrets.core.audit import (
    GENESIS,
    AuditEntry,
    AuditEvent,
    AuditHead,
    decode_entry,
    decode_head,
    encode_entry,
    encode_head,
    verify_log,
)
from aux_secrets.errors import InputError

LOG_NAME = "audit.jsonl"
HEAD_NAME = "audit.head"
LOCK_NAME = "audit.lock"
MAX_LOG_BYTES = 256 * 1024 * 1024
MAX_LINE_BYTES = 1024 * 1024


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

    def _last_entry(self) -> AuditEntry | None:
        """The last line of the log, read from the end (no need to parse the whole file)."""
        if not self.path.exists():
            return None
        with self.path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return None
            start = max(0, size - MAX_LINE_BYTES)
            handle.seek(start)
            tail = handle.read()
        if not tail.endswith(b"\n"):
            raise InputError(
                f"audit log {self.path}: the last line is incomplete",
                hint=f"see aux-secrets audit verify; move {self.path} aside to start a new log",
            )
        lines = tail[:-1].split(b"\n")
        if start > 0 and len(lines) < 2:
            raise InputError(f"audit log {self.path}: the last line is too long")
        return decode_entry(lines[-1], f"audit log {self.path} last line")

    def current_head(self) -> AuditHead:
        """The head to chain the next entry to, checked against the log's last line."""
        head = self._read_head()
        last = self._last_entry()
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

    def append(self, event: AuditEvent) -> AuditHead:
        """Add one entry; returns the new head. Creates the log on first use."""
        self.store_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with file_lock(self.store_dir / LOCK_NAME, what="audit log lock"):
            head = self.current_head()
            line, new_head = encode_entry(head, event)
            created = not self.path.exists()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                fsync_dir(self.store_dir)
            atomic_write(self.head_path, encode_head(new_head), mode=0o600)
            return new_head

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
