"""`store edit`: the value in $EDITOR from a private RAM directory, saved only if changed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from aux_secrets.adapters.ramdir import filesystem_type
from tests.helpers import assert_one_line_error, cli

FAST = ("--argon2-memory", "8", "--argon2-time", "1")


@pytest.fixture
def vault(tmp_path: Path) -> tuple[Path, Path]:
    pw = tmp_path / "pw"
    pw.write_text("store edit test password 91\n")
    root = tmp_path / "v"
    assert cli("init", root, "--password-file", pw, *FAST).returncode == 0
    args = ("--vault", root, "--password-file", pw, "--no-commit")
    assert cli("store", "add", "wifi/home", *args, input=b"old-value").returncode == 0
    return root, pw


def editor(tmp_path: Path, body: str) -> tuple[str, Path]:
    """An $EDITOR that records where and how it was given the file, then runs ``body``."""
    log = tmp_path / "editor.log"
    script = tmp_path / "editor.sh"
    script.write_text(
        "#!/bin/sh\n"
        f'stat -c "%a %n" "$1" "$(dirname "$1")" >> {log}\n'
        f'cat "$1" >> {log}.seen\n'
        f"{body}\n"
    )
    script.chmod(0o755)
    return str(script), log


def run(
    root: Path, pw: Path, env: dict[str, str], *extra: str
) -> subprocess.CompletedProcess[bytes]:
    return cli(
        "store",
        "edit",
        "wifi/home",
        *extra,
        "--vault",
        root,
        "--password-file",
        pw,
        "--no-commit",
        env=env,
    )


def get(root: Path, pw: Path) -> bytes:
    return cli("store", "get", "wifi/home", "--vault", root, "--password-file", pw).stdout


def test_edit_saves_a_changed_value_from_a_ram_directory(
    vault: tuple[Path, Path], tmp_path: Path
) -> None:
    root, pw = vault
    script, log = editor(tmp_path, 'printf "new-value\\n" > "$1"')
    done = cli(
        "store",
        "edit",
        "wifi/home",
        "--vault",
        root,
        "--password-file",
        pw,
        "--no-commit",
        env={"EDITOR": script},
    )
    assert done.returncode == 0, done.stderr
    assert b"updated wifi/home" in done.stderr
    # The editor's final newline is dropped: the old value had none.
    assert get(root, pw) == b"new-value"
    assert Path(f"{log}.seen").read_bytes() == b"old-value"
    (file_line, dir_line) = log.read_text().splitlines()
    mode, path = file_line.split(" ", 1)
    assert mode == "600"
    assert dir_line.split(" ", 1)[0] == "700"
    assert filesystem_type(Path(path).parent.parent) in ("tmpfs", "ramfs")
    assert not Path(path).exists() and not Path(path).parent.exists()
    # The previous value is kept as retired, as 'store set' does.
    shown = cli(
        "store", "get", "wifi/home", "--retired", "1", "--vault", root, "--password-file", pw
    )
    assert shown.stdout == b"old-value"


def test_unchanged_is_not_saved(vault: tuple[Path, Path], tmp_path: Path) -> None:
    root, pw = vault
    store_file = next((root / "store").rglob("home*"))
    before = store_file.read_bytes()
    script, _ = editor(tmp_path, "true")
    done = run(root, pw, {"EDITOR": script})
    assert done.returncode == 0
    assert b"no change, nothing saved" in done.stderr
    assert store_file.read_bytes() == before


def test_a_failing_editor_saves_nothing(vault: tuple[Path, Path], tmp_path: Path) -> None:
    root, pw = vault
    script, _ = editor(tmp_path, 'printf changed > "$1"; exit 3')
    assert_one_line_error(run(root, pw, {"EDITOR": script}), "exited with status 3; not saved")
    assert get(root, pw) == b"old-value"
    assert_one_line_error(
        run(root, pw, {"EDITOR": str(tmp_path / "no-such-editor")}),
        "could not be started",
    )


def test_a_disk_is_refused(vault: tuple[Path, Path], tmp_path: Path) -> None:
    root, pw = vault
    disk = Path("/var/tmp")
    if filesystem_type(disk) in ("tmpfs", "ramfs"):
        pytest.skip("/var/tmp is a RAM filesystem here")
    script, log = editor(tmp_path, 'printf changed > "$1"')
    done = run(root, pw, {"EDITOR": script, "AUX_SECRETS_EDIT_DIR": str(disk)})
    assert_one_line_error(done, "refusing to put it on a disk")
    assert not log.exists()
    assert get(root, pw) == b"old-value"


def test_same_checks_as_store_set(vault: tuple[Path, Path], tmp_path: Path) -> None:
    root, pw = vault
    script, _ = editor(tmp_path, 'head -c 1100000 /dev/zero | tr "\\0" x > "$1"')
    assert_one_line_error(run(root, pw, {"EDITOR": script}), "wifi/home")
    assert get(root, pw) == b"old-value"
    missing = cli(
        "store",
        "edit",
        "wifi/hom",
        "--vault",
        root,
        "--password-file",
        pw,
        env={"EDITOR": script},
    )
    assert_one_line_error(missing, "does not exist")
    assert b"did you mean wifi/home?" in missing.stderr
    assert_one_line_error(cli("store", "edit", "../x", "--vault", root), "")


def test_mountinfo_parsing() -> None:
    info = (
        "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "23 22 0:5 / /dev/shm rw - tmpfs tmpfs rw\n"
        "24 22 0:6 / /run/user/1000 rw - tmpfs tmpfs rw\n"
        "25 22 0:7 / /mnt/with\\040space rw - ramfs none rw\n"
    )
    assert filesystem_type(Path("/dev/shm/x"), info) == "tmpfs"
    assert filesystem_type(Path("/dev/shmother"), info) == "ext4"
    assert filesystem_type(Path("/mnt/with space/a"), info) == "ramfs"
    assert filesystem_type(Path("/home"), info) == "ext4"
