"""The generation machinery: layout, owners and modes, swap, pruning, crashes, planted links."""

from __future__ import annotations

import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aux_secrets.adapters.installer import (
    FileToWrite,
    Tree,
    generation,
    install_tree,
    layout,
    restarts,
    safepath,
    swap,
)
from aux_secrets.adapters.installer.swap import active_generation
from aux_secrets.errors import ConflictError, InputError

TREE = Tree(
    link_dir="/run/aux-secrets",
    generations_dir="/run/aux-secrets.d",
    keep=2,
    group="root",
    forbidden=("/var/lib/aux-secrets",),
)


def f(
    name: str,
    content: bytes,
    *,
    path: str | None = None,
    uid: int = 0,
    gid: int = 0,
    mode: int = 0o400,
    restart: tuple[str, ...] = (),
    reload: tuple[str, ...] = (),
    kind: str = "secret",
) -> FileToWrite:
    return FileToWrite(
        key=f"{kind}:{name}",
        path=path or f"/run/aux-secrets/{name}",
        content=content,
        uid=uid,
        gid=gid,
        mode=mode,
        restart_units=restart,
        reload_units=reload,
    )


def gens(root: Path) -> list[str]:
    return sorted(os.listdir(root / "run/aux-secrets.d"))


@pytest.fixture
def account() -> Iterator[tuple[str, int, int]]:
    """A real user and group with a unique name, removed afterwards."""
    name = "auxt" + uuid.uuid4().hex[:8]
    subprocess.run(["groupadd", name], check=True)
    subprocess.run(["useradd", "-M", "-N", "-g", name, "-s", "/usr/sbin/nologin", name], check=True)
    import grp
    import pwd

    try:
        yield name, pwd.getpwnam(name).pw_uid, grp.getgrnam(name).gr_gid
    finally:
        subprocess.run(["userdel", name], check=False)
        subprocess.run(["groupdel", name], check=False)


def test_first_install_layout(tmp_path: Path, account: tuple[str, int, int]) -> None:
    _, uid, gid = account
    result = install_tree(
        TREE,
        [f("db/password", b"pw", uid=uid, gid=gid, mode=0o440, restart=("db.service",))],
        root=tmp_path,
    )
    assert result.generation == 1 and result.previous is None and result.written
    link = tmp_path / "run/aux-secrets"
    assert os.readlink(link) == "aux-secrets.d/1"  # relative: works under --root and at boot
    target = link / "db/password"
    assert target.read_bytes() == b"pw"
    st = os.lstat(target)
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (uid, gid, 0o440)
    for d in (tmp_path / "run/aux-secrets.d", tmp_path / "run/aux-secrets.d/1/db"):
        assert stat.S_IMODE(os.lstat(d).st_mode) == 0o751
    assert result.plan.try_restart == ("db.service",)
    assert active_generation(tmp_path, TREE) == 1
    # Directories we had to create are traversable whatever the umask (tests run with 077).
    assert stat.S_IMODE(os.lstat(tmp_path / "run").st_mode) == 0o755


def test_reinstall_no_change_then_change(tmp_path: Path) -> None:
    files = [f("a", b"1", restart=("a.service",)), f("b", b"2", reload=("b.service",))]
    install_tree(TREE, files, root=tmp_path)
    live = tmp_path / "run/aux-secrets.d/1/a"
    before = live.stat()
    again = install_tree(TREE, files, root=tmp_path)
    # Nothing changed: the live generation stays and none of its files is written again.
    assert again.kept and again.generation == 1 and again.previous == 1
    assert again.plan.is_noop and again.plan.try_restart == () and again.plan.try_reload == ()
    assert gens(tmp_path) == [".lock", "1"]
    assert live.stat().st_ino == before.st_ino and live.stat().st_mtime_ns == before.st_mtime_ns
    changed = install_tree(
        TREE,
        [f("a", b"1", restart=("a.service",)), f("b", b"3", reload=("b.service",))],
        root=tmp_path,
    )
    assert changed.plan.changed == ("secret:b",)
    assert changed.plan.try_restart == () and changed.plan.try_reload == ("b.service",)
    assert not changed.kept and changed.generation == 2


