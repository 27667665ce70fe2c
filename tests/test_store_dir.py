"""The store directory adapter: files, lock, crashes, rekey journal, git, external sources."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest

from aux_secrets.adapters import store as store_mod
from aux_secrets.adapters.store import StoreDir, match_source, parse_sources, source_argv
from aux_secrets.core import storefile as sf
from aux_secrets.core.auxv1 import AuxV1
from aux_secrets.core.gokey import GokeyUnseeded
from aux_secrets.errors import (
    AuxError,
    ConflictError,
    DecryptError,
    ExternalError,
    InputError,
    NotFoundError,
    PolicyError,
)
from tests.helpers import REPO, require_program

OLD = AuxV1(bytes(range(32)))
NEW = AuxV1(bytes(range(1, 33)))


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture
def store(tmp_path: Path) -> StoreDir:
    return StoreDir(tmp_path / "store")


def test_add_get_and_file_layout(store: StoreDir) -> None:
    path = store.add(OLD, "github/deploy-token", b"tok\x00\xff", note="n", expires=date(2027, 1, 1))
    assert path == store.root / "github" / "deploy-token.aux"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    secret = store.read(OLD, "github/deploy-token")
    assert (secret.current, secret.retired, secret.note) == (b"tok\x00\xff", (), "n")
    assert secret.meta is not None and secret.meta.version == 1
    assert secret.meta.expires == date(2027, 1, 1)
    assert store.names() == ["github/deploy-token"]
    assert (store.root / ".gitignore").read_bytes() == store_mod.GITIGNORE_TEXT


def test_add_refuses_existing_and_keeps_it(store: StoreDir) -> None:
    store.add(OLD, "a", b"first")
    before = snapshot(store.root)
    with pytest.raises(ConflictError, match="a already exists"):
        store.add(OLD, "a", b"second")
    assert snapshot(store.root) == before


def test_set_keeps_retired_values(store: StoreDir) -> None:
    store.add(OLD, "t", b"v1")
    store.set(OLD, "t", b"v2")
    store.set(OLD, "t", b"v3", keep=2)
    secret = store.read(OLD, "t")
    assert secret.current == b"v3"
    assert secret.retired == (b"v2", b"v1")
    assert secret.retired_versions == (2, 1)
    store.set(OLD, "t", b"v4")  # default keep 1
    assert store.read(OLD, "t").retired == (b"v3",)
    store.set(OLD, "t", b"v5", keep=0)
    secret = store.read(OLD, "t")
    assert secret.retired == () and secret.meta is not None and secret.meta.version == 5


def test_set_of_missing_or_damaged_changes_nothing(store: StoreDir) -> None:
    with pytest.raises(NotFoundError):
        store.set(OLD, "missing", b"x")
    store.add(OLD, "t", b"v1")
    path = store.path_for("t")
    path.write_bytes(path.read_bytes().replace(b"version: 1", b"version: 2"))
    before = snapshot(store.root)
    with pytest.raises(DecryptError, match="store secret t cannot be decrypted"):
        store.set(OLD, "t", b"v2")
    assert snapshot(store.root) == before


def test_remove_prunes_empty_directories(store: StoreDir) -> None:
    store.add(OLD, "a/b/c", b"x")
    store.add(OLD, "a/d", b"y")
    store.remove("a/b/c")
    assert not (store.root / "a" / "b").exists()
    assert (store.root / "a").is_dir()
    with pytest.raises(NotFoundError):
        store.remove("a/b/c")


def test_rename_keeps_everything_but_the_name(store: StoreDir) -> None:
    store.add(OLD, "old/name", b"v1", note="n", expires=date(2027, 5, 1))
    store.set(OLD, "old/name", b"v2")
    before = store.read(OLD, "old/name")
    store.rename(OLD, "old/name", "new/name")
    after = store.read(OLD, "new/name")
    assert (after.current, after.retired, after.note) == (before.current, before.retired, "n")
    assert before.meta is not None and after.meta is not None
    assert (after.meta.created, after.meta.updated, after.meta.version, after.meta.expires) == (
        before.meta.created,
        before.meta.updated,
        before.meta.version,
        before.meta.expires,
    )
    assert store.names() == ["new/name"]
    assert not (store.root / "old").exists()


def test_rename_onto_existing_is_refused(store: StoreDir) -> None:
    store.add(OLD, "a", b"1")
    store.add(OLD, "b", b"2")
    before = snapshot(store.root)
    with pytest.raises(ConflictError):
        store.rename(OLD, "a", "b")
    assert snapshot(store.root) == before


def test_file_renamed_over_another_is_refused(store: StoreDir) -> None:
    store.add(OLD, "a", b"1")
    store.add(OLD, "b", b"2")
    os.replace(store.path_for("a"), store.path_for("b"))
    with pytest.raises(DecryptError) as info:
        store.read(OLD, "b")
    assert info.value.message == sf.opaque_error("b").message


def test_file_from_another_vault_is_refused(tmp_path: Path) -> None:
    mine, theirs = StoreDir(tmp_path / "mine"), StoreDir(tmp_path / "theirs")
    theirs.add(NEW, "shared/name", b"theirs")
    mine.add(OLD, "shared/name", b"mine")
    os.replace(theirs.path_for("shared/name"), mine.path_for("shared/name"))
    with pytest.raises(DecryptError, match="shared/name"):
        mine.read(OLD, "shared/name")


def test_entries_need_no_key_and_flag_damage(store: StoreDir) -> None:
    store.add(OLD, "good", b"x", expires=date(2027, 1, 1))
    store.add(OLD, "renamed", b"x")
    os.replace(store.path_for("renamed"), store.path_for("renamed").with_name("moved.aux"))
    store.path_for("garbage").write_bytes(b"not a store file")
    (store.root / "notes.txt").write_text("x")
    entries = {e.name: e for e in store.entries()}
    assert set(entries) == {"good", "moved", "garbage"}
    assert entries["good"].meta is not None and entries["good"].meta.expires == date(2027, 1, 1)
    assert entries["moved"].meta is None and "another name" in (entries["moved"].problem or "")
    assert entries["garbage"].meta is None and "garbage" in (entries["garbage"].problem or "")


def test_verify_reports_each_bad_file(store: StoreDir) -> None:
    for name in ("a", "b", "c/d"):
        store.add(OLD, name, name.encode())
    data = bytearray(store.path_for("b").read_bytes())
    data[-5] ^= 1
    store.path_for("b").write_bytes(bytes(data))
    store.path_for("c/d").write_bytes(store.path_for("c/d").read_bytes()[:40])
    (store.root / "stray.txt").write_text("x")
    report = store.verify(OLD)
    assert report.good == ("a",)
    assert [n for n, _ in report.bad] == ["b", "c/d"]
    assert all(name in message for name, message in report.bad)
    assert report.stray == ("stray.txt",)
    assert store.verify(NEW).good == ()


def test_value_limits(store: StoreDir) -> None:
    with pytest.raises(InputError, match="1 MiB"):
        store.add(OLD, "big", b"x" * (sf.MAX_VALUE + 1))
    assert not store.path_for("big").exists()
    store.add(OLD, "empty", b"")
    assert store.read(OLD, "empty").current == b""


@pytest.mark.parametrize("name", ["../escape", "/abs", "a//b", "-x", "a\nb", ".git/x"])
def test_traversal_names_touch_nothing(tmp_path: Path, name: str) -> None:
    store = StoreDir(tmp_path / "vault" / "store")
    with pytest.raises(PolicyError):
        store.add(OLD, name, b"x")
    assert not (tmp_path / "vault").exists()


def test_gokey_unseeded_scheme_keys_files(store: StoreDir) -> None:
    scheme = GokeyUnseeded(b"correct horse")
    store.add(scheme, "g", b"v")
    assert store.read(scheme, "g").current == b"v"
    with pytest.raises(DecryptError):
        store.read(GokeyUnseeded(b"wrong horse"), "g")


# --- crashes ------------------------------------------------------------------------


def test_failure_before_rename_leaves_old_value(
    store: StoreDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add(OLD, "t", b"old")

    def boom(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        store.set(OLD, "t", b"new")
    monkeypatch.undo()
    assert store.read(OLD, "t").current == b"old"
    assert [p.name for p in store.path_for("t").parent.iterdir() if p.name.endswith(".tmp")] == []


def _run_killed(tmp_path: Path, body: str) -> None:
    """Run ``body`` in a fresh interpreter that kills itself (SIGKILL) where it says so."""
    script = tmp_path / "crash.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, signal, sys
            from pathlib import Path
            sys.path.insert(0, {src!r})
            from aux_secrets.adapters import store_rekey
            from aux_secrets.adapters.store import StoreDir
            from aux_secrets.core.auxv1 import AuxV1
            OLD = AuxV1(bytes(range(32)))
            NEW = AuxV1(bytes(range(1, 33)))
            root = Path({root!r})
            def die(*args, **kwargs):
                os.kill(os.getpid(), signal.SIGKILL)
            """
        ).format(src=str(REPO / "src"), root=str(tmp_path / "store"))
        + textwrap.dedent(body)
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, check=False)
    assert result.returncode == -9, result.stderr.decode()


