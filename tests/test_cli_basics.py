from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from tests.helpers import assert_one_line_error, cli


def test_help_lists_usage() -> None:
    result = cli("--help")
    assert result.returncode == 0
    assert b"Usage: aux-secrets" in result.stdout


def test_unknown_option_is_one_line_error_with_hint() -> None:
    result = cli("--no-such-option")
    assert result.returncode == 2
    assert_one_line_error(result, "--no-such-option")
    assert b"aux-secrets: hint: " in result.stderr


def test_version() -> None:
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith(b"aux-secrets ")


def test_version_builds_no_command_and_says_what_typer_says() -> None:
    # --version is answered before typer or any command module is imported; the text is
    # the one the eager --version option of the full app prints.
    probe = (
        "import sys\n"
        "from aux_secrets.cli.main import main\n"
        "code = main(['--version'])\n"
        "prefixes = ('typer', 'click', 'aux_secrets.cli.')\n"
        "print(code, sorted(m for m in sys.modules if m.startswith(prefixes)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, check=True)
    version, report = done.stdout.decode().splitlines()
    assert version.startswith("aux-secrets ")
    assert report == "0 ['aux_secrets.cli.main']"
    # Through the whole app (a command name after it), typer's eager --version says the same.
    full = cli("--version", "demo")
    assert full.returncode == 0 and full.stdout.decode().strip() == version


def test_top_level_help_is_the_whole_apps_help() -> None:
    # Top-level help is rendered from the commands' names and help alone (building every
    # command's parameters is most of its cost): the text must be the full tree's.
    import typer

    from aux_secrets.cli.main import build_app, main

    full = typer.main.get_command(build_app())
    expected = io.StringIO()
    with contextlib.redirect_stdout(expected), pytest.raises(SystemExit):
        full.main(args=["--help"], prog_name="aux-secrets")
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        assert main(["--help"]) == 0
    assert shown.getvalue() == expected.getvalue()
    assert "Commands:" in shown.getvalue() and "provision" in shown.getvalue()
    assert cli().stderr == cli("--help").stdout  # no arguments: the same help, on stderr


def test_each_command_module_registers_the_names_main_routes_to_it() -> None:
    # A command line imports only the module main lists for its first word: a name
    # missing from the table would fall back to the whole app, a wrong one would break.
    import importlib

    import typer

    from aux_secrets.cli.main import COMMAND_MODULES, _entry_name

    seen: list[str] = []
    for module, names in COMMAND_MODULES:
        app = typer.Typer()
        importlib.import_module(module).register(app)
        registered = [_entry_name(c) for c in app.registered_commands]
        registered += [_entry_name(g) for g in app.registered_groups]
        assert tuple(registered) == names, module
        seen += names
    assert len(seen) == len(set(seen))


def test_a_command_imports_only_its_own_command_module() -> None:
    code = (
        "import sys; from aux_secrets.cli.main import main; main(['where-used', '--help']);"
        "print(sorted(m for m in sys.modules if m.startswith('aux_secrets.cli.')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=False)
    loaded = done.stdout.decode().strip().splitlines()[-1]
    assert "aux_secrets.cli.usage" in loaded
    for other in ("aux_secrets.cli.provision'", "aux_secrets.cli.store'", "cli.demo'"):
        assert other not in loaded


def test_extra_argument_is_not_echoed() -> None:
    # A value typed where it does not belong (`store add NAME VALUE`) may be a secret:
    # the error says what is wrong without repeating it into logs.
    result = cli("store", "add", "github/token", "ghp_LEAKMARK0123456789")
    assert_one_line_error(result, "unexpected extra argument")
    assert result.returncode == 2
    assert b"LEAKMARK" not in result.stderr + result.stdout


def _commands() -> list[tuple[str, ...]]:
    import typer

    from aux_secrets.cli.main import app

    root = typer.main.get_command(app)
    found: list[tuple[str, ...]] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        found.append(path)
        for name, sub in sorted(getattr(command, "commands", {}).items()):
            walk(sub, (*path, name))

    walk(root, ())
    return [path for path in found if path]


@pytest.mark.parametrize("path", _commands(), ids=" ".join)
def test_every_command_and_group_help_renders_with_an_example(path: tuple[str, ...]) -> None:
    from aux_secrets.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*path, "--help"]) == 0
    assert "Example:" in out.getvalue() or "Examples:" in out.getvalue(), out.getvalue()


def _with_closed(
    fds: str, *args: str, env: dict[str, str] | None = None
) -> CompletedProcess[bytes]:
    """``aux-secrets ARGS`` with some standard descriptors closed (``<&-``, ``>&-``)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    full_env.update(env or {})
    script = 'exec "$@" ' + fds
    return subprocess.run(
        ["sh", "-c", script, "sh", sys.executable, "-m", "aux_secrets", *args],
        capture_output="2>&-" not in fds,
        env=full_env,
        timeout=60,
        check=False,
        stdin=None if "<&-" in fds else subprocess.DEVNULL,
    )


@pytest.fixture
def vault_env(tmp_path: Path) -> dict[str, str]:
    pw = tmp_path / "pw"
    pw.write_text("correct horse\n")
    init = cli(
        "init", tmp_path / "v", "--password-file", pw, "--argon2-memory", "8", "--argon2-time", "1"
    )
    assert init.returncode == 0, init.stderr
    return {"AUX_SECRETS_VAULT": str(tmp_path / "v"), "AUX_SECRETS_PASSWORD_FILE": str(pw)}


@pytest.mark.parametrize(
    "args",
    [("manifest", "check", "-"), ("derive", "--batch", "-"), ("store", "add", "a/b")],
    ids=" ".join,
)
def test_closed_stdin_is_empty_input_not_a_traceback(
    args: tuple[str, ...], vault_env: dict[str, str]
) -> None:
    # A closed descriptor 0 reads as empty input, like </dev/null.
    result = _with_closed("<&-", *args, env=vault_env)
    assert b"Traceback" not in result.stderr, result.stderr.decode()
    if result.returncode != 0:
        assert_one_line_error(result)


@pytest.mark.parametrize("args", [("derive", "db/web1"), ("store", "list")], ids=" ".join)
def test_closed_stdout_is_not_a_traceback(args: tuple[str, ...], vault_env: dict[str, str]) -> None:
    assert cli("store", "add", "a/b", input=b"v", env=vault_env).returncode == 0
    result = _with_closed(">&-", *args, env=vault_env)
    assert b"Traceback" not in result.stderr, result.stderr.decode()
