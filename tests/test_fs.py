from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aux_secrets.adapters.fs import atomic_write, file_lock, read_bounded
from aux_secrets.errors import ConflictError, InputError, NotFoundError


def test_atomic_write_creates_private_file(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    atomic_write(target, b"value")
    assert target.read_bytes() == b"value"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


def test_atomic_write_exclusive_refuses_existing(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_bytes(b"old")
    with pytest.raises(ConflictError):
        atomic_write(target, b"new", exclusive=True)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


def test_atomic_write_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        atomic_write(tmp_path / "missing" / "file", b"x")


def test_atomic_write_onto_directory_names_it(tmp_path: Path) -> None:
    # The error names the target, not the temp file, and nothing is left behind.
    target = tmp_path / "dir"
    target.mkdir()
    (target / "kept").write_bytes(b"old")
    with pytest.raises(InputError, match=f"{target} is a directory"):
        atomic_write(target, b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir"]
    assert [p.name for p in target.iterdir()] == ["kept"]


@pytest.mark.parametrize("via_link", [False, True], ids=["fifo", "link to fifo"])
def test_atomic_write_refuses_a_special_file(tmp_path: Path, via_link: bool) -> None:
    # `--output /dev/null` or `/dev/stdout` must not replace the node with a secret file.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    target = fifo
    if via_link:
        target = tmp_path / "stdout"
        target.symlink_to(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        atomic_write(target, b"secret")
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert target.is_symlink() == via_link
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({"fifo", target.name})


def test_atomic_write_replaces_a_link_to_a_file_or_nothing(tmp_path: Path) -> None:
    (tmp_path / "old").write_bytes(b"old")
    (tmp_path / "link").symlink_to(tmp_path / "old")
    (tmp_path / "dangling").symlink_to(tmp_path / "missing")
    atomic_write(tmp_path / "link", b"new")
    atomic_write(tmp_path / "dangling", b"new")
    assert (tmp_path / "old").read_bytes() == b"old"
    assert not (tmp_path / "link").is_symlink() and (tmp_path / "link").read_bytes() == b"new"
    assert not (tmp_path / "dangling").is_symlink()


def test_crash_before_rename_keeps_old_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "secret"
    atomic_write(target, b"old")

    def crash(*_: object) -> None:
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]


def test_read_bounded_limits(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_bytes(b"x" * 11)
    with pytest.raises(InputError, match="larger than 10 bytes"):
        read_bounded(target, 10)
    assert read_bounded(target, 11) == b"x" * 11
    with pytest.raises(NotFoundError):
        read_bounded(tmp_path / "nope", 10)


def test_lock_nonblocking_conflict(tmp_path: Path) -> None:
    lock = tmp_path / "lock"
    with file_lock(lock), pytest.raises(ConflictError), file_lock(lock, wait=False):
        pass