def test_same_contents_with_another_owner_or_mode_is_a_new_generation(tmp_path: Path) -> None:
    # The plan compares contents; a new mode in the manifest, or a live file whose mode
    # or owner was changed on disk, still makes (and repairs with) a new generation.
    install_tree(TREE, [f("a", b"1")], root=tmp_path)
    moded = install_tree(TREE, [f("a", b"1", mode=0o440)], root=tmp_path)
    assert not moded.kept and moded.generation == 2
    assert (tmp_path / "run/aux-secrets/a").stat().st_mode & 0o777 == 0o440
    (tmp_path / "run/aux-secrets.d/2/a").chmod(0o444)
    repaired = install_tree(TREE, [f("a", b"1", mode=0o440)], root=tmp_path)
    assert not repaired.kept and repaired.generation == 3
    assert (tmp_path / "run/aux-secrets/a").stat().st_mode & 0o777 == 0o440
    os.chown(tmp_path / "run/aux-secrets.d/3/a", 0, 1)
    regrouped = install_tree(TREE, [f("a", b"1", mode=0o440)], root=tmp_path)
    assert not regrouped.kept and regrouped.generation == 4
    assert (tmp_path / "run/aux-secrets/a").stat().st_gid == 0
    kept = install_tree(TREE, [f("a", b"1", mode=0o440)], root=tmp_path)
    assert kept.kept and kept.generation == 4


def test_no_change_puts_back_a_removed_custom_path_link_without_a_new_generation(
    tmp_path: Path,
) -> None:
    files = [f("tls", b"key1", path="/etc/nginx/tls.key")]
    install_tree(TREE, files, root=tmp_path)
    link = tmp_path / "etc/nginx/tls.key"
    target = os.readlink(link)
    link.unlink()
    again = install_tree(TREE, files, root=tmp_path)
    assert again.kept and again.generation == 1 and again.refused == ()
    assert os.readlink(link) == target and link.read_bytes() == b"key1"


def test_pruning_keeps_active_plus_keep(tmp_path: Path) -> None:
    for i in range(6):
        result = install_tree(TREE, [f("a", str(i).encode())], root=tmp_path)
    assert result.generation == 6
    assert gens(tmp_path) == [".lock", "4", "5", "6"]
    assert (tmp_path / "run/aux-secrets/a").read_bytes() == b"5"


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    result = install_tree(TREE, [f("a", b"1", restart=("a.service",))], root=tmp_path, dry_run=True)
    assert not result.written and result.generation == 1
    assert result.plan.try_restart == ("a.service",)
    assert list(tmp_path.iterdir()) == []
    install_tree(TREE, [f("a", b"1")], root=tmp_path)
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    dry = install_tree(TREE, [f("a", b"2", restart=("a.service",))], root=tmp_path, dry_run=True)
    assert dry.plan.changed == ("secret:a",) and dry.generation == 2
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_custom_path_is_a_symlink_through_runtime_dir(tmp_path: Path) -> None:
    install_tree(TREE, [f("tls", b"key1", path="/etc/nginx/tls.key")], root=tmp_path)
    place = tmp_path / "etc/nginx/tls.key"
    assert place.is_symlink()
    assert os.readlink(place) == "../../run/aux-secrets/.paths/secrets/tls"
    assert place.read_bytes() == b"key1"
    assert stat.S_IMODE(os.lstat(tmp_path / "etc/nginx").st_mode) == 0o755
    install_tree(TREE, [f("tls", b"key2", path="/etc/nginx/tls.key")], root=tmp_path)
    assert place.read_bytes() == b"key2"
    # Dropped from the manifest: the symlink we made goes away.
    install_tree(TREE, [f("other", b"x")], root=tmp_path)
    assert not place.is_symlink() and not place.exists()


def test_custom_path_regular_file_refuses_that_item_only(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/precious").write_bytes(b"keep me")
    result = install_tree(TREE, [f("x", b"v", path="/etc/precious"), f("y", b"w")], root=tmp_path)
    assert (tmp_path / "etc/precious").read_bytes() == b"keep me"
    assert (tmp_path / "run/aux-secrets/y").read_bytes() == b"w"
    assert [(m.key, m.provision) for m in result.refused] == [("secret:x", False)]
    assert "is not a symlink" in result.refused[0].reason
    assert result.plan.appeared == ("secret:y",)


def test_planted_symlink_at_runtime_dir_is_never_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "run").mkdir()
    os.symlink(victim, tmp_path / "run/aux-secrets")
    with pytest.raises(ConflictError, match="not to a generation"):
        install_tree(TREE, [f("a", b"1")], root=tmp_path)
    assert list(victim.iterdir()) == []
    assert os.readlink(tmp_path / "run/aux-secrets") == str(victim)


