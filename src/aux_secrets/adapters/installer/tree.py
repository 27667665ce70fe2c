"""Install a list of files as the next generation of one tree (docs/spec/installer.md).

The steps, in order, under ``generationsDir/.lock``: clean up, read the live generation,
plan, write and publish ``N``, record pending units, swap, links, prune, then the
caller's ``after_swap`` (audit entry and unit requests). Each step lives in its own
module; this one only orders them.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aux_secrets.adapters.fs import file_lock, remove_stale_temps
from aux_secrets.adapters.installer import generation, restarts, safepath, swap
from aux_secrets.adapters.installer.layout import (
    DIR_MODE,
    LOCK_NAME,
    FileToWrite,
    Locations,
    Tree,
    generations_gid,
    locate,
    rooted,
)
from aux_secrets.core.plan import InstalledItem, Missing, Plan, make_plan, with_pending
from aux_secrets.errors import ConflictError


@dataclass(frozen=True)
class TreeResult:
    generation: int  # the generation written (or that would be, with dry_run)
    previous: int | None
    plan: Plan
    written: bool
    pruned: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()
    refused: tuple[Missing, ...] = ()  # items not installed because of their place
    kept: bool = False  # nothing changed: the live generation stayed, nothing was rewritten


def _plan(
    root: Path, tree: Tree, files: Sequence[FileToWrite], locations: Locations
) -> tuple[int | None, Plan]:
    """The live generation and the plan against it, pending units included."""
    gens = rooted(root, tree.generations_dir)
    previous = swap.active_generation(root, tree)
    before = generation.read(gens / str(previous)) if previous is not None else {}
    new = [
        InstalledItem(f.key, locations[f.key][0], f.content, f.restart_units, f.reload_units)
        for f in files
    ]
    return previous, with_pending(make_plan(before, new), *restarts.read_pending(gens))


def _check_tree_places(root: Path, tree: Tree) -> None:
    """Refuse a tree whose directories an unprivileged user could change (or a symlink).

    Path-based steps inside the generations directory and beside the runtime link are
    safe only because nobody but root can change those directories or their parents.
    """
    for directory in (tree.link_dir.rpartition("/")[0], tree.generations_dir):
        try:
            os.close(safepath.walk(root, directory, trusted=True))
        except FileNotFoundError:
            continue  # created below, by root
        except safepath.UnsafePlace as exc:
            raise ConflictError(
                exc.message,
                hint="keep runtimeDir and generationsDir below directories only root can "
                "change, such as /run",
            ) from None


def _make_generations_dir(root: Path, tree: Tree, gid: int) -> None:
    """Create the runtime link's directory and the generations directory, through walk."""
    os.close(safepath.walk(root, tree.link_dir.rpartition("/")[0], create=True, trusted=True))
    parent, name = tree.generations_dir.rsplit("/", 1)
    pfd = safepath.walk(root, parent, create=True, trusted=True)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, DIR_MODE, dir_fd=pfd)
        fd = os.open(name, safepath.DIR_FLAGS, dir_fd=pfd)
    finally:
        os.close(pfd)
    try:
        if why := safepath.untrusted(os.fstat(fd)):
            raise ConflictError(
                f"generations directory {rooted(root, tree.generations_dir)} {why}",
                hint="move it away, then run aux-secrets install again",
            )
        st = os.fstat(fd)
        if (st.st_uid, st.st_gid) != (0, gid):
            os.fchown(fd, 0, gid)
        if stat.S_IMODE(st.st_mode) != DIR_MODE:
            os.fchmod(fd, DIR_MODE)
    finally:
        os.close(fd)


def _keep(
    root: Path,
    tree: Tree,
    files: Sequence[FileToWrite],
    locations: Locations,
    live: int,
    plan: Plan,
    after_swap: Callable[[Plan, int], None] | None,
    warnings: list[str],
    refused: list[Missing],
) -> TreeResult:
    """Nothing changed: the live generation stays, and no file of it is written again.

    The custom-path links are checked (and placed only if one is gone or wrong), leftovers
    of dead runs pruned, and ``after_swap`` still runs: the audit entry records the run,
    and units of a pending record (a crash after an earlier swap) are still asked for.
    """
    gens = rooted(root, tree.generations_dir)
    refused += swap.update_links(root, tree, files, locations, {})
    pruned = swap.prune(gens, live, tree.keep)
    if after_swap is not None:
        after_swap(plan, live)
    restarts.clear_pending(gens)
    return TreeResult(
        generation=live,
        previous=live,
        plan=plan,
        written=True,
        pruned=pruned,
        warnings=tuple(warnings),
        refused=tuple(refused),
        kept=True,
    )


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
    locations = locate(tree, files)
    gid, warning = generations_gid(tree.group)
    warnings = [warning] if warning else []

    link = rooted(root, tree.link_dir)
    gens = rooted(root, tree.generations_dir)
    gens_st = safepath.lstat_or_none(gens)
    if gens_st is not None and not stat.S_ISDIR(gens_st.st_mode):
        raise ConflictError(
            f"generations directory {gens} is not a directory (a symlink is never followed)",
            hint=f"move {gens} away, then run aux-secrets install again",
        )
    _check_tree_places(root, tree)
    refused: list[Missing] = []
    placeable = []
    for f in files:
        why = swap.link_place_problem(root, f.path) if locations[f.key][1] else None
        if why is None:
            placeable.append(f)
        else:
            refused.append(Missing(f.key, why, provision=False))
    files = placeable

    if dry_run:
        previous, plan = _plan(root, tree, files, locations)
        numbers = generation.numbers(gens)
        return TreeResult(
            generation=(numbers[-1] if numbers else 0) + 1,
            previous=previous,
            plan=plan,
            written=False,
            warnings=tuple(warnings),
            refused=tuple(refused),
        )

    _make_generations_dir(root, tree, gid)
    with file_lock(gens / LOCK_NAME, what="install lock"):
        generation.clean_leftovers(gens)
        remove_stale_temps(gens, lambda target: target == restarts.PENDING_NAME)
        safepath.remove_link_temps(link.parent, link.name)
        previous, plan = _plan(root, tree, files, locations)
        if (
            previous is not None
            and plan.is_noop
            and generation.holds(gens / str(previous), files, locations, gid)
        ):
            return _keep(
                root, tree, files, locations, previous, plan, after_swap, warnings, refused
            )
        number = max([*generation.numbers(gens), previous or 0]) + 1
        still = f"generation {previous}" if previous is not None else "nothing"
        generation.publish(
            gens, number, files, locations, gid, still=f"{link} still points to {still}"
        )
        restarts.write_pending(gens, plan)  # before the swap: a crash after it still restarts
        swap.swap(root, tree, number)
        old_links = generation.links(gens / str(previous)) if previous is not None else {}
        refused += swap.update_links(root, tree, files, locations, old_links)
        pruned = swap.prune(gens, number, tree.keep)
        if after_swap is not None:
            after_swap(plan, number)
        restarts.clear_pending(gens)
    return TreeResult(
        generation=number,
        previous=previous,
        plan=plan,
        written=True,
        pruned=pruned,
        warnings=tuple(warnings),
        refused=tuple(refused),
    )