def test_real_crash_between_temp_file_and_rename(tmp_path: Path) -> None:
    store = StoreDir(tmp_path / "store")
    store.add(OLD, "t", b"old")
    _run_killed(
        tmp_path,
        """
        os.replace = die
        StoreDir(root).set(OLD, "t", b"new")
        """,
    )
    temps = [p for p in (tmp_path / "store").iterdir() if p.name.endswith(".tmp")]
    assert len(temps) == 1  # the new value got as far as its temp file
    assert store.read(OLD, "t").current == b"old"
    assert store.names() == ["t"]
    assert store.verify(OLD).stray == (temps[0].name,)


def _rekey_store(tmp_path: Path, count: int = 6) -> StoreDir:
    store = StoreDir(tmp_path / "store")
    for i in range(count):
        store.add(OLD, f"group{i % 2}/s{i}", f"value {i}".encode())
    return store


def _under(store: StoreDir, scheme: AuxV1) -> bool:
    report = store.verify(scheme)
    return not report.bad and len(report.good) > 0


def test_rekey_moves_every_file(tmp_path: Path) -> None:
    store = _rekey_store(tmp_path)
    store.set(OLD, "group0/s0", b"second")
    result = store.rekey(OLD, NEW)
    assert result.count == 6 and not result.already
    assert _under(store, NEW) and store.verify(OLD).good == ()
    secret = store.read(NEW, "group0/s0")
    assert (secret.current, secret.retired) == (b"second", (b"value 0",))
    assert not list(store.root.rglob(".*.rekey"))
    assert not (store.root / store_mod.PENDING).exists()
    again = store.rekey(OLD, NEW)
    assert again.already and again.count == 0


