"""``aux-secrets demo``: the whole flow on a throwaway vault (the README's first command)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", metavar="DIR", help="Run in DIR (must be empty or absent)."),
    ] = None,
    keep: Annotated[
        bool, typer.Option("--keep", help="Keep the demo directory afterwards.")
    ] = False,
) -> None:
    """Run the whole flow on a throwaway vault, host key and temporary root.

    Creates a vault, derives secrets of several types, imports a token into the store,
    adds a host with a generated ssh host key, provisions it into a temporary root,
    shows the installed tree, verifies it, rotates the token and provisions again.
    Nothing outside the demo directory is touched.

    Example:

        aux-secrets demo --dir /tmp/aux-demo --keep
    """
    from aux_secrets.demo import run_demo

    base = run_demo(directory, keep=keep)
    if keep:
        print(f"\ndemo kept in {base}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
