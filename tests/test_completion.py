"""Shell completion (bash, zsh, fish) and the man page, both from the CLI's own help."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, cli

BIN = str(Path(sys.executable).parent)


def complete(shell: str, words: str, cword: int | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    env["_AUX_SECRETS_COMPLETE"] = f"complete_{shell}"
    if shell == "bash":
        env |= {"COMP_WORDS": words, "COMP_CWORD": str(cword)}
    else:
        env["_TYPER_COMPLETE_ARGS"] = words
        if shell == "fish":
            env["_TYPER_COMPLETE_FISH_ACTION"] = "get-args"
    done = subprocess.run(
        [sys.executable, "-m", "aux_secrets"], capture_output=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def test_scripts_for_each_shell() -> None:
    bash = cli("completion", "bash")
    assert bash.returncode == 0
    assert b"complete -o default -F _aux_secrets_completion aux-secrets" in bash.stdout
    assert b"compdef _aux_secrets_completion aux-secrets" in cli("completion", "zsh").stdout
    assert b"complete --command aux-secrets" in cli("completion", "fish").stdout
    assert_one_line_error(cli("completion", "tcsh"), "no completion for shell 'tcsh'")


def test_bash_completes_commands_subcommands_and_options() -> None:
    script = cli("completion", "bash").stdout.decode()
    call = '; _aux_secrets_completion aux-secrets; echo "${COMPREPLY[*]}"'
    probe = "\n".join(
        [
            script,
            "COMP_WORDS=(aux-secrets sto); COMP_CWORD=1" + call,
            "COMP_WORDS=(aux-secrets store e); COMP_CWORD=2" + call,
            "COMP_WORDS=(aux-secrets derive --vau); COMP_CWORD=2" + call,
        ]
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
    done = subprocess.run(["bash", "-c", probe], capture_output=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    commands, store_subs, options = done.stdout.decode().splitlines()
    assert commands.split() == ["store"]
    assert store_subs.split() == ["edit"]
    assert options.split() == ["--vault"]


def test_zsh_and_fish_protocols_answer() -> None:
    assert "store" in complete("zsh", "aux-secrets sto")
    assert "agent" in complete("fish", "aux-secrets ag")
    assert "unlock" in complete("bash", "aux-secrets agent un", 2)


def test_man_page_lists_every_command_and_renders_cleanly(tmp_path: Path) -> None:
    done = cli("manpage")
    assert done.returncode == 0
    page = done.stdout.decode()
    assert page.startswith(".TH AUX\\-SECRETS 1")
    for command in ("derive", "store edit", "agent unlock", "provision", "completion"):
        assert '.SS "aux\\-secrets ' + command + '"' in page, command
    assert '.SS "aux\\-secrets agent serve"' not in page  # hidden stays hidden
    assert "AUX_SECRETS_AGENT_TIMEOUT" in page
    groff = shutil.which("groff")
    if groff is None:
        pytest.skip("groff is not installed")
    source = tmp_path / "aux-secrets.1"
    source.write_bytes(done.stdout)
    rendered = subprocess.run(
        [groff, "-man", "-Tutf8", "-ww", str(source)], capture_output=True, check=False
    )
    assert rendered.returncode == 0
    assert rendered.stderr == b"", rendered.stderr
    assert b"store edit" in rendered.stdout.replace(b"\x08", b"")