def test_rekey_with_a_bad_file_changes_nothing(tmp_path: Path) -> None:
    store = _rekey_store(tmp_path)
    store.add(NEW, "intruder", b"x")  # under the wrong keys
    before = snapshot(store.root)
    with pytest.raises(DecryptError, match=r"1 store secret cannot be decrypted.*intruder"):
        store.rekey(OLD, NEW)
    assert snapshot(store.root) == before


@pytest.mark.parametrize("kill_at", [1, 3, 6])
def test_rekey_crash_while_staging_rolls_back(tmp_path: Path, kill_at: int) -> None:
    store = _rekey_store(tmp_path)
    before = snapshot(store.root)
    _run_killed(
        tmp_path,
        f"""
        calls = []
        real = store_rekey._write_new
        def counting(path, data):
            calls.append(path)
            if len(calls) == {kill_at}:
                die()
            real(path, data)
        store_rekey._write_new = counting
        StoreDir(root).rekey(OLD, NEW)
        """,
    )
    assert (store.root / store_mod.PENDING).exists()
    assert store.names()  # a reader finishes the recovery
    assert snapshot(store.root) == before
    assert _under(store, OLD)


@pytest.mark.parametrize("kill_at", [1, 2, 4, 7])
def test_rekey_crash_after_commit_point_rolls_forward(tmp_path: Path, kill_at: int) -> None:
    """os.replace #1 renames the journal into place; #2.. move the files."""
    store = _rekey_store(tmp_path)
    _run_killed(
        tmp_path,
        f"""
        calls = []
        real = os.replace
        def counting(src, dst):
            calls.append(dst)
            if len(calls) == {kill_at}:
                die()
            real(src, dst)
        os.replace = counting
        StoreDir(root).rekey(OLD, NEW)
        """,
    )
    if kill_at == 1:  # killed before the journal existed: roll back
        assert store.verify(OLD).bad == ()  # verify recovers first
        assert _under(store, OLD)
    else:
        assert (store.root / store_mod.JOURNAL).exists()
        assert _under(store, NEW)
        assert not (store.root / store_mod.JOURNAL).exists()
    assert not list(store.root.rglob(".*.rekey"))