def test_runtime_dir_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run/aux-secrets").mkdir(parents=True)
    with pytest.raises(ConflictError, match="is a directory"):
        install_tree(TREE, [f("a", b"1")], root=tmp_path)


def test_planted_symlink_at_generations_dir_is_refused(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / "run").mkdir()
    os.symlink(victim, tmp_path / "run/aux-secrets.d")
    with pytest.raises(ConflictError, match="not a directory"):
        install_tree(TREE, [f("a", b"1")], root=tmp_path)
    assert list(victim.iterdir()) == []


def test_planted_symlink_inside_old_generation_not_read(tmp_path: Path) -> None:
    install_tree(TREE, [f("a", b"1", restart=("a.service",))], root=tmp_path)
    old = tmp_path / "run/aux-secrets.d/1/a"
    old.unlink()
    (tmp_path / "elsewhere").write_bytes(b"1")
    os.symlink(tmp_path / "elsewhere", old)
    # The planted link is not followed: the file counts as appeared, not unchanged.
    result = install_tree(TREE, [f("a", b"1", restart=("a.service",))], root=tmp_path)
    assert result.plan.appeared == ("secret:a",)


@pytest.mark.parametrize(
    "path", ["/run/aux-secrets.d/1/x", "/var/lib/aux-secrets/x", "/nix/store/abc-x", "/proc/x"]
)
def test_forbidden_places_refused(tmp_path: Path, path: str) -> None:
    with pytest.raises(InputError, match="no secret file may go"):
        install_tree(TREE, [f("x", b"v", path=path)], root=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_reserved_name_in_runtime_dir_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="reserves"):
        install_tree(TREE, [f("x", b"v", path="/run/aux-secrets/.paths/x")], root=tmp_path)


def test_missing_owner_named() -> None:
    with pytest.raises(InputError, match="owner 'no-such-user-aux'"):
        layout.resolve_owner("secret:db", "no-such-user-aux", "root")
    with pytest.raises(InputError, match="group 'no-such-group-aux'"):
        layout.resolve_owner("secret:db", "root", "no-such-group-aux")


def test_missing_generations_group_falls_back_to_root(tmp_path: Path) -> None:
    tree = Tree("/run/aux-secrets", "/run/aux-secrets.d", 1, "no-such-group-aux")
    result = install_tree(tree, [f("a", b"1")], root=tmp_path)
    assert any("no-such-group-aux" in w for w in result.warnings)
    assert os.lstat(tmp_path / "run/aux-secrets.d").st_gid == 0


def test_crash_while_writing_leaves_old_generation_and_is_cleaned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    install_tree(TREE, [f("a", b"old"), f("b", b"old")], root=tmp_path)
    real = safepath.write_file
    calls = {"n": 0}

    def dying(*args: object, **kwargs: object) -> None:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # stands for the process dying mid-generation
        real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(safepath, "write_file", dying)
    with pytest.raises(KeyboardInterrupt):
        install_tree(TREE, [f("a", b"new"), f("b", b"new")], root=tmp_path)
    monkeypatch.setattr(safepath, "write_file", real)
    assert ".2.tmp" in gens(tmp_path)
    assert (tmp_path / "run/aux-secrets/a").read_bytes() == b"old"
    assert (tmp_path / "run/aux-secrets/b").read_bytes() == b"old"
    result = install_tree(TREE, [f("a", b"new"), f("b", b"new")], root=tmp_path)
    assert ".2.tmp" not in gens(tmp_path)
    assert result.previous == 1 and result.plan.changed == ("secret:a", "secret:b")


