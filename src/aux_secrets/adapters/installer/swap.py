"""The runtime link: which generation is live, the atomic swap, custom-path links, pruning.

The runtime link is a relative symlink to ``generationsDir/N``; the swap renames a new
symlink over it (docs/spec/installer.md, step 7). Files whose manifest path lies outside
the link directory get a symlink *through* the runtime link, so the same swap updates
them (step 8). Pruning keeps the live generation and ``keep`` older ones (step 9).
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from aux_secrets.adapters.installer import generation, safepath
from aux_secrets.adapters.installer.layout import (
    GENERATION_RE,
    FileToWrite,
    Locations,
    Tree,
    normalised,
    rooted,
)
from aux_secrets.core.plan import Missing
from aux_secrets.errors import ConflictError


def active_generation(root: Path, tree: Tree) -> int | None:
    """The generation number ``runtimeDir`` points to; None if absent.

    A runtime dir that is a real directory or file, or a symlink pointing anywhere else
    than a generation of this tree, is refused: something not ours is there.
    """
    link = rooted(root, tree.link_dir)
    st = safepath.lstat_or_none(link)
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


def swap(root: Path, tree: Tree, number: int) -> None:
    """Point the runtime link at generation ``number`` (one rename)."""
    link = rooted(root, tree.link_dir)
    gens = rooted(root, tree.generations_dir)
    safepath.replace_symlink(link, os.path.relpath(gens / str(number), link.parent))


def link_target(root: Path, tree: Tree, location: str, path: str) -> str:
    """The relative target of the symlink at ``path``, through the runtime link."""
    dest = rooted(root, tree.link_dir) / location
    return os.path.relpath(dest, rooted(root, path).parent)


def link_place_problem(root: Path, path: str) -> str | None:
    """Why the symlink of custom path ``path`` cannot be placed, or None if it can.

    Refused: a directory on the way that is a symlink or not a directory, and an entry
    at ``path`` that is not a symlink (a real file there is not ours to replace).
    """
    parent, name = path.rsplit("/", 1)
    try:
        fd = safepath.walk(root, parent)
    except FileNotFoundError:
        return None  # created when the link is placed
    except safepath.UnsafePlace as exc:
        return exc.message
    except OSError as exc:
        return f"{rooted(root, parent)}: {exc.strerror}"
    try:
        st = safepath.entry_at(fd, name)
    finally:
        os.close(fd)
    if st is not None and not stat.S_ISLNK(st.st_mode):
        return (
            f"{rooted(root, path)} exists and is not a symlink; aux-secrets only replaces "
            "its own symlinks there (move it away, then install again)"
        )
    return None


def _place_link(root: Path, path: str, want: str) -> None:
    parent, name = path.rsplit("/", 1)
    fd = safepath.walk(root, parent, create=True)
    try:
        safepath.remove_link_temps_at(fd, name)  # left by a killed run (we hold the lock)
        st = safepath.entry_at(fd, name)
        if st is not None and not stat.S_ISLNK(st.st_mode):
            raise safepath.UnsafePlace(
                f"{rooted(root, path)} exists and is not a symlink; aux-secrets only "
                "replaces its own symlinks there (move it away, then install again)"
            )
        if safepath.link_at(fd, name) != want:
            safepath.replace_symlink_at(fd, name, want)
    finally:
        os.close(fd)


def _remove_link(root: Path, path: str, made: str) -> None:
    """Remove the symlink at ``path`` if it is exactly the one we made; else leave it."""
    parent, name = path.rsplit("/", 1)
    try:
        fd = safepath.walk(root, parent)
    except (OSError, safepath.UnsafePlace):
        return
    try:
        if safepath.link_at(fd, name) == made:
            os.unlink(name, dir_fd=fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def update_links(
    root: Path,
    tree: Tree,
    files: Sequence[FileToWrite],
    locations: Locations,
    old_links: Mapping[str, tuple[str, str]],
) -> list[Missing]:
    """Create or retarget the custom-path symlinks; remove the ones of items now gone.

    Each link is placed through ``safepath.walk``; one that cannot be placed (the
    place changed since the pre-flight check) is returned as missing, the others are
    placed all the same.
    """
    failed: list[Missing] = []
    for f in files:
        location, linked = locations[f.key]
        if not linked:
            continue
        try:
            _place_link(root, f.path, link_target(root, tree, location, f.path))
        except safepath.UnsafePlace as exc:
            failed.append(Missing(f.key, exc.message, provision=False))
        except OSError as exc:
            reason = f"{rooted(root, f.path)}: {exc.strerror}"
            failed.append(Missing(f.key, reason, provision=False))
    current_paths = {f.path for f in files}
    for path, old_location in old_links.values():
        if path in current_paths or not normalised(path):
            continue
        _remove_link(root, path, link_target(root, tree, old_location, path))
    return failed


def prune(gens: Path, active: int, keep: int) -> tuple[int, ...]:
    """Remove all but ``keep`` generations older than ``active``, and any newer one."""
    older = [n for n in generation.numbers(gens) if n < active]
    doomed = older[: max(0, len(older) - keep)]
    for n in doomed:
        shutil.rmtree(gens / str(n))
    newer = [n for n in generation.numbers(gens) if n > active]
    for n in newer:  # written by a run that died before its swap
        shutil.rmtree(gens / str(n))
    return tuple(doomed + newer)
