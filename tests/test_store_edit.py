"""`store edit`: the value in $EDITOR from a private RAM directory, saved only if changed."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from aux_secrets.adapters.editor import (
    NEOVIM_FLAGS,
    VIM_FLAGS,
    editor_argv,
    editor_command,
    vim_family,
)
from aux_secrets.adapters.ramdir import filesystem_type
from tests.helpers import assert_one_line_error, cli, require_program

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


# vim and neovim keep copies of what they edit under $HOME. This user configuration
# asks for every one of them (swap, backup, undo, history) in folders of a temporary
# HOME, then edits the file on VimEnter (after all startup flags) and records which
# swap files existed while the file was open.
LEAKY_CONFIG = """set nocompatible
set swapfile directory=~/swap//
set backup writebackup backupdir=~/backup// backupskip=
set undofile undodir=~/undo//
set {history}
function! EditAndQuit() abort
  call writefile(glob($HOME . '/swap/*', 0, 1), $HOME . '/swap-seen')
  call setline(1, 'vim-new-value')
  wq
endfunction
autocmd VimEnter * call EditAndQuit()
"""

VIMS = {
    # name: (apt package, $EDITOR, config file under HOME, history option)
    "vim": ("vim", "vim --not-a-term", ".vimrc", "viminfo='100,<50"),
    "nvim": ("neovim", "nvim --headless", ".config/nvim/init.vim", "shada='100,<50"),
}


def leaky_home(tmp_path: Path, which: str) -> tuple[Path, dict[str, str], str]:
    package, command, config, history = VIMS[which]
    require_program(which, package)
    home = tmp_path / "home"
    for folder in ("swap", "backup", "undo"):
        (home / folder).mkdir(parents=True)
    (home / config).parent.mkdir(parents=True, exist_ok=True)
    (home / config).write_text(LEAKY_CONFIG.format(history=history))
    env = {
        "HOME": str(home),
        "TERM": "dumb",  # vim waits for terminal replies a real terminal would send
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "VISUAL": "",
    }
    return home, env, command


def traces(home: Path, *values: bytes) -> list[str]:
    """Files under ``home`` the editor left that hold a value or are one of its copies."""
    copies = ("swap", "backup", "undo", "shada")
    found = []
    for path in home.rglob("*"):
        if not path.is_file() or path.name in ("swap-seen", ".vimrc", "init.vim"):
            continue
        name = str(path.relative_to(home))
        holds_value = any(value in path.read_bytes() for value in values)
        is_copy = name == ".viminfo" or any(part in copies for part in path.parent.parts)
        if holds_value or is_copy:
            found.append(name)
    swap_seen = (home / "swap-seen").read_text().split()
    return sorted(found) + [f"swap file {name}" for name in swap_seen]


@pytest.mark.parametrize("which", sorted(VIMS))
def test_the_leaky_configuration_does_leak_without_the_flags(which: str, tmp_path: Path) -> None:
    home, env, command = leaky_home(tmp_path, which)
    target = tmp_path / "plain"
    target.write_bytes(b"vim-old-value")
    done = subprocess.run(
        [*command.split(), str(target)], env={**os.environ, **env}, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    assert target.read_bytes() == b"vim-new-value\n"
    left = traces(home, b"vim-old-value", b"vim-new-value")
    assert any(name.startswith("undo/") for name in left), left
    assert any(name.startswith("backup/") for name in left), left
    assert any(name.startswith("swap file ") for name in left), left
    history = ".viminfo" if which == "vim" else ".local/share/nvim/shada/main.shada"
    assert history in left or ".local/state/nvim/shada/main.shada" in left, left


@pytest.mark.parametrize("which", sorted(VIMS))
def test_store_edit_in_vim_leaves_no_copy_under_home(
    which: str, vault: tuple[Path, Path], tmp_path: Path
) -> None:
    root, pw = vault
    home, env, command = leaky_home(tmp_path, which)
    done = run(root, pw, {**env, "EDITOR": command})
    assert done.returncode == 0, done.stderr
    assert get(root, pw) == b"vim-new-value"
    assert traces(home, b"old-value", b"vim-new-value") == []


MODELINE = b"# vim: set fileformat=dos :"


@pytest.mark.parametrize("which", sorted(VIMS))
def test_a_modeline_in_the_value_does_not_change_how_it_is_saved(
    which: str, vault: tuple[Path, Path], tmp_path: Path
) -> None:
    root, pw = vault
    home, env, command = leaky_home(tmp_path, which)
    config = home / VIMS[which][2]
    config.write_text(config.read_text() + "set modeline\n")
    # Control: this configuration does apply the value's modeline to a plain edit.
    plain = tmp_path / "plain"
    plain.write_bytes(b"vim-old-value\n" + MODELINE + b"\n")
    done = subprocess.run([*command.split(), str(plain)], env={**os.environ, **env})
    assert done.returncode == 0
    assert plain.read_bytes() == b"vim-new-value\r\n" + MODELINE + b"\r\n"
    args = ("--vault", root, "--password-file", pw, "--no-commit")
    value = b"old-value\n" + MODELINE
    assert cli("store", "set", "wifi/home", *args, input=value).returncode == 0
    edited = run(root, pw, {**env, "EDITOR": command})
    assert edited.returncode == 0, edited.stderr
    assert get(root, pw) == b"vim-new-value\n" + MODELINE


def test_vim_gets_the_flags_first_and_other_editors_run_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vim = require_program("vim", "vim")
    file = tmp_path / "f"
    assert editor_argv(["code", "--wait"], file) == ["code", "--wait", str(file)]
    assert editor_argv(["nano"], file) == ["nano", str(file)]
    assert editor_argv(["vim", "-u", "NONE", "--"], file) == [
        "vim",
        *VIM_FLAGS,
        "-u",
        "NONE",
        "--",
        str(file),
    ]
    assert editor_argv(["nvim"], file)[1:-1] == list(NEOVIM_FLAGS)
    # "vi" is judged by what it runs: a link to vim gets the flags, another vi does not.
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "vi").symlink_to(vim)
    assert vim_family(str(tmp_path / "bin" / "vi")) == "vim"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "vi").symlink_to(require_program("true", "coreutils"))
    assert vim_family(str(tmp_path / "other" / "vi")) is None
    monkeypatch.setenv("VISUAL", "")
    monkeypatch.setenv("EDITOR", "code --wait 'a b'")
    assert editor_command() == ["code", "--wait", "a b"]
