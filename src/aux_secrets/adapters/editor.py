"""The command line that opens a secret's temporary file in $VISUAL or $EDITOR.

The file itself sits in a private RAM directory (adapters/ramdir.py), but vim and
neovim keep their own copies of what they edit under $HOME: a swap file, a backup
file, an undo file, and the viminfo or ShaDa history (registers, search patterns).
pass users get the same protection from pass's redact_pass.vim plugin; here it needs
no plugin: for vim and neovim the command gets flags that switch these off for this
one run. ``-n`` stops the swap file before the file is read, ``-i NONE`` the history
file, and a ``-c`` command, which runs after the user's vimrc, turns off backup,
write-backup, undo file and history. Modelines are off too: a value holding a line
such as ``vim: set fileformat=dos :`` would otherwise change how the value is saved.
They are read with the file, after the vimrc, so a ``--cmd`` autocommand switches
them off for the buffer just before it is read. The flags hold no value. Any other
editor is run exactly as $EDITOR says.
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

from aux_secrets.errors import UsageError

DEFAULT_EDITOR = "vi"
_NO_TRACES = "set nobackup nowritebackup noswapfile noundofile"
_NO_MODELINES = ("--cmd", "autocmd BufReadPre * setlocal nomodeline")
VIM_FLAGS = ("-n", "-i", "NONE", *_NO_MODELINES, "-c", f"{_NO_TRACES} viminfo=")
NEOVIM_FLAGS = ("-n", "-i", "NONE", *_NO_MODELINES, "-c", f"{_NO_TRACES} shada=")


def editor_command() -> list[str]:
    """$VISUAL or $EDITOR (default vi) split as a shell would, e.g. "code --wait"."""
    text = os.environ.get("VISUAL") or os.environ.get("EDITOR") or DEFAULT_EDITOR
    try:
        argv = shlex.split(text)
    except ValueError:
        raise UsageError("$EDITOR does not parse as a command line") from None
    if not argv:
        raise UsageError("$EDITOR is empty")
    return argv


def vim_family(program: str) -> str | None:
    """ "vim" or "nvim" when ``program`` runs one of them, else None.

    The name is taken after resolving symlinks, because "vi" is vim on Debian and
    NixOS but nvi or busybox elsewhere, and those take none of vim's flags.
    """
    found = shutil.which(program)
    name = Path(os.path.realpath(found) if found else program).name
    if name == "nvim":
        return "nvim"
    if name in ("vim", "gvim", "rvim") or name.startswith("vim."):
        return "vim"
    return None


def private_flags(program: str) -> tuple[str, ...]:
    """The flags that keep ``program`` from copying the file under $HOME; none if unknown."""
    family = vim_family(program)
    if family == "nvim":
        return NEOVIM_FLAGS
    if family == "vim":
        return VIM_FLAGS
    return ()


def editor_argv(command: list[str], path: Path) -> list[str]:
    """The full command line that edits ``path`` with ``command`` (from editor_command).

    The flags go right after the program name: a "--" among the user's own
    arguments would turn anything after it into file names, and the user's own
    -c commands still run after ours.
    """
    program, *arguments = command
    return [program, *private_flags(program), *arguments, str(path)]
