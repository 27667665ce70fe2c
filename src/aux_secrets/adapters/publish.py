"""The publish directory: each host's current bundle, for any dumb storage to serve.

Layout (docs/spec/transport.md, "publish"):

    DIR/HOST.age     the host's newest bundle: an age file, sealed to that host, signed
    DIR/index.json   public facts about each file (serial, time, size, sha256)

Only ciphertext and public metadata go in: the directory can be served by any static
web server or synced to an object store as is. Every file is replaced atomically
(readers see the old bundle or the new one), so a host pulling while the operator
publishes never reads half a file. Files are 0644 and the directory 0755, since
serving them is the point; what they hold opens only with each host's key.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from aux_secrets.adapters.fs import atomic_write, file_lock, read_bounded
from aux_secrets.core.bundle import check_host_name, format_instant
from aux_secrets.core.nesting import loads_json
from aux_secrets.errors import FormatVersionError, InputError, NotFoundError

INDEX_NAME = "index.json"
INDEX_FORMAT = "aux-secrets-publish-index"
INDEX_VERSION = 1
LOCK_NAME = ".publish.lock"
MAX_INDEX_BYTES = 64 * 1024 * 1024
FILE_MODE = 0o644
DIR_MODE = 0o755
_ENTRY_KEYS = frozenset({"file", "serial", "created", "bytes", "sha256"})


@dataclass(frozen=True)
class Published:
    host: str
    path: Path
    serial: int
    created: datetime
    size: int
    sha256: str

    def entry(self) -> dict[str, object]:
        return {
            "file": self.path.name,
            "serial": self.serial,
            "created": format_instant(self.created),
            "bytes": self.size,
            "sha256": self.sha256,
        }


def bundle_name(host: str) -> str:
    check_host_name(host)
    return f"{host}.age"


class Publisher:
    """Writes bundles into ``directory`` (made if missing, its parent must exist), then the
    index once in :meth:`close`. Safe to call :meth:`put` from several threads."""

    def __init__(self, directory: Path) -> None:
        if directory.exists() and not directory.is_dir():
            raise InputError(f"publish directory {directory} is not a directory")
        if not directory.parent.is_dir():
            raise NotFoundError(f"directory {directory.parent} does not exist")
        if not directory.is_dir():
            directory.mkdir()
            os.chmod(directory, DIR_MODE)  # served: not the private umask's 0700
        self.directory = directory
        # Refuse a damaged index before any bundle is written: nothing half-published.
        read_index(directory)
        self._done: dict[str, Published] = {}
        self._mutex = threading.Lock()

    def put(self, host: str, data: bytes, *, serial: int, created: datetime) -> Published:
        if not data.startswith(b"age-encryption.org/v1\n"):
            raise InputError(f"refusing to publish a bundle for {host} that is not an age file")
        path = self.directory / bundle_name(host)
        atomic_write(path, data, mode=FILE_MODE)
        done = Published(host, path, serial, created, len(data), hashlib.sha256(data).hexdigest())
        with self._mutex:
            self._done[host] = done
        return done

    def close(self) -> Path:
        """Merge what was published into ``index.json`` (other hosts' entries stay); with
        nothing published (the run failed before), the index is left as it is."""
        if not self._done:
            return self.directory / INDEX_NAME
        with file_lock(self.directory / LOCK_NAME, what="publish lock"):
            entries = read_index(self.directory)
            with self._mutex:
                for host, done in self._done.items():
                    entries[host] = done.entry()
            document = {
                "format": INDEX_FORMAT,
                "version": INDEX_VERSION,
                "hosts": dict(sorted(entries.items())),
            }
            path = self.directory / INDEX_NAME
            atomic_write(path, (json.dumps(document, indent=1) + "\n").encode(), mode=FILE_MODE)
        return path


def read_index(directory: Path) -> dict[str, dict[str, object]]:
    """The index's host entries; none when there is no index yet. Strict: anything else
    in ``index.json`` is an error, so a file we did not write is never overwritten."""
    path = directory / INDEX_NAME
    if not path.exists():
        return {}
    where = f"publish index {path}"
    data = read_bounded(path, MAX_INDEX_BYTES, what="publish index")
    try:
        document = loads_json(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError(f"{where} is not JSON; not overwritten", hint="move it away") from None
    if not isinstance(document, dict) or document.get("format") != INDEX_FORMAT:
        raise InputError(f"{where} is not an aux-secrets publish index; not overwritten")
    version = document.get("version")
    if version != INDEX_VERSION or isinstance(version, bool):
        raise FormatVersionError(
            f"{where} has version {version!r}; this aux-secrets writes {INDEX_VERSION}",
            hint="upgrade aux-secrets",
        )
    hosts = document.get("hosts")
    if set(document) != {"format", "version", "hosts"} or not isinstance(hosts, dict):
        raise InputError(f"{where}: expected exactly 'format', 'version' and 'hosts'")
    for host, entry in hosts.items():
        check_host_name(host, f"{where}: host")
        if not isinstance(entry, dict) or set(entry) != _ENTRY_KEYS or not _entry_ok(entry):
            raise InputError(f"{where}: entry {host!r} is malformed")
    return dict(hosts)


def _entry_ok(entry: dict[str, object]) -> bool:
    """Each field has the type :meth:`Published.entry` writes (kept as is for other hosts)."""
    counts = (entry["serial"], entry["bytes"])
    texts = (entry["file"], entry["created"], entry["sha256"])
    return all(type(n) is int and n >= 0 for n in counts) and all(isinstance(t, str) for t in texts)
