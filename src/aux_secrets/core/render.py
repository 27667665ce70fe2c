"""Rendering one secret the way a service reads it: bare value, env file, JSON, YAML, TOML.

Every function here either returns bytes that a reader of that format parses back to
exactly the secret's values, or raises InputError naming the secret and the field. Values
never appear in messages. The quoting helpers are shared with core/template.py; the rules
are written down in docs/spec/templates.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aux_secrets.errors import InputError

FORMATS = ("value", "env", "json", "yaml", "toml")

ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Characters every env-file reader (systemd EnvironmentFile=, POSIX sh ".") takes literally
# in an unquoted value.
ENV_BARE_RE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


@dataclass(frozen=True)
class SecretValues:
    """What a secret holds at one instant: the live value, the kept older ones, a public half."""

    current: bytes
    retired: tuple[bytes, ...] = ()
    public: bytes | None = None


# --------------------------------------------------------------------------- value checks


def _where(name: str, field: str, index: int | None = None) -> str:
    if index is None:
        return f"secret {name!r} field {field!r}"
    return f"secret {name!r} field {field!r} (value {index + 1})"


def as_text(value: bytes, name: str, field: str, what: str, index: int | None = None) -> str:
    """The value as UTF-8 text, or an InputError naming the secret (never the value)."""
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"{_where(name, field, index)} is not valid UTF-8, which {what} cannot hold",
            hint="use the 'value' format, or an encoding such as hex or base64",
        ) from None


def join_retired(values: tuple[bytes, ...], name: str) -> bytes:
    """Retired values joined with ``,`` (env and text); a value holding ``,`` is refused."""
    for index, value in enumerate(values):
        if b"," in value:
            raise InputError(
                f"{_where(name, 'retired', index)} contains ',' and cannot be part of a "
                "comma-separated list",
                hint="use a structured format (json, yaml, toml) or a charset without ','",
            )
    return b",".join(values)


# --------------------------------------------------------------------------- JSON


def json_body(text: str) -> str:
    """Escape ``text`` for the inside of a JSON string (RFC 8259)."""
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F or code in (0x2028, 0x2029):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def json_string(text: str) -> str:
    return f'"{json_body(text)}"'


# --------------------------------------------------------------------------- YAML

_YAML_NAMED = {
    "\0": "\\0",
    "\a": "\\a",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\v": "\\v",
    "\f": "\\f",
    "\r": "\\r",
    "\x1b": "\\e",
    '"': '\\"',
    "\\": "\\\\",
    "\x85": "\\N",
    "\xa0": "\\_",
    "\u2028": "\\L",
    "\u2029": "\\P",
}


def _yaml_printable(code: int) -> bool:
    # YAML 1.2 c-printable minus the line breaks and BOM, which must be escaped.
    return (
        0x20 <= code <= 0x7E
        or 0xA0 <= code <= 0xD7FF
        or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
        or 0x10000 <= code <= 0x10FFFF
    ) and code not in (0x2028, 0x2029)


def yaml_body(text: str) -> str:
    """Escape ``text`` for the inside of a YAML double-quoted scalar (1.1 and 1.2 readers)."""
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch in _YAML_NAMED:
            out.append(_YAML_NAMED[ch])
        elif _yaml_printable(code):
            out.append(ch)
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def yaml_string(text: str) -> str:
    return f'"{yaml_body(text)}"'


def yaml_single_body(text: str, name: str, field: str) -> str:
    """The inside of a YAML single-quoted scalar: ``'`` doubled; no escapes exist there."""
    if trailing_newline(text):
        raise InputError(
            f"{_where(name, field)} ends with a newline (as `echo` adds), which a "
            "single-quoted YAML scalar cannot hold",
            hint="store the value without it: aux-secrets store set NAME --strip-newline "
            "(or pipe it with printf %s)",
        )
    for ch in text:
        if ch != "'" and not _yaml_printable(ord(ch)) and ch != "\t":
            raise InputError(
                f"{_where(name, field)} holds a line break or control character, which a "
                "single-quoted YAML scalar cannot hold",
                hint="put the placeholder in a double-quoted scalar or leave it unquoted",
            )
    return text.replace("'", "''")


def yaml_flow_list(items: list[str]) -> str:
    return "[" + ", ".join(yaml_string(item) for item in items) + "]"


# --------------------------------------------------------------------------- TOML