def test_crash_between_rename_and_swap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_tree(TREE, [f("a", b"old")], root=tmp_path)

    def dying(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(safepath, "replace_symlink", dying)
    with pytest.raises(KeyboardInterrupt):
        install_tree(TREE, [f("a", b"new", restart=("a.service",))], root=tmp_path)
    monkeypatch.undo()
    assert active_generation(tmp_path, TREE) == 1
    assert (tmp_path / "run/aux-secrets/a").read_bytes() == b"old"
    # The next run compares with what is live (1), not with the orphan 2.
    result = install_tree(TREE, [f("a", b"new", restart=("a.service",))], root=tmp_path)
    assert result.previous == 1 and result.generation == 3
    assert result.plan.try_restart == ("a.service",)


def test_no_stray_temporary_names_after_success(tmp_path: Path) -> None:
    install_tree(TREE, [f("a", b"1", path="/etc/a")], root=tmp_path)
    names = [p.name for p in tmp_path.rglob("*")]
    assert not [n for n in names if n.endswith(".tmp")]


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (a size-limited loop file system where tmpfs cannot be mounted)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    tmpfs = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mnt)],
        capture_output=True,
        check=False,
    )
    if tmpfs.returncode != 0:
        image = tmp_path / "small.img"
        with image.open("wb") as handle:
            handle.truncate(1024 * 1024)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True, capture_output=True)
        subprocess.run(["mount", "-o", "loop", str(image), str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_keeps_old_generation(small_fs: Path) -> None:
    from aux_secrets.errors import ExternalError

    install_tree(TREE, [f("a", b"old")], root=small_fs)
    big = [f(f"s{i}", b"x" * 16384) for i in range(40)]  # 640 KiB > 256 KiB
    with pytest.raises(ExternalError, match="no space left") as info:
        install_tree(TREE, big, root=small_fs)
    assert "still points to generation 1" in info.value.message
    assert (small_fs / "run/aux-secrets/a").read_bytes() == b"old"
    assert gens(small_fs) == [".lock", "1"]
    # Once it fits again, the next run works.
    assert install_tree(TREE, [f("a", b"new")], root=small_fs).generation == 2


def _concurrent_install(root: str, index: int) -> None:
    install_tree(TREE, [f("a", str(index).encode()), f("b", b"same")], root=Path(root))


def test_concurrent_runs_are_serialised(tmp_path: Path) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_concurrent_install, args=(str(tmp_path), i)) for i in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    tree = Tree(TREE.link_dir, TREE.generations_dir, keep=100, group="root")
    assert active_generation(tmp_path, tree) == 6
    assert gens(tmp_path) == [".lock", "4", "5", "6"]
    assert (tmp_path / "run/aux-secrets/b").read_bytes() == b"same"
    for n in ("4", "5", "6"):
        meta = tmp_path / "run/aux-secrets.d" / n / layout.META_NAME
        assert meta.exists()


@pytest.mark.parametrize(
    "meta",
    [
        b"",
        b"{",
        b"\xff\xfe garbage",
        b'{"version": 2, "items": {}}',
        b'{"version": 1}',
        b"[]",
        b'{"version": 1, "items": {"secret:a": {"location": "../../../etc/passwd"}}}',
    ],
)
def test_unreadable_previous_metadata_counts_everything_as_appeared(
    tmp_path: Path, meta: bytes
) -> None:
    install_tree(TREE, [f("a", b"1", restart=("a.service",))], root=tmp_path)
    meta_path = tmp_path / "run/aux-secrets.d/1" / layout.META_NAME
    meta_path.chmod(0o600)
    meta_path.write_bytes(meta)
    # When in doubt, restart: a broken record of the old generation never hides a change.
    result = install_tree(TREE, [f("a", b"1", restart=("a.service",))], root=tmp_path)
    assert result.plan.appeared == ("secret:a",)
    assert result.plan.try_restart == ("a.service",)
    assert (tmp_path / "run/aux-secrets/a").read_bytes() == b"1"


def test_truncated_previous_file_counts_as_changed(tmp_path: Path) -> None:
    install_tree(TREE, [f("a", b"12345", restart=("a.service",))], root=tmp_path)
    old = tmp_path / "run/aux-secrets.d/1/a"
    old.chmod(0o600)
    old.write_bytes(b"123")
    result = install_tree(TREE, [f("a", b"12345", restart=("a.service",))], root=tmp_path)
    assert result.plan.changed == ("secret:a",)


def test_planted_symlink_at_custom_path_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"untouched")
    (tmp_path / "etc").mkdir()
    os.symlink(victim, tmp_path / "etc/app.key")
    install_tree(TREE, [f("k", b"secret", path="/etc/app.key")], root=tmp_path)
    assert victim.read_bytes() == b"untouched"
    assert (tmp_path / "etc/app.key").read_bytes() == b"secret"
    assert os.readlink(tmp_path / "etc/app.key") == "../run/aux-secrets/.paths/secrets/k"


CRASH_POINTS = ["first-file", "middle-file", "rename", "swap", "swap-done", "prune"]


