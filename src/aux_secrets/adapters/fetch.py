"""Fetch this host's bundle from a publish directory: over HTTP(S), or from a directory.

The source is what ``provision --publish DIR`` wrote, served or synced anywhere: the
host's file is ``SOURCE/HOST.age``. Nothing fetched is trusted: the caller opens,
verifies and serial-checks it exactly as a delivered bundle. HTTP uses conditional
requests (``If-None-Match``/``If-Modified-Since``), so a host polling an unchanged
source costs one small request.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import os
import stat
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

from aux_secrets import __version__
from aux_secrets.adapters.fs import read_bounded
from aux_secrets.adapters.publish import bundle_name
from aux_secrets.errors import ExternalError, InputError, NotFoundError, UsageError

DEFAULT_TIMEOUT = 30.0
WEAK_SECONDS = 2


@dataclass(frozen=True)
class Fetched:
    """A fetched bundle, or ``data is None`` when the server says it did not change."""

    where: str
    data: bytes | None
    etag: str | None = None
    last_modified: str | None = None


def validators(headers: Message) -> tuple[str | None, str | None]:
    """The ETag and Last-Modified worth sending back next time.

    A Last-Modified has one-second resolution: a file replaced within the second it was
    fetched would look unchanged forever. So when the server gives a Last-Modified less
    than :data:`WEAK_SECONDS` before its Date (or no Date), both validators are dropped
    (a server such as nginx derives its ETag from the same time) and the next pull
    fetches in full. An ETag without a Last-Modified (a content hash) is kept.
    """
    etag, modified = headers.get("ETag"), headers.get("Last-Modified")
    if modified is None:
        return etag, None
    try:
        changed = email.utils.parsedate_to_datetime(modified)
        date = email.utils.parsedate_to_datetime(headers.get("Date", ""))
    except (TypeError, ValueError):
        return None, None
    if (date - changed).total_seconds() < WEAK_SECONDS:
        return None, None
    return etag, modified


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def shown(where: str) -> str:
    """A location as messages show it: a URL without any ``user:password@``."""
    if not is_url(where):
        return where
    parts = urllib.parse.urlsplit(where)
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def location(source: str, host: str) -> str:
    """``SOURCE/HOST.age`` for a URL or a directory (a ``file://`` URL is a directory)."""
    name = bundle_name(host)
    if is_url(source):
        parts = urllib.parse.urlsplit(source)
        if not parts.hostname:
            raise UsageError(f"pull source {shown(source)!r} has no host name")
        if parts.query or parts.fragment:
            raise UsageError(f"pull source {shown(source)!r} must not have a query or fragment")
        return urllib.parse.urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/" + name))
    if "://" in source and not source.startswith("file://"):
        raise UsageError(
            f"pull source {source!r} is neither http(s):// nor a directory",
            hint="sync other stores (s3://, rsync) into a directory and pull from that",
        )
    path = Path(urllib.parse.urlsplit(source).path if source.startswith("file://") else source)
    return str(path / name)


def _read_published(path: Path, limit: int) -> bytes:
    """The bundle file in a directory source, which is no more trusted than a server: a
    fifo there would block the pull for good and a device would never end, so only a
    regular file (or a link to one) is read. Opened without blocking, then checked."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return read_bounded(path, limit, what="published bundle")  # raises its usual error
    except OSError as exc:  # a socket (ENXIO), a link loop (ELOOP)
        raise InputError(f"published bundle {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        kind = "a directory" if path.is_dir() else "not a regular file"
        raise InputError(f"published bundle {path} is {kind}")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"published bundle {path} is larger than {limit} bytes")
    return data


def fetch(
    source: str,
    host: str,
    *,
    limit: int,
    timeout: float = DEFAULT_TIMEOUT,
    etag: str | None = None,
    last_modified: str | None = None,
) -> Fetched:
    """The host's bundle bytes (at most ``limit``); NotFoundError when the source has none,
    ExternalError when it cannot be reached, InputError when the file is cut short."""
    where = location(source, host)
    if not is_url(source):
        path = Path(where)
        if not path.parent.is_dir():
            raise NotFoundError(f"pull source {path.parent} is not a directory")
        return Fetched(where, _read_published(path, limit))
    headers = {"User-Agent": f"aux-secrets/{__version__}", "Accept": "application/octet-stream"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    label = shown(where)
    parts = urllib.parse.urlsplit(where)
    if parts.username is not None:
        # user:password@ in the URL (keep such a URL in pull.env, never on a command line).
        pair = (
            f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        )
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    request = urllib.request.Request(label, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise InputError(f"{label} is larger than {limit} bytes")
            data = response.read(limit + 1)
            if len(data) > limit:
                raise InputError(f"{label} is larger than {limit} bytes")
            if declared is not None and declared.isdigit() and len(data) != int(declared):
                raise InputError(f"{label} was cut short ({len(data)} of {declared} bytes)")
            etag_out, modified = validators(response.headers)
            return Fetched(label, data, etag_out, modified)
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return Fetched(label, None, etag, last_modified)
        if exc.code in (404, 410):
            raise NotFoundError(f"{label} has no bundle for {host} (HTTP {exc.code})") from None
        if exc.code in (401, 403):
            raise ExternalError(
                f"{label} refused access (HTTP {exc.code})",
                hint="put the credentials in the URL in /etc/aux-secrets/pull.env",
            ) from None
        raise ExternalError(f"{label}: HTTP {exc.code} {exc.reason}") from None
    except http.client.IncompleteRead as exc:
        raise InputError(f"{label} was cut short ({len(exc.partial)} bytes read)") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        text = getattr(reason, "strerror", None) or str(reason)
        raise ExternalError(f"cannot reach {label}: {text}") from None
    except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        text = getattr(exc, "strerror", None) or type(exc).__name__
        raise ExternalError(f"cannot fetch {label}: {text}") from None
