"""Where each file of a tree goes inside a generation, and which manifest paths are refused.

The names below are the on-disk layout of docs/spec/installer.md; the functions are pure
string work on manifest paths (no file system), shared by the other installer modules.
"""

from __future__ import annotations

import grp
import pwd
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aux_secrets.core.manifest_parse import SYSTEM_DIRS
from aux_secrets.errors import InputError

META_NAME = ".generation.json"
META_VERSION = 1
LINKED_PREFIX = ".paths"
LOCK_NAME = ".lock"
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


Locations = dict[str, tuple[str, bool]]  # key -> (location in the generation, linked)


def rooted(root: Path, path: str) -> Path:
    """``path`` (absolute) below ``root``; ``root`` of ``/`` gives the path itself."""
    return root / path.lstrip("/")


def within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def normalised(path: str) -> bool:
    """An absolute path without empty, ``.`` or ``..`` components."""
    parts = path.split("/")
    return path.startswith("/") and not any(p in ("", ".", "..") for p in parts[1:])


def describe(key: str) -> str:
    """``secret:NAME`` as ``secret NAME``, for messages."""
    kind, name = key.split(":", 1)
    return f"{kind} {name}"


def location_of(tree: Tree, key: str, path: str) -> tuple[str, bool]:
    """Where ``path`` lives inside a generation, and whether ``path`` is a symlink to it."""
    if within(path, tree.link_dir) and path != tree.link_dir:
        rel = path[len(tree.link_dir.rstrip("/")) + 1 :]
        first = rel.split("/", 1)[0]
        if first.startswith("."):
            raise InputError(
                f"{describe(key)}: path {path} uses {first!r} inside {tree.link_dir}, "
                "which aux-secrets reserves (names starting with '.')"
            )
        return rel, False
    kind, name = key.split(":", 1)
    return f"{LINKED_PREFIX}/{kind}s/{name}", True


def check_path(tree: Tree, key: str, path: str) -> None:
    """Refuse a manifest path in a place no secret file may go."""
    if not normalised(path):
        raise InputError(f"{describe(key)}: path {path!r} is not a normalised absolute path")
    if path == tree.link_dir:
        raise InputError(f"{describe(key)}: path {path} is the runtime directory itself")
    places = (tree.generations_dir, *tree.forbidden, *SYSTEM_FORBIDDEN)
    for place in places:
        if within(path, place):
            raise InputError(
                f"{describe(key)}: path {path} is inside {place}, where no secret file may go",
                hint="fix the path in the manifest (aux-secrets manifest check FILE)",
            )


def locate(tree: Tree, files: Sequence[FileToWrite]) -> Locations:
    """Check every path and give each file its location; two files in one place refused."""
    locations: Locations = {}
    seen: dict[str, str] = {}
    for f in files:
        check_path(tree, f.key, f.path)
        loc = location_of(tree, f.key, f.path)
        if loc[0] in seen:
            raise InputError(
                f"{describe(f.key)}: path {f.path} is also written by {describe(seen[loc[0]])}"
            )
        seen[loc[0]] = f.key
        locations[f.key] = loc
    return locations


def lookup_ids(owner: str, group: str) -> tuple[int, int] | tuple[str, str]:
    """Numeric ids of ``owner``/``group``, or (why not, what to do) for a missing account."""
    try:
        uid = pwd.getpwnam(owner).pw_uid
    except KeyError:
        return (
            f"owner {owner!r} does not exist on this host",
            f"create the user {owner!r} before installing, or fix the manifest",
        )
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        return (
            f"group {group!r} does not exist on this host",
            f"create the group {group!r} before installing, or fix the manifest",
        )
    return uid, gid


def resolve_owner(key: str, owner: str, group: str) -> tuple[int, int]:
    """Numeric ids of ``owner``/``group``; an InputError naming a missing account."""
    found = lookup_ids(owner, group)
    if isinstance(found[0], str):
        raise InputError(f"{describe(key)}: {found[0]}", hint=str(found[1]))
    return int(found[0]), int(found[1])


def generations_gid(group: str) -> tuple[int, str | None]:
    """The gid for generation directories; root's group with a warning if ``group`` is absent."""
    try:
        return grp.getgrnam(group).gr_gid, None
    except KeyError:
        return 0, f"group {group!r} does not exist; generation directories use group root"
