"""Templates: a config file with ``{{aux:NAME:FIELD}}`` placeholders, filled in one pass.

FIELD is ``current`` (also what ``{{aux:NAME}}`` means), ``retired`` or ``public``. The
template's format (text, env, json, yaml, toml) decides how a value is written where its
placeholder stands: a small lexer finds out whether the placeholder is inside a quoted
string (the value is escaped for that string), is a whole unquoted value (it becomes a
quoted scalar, or a list for ``retired``), or sits somewhere a value cannot be written
safely (a comment, a key, the middle of an unquoted word): then the template is refused.
Expansion is a single pass over the template: a value that contains ``{{aux:`` is output
as it is, never expanded again. See docs/spec/templates.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from aux_secrets.core import render as r
from aux_secrets.core.render import SecretValues
from aux_secrets.errors import InputError

TemplateFormat = Literal["text", "env", "json", "yaml", "toml"]
TEMPLATE_FORMATS = ("text", "env", "json", "yaml", "toml")
FIELDS = ("current", "retired", "public")

PLACEHOLDER_START = "{{aux:"
PLACEHOLDER_RE = re.compile(r"\{\{aux:([^:{}]+)(?::([^:{}]+))?\}\}")

# Where a placeholder stands: a whole unquoted value, inside "..." or '...', an unquoted
# env value that is more than the placeholder, or raw text.
Context = Literal["node", "dq", "sq", "env-whole", "env-bare", "raw"]


@dataclass(frozen=True)
class Placeholder:
    start: int
    end: int
    name: str
    field: str

    @property
    def text(self) -> str:
        return f"{{{{aux:{self.name}:{self.field}}}}}"


def find_placeholders(text: str) -> list[Placeholder]:
    """Every placeholder in ``text`` in order; a malformed one or unknown field -> InputError."""
    found: list[Placeholder] = []
    position = 0
    while (start := text.find(PLACEHOLDER_START, position)) >= 0:
        match = PLACEHOLDER_RE.match(text, start)
        if match is None:
            snippet = text[start : start + 40].split("\n", 1)[0]
            raise InputError(
                f"malformed placeholder at line {_line(text, start)}: {snippet!r}",
                hint="write {{aux:NAME}} or {{aux:NAME:current|retired|public}}",
            )
        field = match.group(2) or "current"
        if field not in FIELDS:
            raise InputError(
                f"placeholder for secret {match.group(1)!r} names unknown field {field!r}",
                hint=f"use one of: {', '.join(FIELDS)}",
            )
        found.append(Placeholder(start, match.end(), match.group(1), field))
        position = match.end()
    return found


def _line(text: str, position: int) -> int:
    return text.count("\n", 0, position) + 1


def _refuse(text: str, ph: Placeholder, why: str, hint: str) -> InputError:
    return InputError(f"placeholder {ph.text} at line {_line(text, ph.start)} is {why}", hint=hint)


QUOTE_HINT = "make the placeholder the whole value, or put it inside a double-quoted string"


# --------------------------------------------------------------------------- lexers


def _json_contexts(text: str, phs: list[Placeholder]) -> dict[int, Context]:
    starts = {ph.start: ph for ph in phs}
    out: dict[int, Context] = {}
    in_string = False
    i, n = 0, len(text)
    while i < n:
        ph = starts.get(i)
        if ph is not None:
            if in_string:
                out[ph.start] = "dq"
            else:
                before = text[: ph.start].rstrip()
                after = text[ph.end :].lstrip()
                if (before and before[-1] not in ":[,{") or (after and after[0] not in ",]}:"):
                    raise _refuse(text, ph, "next to other unquoted JSON text", QUOTE_HINT)
                out[ph.start] = "node"
            i = ph.end
            continue
        c = text[i]
        if in_string:
            if c == "\\":
                if i + 1 in starts:
                    raise _refuse(text, starts[i + 1], "right after a backslash", QUOTE_HINT)
                i += 2
                continue
            if c == '"':
                in_string = False
        elif c == '"':
            in_string = True
        i += 1
    return out


def _toml_contexts(text: str, phs: list[Placeholder]) -> dict[int, Context]:
    starts = {ph.start: ph for ph in phs}
    out: dict[int, Context] = {}
    state = "out"  # out | basic | mlbasic | literal | mlliteral | comment
    i, n = 0, len(text)
    while i < n:
        ph = starts.get(i)
        if ph is not None:
            if state == "comment":
                raise _refuse(text, ph, "inside a comment", "move it out of the comment")
            if state in ("basic", "mlbasic"):
                out[ph.start] = "dq"
            elif state in ("literal", "mlliteral"):
                out[ph.start] = "sq"
            else:
                before = text[: ph.start].rstrip(" \t")
                after = text[ph.end :].lstrip(" \t")
                if (before and before[-1] not in "\n=[,{") or (
                    after and after[0] not in "\r\n#,]}=."
                ):
                    raise _refuse(text, ph, "next to other unquoted TOML text", QUOTE_HINT)
                out[ph.start] = "node"
            i = ph.end
            continue
        c = text[i]
        if state == "out":
            if c == "#":
                state = "comment"
            elif text.startswith('"""', i):
                state, i = "mlbasic", i + 2
            elif c == '"':
                state = "basic"
            elif text.startswith("'''", i):
                state, i = "mlliteral", i + 2
            elif c == "'":
                state = "literal"
        elif state == "comment":
            if c == "\n":
                state = "out"
        elif state in ("basic", "mlbasic"):
            if c == "\\":
                if i + 1 in starts:
                    raise _refuse(text, starts[i + 1], "right after a backslash", QUOTE_HINT)
                i += 2
                continue
            if state == "basic" and c in '"\n':
                state = "out"
            elif state == "mlbasic" and text.startswith('"""', i):
                # Up to two quotes right before the closing three belong to the string.
                j = i
                while j < n and text[j] == '"' and j - i < 5:
                    j += 1
                state, i = "out", j
                continue
        elif state == "literal":
            if c in "'\n":
                state = "out"
        elif state == "mlliteral" and text.startswith("'''", i):
            j = i
            while j < n and text[j] == "'" and j - i < 5:
                j += 1
            state, i = "out", j
            continue
        i += 1
    return out