_TOML_NAMED = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def toml_body(text: str) -> str:
    """Escape ``text`` for the inside of a TOML basic (or multi-line basic) string."""
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch in _TOML_NAMED:
            out.append(_TOML_NAMED[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    return "".join(out)


def toml_string(text: str) -> str:
    return f'"{toml_body(text)}"'


def toml_literal_body(text: str, name: str, field: str) -> str:
    """A TOML literal string has no escapes: refuse ``'`` and control characters."""
    if any(ch == "'" or (ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F for ch in text):
        raise InputError(
            f"{_where(name, field)} holds ' or a control character, which a TOML literal "
            "string cannot hold",
            hint="put the placeholder in a double-quoted (basic) string or leave it unquoted",
        )
    return text


def toml_array(items: list[str]) -> str:
    return "[" + ", ".join(toml_string(item) for item in items) + "]"


# --------------------------------------------------------------------------- env files


def trailing_newline(text: str) -> bool:
    """A value whose only line break is one at the end: most often ``echo``'s, stored by
    mistake."""
    body = text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else None
    return body is not None and "\n" not in body and "\r" not in body


def env_check(text: str, name: str, field: str) -> None:
    """Env files are line-based text: no NUL, line breaks or other control characters."""
    if trailing_newline(text):
        raise InputError(
            f"{_where(name, field)} ends with a newline (as `echo` adds), which an "
            "environment file cannot hold",
            hint="store the value without it: aux-secrets store set NAME --strip-newline "
            "(or pipe it with printf %s)",
        )
    for ch in text:
        code = ord(ch)
        if (code < 0x20 and ch != "\t") or code == 0x7F:
            raise InputError(
                f"{_where(name, field)} holds a line break or control character, which an "
                "environment file cannot hold",
                hint="use the 'value' format (one file per secret) instead",
            )


def env_double_body(text: str, name: str, field: str) -> str:
    """Inside ``"..."``: backslash before ``" \\ $ `` and backquote (systemd and sh agree)."""
    env_check(text, name, field)
    return re.sub(r'(["\\$`])', r"\\\1", text)


def env_single_body(text: str, name: str, field: str) -> str:
    env_check(text, name, field)
    if "'" in text:
        raise InputError(
            f"{_where(name, field)} holds ', which a single-quoted env value cannot hold",
            hint="put the placeholder in double quotes instead",
        )
    return text


def env_value(text: str, name: str, field: str) -> str:
    """A whole env value: bare when every reader takes it literally, else double-quoted."""
    env_check(text, name, field)
    if ENV_BARE_RE.fullmatch(text):
        return text
    return f'"{env_double_body(text, name, field)}"'


def env_bare(text: str) -> bool:
    return ENV_BARE_RE.fullmatch(text) is not None


# --------------------------------------------------------------------------- render_secret


def _texts(values: SecretValues, name: str, what: str) -> tuple[str, list[str], str | None]:
    current = as_text(values.current, name, "current", what)
    retired = [as_text(v, name, "retired", what, i) for i, v in enumerate(values.retired)]
    public = None if values.public is None else as_text(values.public, name, "public", what)
    return current, retired, public


def render_secret(
    values: SecretValues, format: str, env_name: str, *, name: str | None = None
) -> bytes:
    """The file a secret of ``format`` becomes.

    value: the current bytes exactly. env: ``{env_name}_CURRENT=...``, then
    ``{env_name}_RETIRED=a,b`` when there are retired values and ``{env_name}_PUBLIC=...``
    when there is a public half. json / yaml / toml: a document with ``current``,
    ``retired`` (a list, possibly empty) and ``public`` (when present).
    ``name`` (default ``env_name``) is what error messages call the secret.
    """
    who = name if name is not None else env_name
    if format == "value":
        return values.current
    if format == "env":
        if not ENV_NAME_RE.fullmatch(env_name):
            raise InputError(
                f"secret {who!r}: env name {env_name!r} is not a valid variable name",
                hint="use letters, digits and '_', not starting with a digit",
            )
        current, _, public = _texts(values, who, "an environment file")
        lines = [f"{env_name}_CURRENT={env_value(current, who, 'current')}"]
        if values.retired:
            joined = as_text(join_retired(values.retired, who), who, "retired", "an env file")
            lines.append(f"{env_name}_RETIRED={env_value(joined, who, 'retired')}")
        if public is not None:
            lines.append(f"{env_name}_PUBLIC={env_value(public, who, 'public')}")
        return ("\n".join(lines) + "\n").encode()
    if format == "json":
        current, retired, public = _texts(values, who, "JSON")
        parts = [f'  "current": {json_string(current)}']
        parts.append('  "retired": [' + ", ".join(json_string(r) for r in retired) + "]")
        if public is not None:
            parts.append(f'  "public": {json_string(public)}')
        return ("{\n" + ",\n".join(parts) + "\n}\n").encode()
    if format == "yaml":
        current, retired, public = _texts(values, who, "YAML")
        lines = [f"current: {yaml_string(current)}"]
        if retired:
            lines.append("retired:")
            lines += [f"  - {yaml_string(r)}" for r in retired]
        else:
            lines.append("retired: []")
        if public is not None:
            lines.append(f"public: {yaml_string(public)}")
        return ("\n".join(lines) + "\n").encode()
    if format == "toml":
        current, retired, public = _texts(values, who, "TOML")
        lines = [f"current = {toml_string(current)}", f"retired = {toml_array(retired)}"]
        if public is not None:
            lines.append(f"public = {toml_string(public)}")
        return ("\n".join(lines) + "\n").encode()
    raise InputError(
        f"secret {who!r}: unknown format {format!r}", hint=f"use one of: {', '.join(FORMATS)}"
    )