def _die_at(point: str, root: str, content: bytes) -> None:
    """Child process: install and die (os._exit, no cleanup) at ``point``."""
    counter = {"files": 0}
    real_write, real_replace = safepath.write_file, safepath.replace_symlink
    real_prune, real_rename = swap.prune, os.rename

    def write(*args: Any) -> None:
        counter["files"] += 1
        if (point == "first-file" and counter["files"] == 1) or (
            point == "middle-file" and counter["files"] == 3
        ):
            os._exit(9)
        real_write(*args)

    def rename(src: Any, dst: Any) -> None:
        real_rename(src, dst)
        if point == "rename":
            os._exit(9)

    def replace(link: Path, target: str) -> None:
        if point == "swap" and link.name == "aux-secrets":
            os._exit(9)
        real_replace(link, target)
        if point == "swap-done" and link.name == "aux-secrets":
            os._exit(9)

    def prune(*args: Any) -> Any:
        if point == "prune":
            os._exit(9)
        return real_prune(*args)

    safepath.write_file = write  # type: ignore[assignment]
    safepath.replace_symlink = replace  # type: ignore[assignment]
    swap.prune = prune  # type: ignore[assignment]
    os.rename = rename  # type: ignore[assignment]
    install_tree(TREE, crash_files(content), root=Path(root))
    os._exit(0)


def crash_files(content: bytes) -> list[FileToWrite]:
    return [
        f("a", content, restart=("a.service",)),
        f("dir/b", content),
        f("c", content),
        f("d", content, path="/etc/custom"),
    ]


def assert_complete(root: Path, expected: bytes) -> None:
    link = root / "run/aux-secrets"
    gen = active_generation(root, TREE)
    assert gen is not None
    held = generation.read(root / "run/aux-secrets.d" / str(gen))
    assert sorted(held) == ["secret:a", "secret:c", "secret:d", "secret:dir/b"]
    assert {content for _, content in held.values()} == {expected}
    assert (link / "a").read_bytes() == expected


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_at_any_point_leaves_a_complete_generation(tmp_path: Path, point: str) -> None:
    import multiprocessing

    install_tree(TREE, crash_files(b"old"), root=tmp_path)
    child = multiprocessing.get_context("fork").Process(
        target=_die_at, args=(point, str(tmp_path), b"new")
    )
    child.start()
    child.join(60)
    assert child.exitcode == 9
    live = b"new" if point in ("swap-done", "prune") else b"old"
    assert_complete(tmp_path, live)
    # The next run cleans up and installs; restarts are asked for against what was live.
    result = install_tree(TREE, crash_files(b"new"), root=tmp_path)
    assert_complete(tmp_path, b"new")
    assert not [n for n in gens(tmp_path) if n.endswith(".tmp")]
    # Changed since the live generation, or live but its restart never confirmed: asked.
    assert result.plan.try_restart == ("a.service",)
    assert (tmp_path / "etc/custom").read_bytes() == b"new"
    assert restarts.PENDING_NAME not in gens(tmp_path)
    assert install_tree(TREE, crash_files(b"new"), root=tmp_path).plan.try_restart == ()


def test_failed_unit_request_is_retried_by_next_run(tmp_path: Path) -> None:
    from aux_secrets.errors import ExternalError

    def failing(plan: object, generation: int) -> None:
        raise ExternalError("systemctl failed")

    files = [f("a", b"1", restart=("a.service",)), f("b", b"1", reload=("b.service",))]
    with pytest.raises(ExternalError):
        install_tree(TREE, files, root=tmp_path, after_swap=failing)
    assert (tmp_path / "run/aux-secrets/a").read_bytes() == b"1"
    again = install_tree(TREE, files, root=tmp_path)
    assert again.plan.is_noop
    assert (again.plan.try_restart, again.plan.try_reload) == (("a.service",), ("b.service",))
    assert install_tree(TREE, files, root=tmp_path).plan.try_restart == ()


@pytest.mark.parametrize("record", [b"", b"{", b"[]", b'{"tryRestart": [1]}', b"\xff"])
def test_broken_pending_record_is_ignored(tmp_path: Path, record: bytes) -> None:
    install_tree(TREE, [f("a", b"1", restart=("a.service",))], root=tmp_path)
    (tmp_path / "run/aux-secrets.d" / restarts.PENDING_NAME).write_bytes(record)
    result = install_tree(TREE, [f("a", b"1", restart=("a.service",))], root=tmp_path)
    assert result.plan.try_restart == ()
    assert restarts.PENDING_NAME not in gens(tmp_path)