def _env_contexts(text: str, phs: list[Placeholder]) -> dict[int, Context]:
    """Env files as systemd's EnvironmentFile= reads them (and POSIX sh where they agree)."""
    starts = {ph.start: ph for ph in phs}
    out: dict[int, Context] = {}
    # linestart | comment | key | vstart (right after =) | value | vspace (after unquoted
    # whitespace in a value: sh would run what follows) | dq | sq
    state = "linestart"
    i, n = 0, len(text)
    while i < n:
        ph = starts.get(i)
        if ph is not None:
            if state in ("linestart", "key"):
                raise _refuse(text, ph, "in a variable name", "use it only after NAME=")
            if state == "comment":
                raise _refuse(text, ph, "inside a comment", "move it out of the comment")
            if state == "dq":
                out[ph.start] = "dq"
            elif state == "sq":
                out[ph.start] = "sq"
            elif state == "vspace":
                raise _refuse(
                    text,
                    ph,
                    "after unquoted whitespace in a value (sh would run it as a command)",
                    'quote the whole value: NAME="... {{aux:...}}"',
                )
            elif state == "vstart":
                rest = text[ph.end :].split("\n", 1)[0]
                out[ph.start] = "env-whole" if not rest.strip() else "env-bare"
                state = "value"
            else:
                out[ph.start] = "env-bare"
            i = ph.end
            continue
        c = text[i]
        if c == "\n" and state not in ("dq", "sq"):
            state = "linestart"
        elif state == "linestart":
            if c in "#;":
                state = "comment"
            elif c not in " \t\r":
                state = "key"
        elif state == "key":
            if c == "=":
                state = "vstart"
        elif state in ("vstart", "value", "vspace"):
            if state == "vstart" and c == '"':
                state = "dq"
            elif state == "vstart" and c == "'":
                state = "sq"
            elif c == "\\":
                if i + 1 in starts:
                    raise _refuse(text, starts[i + 1], "right after a backslash", QUOTE_HINT)
                i += 2
                continue
            elif c in " \t":
                state = "vspace"
            elif state == "vstart":
                state = "value"
        elif state == "dq":
            if c == "\\":
                if i + 1 in starts:
                    raise _refuse(text, starts[i + 1], "right after a backslash", QUOTE_HINT)
                i += 2
                continue
            if c == '"':
                state = "value"
        elif state == "sq" and c == "'":
            state = "value"
        i += 1
    return out


_YAML_BREAK = " \t\r\n"


