"""Generations on disk: write N+1, swap the runtime link, restart what changed, prune.

Layout and crash-safety argument: docs/spec/installer.md. In short:

- ``generationsDir/N`` holds one complete generation (files with their owners and modes,
  plus ``.generation.json``, the list of what it holds, never a value). It is written as
  ``generationsDir/.N.tmp`` and renamed to ``N`` only when every file is on disk.
- ``runtimeDir`` is a relative symlink to ``generationsDir/N`` (relative so ``--root``
  trees and image builds resolve the same way). It is replaced by renaming a temporary
  symlink over it: readers see the old generation or the new one, never a half one.
- Files whose manifest path lies outside ``runtimeDir`` live in the generation under
  ``.paths/`` and their path becomes a symlink through ``runtimeDir``, so the same swap
  updates them.
- Everything runs under ``generationsDir/.lock``; a run first removes ``.N.tmp``
  leftovers of a run that died.
- Nothing here follows a symlink planted where we write: the runtime link is replaced by
  ``rename`` (which never follows), an existing non-symlink there is refused, files are
  created with ``O_EXCL | O_NOFOLLOW`` inside a directory we just made.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import json
import os
import pwd
import re
import shutil
import stat
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from aux_secrets.adapters.fs import atomic_write, file_lock, fsync_dir, write_all_and_sync
from aux_secrets.core.audit import AuditEvent
from aux_secrets.core.bundle import BundlePayload
from aux_secrets.core.fingerprint import fingerprint
from aux_secrets.core.manifest import Manifest, Settings
from aux_secrets.core.manifest_parse import SYSTEM_DIRS
from aux_secrets.core.plan import (
    InstalledItem,
    Missing,
    Plan,
    desired_files,
    make_plan,
    with_pending,
)
from aux_secrets.core.template import render_template
from aux_secrets.errors import ConflictError, ExternalError, InputError

META_NAME = ".generation.json"
META_VERSION = 1
LINKED_PREFIX = ".paths"
LOCK_NAME = ".lock"
PENDING_NAME = ".pending.json"
GENERATION_RE = re.compile(r"[1-9][0-9]{0,17}")
TEMP_RE = re.compile(r"\.[1-9][0-9]{0,17}\.tmp")
DIR_MODE = 0o751
MAX_META_BYTES = 16 * 1024 * 1024
MAX_FILE_BYTES = 64 * 1024 * 1024
# Paths a secret file must never be written to, whatever the manifest says: checked
# again here because the installer runs as root on whatever manifest it is given.
SYSTEM_FORBIDDEN = SYSTEM_DIRS


@dataclass(frozen=True)
class Tree:
    """One installed tree: the runtime link, where its generations live, how many to keep."""

    link_dir: str  # e.g. /run/aux-secrets (absolute, without --root)
    generations_dir: str  # e.g. /run/aux-secrets.d
    keep: int
    group: str  # group of the generation directories ("keys")
    forbidden: tuple[str, ...] = ()  # other places no file may go (storeDir...)


@dataclass(frozen=True)
class FileToWrite:
    """One file of the new generation, rendered and with its numeric owner resolved."""

    key: str  # "secret:NAME" / "template:NAME"
    path: str  # absolute path from the manifest (without --root)
    content: bytes = field(repr=False)
    uid: int
    gid: int
    mode: int
    restart_units: tuple[str, ...] = ()
    reload_units: tuple[str, ...] = ()


@dataclass(frozen=True)
class TreeResult:
    generation: int  # the generation written (or that would be, with dry_run)
    previous: int | None
    plan: Plan
    written: bool
    pruned: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()


class UnitRequester(Protocol):
    """Something that asks systemd to restart or reload units (see adapters/systemctl.py)."""

    def request(self, verb: str, units: Sequence[str]) -> None: ...


# --------------------------------------------------------------------------- paths


def rooted(root: Path, path: str) -> Path:
    """``path`` (absolute) below ``root``; ``root`` of ``/`` gives the path itself."""
    return root / path.lstrip("/")


def within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def location_of(tree: Tree, key: str, path: str) -> tuple[str, bool]:
    """Where ``path`` lives inside a generation, and whether ``path`` is a symlink to it."""
    if within(path, tree.link_dir) and path != tree.link_dir:
        rel = path[len(tree.link_dir.rstrip("/")) + 1 :]
        first = rel.split("/", 1)[0]
        if first.startswith("."):
            raise InputError(
                f"{_what(key)}: path {path} uses {first!r} inside {tree.link_dir}, "
                "which aux-secrets reserves (names starting with '.')"
            )
        return rel, False
    kind, name = key.split(":", 1)
    return f"{LINKED_PREFIX}/{kind}s/{name}", True


def check_path(tree: Tree, key: str, path: str) -> None:
    """Refuse a manifest path in a place no secret file may go."""
    if not _normalised(path):
        raise InputError(f"{_what(key)}: path {path!r} is not a normalised absolute path")
    if path == tree.link_dir:
        raise InputError(f"{_what(key)}: path {path} is the runtime directory itself")
    places = (tree.generations_dir, *tree.forbidden, *SYSTEM_FORBIDDEN)
    for place in places:
        if within(path, place):
            raise InputError(
                f"{_what(key)}: path {path} is inside {place}, where no secret file may go",
                hint="fix the path in the manifest (aux-secrets manifest check FILE)",
            )


def _normalised(path: str) -> bool:
    parts = path.split("/")
    return path.startswith("/") and not any(p in ("", ".", "..") for p in parts[1:])


def _what(key: str) -> str:
    kind, name = key.split(":", 1)
    return f"{kind} {name}"


def resolve_owner(key: str, owner: str, group: str) -> tuple[int, int]:
    """Numeric ids of ``owner``/``group``; an InputError naming a missing account."""
    try:
        uid = pwd.getpwnam(owner).pw_uid
    except KeyError:
        raise InputError(
            f"{_what(key)}: owner {owner!r} does not exist on this host",
            hint=f"create the user {owner!r} before installing, or fix the manifest",
        ) from None
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise InputError(
            f"{_what(key)}: group {group!r} does not exist on this host",
            hint=f"create the group {group!r} before installing, or fix the manifest",
        ) from None
    return uid, gid


def generations_gid(group: str) -> tuple[int, str | None]:
    """The gid for generation directories; root's group with a warning if ``group`` is absent."""
    try:
        return grp.getgrnam(group).gr_gid, None
    except KeyError:
        return 0, f"group {group!r} does not exist; generation directories use group root"


