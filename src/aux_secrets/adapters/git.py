"""Commit store changes when the vault lives in a git repository, pass-style.

Only the paths a change touched are staged and committed; whatever else the user
has staged stays as it was. Paths are handed to git literally (no globbing) on
standard input, so any number of them and any valid name works.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from aux_secrets.errors import ExternalError


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_LITERAL_PATHSPECS"] = "1"
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def _git(
    root: Path, *args: str, paths: Sequence[str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    argv = ["git", "-C", str(root), *args]
    data = None
    if paths is not None:
        argv += ["--pathspec-from-file=-", "--pathspec-file-nul"]
        data = b"".join(p.encode("utf-8", "surrogateescape") + b"\0" for p in paths)
    return subprocess.run(argv, input=data, capture_output=True, env=_env(), check=False)


def is_repository(root: Path) -> bool:
    """Whether ``root`` is inside a git work tree (and git is installed)."""
    if shutil.which("git") is None:
        return False
    result = _git(root, "rev-parse", "--is-inside-work-tree")
    return result.returncode == 0 and result.stdout.strip() == b"true"


def _relative(root: Path, paths: Sequence[Path]) -> list[str]:
    return [os.path.relpath(path, root) for path in paths]


def commit_paths(root: Path, paths: Sequence[Path], message: str) -> bool:
    """Stage ``paths`` (added, changed or deleted) and commit only them.

    Returns False when none of them changed. Raises ExternalError with git's first
    line of complaint when git refuses (for example, no author identity).
    """
    existing = _relative(root, [p for p in paths if p.exists()])
    missing = _relative(root, [p for p in paths if not p.exists()])
    if existing:
        _check(_git(root, "add", paths=existing), "git add")
    if missing:
        _check(
            _git(root, "rm", "--cached", "-q", "--ignore-unmatch", "-r", paths=missing), "git rm"
        )
    top = _git(root, "rev-parse", "--show-toplevel")
    _check(top, "git rev-parse")
    top_dir = Path(top.stdout.decode("utf-8", "surrogateescape").strip())
    base = root.resolve()
    ours = {os.path.relpath(base / os.path.relpath(p, root), top_dir.resolve()) for p in paths}
    staged = _git(top_dir, "diff", "--cached", "--name-only", "--no-renames", "-z")
    _check(staged, "git diff")
    names = (p.decode("utf-8", "surrogateescape") for p in staged.stdout.split(b"\0") if p)
    changed = [name for name in names if name in ours]
    if not changed:
        return False
    # git names paths relative to the top of the work tree; commit from there.
    _check(_git(top_dir, "commit", "-q", "-m", message, paths=changed), "git commit")
    return True


def _check(result: subprocess.CompletedProcess[bytes], what: str) -> None:
    if result.returncode != 0:
        lines = result.stderr.decode("utf-8", "replace").strip().splitlines()
        detail = lines[0] if lines else f"exit status {result.returncode}"
        raise ExternalError(f"{what} failed: {detail}")


def behind_upstream(root: Path) -> tuple[int, str] | None:
    """(commits, upstream name) when the vault's branch is behind its upstream as last
    fetched (no network: ``git fetch`` is the operator's); None when it is not, when it
    has no upstream, or when the vault is not a git repository."""
    if not is_repository(root):
        return None
    upstream = _git(root, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}")
    if upstream.returncode != 0:
        return None
    count = _git(root, "rev-list", "--count", "HEAD..@{upstream}")
    if count.returncode != 0:
        return None
    try:
        behind = int(count.stdout.strip())
    except ValueError:
        return None
    name = upstream.stdout.decode("utf-8", "replace").strip()
    return (behind, name) if behind > 0 else None