def _yaml_indicator(text: str, i: int, depth: int) -> bool:
    """Is text[i] (':', '-', '?') followed by what makes it an indicator?"""
    nxt = text[i + 1] if i + 1 < len(text) else "\n"
    return nxt in _YAML_BREAK or (depth > 0 and text[i] == ":" and nxt in ",[]{}")


def _yaml_contexts(text: str, phs: list[Placeholder]) -> dict[int, Context]:
    """A YAML lexer good enough to know where a placeholder stands (block and flow style)."""
    starts = {ph.start: ph for ph in phs}
    out: dict[int, Context] = {}
    # start: a scalar may begin here; plain: inside an unquoted scalar; after: right after
    # a quoted scalar or placeholder; dq / sq: inside quotes; comment.
    state = "start"
    depth = 0
    i, n = 0, len(text)
    line_start = True
    indent = 0
    block_indent: int | None = None  # inside a | or > block scalar of a line this indented
    plain_indent: int | None = None  # last line ended inside a plain scalar this indented

    while i < n:
        if line_start and state not in ("dq", "sq"):
            j = i
            while j < n and text[j] == " ":
                j += 1
            blank = j >= n or text[j] in "\r\n"
            if block_indent is not None and (blank or j - i > block_indent):
                end = text.find("\n", i)
                end = n if end < 0 else end
                for inner in phs:
                    if i <= inner.start < end:
                        raise _refuse(
                            text, inner, "inside a block scalar (| or >)", "use a quoted scalar"
                        )
                i = end + 1
                continue
            block_indent = None
            line_start = False
            if blank or text[j] == "#":
                i = j
                if blank:
                    continue
            elif depth == 0:
                indent = j - i
                continuing = plain_indent is not None and indent > plain_indent
                state = "plain" if continuing else "start"
                plain_indent = None
                i = j
            continue
        line_start = False

        ph = starts.get(i)
        if ph is not None:
            if state == "start":
                j = ph.end
                while j < n and text[j] in " \t":
                    j += 1
                nxt = text[j] if j < n else "\n"
                ok = (
                    nxt in "\r\n"
                    or (nxt == "#" and j > ph.end)
                    or (nxt == ":" and _yaml_indicator(text, j, depth))
                    or (depth > 0 and nxt in ",]}")
                )
                if not ok:
                    raise _refuse(text, ph, "next to other unquoted YAML text", QUOTE_HINT)
                out[ph.start] = "node"
                state = "after"
            elif state == "dq":
                out[ph.start] = "dq"
            elif state == "sq":
                out[ph.start] = "sq"
            elif state == "comment":
                raise _refuse(text, ph, "inside a comment", "move it out of the comment")
            else:
                raise _refuse(text, ph, "in the middle of an unquoted YAML scalar", QUOTE_HINT)
            i = ph.end
            continue

        c = text[i]
        if c == "\n" and state not in ("dq", "sq"):
            if state == "plain" and depth == 0:
                plain_indent = indent
            if state == "comment" or depth == 0:
                state = "start" if depth == 0 or state == "comment" else state
            line_start = True
            i += 1
            continue
        if state == "dq":
            if c == "\\":
                if i + 1 in starts:
                    raise _refuse(text, starts[i + 1], "right after a backslash", QUOTE_HINT)
                i += 2
                continue
            if c == '"':
                state = "after"
        elif state == "sq":
            if c == "'":
                if text.startswith("''", i):
                    i += 2
                    continue
                state = "after"
        elif state == "comment" or c in " \t\r":
            pass
        elif c == "#" and (i == 0 or text[i - 1] in _YAML_BREAK):
            state = "comment"
        elif state == "start":
            if c == '"':
                state = "dq"
            elif c == "'":
                state = "sq"
            elif c in "[{":
                depth += 1
            elif c in "]}" and depth > 0:
                depth -= 1
                state = "after"
            elif (c in "-?:" and _yaml_indicator(text, i, depth)) or (c == "," and depth > 0):
                pass  # an indicator: a scalar may still begin after it
            elif c in "|>" and depth == 0:
                block_indent = indent
                state = "comment"  # the rest of the header line holds no values
            elif c in "&!":
                while i + 1 < n and text[i + 1] not in _YAML_BREAK:
                    i += 1
            else:
                state = "plain"
        else:  # plain or after
            if (c == ":" and (state == "after" or _yaml_indicator(text, i, depth))) or (
                depth > 0 and c == ","
            ):
                state = "start"
            elif depth > 0 and c in "]}":
                depth -= 1
                state = "after"
            else:
                state = "plain"
        i += 1
    return out


