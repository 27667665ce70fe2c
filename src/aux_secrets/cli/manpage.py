"""A man page (roff, man(7) macros) made from the same help text as ``--help``."""

from __future__ import annotations

from typing import Any

ENVIRONMENT = (
    ("AUX_SECRETS_VAULT", "The vault directory when --vault is not given."),
    ("AUX_SECRETS_PASSWORD_FILE", "Read the master password from this file."),
    ("AUX_SECRETS_PASSWORD_COMMAND", "Run this command; its output is the master password."),
    ("AUX_SECRETS_AGENT", "off (or 0, no, false): never use or start the unlock agent."),
    ("AUX_SECRETS_AGENT_TIMEOUT", "Seconds the agent holds an unlocked vault (default 900)."),
    (
        "AUX_SECRETS_AGENT_DIR",
        "The agent's socket directory (default $XDG_RUNTIME_DIR/aux-secrets).",
    ),
    (
        "AUX_SECRETS_EDIT_DIR",
        "RAM directory for 'store edit' (default $XDG_RUNTIME_DIR, /dev/shm).",
    ),
    ("VISUAL, EDITOR", "The editor 'store edit' runs (default vi)."),
)


def escape(text: str) -> str:
    """Text safe in roff: backslashes and hyphens escaped, no line starting a request."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line[:1] in (".", "'") else line for line in out.split("\n"))


def _paragraphs(help_text: str) -> list[str]:
    """Help text as roff: blank lines are paragraphs; indented lines (examples) are kept
    as they are, unfilled."""
    lines: list[str] = []
    for block in help_text.strip().split("\n\n"):
        if not block.strip():
            continue
        if all(line.startswith(("  ", "\t")) for line in block.splitlines() if line.strip()):
            lines += [
                ".PP",
                ".nf",
                ".RS 4",
                escape("\n".join(line.strip() for line in block.splitlines())),
                ".RE",
                ".fi",
            ]
        else:
            lines += [".PP", escape(" ".join(line.strip() for line in block.splitlines()))]
    return lines


def _options(command: Any, ctx: Any) -> list[str]:
    lines: list[str] = []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False) or param.name == "help":
            continue
        names = ", ".join(f"\\fB{escape(o)}\\fR" for o in [*param.opts, *param.secondary_opts])
        if param.param_type_name == "argument":
            names = f"\\fI{escape(param.human_readable_name)}\\fR"
        metavar = ""
        if param.param_type_name == "option" and not getattr(param, "is_flag", False):
            metavar = " \\fI" + escape(param.make_metavar(ctx)) + "\\fR"
        lines += [".TP", names + metavar, escape(getattr(param, "help", None) or "")]
    return lines


def _walk(command: Any, path: list[str], parent: Any) -> list[str]:
    import typer

    ctx = typer.Context(command, info_name=path[-1], parent=parent)
    lines: list[str] = []
    subcommands = getattr(command, "commands", None)
    if subcommands is None or len(path) > 1:
        lines += [".SS " + '"' + escape(" ".join(path)) + '"']
        lines += _paragraphs(command.help or "")
        lines += _options(command, ctx)
    for name in command.list_commands(ctx) if subcommands is not None else []:
        sub = command.get_command(ctx, name)
        if sub is not None and not sub.hidden:
            lines += _walk(sub, [*path, name], ctx)
    return lines


def render(app: Any, version: str) -> str:
    import typer

    root = typer.main.get_command(app)
    summary = (root.help or "").strip().splitlines()[0]
    lines = [
        f'.TH AUX\\-SECRETS 1 "" "aux\\-secrets {escape(version)}" "User Commands"',
        ".SH NAME",
        "aux\\-secrets \\- " + escape(summary[0].lower() + summary[1:]),
        ".SH SYNOPSIS",
        ".B aux\\-secrets",
        "\\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]...",
        ".SH DESCRIPTION",
        *_paragraphs(root.help or ""),
        ".PP",
        "Every command prints its own help with \\fB\\-\\-help\\fR. Errors are one line, "
        "\\(lqaux\\-secrets: error: ...\\(rq, with a hint line when there is a next step.",
        ".SH COMMANDS",
        *_walk(root, ["aux-secrets"], None),
        ".SH ENVIRONMENT",
    ]
    for name, text in ENVIRONMENT:
        lines += [".TP", f"\\fB{escape(name)}\\fR", escape(text)]
    lines += [
        ".SH SEE ALSO",
        "\\fBgokey\\fR(1), \\fBage\\fR(1), \\fBsystemd\\-creds\\fR(1), \\fBnixos\\-rebuild\\fR(8)",
    ]
    return "\n".join(lines) + "\n"
