from __future__ import annotations

import contextlib
import io

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


# `host` is the one group without an example yet.
@pytest.mark.parametrize("path", [p for p in _commands() if p != ("host",)], ids=" ".join)
def test_every_command_and_group_help_renders_with_an_example(path: tuple[str, ...]) -> None:
    from aux_secrets.cli.main import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main([*path, "--help"]) == 0
    assert "Example:" in out.getvalue() or "Examples:" in out.getvalue(), out.getvalue()