_LEXERS: Mapping[str, Callable[[str, list[Placeholder]], dict[int, Context]]] = {
    "json": _json_contexts,
    "yaml": _yaml_contexts,
    "toml": _toml_contexts,
    "env": _env_contexts,
}


# --------------------------------------------------------------------------- rendering


def _field(values: Mapping[str, SecretValues], ph: Placeholder) -> bytes | tuple[bytes, ...]:
    secret = values.get(ph.name)
    if secret is None:
        raise InputError(
            f"template refers to unknown secret {ph.name!r}",
            hint="declare it under secrets, or fix the name in the placeholder",
        )
    if ph.field == "current":
        return secret.current
    if ph.field == "retired":
        return secret.retired
    if secret.public is None:
        raise InputError(
            f"secret {ph.name!r} has no public half for {ph.text}",
            hint="only key types (ed25519, x25519, ec*, rsa*) have one",
        )
    return secret.public


_WHAT = {"json": "JSON", "yaml": "YAML", "toml": "TOML", "env": "an environment file"}


def _fill(ph: Placeholder, value: bytes | tuple[bytes, ...], fmt: str, ctx: Context) -> bytes:
    name, field = ph.name, ph.field
    if fmt == "text":
        return r.join_retired(value, name) if isinstance(value, tuple) else value
    what = _WHAT[fmt]
    if isinstance(value, tuple):
        items = [r.as_text(v, name, field, what, k) for k, v in enumerate(value)]
        if ctx == "node" and fmt != "env":
            lister = {"json": r.json_string, "yaml": r.yaml_string, "toml": r.toml_string}[fmt]
            return ("[" + ", ".join(lister(item) for item in items) + "]").encode()
        r.join_retired(value, name)
        text = ",".join(items)
    else:
        text = r.as_text(value, name, field, what)
    if fmt == "json":
        return (r.json_string(text) if ctx == "node" else r.json_body(text)).encode()
    if fmt == "yaml":
        if ctx == "node":
            return r.yaml_string(text).encode()
        if ctx == "dq":
            return r.yaml_body(text).encode()
        return r.yaml_single_body(text, name, field).encode()
    if fmt == "toml":
        if ctx == "node":
            return r.toml_string(text).encode()
        if ctx == "dq":
            return r.toml_body(text).encode()
        return r.toml_literal_body(text, name, field).encode()
    # env
    if ctx == "env-whole":
        return r.env_value(text, name, field).encode()
    if ctx == "dq":
        return r.env_double_body(text, name, field).encode()
    if ctx == "sq":
        return r.env_single_body(text, name, field).encode()
    r.env_check(text, name, field)
    if not r.env_bare(text):
        raise InputError(
            f"secret {name!r} field {field!r} needs quoting where {ph.text} stands "
            "(inside a longer unquoted env value)",
            hint='put the whole value in double quotes: NAME="...{{aux:...}}..."',
        )
    return text.encode()


def render_template(
    text: str, format: TemplateFormat | str, values: Mapping[str, SecretValues]
) -> bytes:
    """Fill every placeholder of ``text`` for ``format``; refuse what cannot be written safely.

    Unknown secrets and fields, malformed placeholders, placeholders in comments, keys or
    the middle of unquoted words, and values the surrounding syntax cannot hold raise
    InputError naming the secret or placeholder (never a value).
    """
    if format not in TEMPLATE_FORMATS:
        raise InputError(
            f"unknown template format {format!r}", hint=f"use one of: {', '.join(TEMPLATE_FORMATS)}"
        )
    phs = find_placeholders(text)
    contexts: dict[int, Context] = (
        {ph.start: "raw" for ph in phs} if format == "text" else _LEXERS[format](text, phs)
    )
    pieces: list[bytes] = []
    position = 0
    for ph in phs:
        pieces.append(text[position : ph.start].encode("utf-8", "surrogateescape"))
        pieces.append(_fill(ph, _field(values, ph), format, contexts[ph.start]))
        position = ph.end
    pieces.append(text[position:].encode("utf-8", "surrogateescape"))
    return b"".join(pieces)


def referenced(text: str) -> list[tuple[str, str]]:
    """``(name, field)`` pairs a template uses, in first-use order."""
    seen: list[tuple[str, str]] = []
    for ph in find_placeholders(text):
        if (ph.name, ph.field) not in seen:
            seen.append((ph.name, ph.field))
    return seen
