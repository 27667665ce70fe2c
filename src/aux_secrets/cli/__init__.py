"""The typer CLI: parse, call, print. Each command group lives in its own module."""
