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
    describe,
    normalised,
    rooted,
)
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


def check_link_place(root: Path, key: str, path: str) -> None:
    """Refuse a custom path that exists and is not a symlink (not ours to replace)."""
    place = rooted(root, path)
    st = safepath.lstat_or_none(place)
    if st is not None and not stat.S_ISLNK(st.st_mode):
        raise ConflictError(
            f"{describe(key)}: {place} exists and is not a symlink; "
            "aux-secrets only replaces its own symlinks there",
            hint=f"move {place} away, then run aux-secrets install again",
        )


def update_links(
    root: Path,
    tree: Tree,
    files: Sequence[FileToWrite],
    locations: Locations,
    old_links: Mapping[str, tuple[str, str]],
) -> None:
    """Create or retarget the custom-path symlinks; remove the ones of items now gone."""
    for f in files:
        location, linked = locations[f.key]
        if not linked:
            continue
        place = rooted(root, f.path)
        want = link_target(root, tree, location, f.path)
        safepath.make_dirs(place.parent)
        st = safepath.lstat_or_none(place)
        if st is not None and stat.S_ISLNK(st.st_mode) and os.readlink(place) == want:
            continue
        safepath.replace_symlink(place, want)
    current_paths = {f.path for f in files}
    for path, old_location in old_links.values():
        if path in current_paths or not normalised(path):
            continue
        place = rooted(root, path)
        st = safepath.lstat_or_none(place)
        # Only a symlink that is exactly the one we made goes; anything else stays.
        if (
            st is not None
            and stat.S_ISLNK(st.st_mode)
            and os.readlink(place) == link_target(root, tree, old_location, path)
        ):
            os.unlink(place)


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
