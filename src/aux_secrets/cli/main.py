"""Entry point: builds the typer app from the command modules and maps errors to exits.

Command modules import their heavy dependencies inside the command functions, so
``aux-secrets --help`` and a single ``derive`` stay fast. Importing this module builds
nothing: the app is made on first use, and ``aux-secrets --version`` is answered before
typer or any command module is imported.
"""

from __future__ import annotations

import importlib
import os
import sys

from aux_secrets import __version__

# typing is not imported at run time: `store get` and `derive` answered by the agent
# (cli/fastpath.py) take little more than the interpreter's start, and it would add a third.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    import typer

# Each module defines ``register(app)``; the order is the order of ``--help``. Beside
# each, the top-level commands and groups it registers: a command line imports only the
# module of the command it names (a test checks that the names are exactly these).
COMMAND_MODULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("aux_secrets.cli.demo", ("demo",)),
    ("aux_secrets.cli.vault", ("init", "seed")),
    ("aux_secrets.cli.derive", ("derive",)),
    ("aux_secrets.cli.store", ("store",)),
    ("aux_secrets.cli.render", ("render", "lint")),
    ("aux_secrets.cli.manifest", ("manifest",)),
    ("aux_secrets.cli.hostside", ("activate", "install", "audit")),
    ("aux_secrets.cli.status", ("status",)),
    ("aux_secrets.cli.usage", ("where-used",)),
    ("aux_secrets.cli.hosts", ("host",)),
    ("aux_secrets.cli.bundle", ("bundle",)),
    ("aux_secrets.cli.provision", ("provision",)),
    ("aux_secrets.cli.verify", ("verify",)),
    ("aux_secrets.cli.signer", ("signer",)),
    ("aux_secrets.cli.rebuild", ("rebuild",)),
    ("aux_secrets.cli.units", ("units",)),
    ("aux_secrets.cli.pull", ("pull",)),
    ("aux_secrets.cli.agent", ("agent",)),
    ("aux_secrets.cli.completion", ("completion", "manpage")),
)

APP_SETTINGS: dict[str, Any] = {
    "name": "aux-secrets",
    "help": "Vaultless secrets for NixOS and Aux: derive, store, provision and install.",
    "no_args_is_help": True,
    "add_completion": False,
    "pretty_exceptions_enable": False,
    "rich_markup_mode": None,
    "context_settings": {"help_option_names": ["-h", "--help"]},
}

_built: list[typer.Typer] = []


def build_app() -> typer.Typer:
    """The whole command tree, every command module registered (built once)."""
    if not _built:
        _built.append(_new_app([module for module, _names in COMMAND_MODULES]))
    return _built[0]