def test_rekey_from_another_store_into_an_empty_one(tmp_path: Path) -> None:
    old_store = _rekey_store(tmp_path / "old")
    before = snapshot(old_store.root)
    new_store = StoreDir(tmp_path / "new" / "store")
    result = new_store.rekey(OLD, NEW, source=old_store)
    assert result.count == 6
    assert _under(new_store, NEW)
    assert snapshot(old_store.root) == before  # the source is not touched
    with pytest.raises(ConflictError, match="already holds secrets"):
        new_store.rekey(OLD, NEW, source=old_store)


def test_failed_rekey_from_another_store_leaves_nothing(tmp_path: Path) -> None:
    old_store = _rekey_store(tmp_path / "old")
    old_store.add(NEW, "zz/intruder", b"x")
    new_store = StoreDir(tmp_path / "new" / "store")
    with pytest.raises(DecryptError, match="zz/intruder"):
        new_store.rekey(OLD, NEW, source=old_store)
    assert sorted(p.name for p in new_store.root.iterdir()) == [".gitignore", ".lock"]


def test_concurrent_writers_do_not_lose_updates(tmp_path: Path) -> None:
    store = StoreDir(tmp_path / "store")
    store.add(OLD, "counter", b"0")
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO / "src")!r})
        from pathlib import Path
        from aux_secrets.adapters.store import StoreDir
        from aux_secrets.core.auxv1 import AuxV1
        store = StoreDir(Path({str(store.root)!r}))
        scheme = AuxV1(bytes(range(32)))
        for i in range(15):
            store.set(scheme, "counter", sys.argv[1].encode() + str(i).encode(), keep=0)
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, tag]) for tag in ("a", "b", "c")]
    assert [p.wait() for p in procs] == [0, 0, 0]
    meta = store.read(OLD, "counter").meta
    assert meta is not None and meta.version == 1 + 45


# --- git ------------------------------------------------------------------------------


def _git_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "GIT_AUTHOR_NAME": "Test",
        "GIT_AUTHOR_EMAIL": "test@example.invalid",
        "GIT_COMMITTER_NAME": "Test",
        "GIT_COMMITTER_EMAIL": "test@example.invalid",
        "GIT_CONFIG_GLOBAL": "/dev/null",
    }.items():
        monkeypatch.setenv(key, value)


def test_git_commits_only_touched_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aux_secrets.adapters import git

    require_program("git", "git")
    _git_env(monkeypatch)
    vault = tmp_path / "vault"
    vault.mkdir()
    subprocess.run(["git", "init", "-q", str(vault)], check=True)
    (vault / "unrelated.txt").write_text("staged by the user")
    subprocess.run(["git", "-C", str(vault), "add", "unrelated.txt"], check=True)
    assert git.is_repository(vault)
    assert not git.is_repository(tmp_path)

    def commit(paths: object, message: str) -> None:
        git.commit_paths(vault, list(paths), message)  # type: ignore[call-overload]

    store = StoreDir(vault / "store", committer=commit)
    store.add(OLD, "odd [name]*?", b"x")
    store.add(OLD, "b/c", b"y")
    store.rename(OLD, "b/c", "d")
    store.remove("d")
    log = subprocess.run(
        ["git", "-C", str(vault), "log", "--format=%s", "--name-status"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    subjects = [line for line in log.splitlines() if line.startswith("store ")]
    assert subjects == [
        "store rm d",
        "store rename b/c d",
        "store add b/c",
        "store add odd [name]*?",
    ]
    assert "unrelated.txt" not in log
    status = subprocess.run(
        ["git", "-C", str(vault), "status", "--porcelain"], capture_output=True, text=True
    ).stdout
    assert status.strip() == "A  unrelated.txt"  # the user's staging is untouched


def test_git_failure_is_an_external_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aux_secrets.adapters import git

    require_program("git", "git")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    for key in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("EMAIL", "")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ExternalError, match="git commit failed"):
        git.commit_paths(tmp_path, [tmp_path / "f"], "store add f")


# --- external sources -------------------------------------------------------------------


def test_sources_table_is_checked() -> None:
    assert parse_sources(None) == {}
    assert parse_sources({"pass/": "pass show aux/{name}"}) == {"pass/": "pass show aux/{name}"}
    for bad in (
        {"": "x"},
        {"/abs": "x"},
        {"p/": ""},
        {"p/": 3},
        {"p/": "{name} x"},
        {"p/": "a 'b"},
    ):
        with pytest.raises(InputError):
            parse_sources(bad)
    with pytest.raises(InputError):
        parse_sources(["not", "a", "table"])


def test_longest_prefix_wins_and_names_are_single_arguments() -> None:
    sources = {"op/": "op read op://vault/{name}", "op/team/": "pass show 'team dir/{name}'"}
    assert match_source(sources, "op/x") == ("op/", sources["op/"])
    assert match_source(sources, "op/team/y") == ("op/team/", sources["op/team/"])
    assert match_source(sources, "op/") is None and match_source(sources, "other") is None
    argv = source_argv(sources["op/team/"], "op/team/", "op/team/a b; rm -rf $HOME")
    assert argv == ["pass", "show", "team dir/a b; rm -rf $HOME"]
    assert source_argv("cmd {fullname}", "p/", "p/x") == ["cmd", "p/x"]
    with pytest.raises(PolicyError):
        source_argv("cmd {name}", "p/", "p/../x")


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "source.sh"
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o700)
    return str(path)


