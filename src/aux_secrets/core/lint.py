"""Lint a host's secrets: values reused across names, too short, or in a rejected charset.

Pure: secret descriptions and consumer constraints in, findings out. The constraints
file format (version 1) is in docs/spec/lint.md.

- ``reused``: two secrets with the same realm and type (and the same period, and both
  private or both public) under different names have the same value, which services
  with independent secret families forbid: a warning, an error with ``strict``. Two
  secrets reading the same store entry are reported the same way.
- ``too-short``: a secret shorter than its declared minimum or a consumer's minimum.
- ``charset``: a password charset (or raw encoding) a consumer does not accept, or whose
  alphabet holds a character the consumer rejects.
- ``no-ahead``: a rotating secret with ``ahead = 0``: at every boundary the host has no
  next value until it is provisioned again, so it keeps serving the old one, stale (a
  warning; :func:`no_ahead` is also what ``manifest check`` prints).
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from aux_secrets.core.nesting import loads_json, loads_toml
from aux_secrets.errors import FormatVersionError, InputError

VERSION = 1
Severity = Literal["error", "warning"]

# The characters each output charset can produce (passwords, then raw encodings).
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LOWER = "abcdefghijklmnopqrstuvwxyz"
_DIGITS = "0123456789"
RAW_CHARSETS: Mapping[str, str] = {
    "hex": "0123456789abcdef",
    "base64": _UPPER + _LOWER + _DIGITS + "+/=",
}


def charset_alphabet(charset: str) -> str | None:
    """Characters a charset can produce; None when unknown (binary, PEM...)."""
    if charset in RAW_CHARSETS:
        return RAW_CHARSETS[charset]
    from aux_secrets.core.passwords import ALPHABETS

    return ALPHABETS.get(charset)


@dataclass(frozen=True)
class Consumer:
    """A program that reads some secrets and what it demands of them."""

    name: str
    secrets: tuple[str, ...] = ()
    min_length: int | None = None
    charsets: tuple[str, ...] | None = None  # accepted charsets; None: any
    reject_chars: str = ""  # characters it cannot take (e.g. "," in a comma list)


@dataclass(frozen=True)
class LintSecret:
    """What lint needs to know of one secret of a manifest."""

    name: str
    source: Literal["derive", "store"]
    realm: str  # the realm template, or the store name
    type: str = "pass"  # a derive type, or "store"
    period: str | None = None
    ahead: int | None = None  # the rotation's ahead count; None without rotation
    public: bool = False
    length: int | None = None  # characters of the output; None when not known
    charset: str | None = None  # a password charset or raw encoding; None when not text
    min_length: int | None = None


@dataclass(frozen=True)
class Finding:
    severity: Severity
    code: str
    secret: str
    message: str

    def line(self) -> str:
        return f"{self.severity}: {self.secret}: {self.message} [{self.code}]"


@dataclass(frozen=True)
class Constraints:
    consumers: tuple[Consumer, ...] = ()
    min_lengths: Mapping[str, int] | None = None


def output_length(type: str, length: int | None, charset: str, encoding: str | None) -> int | None:
    """Characters a derived secret has when written out; None for key types."""
    if type == "pass":
        if length is not None:
            return length
        from aux_secrets.core.passwords import default_length

        return default_length(charset)
    if type == "raw":
        n = 32 if length is None else length
        enc = encoding or "binary"
        if enc == "hex":
            return 2 * n
        if enc == "base64":
            return 4 * math.ceil(n / 3)
        return n
    return None


def output_charset(type: str, charset: str, encoding: str | None) -> str | None:
    if type == "pass":
        return charset
    if type == "raw" and encoding in RAW_CHARSETS:
        return encoding
    return None


def lint(
    secrets: Sequence[LintSecret], constraints: Constraints = Constraints(), *, strict: bool = False
) -> list[Finding]:
    """Every finding, sorted by secret name then code."""
    findings: list[Finding] = []
    groups: dict[tuple[object, ...], list[str]] = {}
    for secret in secrets:
        key = (secret.source, secret.realm, secret.type, secret.period, secret.public)
        groups.setdefault(key, []).append(secret.name)
    for group, names in groups.items():
        if len(names) < 2:
            continue
        source, realm, type_ = group[0], group[1], group[2]
        what = f"store entry {realm!r}" if source == "store" else f"realm {realm!r}, type {type_}"
        for name in sorted(names):
            others = ", ".join(repr(n) for n in sorted(names) if n != name)
            findings.append(
                Finding(
                    "error" if strict else "warning",
                    "reused",
                    name,
                    f"has the same value as {others} ({what}); "
                    "give each secret its own realm so families never share a value",
                )
            )

    by_name = {s.name: s for s in secrets}
    for consumer in constraints.consumers:
        for name in consumer.secrets:
            if name not in by_name:
                findings.append(
                    Finding(
                        "error",
                        "unknown",
                        name,
                        f"consumer {consumer.name!r} names a secret the manifest does not have",
                    )
                )
    for secret in secrets:
        findings += _check_one(secret, constraints)
    findings.sort(key=lambda f: (f.secret, f.code, f.message))
    return findings


def no_ahead(name: str, period: str | None, ahead: int | None) -> Finding | None:
    """The ``ahead = 0`` warning for one rotating secret, or None."""
    if period is None or ahead is None or ahead > 0:
        return None
    return Finding(
        "warning",
        "no-ahead",
        name,
        f"rotates {period} with ahead = 0: at every boundary the host has no next value "
        "until it is provisioned again, and keeps serving the old one, stale; "
        "set ahead = 1 (or more) so hosts rotate on their own",
    )


def _check_one(secret: LintSecret, constraints: Constraints) -> list[Finding]:
    out: list[Finding] = []
    ahead = no_ahead(secret.name, secret.period, secret.ahead)
    if ahead is not None:
        out.append(ahead)
    minimums: list[tuple[int, str]] = []
    if secret.min_length is not None:
        minimums.append((secret.min_length, "its declared minimum"))
    if constraints.min_lengths and secret.name in constraints.min_lengths:
        minimums.append((constraints.min_lengths[secret.name], "its declared minimum"))
    consumers = [c for c in constraints.consumers if secret.name in c.secrets]
    minimums += [(c.min_length, f"consumer {c.name!r}") for c in consumers if c.min_length]
    if minimums:
        need, who = max(minimums)
        if secret.length is None:
            pass  # a store entry or key: its length is not known from the manifest
        elif secret.length < need:
            out.append(
                Finding(
                    "error",
                    "too-short",
                    secret.name,
                    f"is {secret.length} characters, {who} needs at least {need}",
                )
            )
    for consumer in consumers:
        if secret.charset is None:
            continue
        if consumer.charsets is not None and secret.charset not in consumer.charsets:
            out.append(
                Finding(
                    "error",
                    "charset",
                    secret.name,
                    f"uses charset {secret.charset!r}, which consumer {consumer.name!r} "
                    f"does not accept (it accepts {', '.join(consumer.charsets)})",
                )
            )
        alphabet = charset_alphabet(secret.charset)
        if consumer.reject_chars and alphabet is not None:
            bad = sorted(set(alphabet) & set(consumer.reject_chars))
            if bad:
                out.append(
                    Finding(
                        "error",
                        "charset",
                        secret.name,
                        f"charset {secret.charset!r} can produce {''.join(bad)!r}, which "
                        f"consumer {consumer.name!r} rejects",
                    )
                )
    return out


# --------------------------------------------------------------------------- constraints file


def _fail(filename: str, where: str, message: str) -> InputError:
    return InputError(f"{filename}: {where}: {message}")


def _int(value: object, filename: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(filename, where, "must be a positive whole number")
    return value


def _strings(value: object, filename: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(filename, where, "must be a list of strings")
    return tuple(value)


def _table(value: object, filename: str, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _fail(filename, where, "must be a table")
    return value


def _only(table: Mapping[str, Any], allowed: tuple[str, ...], filename: str, where: str) -> None:
    for key in table:
        if key not in allowed:
            raise _fail(
                filename, f"{where}.{key}", f"unknown field (allowed: {', '.join(allowed)})"
            )


def parse_constraints(data: bytes, *, filename: str) -> Constraints:
    """A constraints file (TOML, or JSON when it starts with ``{``), strictly checked."""
    try:
        text = data.decode("utf-8")
        raw: object = loads_json(text) if text.lstrip().startswith("{") else loads_toml(text)
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{filename}: not a valid constraints file ({exc})") from None
    top = _table(raw, filename, "$")
    _only(top, ("version", "consumers", "secrets"), filename, "$")
    if "version" not in top:
        raise _fail(filename, "$.version", "missing (write version = 1)")
    if top["version"] != VERSION:
        raise FormatVersionError(
            f"{filename}: constraints version {top['version']!r} is not supported "
            f"(this is {VERSION})",
            hint="upgrade aux-secrets",
        )
    consumers: list[Consumer] = []
    for cname, craw in _table(top.get("consumers", {}), filename, "$.consumers").items():
        where = f"$.consumers.{cname}"
        table = _table(craw, filename, where)
        _only(table, ("secrets", "minLength", "charsets", "rejectChars"), filename, where)
        charsets = None
        if "charsets" in table:
            charsets = _strings(table["charsets"], filename, f"{where}.charsets")
            for cs in charsets:
                if charset_alphabet(cs) is None:
                    raise _fail(filename, f"{where}.charsets", f"unknown charset {cs!r}")
        reject = table.get("rejectChars", "")
        if not isinstance(reject, str):
            raise _fail(filename, f"{where}.rejectChars", "must be a string")
        consumers.append(
            Consumer(
                name=cname,
                secrets=_strings(table.get("secrets", []), filename, f"{where}.secrets"),
                min_length=(
                    _int(table["minLength"], filename, f"{where}.minLength")
                    if "minLength" in table
                    else None
                ),
                charsets=charsets,
                reject_chars=reject,
            )
        )
    mins: dict[str, int] = {}
    for sname, sraw in _table(top.get("secrets", {}), filename, "$.secrets").items():
        where = f"$.secrets.{sname}"
        table = _table(sraw, filename, where)
        _only(table, ("minLength",), filename, where)
        if "minLength" in table:
            mins[sname] = _int(table["minLength"], filename, f"{where}.minLength")
    return Constraints(tuple(consumers), mins)