def _new_app(modules: Sequence[str]) -> typer.Typer:
    """The root command with ``modules`` registered."""
    import typer

    def _version(value: bool) -> None:
        if value:
            print(f"aux-secrets {__version__}")
            raise typer.Exit()

    app = typer.Typer(**APP_SETTINGS)

    @app.callback()
    def _root(
        version: bool = typer.Option(
            False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ) -> None:
        """Vaultless secrets for NixOS and Aux: derive, store, provision and install."""

    for name in modules:
        importlib.import_module(name).register(app)
    return app


def __getattr__(name: str) -> Any:
    """``app``: the whole command tree, built on first access."""
    if name == "app":
        return build_app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _entry_name(info: Any) -> str | None:
    """The name a registered command or group answers to on the command line."""
    if isinstance(info.name, str):
        return info.name
    callback = getattr(info, "callback", None)
    if callback is not None and not hasattr(info, "typer_instance"):
        return str(callback.__name__).lower().replace("_", "-")
    instance_name = getattr(getattr(info, "typer_instance", None), "info", None)
    name = getattr(instance_name, "name", None)
    return name if isinstance(name, str) else None


def _app_for(args: Sequence[str]) -> typer.Typer:
    """Only the invoked command's module: importing and building every command module
    costs more than most commands' own work.

    Top-level help and unknown commands (for typer's suggestions) get the whole app.
    """
    name = next((arg for arg in args if not arg.startswith("-")), None)
    if name is None:
        return _summary(build_app())
    module = next((m for m, names in COMMAND_MODULES if name in names), None)
    if module is None:
        return build_app()
    return _new_app([module])


def _summary(app: typer.Typer) -> typer.Typer:
    """The root with every command and group named and described but with no parameters:
    what top-level help (and ``--version``) shows, without building every command, which
    is most of its cost. A test checks that the help text is the full app's."""
    import copy

    import typer

    def stub_of(callback: Any) -> Any:
        def stub() -> None:
            """A command's name and help only."""

        stub.__name__, stub.__qualname__, stub.__doc__ = (
            callback.__name__,
            callback.__qualname__,
            callback.__doc__,
        )
        return stub

    summary = typer.Typer(**APP_SETTINGS)
    summary.registered_callback = app.registered_callback
    for command in app.registered_commands:
        named = copy.copy(command)
        named.callback = stub_of(command.callback)
        summary.registered_commands.append(named)
    for group in app.registered_groups:
        inner = group.typer_instance
        assert inner is not None
        empty = typer.Typer()
        empty.info = inner.info
        empty.registered_callback = inner.registered_callback
        named_group = copy.copy(group)
        named_group.typer_instance = empty
        summary.registered_groups.append(named_group)
    return summary


def _fill_closed_standard_streams() -> None:
    """A closed stdin, stdout or stderr (``<&-``) becomes /dev/null.

    Otherwise Python leaves ``sys.stdin`` as None (a traceback on the first read), and the
    next file we open would get descriptor 0, 1 or 2, where a child's output could land
    in it. Closed stdin then reads as empty input, like ``</dev/null``.
    """
    import os

    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        try:
            os.fstat(fd)
        except OSError:
            null = os.open(os.devnull, os.O_RDONLY if mode == "r" else os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, mode))  # noqa: SIM115


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this directly)."""
    from aux_secrets.adapters.umask import set_private_umask

    set_private_umask()
    _fill_closed_standard_streams()
    args = sys.argv[1:] if argv is None else argv
    completing = bool(os.environ.get("_AUX_SECRETS_COMPLETE"))  # a shell asks for completions
    if completing:
        from aux_secrets.cli.completion import init_completion

        init_completion()
    if list(args) == ["--version"]:  # what typer would print, without building anything
        print(f"aux-secrets {__version__}")
        return 0
    if not completing:  # store get and derive from the agent, before typer is imported
        from aux_secrets.cli.fastpath import answer

        code = answer(args)
        if code is not None:
            return code
    import typer

    try:  # typer >= 0.26 vendors click; older releases (and some distributions) use click
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
    except ImportError:  # pragma: no cover - depends on the installed typer
        from click.exceptions import (  # type: ignore[no-redef,import-not-found]
            ClickException,
            NoArgsIsHelpError,
        )

    from aux_secrets.cli import output
    from aux_secrets.errors import AuxError

    command = typer.main.get_command(build_app() if completing else _app_for(args))
    try:
        result = command.main(args=list(args), prog_name="aux-secrets", standalone_mode=False)
    except AuxError as exc:
        output.error(exc.message, exc.hint)
        return exc.exit_code
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        output.error("aborted")
        return 130
    except NoArgsIsHelpError as exc:
        # A bare group (`aux-secrets store`) shows its help, as git and click do.
        print(exc.format_message(), file=sys.stderr)
        return exc.exit_code
    except ClickException as exc:
        # Usage errors from option parsing: typer's text, our one-line shape.
        ctx = getattr(exc, "ctx", None)
        hint = f"see '{ctx.command_path} --help'" if ctx is not None else None
        message = exc.format_message()
        if message.startswith("Got unexpected extra argument"):
            # Not repeated: a value typed as an argument (`store add NAME VALUE`) may be a
            # secret, and stderr ends up in logs.
            message = "unexpected extra argument(s) on the command line (not repeated here)"
        output.error(message, hint)
        return exc.exit_code
    except KeyboardInterrupt:
        output.error("interrupted")
        return 130
    except OSError as exc:
        output.os_error(exc)
        return 1
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())