def test_run_source_output(tmp_path: Path) -> None:
    echo = _script(tmp_path, 'printf "value for %s\\n" "$1"\n')
    assert store_mod.run_source(f"{echo} {{name}}", "p/", "p/a b") == b"value for a b"
    failing = _script(tmp_path, "exit 3\n")
    with pytest.raises(ExternalError, match="exited with status 3"):
        store_mod.run_source(failing, "p/", "p/x")
    with pytest.raises(ExternalError, match="not found"):
        store_mod.run_source("/nonexistent/program {name}", "p/", "p/x")
    big = _script(tmp_path, f"head -c {sf.MAX_VALUE + 10} /dev/zero\n")
    with pytest.raises(InputError, match="more than"):
        store_mod.run_source(big, "p/", "p/x")


def test_vault_store_settings(tmp_path: Path) -> None:
    class FakeVault:
        def __init__(self, table: dict[str, object]) -> None:
            self.root = tmp_path
            self.store_dir = tmp_path / "store"
            self.table = table

        def section(self, name: str) -> dict[str, object]:
            assert name == "store"
            return self.table

    vs = store_mod.vault_store(FakeVault({"commit": False, "sources": {"p/": "echo {name}"}}))
    assert vs.commit is False and vs.dir.committer is None
    assert vs.get(OLD, "p/hello").current == b"hello"
    with pytest.raises(PolicyError, match="external source"):
        vs.refuse_external("p/hello", "add")
    vs.dir.add(OLD, "own", b"mine")
    assert vs.get(OLD, "own").current == b"mine"
    with pytest.raises(InputError, match=r"store\.commit"):
        store_mod.vault_store(FakeVault({"commit": "no"}))
    with pytest.raises(AuxError):
        store_mod.vault_store(FakeVault({"sources": {"p/": 1}}))


def test_failed_changes_do_not_create_the_store(tmp_path: Path) -> None:
    store = StoreDir(tmp_path / "store")
    with pytest.raises(NotFoundError):
        store.remove("a")
    with pytest.raises(NotFoundError):
        store.set(OLD, "a", b"x")
    with pytest.raises(NotFoundError):
        store.rename(OLD, "a", "b")
    with pytest.raises(NotFoundError):
        store.read(OLD, "a")
    assert not store.root.exists()
    assert store.entries() == [] and store.names() == []


def test_set_keep_value_changes_only_note_and_expiry(store: StoreDir) -> None:
    store.add(OLD, "t", b"v1", note="old note")
    store.set(OLD, "t", b"v2")
    store.set(OLD, "t", None, expires=date(2028, 2, 29), note="new note")
    secret = store.read(OLD, "t")
    assert (secret.current, secret.retired, secret.note) == (b"v2", (b"v1",), "new note")
    assert secret.meta is not None and secret.meta.version == 3
    assert secret.meta.expires == date(2028, 2, 29)
    store.set(OLD, "t", None, expires=None)
    secret = store.read(OLD, "t")
    assert secret.meta is not None and secret.meta.expires is None and secret.note == "new note"


def test_planted_links_never_redirect_writes(tmp_path: Path) -> None:
    from aux_secrets.errors import InputError

    outside = tmp_path / "outside"
    outside.mkdir()
    store_root = tmp_path / "store"
    store_root.mkdir()
    (store_root / "github").symlink_to(outside)
    store = StoreDir(store_root)
    with pytest.raises(InputError, match="symbolic link"):
        store.add(OLD, "github/deploy-token", b"value")
    assert list(outside.iterdir()) == []

    linked = tmp_path / "linked-store"
    linked.symlink_to(outside)
    with pytest.raises(InputError, match="symbolic link"):
        StoreDir(linked).add(OLD, "token", b"value")
    assert list(outside.iterdir()) == []
