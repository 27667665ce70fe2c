"""One generation on disk: writing ``.N.tmp`` and publishing it as ``N``; reading one back.

A generation is a directory of files (owners and modes from the manifest) plus
``.generation.json``, the list of what it holds (never a value). It is written complete
under a temporary name and renamed into place only when every file is durable
(docs/spec/installer.md, steps 4 and 5).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

from aux_secrets.adapters.fs import fsync_dir
from aux_secrets.adapters.installer import safepath
from aux_secrets.adapters.installer.layout import (
    DIR_MODE,
    GENERATION_RE,
    MAX_FILE_BYTES,
    MAX_META_BYTES,
    META_NAME,
    META_VERSION,
    TEMP_RE,
    FileToWrite,
    Locations,
)
from aux_secrets.core.nesting import loads_json
from aux_secrets.errors import ExternalError


def numbers(gens: Path) -> list[int]:
    """The generation numbers present in ``gens``, ascending."""
    if not gens.is_dir():
        return []
    return sorted(int(p) for p in os.listdir(gens) if GENERATION_RE.fullmatch(p))


def _record(files: Sequence[FileToWrite], locations: Locations) -> dict[str, object]:
    """The items of ``.generation.json`` for ``files``: where each lives, its link, and
    the SHA-256 of what was written (the record is root's, 0400, next to the files
    themselves; ``status`` checks the files against it, so a file changed under the
    runtime directory is seen)."""
    items: dict[str, object] = {}
    for f in files:
        location, linked = locations[f.key]
        items[f.key] = {
            "location": location,
            "link": f.path if linked else None,
            "sha256": hashlib.sha256(f.content).hexdigest(),
        }
    return items


def _directories(files: Sequence[FileToWrite], locations: Locations) -> list[str]:
    """The directories inside a generation that ``files`` need, parents first."""
    seen: set[str] = {""}
    out: list[str] = []
    for f in files:
        parent = locations[f.key][0].rpartition("/")[0]
        if parent not in seen:
            parts = parent.split("/")
            for i in range(1, len(parts) + 1):
                sub = "/".join(parts[:i])
                if sub not in seen:
                    out.append(sub)
                    seen.add(sub)
    return out


def write(tmp: Path, files: Sequence[FileToWrite], locations: Locations, gid: int) -> None:
    """Write every file and the record into the new directory ``tmp``, then fsync it all."""
    # Plain strings, not Path objects: this loop runs once per file (thousands).
    base = str(tmp)
    safepath.mkdir_owned(base, gid)
    made = [base]
    for sub in _directories(files, locations):
        safepath.mkdir_owned(f"{base}/{sub}", gid)
        made.append(f"{base}/{sub}")
    for f in files:
        safepath.write_file(f"{base}/{locations[f.key][0]}", f.content, f.uid, f.gid, f.mode)
    items = _record(files, locations)
    meta = json.dumps({"version": META_VERSION, "items": items}, sort_keys=True)
    safepath.write_file(f"{base}/{META_NAME}", meta.encode() + b"\n", 0, 0, 0o400)
    for d in sorted(made, key=lambda p: p.count("/"), reverse=True):
        fsync_dir(Path(d))


def publish(
    gens: Path,
    number: int,
    files: Sequence[FileToWrite],
    locations: Locations,
    gid: int,
    *,
    still: str,
) -> None:
    """Write generation ``number`` as ``.N.tmp`` and rename it to ``N``, durably.

    On failure ``.N.tmp`` is removed; a full disk is an ExternalError ending in ``still``
    (what the runtime link still points to).
    """
    tmp = gens / f".{number}.tmp"
    try:
        write(tmp, files, locations, gid)
        os.rename(tmp, gens / str(number))
        fsync_dir(gens)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if safepath.no_space(exc):
            raise ExternalError(
                f"no space left on the device of {gens} while writing generation {number}; {still}",
                hint=f"free space on the file system of {gens}, then install again",
            ) from None
        raise


def clean_leftovers(gens: Path) -> list[str]:
    """Remove the ``.N.tmp`` directories of runs that died while writing."""
    removed = []
    for name in os.listdir(gens):
        if TEMP_RE.fullmatch(name):
            shutil.rmtree(gens / name)
            removed.append(name)
    return removed


def _items(gen_dir: Path) -> dict[str, object]:
    raw = safepath.read_nofollow(gen_dir / META_NAME, MAX_META_BYTES)
    if raw is None:
        return {}
    try:
        meta = loads_json(raw)
        items = meta["items"] if meta.get("version") == META_VERSION else {}
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}
    return items if isinstance(items, dict) else {}


def read(gen_dir: Path) -> dict[str, tuple[str, bytes]]:
    """What a generation holds: key -> (location, content). Empty if unreadable."""
    out: dict[str, tuple[str, bytes]] = {}
    base = str(gen_dir)
    for key, entry in _items(gen_dir).items():
        location = entry.get("location") if isinstance(entry, dict) else None
        if not isinstance(key, str) or not isinstance(location, str):
            continue
        if ".." in location.split("/") or location.startswith("/"):
            continue
        content = safepath.read_nofollow(f"{base}/{location}", MAX_FILE_BYTES)
        if content is not None:
            out[key] = (location, content)
    return out


def holds(gen_dir: Path, files: Sequence[FileToWrite], locations: Locations, gid: int) -> bool:
    """Whether generation ``gen_dir`` is what ``write`` would make of ``files``, apart
    from the contents (the plan compares those): the same record, every file a regular
    file with the owner and mode asked for, every directory root's with the group and
    mode a new one gets. Reads only metadata."""
    if _items(gen_dir) != _record(files, locations):
        return False
    base = str(gen_dir)
    for sub in ["", *_directories(files, locations)]:
        st = safepath.lstat_or_none(f"{base}/{sub}" if sub else base)
        if st is None or not stat.S_ISDIR(st.st_mode) or stat.S_IMODE(st.st_mode) != DIR_MODE:
            return False
        if (st.st_uid, st.st_gid) != (0, gid):
            return False
    for f in files:
        st = safepath.lstat_or_none(f"{base}/{locations[f.key][0]}")
        if st is None or not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != f.mode:
            return False
        if (st.st_uid, st.st_gid) != (f.uid, f.gid):
            return False
    return True


def links(gen_dir: Path) -> dict[str, tuple[str, str]]:
    """key -> (manifest path, location) of the symlinks a generation made."""
    return {
        k: (v["link"], v["location"])
        for k, v in _items(gen_dir).items()
        if isinstance(v, dict)
        and isinstance(v.get("link"), str)
        and isinstance(v.get("location"), str)
    }


def check(gen_dir: Path) -> dict[str, str]:
    """key -> ``ok`` (the file is what was written), ``changed`` (its content is not),
    ``missing`` (it is gone or not a regular file) or ``unknown`` (a generation written
    before contents were recorded). Empty when the record cannot be read."""
    out: dict[str, str] = {}
    base = str(gen_dir)
    for key, entry in _items(gen_dir).items():
        if not isinstance(key, str) or not isinstance(entry, dict):
            continue
        location, digest = entry.get("location"), entry.get("sha256")
        if not isinstance(location, str) or ".." in location.split("/") or location[:1] == "/":
            continue
        content = safepath.read_nofollow(f"{base}/{location}", MAX_FILE_BYTES)
        if content is None:
            out[key] = "missing"
        elif not isinstance(digest, str):
            out[key] = "unknown"
        else:
            out[key] = "ok" if hashlib.sha256(content).hexdigest() == digest else "changed"
    return out