# --------------------------------------------------------------------------- inspection


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


def active_generation(root: Path, tree: Tree) -> int | None:
    """The generation number ``runtimeDir`` points to; None if absent.

    A runtime dir that is a real directory or file, or a symlink pointing anywhere else
    than a generation of this tree, is refused: something not ours is there.
    """
    link = rooted(root, tree.link_dir)
    st = _lstat(link)
    if st is None:
        return None
    if not stat.S_ISLNK(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a symlink"
        raise ConflictError(
            f"runtime directory {link} is {kind}; aux-secrets only replaces its own symlink",
            hint=f"move {link} away, then run aux-secrets install again",
        )
    target = os.readlink(link)
    gens = rooted(root, tree.generations_dir)
    resolved = Path(os.path.normpath(link.parent / target))
    if resolved.parent != gens or not GENERATION_RE.fullmatch(resolved.name):
        raise ConflictError(
            f"runtime directory {link} is a symlink to {target}, not to a generation in {gens}",
            hint=f"remove {link} if it is not needed, then run aux-secrets install again",
        )
    return int(resolved.name)


def _generation_numbers(gens: Path) -> list[int]:
    if not gens.is_dir():
        return []
    return sorted(int(p) for p in os.listdir(gens) if GENERATION_RE.fullmatch(p))


def _open_nofollow(path: str | Path) -> int:
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)


def _read_nofollow(path: str | Path, limit: int) -> bytes | None:
    """Bytes of a regular file, or None if it is missing, a symlink or not a regular file."""
    try:
        fd = _open_nofollow(path)
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


def read_generation(gen_dir: Path) -> dict[str, tuple[str, bytes]]:
    """What a generation holds: key -> (location, content). Empty if unreadable."""
    raw = _read_nofollow(gen_dir / META_NAME, MAX_META_BYTES)
    if raw is None:
        return {}
    try:
        meta = json.loads(raw)
        items = meta["items"] if meta.get("version") == META_VERSION else {}
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}
    out: dict[str, tuple[str, bytes]] = {}
    base = str(gen_dir)
    if not isinstance(items, dict):
        return out
    for key, entry in items.items():
        location = entry.get("location") if isinstance(entry, dict) else None
        if not isinstance(key, str) or not isinstance(location, str):
            continue
        if ".." in location.split("/") or location.startswith("/"):
            continue
        content = _read_nofollow(f"{base}/{location}", MAX_FILE_BYTES)
        if content is not None:
            out[key] = (location, content)
    return out


def _generation_links(gen_dir: Path) -> dict[str, tuple[str, str]]:
    """key -> (manifest path, location) of the symlinks a generation made."""
    raw = _read_nofollow(gen_dir / META_NAME, MAX_META_BYTES)
    if raw is None:
        return {}
    try:
        items = json.loads(raw)["items"]
        return {
            k: (v["link"], v["location"])
            for k, v in items.items()
            if isinstance(v, dict)
            and isinstance(v.get("link"), str)
            and isinstance(v.get("location"), str)
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


# --------------------------------------------------------------------------- writing


def make_dirs(path: Path) -> None:
    """Create ``path`` and missing parents as 0755 root (whatever the umask: services must
    be able to traverse to their files). Existing directories are left as they are."""
    missing = []
    while _lstat(path) is None:
        missing.append(path)
        path = path.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(d, 0o755)
            os.chmod(d, 0o755)


def _mkdir_owned(path: str | Path, gid: int) -> None:
    os.mkdir(path, DIR_MODE)
    os.chown(path, 0, gid, follow_symlinks=False)
    os.chmod(path, DIR_MODE)  # mkdir's mode is filtered by the umask


def _write_file(path: str | Path, data: bytes, uid: int, gid: int, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        write_all_and_sync(fd, data)
    finally:
        os.close(fd)


def _write_generation(
    tmp: Path, files: Sequence[FileToWrite], locations: Mapping[str, tuple[str, bool]], gid: int
) -> None:
    # Plain strings, not Path objects: this loop runs once per file (thousands).
    base = str(tmp)
    _mkdir_owned(base, gid)
    made = [base]
    seen: set[str] = {""}
    items: dict[str, object] = {}
    for f in files:
        location, linked = locations[f.key]
        parent = location.rpartition("/")[0]
        if parent not in seen:
            parts = parent.split("/")
            for i in range(1, len(parts) + 1):
                sub = "/".join(parts[:i])
                if sub not in seen:
                    _mkdir_owned(f"{base}/{sub}", gid)
                    made.append(f"{base}/{sub}")
                    seen.add(sub)
        _write_file(f"{base}/{location}", f.content, f.uid, f.gid, f.mode)
        items[f.key] = {"location": location, "link": f.path if linked else None}
    meta = json.dumps({"version": META_VERSION, "items": items}, sort_keys=True)
    _write_file(f"{base}/{META_NAME}", meta.encode() + b"\n", 0, 0, 0o400)
    for d in sorted(made, key=lambda p: p.count("/"), reverse=True):
        fsync_dir(Path(d))


def _replace_symlink(link: Path, target: str) -> None:
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


def _link_target(root: Path, tree: Tree, location: str, path: str) -> str:
    dest = rooted(root, tree.link_dir) / location
    return os.path.relpath(dest, rooted(root, path).parent)


def _check_link_place(root: Path, key: str, path: str) -> None:
    place = rooted(root, path)
    st = _lstat(place)
    if st is not None and not stat.S_ISLNK(st.st_mode):
        raise ConflictError(
            f"{_what(key)}: {place} exists and is not a symlink; "
            "aux-secrets only replaces its own symlinks there",
            hint=f"move {place} away, then run aux-secrets install again",
        )


def _clean_leftovers(gens: Path) -> list[str]:
    removed = []
    for name in os.listdir(gens):
        if TEMP_RE.fullmatch(name):
            shutil.rmtree(gens / name)
            removed.append(name)
    return removed


def _prune(gens: Path, active: int, keep: int) -> tuple[int, ...]:
    older = [n for n in _generation_numbers(gens) if n < active]
    doomed = older[: max(0, len(older) - keep)]
    for n in doomed:
        shutil.rmtree(gens / str(n))
    newer = [n for n in _generation_numbers(gens) if n > active]
    for n in newer:  # written by a run that died before its swap
        shutil.rmtree(gens / str(n))
    return tuple(doomed + newer)


def _no_space(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def read_pending(gens: Path) -> tuple[list[str], list[str]]:
    """Units a run asked for after its swap but did not see through (crash, failure).

    A missing or unreadable record means none (the worst case is the missed restart the
    record exists to prevent, never a wrong one).
    """
    raw = _read_nofollow(gens / PENDING_NAME, MAX_META_BYTES)
    if raw is None:
        return [], []
    try:
        doc = json.loads(raw)
        restart, reload = doc["tryRestart"], doc["tryReloadOrRestart"]
    except (ValueError, TypeError, KeyError):
        return [], []
    ok = isinstance(restart, list) and isinstance(reload, list)
    if not ok or not all(isinstance(u, str) for u in (*restart, *reload)):
        return [], []
    return restart, reload


def _write_pending(gens: Path, plan: Plan) -> None:
    doc = {"tryRestart": list(plan.try_restart), "tryReloadOrRestart": list(plan.try_reload)}
    atomic_write(gens / PENDING_NAME, json.dumps(doc, sort_keys=True).encode(), mode=0o600)


# --------------------------------------------------------------------------- entry point


def install_tree(
    tree: Tree,
    files: Sequence[FileToWrite],
    *,
    root: Path,
    dry_run: bool = False,
    after_swap: Callable[[Plan, int], None] | None = None,
) -> TreeResult:
    """Install ``files`` as the next generation of ``tree`` and return what happened.

    ``after_swap(plan, generation)`` runs under the lock once the new generation is
    live (the caller asks for restarts and writes the audit entry there).
    """
    warnings: list[str] = []
    locations: dict[str, tuple[str, bool]] = {}
    seen_locations: dict[str, str] = {}
    for f in files:
        check_path(tree, f.key, f.path)
        loc = location_of(tree, f.key, f.path)
        if loc[0] in seen_locations:
            raise InputError(
                f"{_what(f.key)}: path {f.path} is also written by {_what(seen_locations[loc[0]])}"
            )
        seen_locations[loc[0]] = f.key
        locations[f.key] = loc
    gid, warning = generations_gid(tree.group)
    if warning:
        warnings.append(warning)

    link = rooted(root, tree.link_dir)
    gens = rooted(root, tree.generations_dir)
    gens_st = _lstat(gens)
    if gens_st is not None and not stat.S_ISDIR(gens_st.st_mode):
        raise ConflictError(
            f"generations directory {gens} is not a directory (a symlink is never followed)",
            hint=f"move {gens} away, then run aux-secrets install again",
        )
    for f in files:
        if locations[f.key][1]:
            _check_link_place(root, f.key, f.path)

    def new_items() -> list[InstalledItem]:
        return [
            InstalledItem(f.key, locations[f.key][0], f.content, f.restart_units, f.reload_units)
            for f in files
        ]

    if dry_run:
        previous = active_generation(root, tree)
        before = read_generation(gens / str(previous)) if previous is not None else {}
        plan = with_pending(make_plan(before, new_items()), *read_pending(gens))
        numbers = _generation_numbers(gens)
        return TreeResult(
            generation=(numbers[-1] if numbers else 0) + 1,
            previous=previous,
            plan=plan,
            written=False,
            warnings=tuple(warnings),
        )

    make_dirs(link.parent)
    if gens_st is None:
        make_dirs(gens.parent)
        with contextlib.suppress(FileExistsError):
            os.mkdir(gens, DIR_MODE)
    os.chown(gens, 0, gid, follow_symlinks=False)
    os.chmod(gens, DIR_MODE)

    with file_lock(gens / LOCK_NAME, what="install lock"):
        _clean_leftovers(gens)
        previous = active_generation(root, tree)
        before = read_generation(gens / str(previous)) if previous is not None else {}
        plan = with_pending(make_plan(before, new_items()), *read_pending(gens))
        numbers = _generation_numbers(gens)
        number = max([*numbers, previous or 0]) + 1
        tmp = gens / f".{number}.tmp"
        try:
            _write_generation(tmp, files, locations, gid)
            os.rename(tmp, gens / str(number))
            fsync_dir(gens)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            still = f"generation {previous}" if previous is not None else "nothing"
            if _no_space(exc):
                raise ExternalError(
                    f"no space left on the device of {gens} while writing generation {number}; "
                    f"{link} still points to {still}",
                    hint=f"free space on the file system of {gens}, then install again",
                ) from None
            raise
        if plan.try_restart or plan.try_reload:
            _write_pending(gens, plan)  # before the swap: a crash after it still restarts
        target = os.path.relpath(gens / str(number), link.parent)
        _replace_symlink(link, target)

        old_links = _generation_links(gens / str(previous)) if previous is not None else {}
        for f in files:
            location, linked = locations[f.key]
            if not linked:
                continue
            place = rooted(root, f.path)
            want = _link_target(root, tree, location, f.path)
            make_dirs(place.parent)
            st = _lstat(place)
            if st is not None and stat.S_ISLNK(st.st_mode) and os.readlink(place) == want:
                continue
            _replace_symlink(place, want)
        current_paths = {f.path for f in files}
        for path, old_location in old_links.values():
            if path in current_paths or not _normalised(path):
                continue
            place = rooted(root, path)
            st = _lstat(place)
            # Only a symlink that is exactly the one we made goes; anything else stays.
            if (
                st is not None
                and stat.S_ISLNK(st.st_mode)
                and os.readlink(place) == _link_target(root, tree, old_location, path)
            ):
                os.unlink(place)

        pruned = _prune(gens, number, tree.keep)
        if after_swap is not None:
            after_swap(plan, number)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(gens / PENDING_NAME)
    return TreeResult(
        generation=number,
        previous=previous,
        plan=plan,
        written=True,
        pruned=pruned,
        warnings=tuple(warnings),
    )


# --------------------------------------------------------------------------- install


@dataclass(frozen=True)
class InstallReport:
    """What ``aux-secrets install`` did (or, with dry_run, would do)."""

    host: str
    for_users: bool
    tree: Tree
    result: TreeResult
    missing: tuple[Missing, ...]
    next_rotation: datetime | None
    requested: tuple[tuple[str, tuple[str, ...]], ...]  # (verb, units) actually asked for


class PayloadSource(Protocol):
    def load(self) -> BundlePayload: ...


class AuditSink(Protocol):
    def append(self, event: AuditEvent) -> object: ...


class CredentialSink(Protocol):
    def refresh_credentials(
        self, manifest: Manifest, payload: BundlePayload, at: datetime
    ) -> tuple[Path, ...]: ...


def trees(settings: Settings) -> tuple[Tree, Tree]:
    """The normal tree and the ``--for-users`` tree (``usersDir`` + ``usersDir.d``)."""
    users_gens = settings.users_dir + ".d"
    normal = Tree(
        link_dir=settings.runtime_dir,
        generations_dir=settings.generations_dir,
        keep=settings.keep_generations,
        group=settings.group,
        forbidden=(settings.store_dir, settings.users_dir, users_gens),
    )
    users = Tree(
        link_dir=settings.users_dir,
        generations_dir=users_gens,
        keep=settings.keep_generations,
        group="root",  # runs before users and groups exist
        forbidden=(settings.store_dir, settings.runtime_dir, settings.generations_dir),
    )
    return normal, users


def install(
    manifest: Manifest,
    store: PayloadSource,
    *,
    root: Path,
    at: datetime,
    requester: UnitRequester | None,
    audit: AuditSink | None = None,
    credentials: CredentialSink | None = None,
    dry_run: bool = False,
    for_users: bool = False,
) -> InstallReport:
    """Read the store once, render what the manifest asks for at ``at``, install it.

    Units are asked for (one call per verb, all units, sorted) only when files changed or
    appeared; the audit entry is appended for every real install. Missing secrets do not
    stop the others: they are in the report, and the caller exits non-zero.
    """
    payload = store.load()
    if payload.host != manifest.host:
        raise ConflictError(
            f"the local store holds a bundle for host {payload.host!r}, "
            f"but the manifest is for {manifest.host!r}",
            hint=f"aux-secrets provision --host {manifest.host}",
        )
    desired = desired_files(
        manifest,
        payload.secrets,
        at,
        for_users=for_users,
        render_template=render_template,
    )
    files = []
    ids: dict[tuple[str, str], tuple[int, int]] = {}
    for d in desired.files:
        if (d.owner, d.group) not in ids:
            ids[d.owner, d.group] = resolve_owner(d.key, d.owner, d.group)
        uid, gid = ids[d.owner, d.group]
        files.append(
            FileToWrite(
                key=d.key,
                path=d.path,
                content=d.content,
                uid=uid,
                gid=gid,
                mode=d.mode,
                restart_units=d.restart_units,
                reload_units=d.reload_units,
            )
        )
    tree = trees(manifest.settings)[1 if for_users else 0]
    requested: list[tuple[str, tuple[str, ...]]] = []

    def after_swap(plan: Plan, generation: int) -> None:
        if audit is not None:
            changed = tuple(k.split(":", 1)[1] for k in plan.touched if k.startswith("secret:"))
            audit.append(
                AuditEvent(
                    event="install",
                    time=at.astimezone(UTC).replace(microsecond=0),
                    host=manifest.host,
                    bundle_id=payload.bundle_id,
                    serial=payload.serial,
                    generation=generation,
                    changed=changed,
                    fingerprints={
                        name: fingerprint(
                            payload.fingerprint_key, name, desired.values[name].current
                        )
                        for name in changed
                    },
                    restart_units=plan.try_restart,
                    reload_units=plan.try_reload,
                )
            )
        if requester is None:
            return
        for verb, units in (
            ("try-restart", plan.try_restart),
            ("try-reload-or-restart", plan.try_reload),
        ):
            if not units:
                continue
            try:
                requester.request(verb, units)
            except ExternalError as exc:
                raise ExternalError(
                    f"generation {generation} is installed, but asking for {verb} failed: "
                    f"{exc.message}",
                    hint=exc.hint,
                ) from None
            requested.append((verb, units))

    if credentials is not None and not dry_run and not for_users:
        # Before the swap: a unit restarted for a rotated value must find its new
        # LoadCredentialEncrypted= file. Only values that changed are sealed again.
        credentials.refresh_credentials(manifest, payload, at)
    result = install_tree(tree, files, root=root, dry_run=dry_run, after_swap=after_swap)
    return InstallReport(
        host=manifest.host,
        for_users=for_users,
        tree=tree,
        result=result,
        missing=desired.missing,
        next_rotation=desired.next_rotation,
        requested=tuple(requested),
    )


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _item(key: str) -> dict[str, str]:
    kind, name = key.split(":", 1)
    return {"kind": kind, "name": name}


def report_json(report: InstallReport) -> dict[str, object]:
    """The ``install --json`` document (names, units, numbers; never a value)."""
    r = report.result
    plan = r.plan
    return {
        "version": 1,
        "host": report.host,
        "dryRun": not r.written,
        "forUsers": report.for_users,
        "runtimeDir": report.tree.link_dir,
        "generation": r.generation,
        "previous": r.previous,
        "changed": [_item(k) for k in plan.changed],
        "appeared": [_item(k) for k in plan.appeared],
        "removed": [_item(k) for k in plan.removed],
        "unchanged": len(plan.unchanged),
        "tryRestart": list(plan.try_restart),
        "tryReloadOrRestart": list(plan.try_reload),
        "requested": [{"verb": v, "units": list(u)} for v, u in report.requested],
        "pruned": list(r.pruned),
        "missing": [{**_item(m.key), "reason": m.reason} for m in report.missing],
        "nextRotation": _iso(report.next_rotation) if report.next_rotation else None,
    }


def report_lines(report: InstallReport) -> list[str]:
    """The human summary ``install`` prints; the last line is ``next rotation: ...``."""
    r = report.result
    plan = r.plan
    where = f"{report.tree.link_dir} -> {report.tree.generations_dir}/{r.generation}"
    counts = (
        f"{len(plan.changed)} changed, {len(plan.appeared)} appeared, "
        f"{len(plan.removed)} removed, {len(plan.unchanged)} unchanged"
    )
    head = (
        f"generation {r.generation} installed: {where} ({counts})"
        if r.written
        else f"dry run: generation {r.generation} would be {where} ({counts}); nothing written"
    )
    lines = [head]
    for label, keys in (("changed", plan.changed), ("appeared", plan.appeared)):
        lines += [f"  {label:<9} {k.replace(':', ' ', 1)}" for k in keys]
    lines += [f"  removed   {k.replace(':', ' ', 1)}" for k in plan.removed]
    verb_units = (("try-restart", plan.try_restart), ("try-reload-or-restart", plan.try_reload))
    for verb, units in verb_units:
        if units:
            lines.append(f"  {verb}: {' '.join(units)}")
    if not plan.try_restart and not plan.try_reload:
        lines.append("  no units to restart or reload")
    lines += [f"  missing   {m.key.replace(':', ' ', 1)}: {m.reason}" for m in report.missing]
    nxt = _iso(report.next_rotation) if report.next_rotation else "none"
    lines.append(f"next rotation: {nxt}")
    return lines


__all__ = [
    "LINKED_PREFIX",
    "META_NAME",
    "FileToWrite",
    "InstallReport",
    "Tree",
    "TreeResult",
    "UnitRequester",
    "active_generation",
    "check_path",
    "generations_gid",
    "install",
    "install_tree",
    "location_of",
    "make_dirs",
    "read_generation",
    "report_json",
    "report_lines",
    "resolve_owner",
    "rooted",
    "trees",
]
