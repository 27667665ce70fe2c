"""Lint: reused realms, too-short secrets, charsets a consumer rejects; the lint command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aux_secrets.core.lint import (
    Constraints,
    Consumer,
    LintSecret,
    lint,
    output_charset,
    output_length,
    parse_constraints,
)
from aux_secrets.errors import FormatVersionError, InputError
from tests.helpers import assert_one_line_error, cli


def derived(name: str, realm: str, **kw: object) -> LintSecret:
    return LintSecret(name=name, source="derive", realm=realm, **kw)  # type: ignore[arg-type]


TALOS = Consumer(
    "talos",
    secrets=("talos/hmac", "talos/pagination"),
    min_length=32,
    charsets=("urlsafe", "alnum", "hex", "base64"),
    reject_chars=",",
)


# --------------------------------------------------------------------------- reuse


def test_same_realm_and_type_is_a_warning_for_each_name() -> None:
    secrets = [
        derived("talos/hmac", "talos/{period}", period="monthly", length=64),
        derived("talos/pagination", "talos/{period}", period="monthly", length=64),
        derived("db", "db/web1", length=32),
    ]
    findings = lint(secrets)
    assert [(f.severity, f.code, f.secret) for f in findings] == [
        ("warning", "reused", "talos/hmac"),
        ("warning", "reused", "talos/pagination"),
    ]
    assert "'talos/pagination'" in findings[0].message
    assert "realm 'talos/{period}'" in findings[0].message
    assert [f.severity for f in lint(secrets, strict=True)] == ["error", "error"]


@pytest.mark.parametrize(
    "other",
    [
        {"type": "raw"},
        {"period": "weekly"},
        {"public": True},
        {"realm": "talos/pagination/{period}"},
    ],
)
def test_different_type_period_half_or_realm_is_not_reuse(other: dict[str, object]) -> None:
    base: dict[str, object] = {"realm": "talos/{period}", "period": "monthly"}
    a = derived("a", **base)  # type: ignore[arg-type]
    b = derived("b", **{**base, **other})  # type: ignore[arg-type]
    assert lint([a, b], strict=True) == []


def test_same_store_entry_is_reuse() -> None:
    secrets = [
        LintSecret("api/a", "store", "github/token", type="store"),
        LintSecret("api/b", "store", "github/token", type="store"),
    ]
    findings = lint(secrets)
    assert {f.secret for f in findings} == {"api/a", "api/b"}
    assert "store entry 'github/token'" in findings[0].message


# --------------------------------------------------------------------------- length and charset


def test_too_short_for_consumer_and_declared_minimum() -> None:
    secrets = [
        derived("talos/hmac", "h", length=31, charset="urlsafe"),
        derived("talos/pagination", "p", length=32, charset="urlsafe"),
        derived("db", "d", length=20, charset="alnum", min_length=24),
    ]
    findings = lint(secrets, Constraints((TALOS,)))
    assert [(f.code, f.secret) for f in findings] == [
        ("too-short", "db"),
        ("too-short", "talos/hmac"),
    ]
    assert "is 31 characters, consumer 'talos' needs at least 32" in findings[1].message
    assert "its declared minimum" in findings[0].message


def test_minimum_from_constraints_file_section() -> None:
    secrets = [derived("db", "d", length=10, charset="alnum")]
    assert lint(secrets, Constraints((), {"db": 11}))[0].code == "too-short"
    assert lint(secrets, Constraints((), {"db": 10})) == []


def test_unknown_length_is_not_flagged() -> None:
    secrets = [LintSecret("talos/hmac", "store", "x", type="store")]
    # (talos/pagination is not in this list: only that is reported)
    assert [f.code for f in lint(secrets, Constraints((TALOS,)))] == ["unknown"]


def test_charset_not_accepted_and_rejected_characters() -> None:
    secrets = [
        derived("talos/hmac", "h", length=64, charset="gokey"),
        derived("talos/pagination", "p", length=64, charset="urlsafe"),
    ]
    findings = lint(secrets, Constraints((TALOS,)))
    assert [(f.code, f.secret) for f in findings] == [("charset", "talos/hmac")] * 2
    messages = " ".join(f.message for f in findings)
    assert "does not accept" in messages
    assert "can produce ','" in messages


def test_reject_chars_alone() -> None:
    consumer = Consumer("csv", secrets=("a",), reject_chars="=")
    assert [
        f.code for f in lint([derived("a", "a", charset="base64")], Constraints((consumer,)))
    ] == ["charset"]
    assert lint([derived("a", "a", charset="hex")], Constraints((consumer,))) == []


def test_consumer_naming_unknown_secret() -> None:
    findings = lint([], Constraints((Consumer("talos", secrets=("talos/nope",)),)))
    assert [(f.severity, f.code, f.secret) for f in findings] == [
        ("error", "unknown", "talos/nope")
    ]


def test_output_length_and_charset() -> None:
    assert output_length("pass", None, "gokey", None) == 10
    assert output_length("pass", None, "urlsafe", None) == 32
    assert output_length("pass", 64, "urlsafe", None) == 64
    assert output_length("raw", 32, "gokey", "hex") == 64
    assert output_length("raw", 32, "gokey", "base64") == 44
    assert output_length("raw", None, "gokey", None) == 32
    assert output_length("ed25519", None, "gokey", "pem") is None
    assert output_charset("raw", "gokey", "hex") == "hex"
    assert output_charset("raw", "gokey", "binary") is None
    assert output_charset("pass", "alnum", None) == "alnum"


# --------------------------------------------------------------------------- constraints file

CONSTRAINTS_TOML = b"""\
version = 1

[consumers.talos]
secrets = ["talos/hmac", "talos/pagination"]
minLength = 32
charsets = ["urlsafe", "alnum"]
rejectChars = ","

[secrets."db/password"]
minLength = 24
"""


def test_parse_constraints_toml_and_json() -> None:
    parsed = parse_constraints(CONSTRAINTS_TOML, filename="c.toml")
    assert parsed.consumers == (
        Consumer("talos", ("talos/hmac", "talos/pagination"), 32, ("urlsafe", "alnum"), ","),
    )
    assert parsed.min_lengths == {"db/password": 24}
    doc = {"version": 1, "consumers": {"x": {"secrets": ["a"], "minLength": 8}}}
    assert (
        parse_constraints(json.dumps(doc).encode(), filename="c.json").consumers[0].min_length == 8
    )


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"version = 1\n[consumers.t]\nminLen = 3\n", "$.consumers.t.minLen: unknown field"),
        (b"version = 1\nextra = 1\n", "$.extra: unknown field"),
        (b"[consumers]\n", "$.version: missing"),
        (b"version = 1\n[consumers.t]\nminLength = 0\n", "$.consumers.t.minLength"),
        (b"version = 1\n[consumers.t]\nminLength = true\n", "$.consumers.t.minLength"),
        (b"version = 1\n[consumers.t]\ncharsets = ['klingon']\n", "unknown charset 'klingon'"),
        (b"version = 1\n[consumers.t]\nsecrets = 'a'\n", "$.consumers.t.secrets"),
        (b"version = 1\n[consumers.t]\nrejectChars = 1\n", "$.consumers.t.rejectChars"),
        (b"version = 1\nsecrets = 3\n", "$.secrets: must be a table"),
        (b"version = 1\n[consumers.t\n", "not a valid constraints file"),
        (b"\xff\xfe", "not a valid constraints file"),
        (b'{"version": 1, "consumers": ', "not a valid constraints file"),
        (CONSTRAINTS_TOML[:40], "not a valid constraints file"),
    ],
)
def test_parse_constraints_refuses(data: bytes, needle: str) -> None:
    with pytest.raises(InputError) as info:
        parse_constraints(data, filename="c.toml")
    assert needle in info.value.message
    assert info.value.message.startswith("c.toml")


def test_parse_constraints_wrong_version() -> None:
    with pytest.raises(FormatVersionError, match="version 2 is not supported"):
        parse_constraints(b"version = 2\n", filename="c.toml")


# --------------------------------------------------------------------------- CLI


def manifest(tmp_path: Path, secrets: dict[str, object]) -> Path:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"version": 1, "host": "h", "secrets": secrets}))
    return path


def pw(realm: str, length: int | None = None, charset: str = "urlsafe") -> dict[str, object]:
    return {"source": {"derive": {"realm": realm, "length": length, "charset": charset}}}


def test_cli_lint_clean(tmp_path: Path) -> None:
    m = manifest(tmp_path, {"a": pw("a"), "b": pw("b")})
    result = cli("lint", "--manifest", m, "--strict")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert b"0 errors, 0 warnings in 2 secrets" in result.stderr


def test_cli_lint_reuse_warning_then_strict_error(tmp_path: Path) -> None:
    m = manifest(tmp_path, {"talos/hmac": pw("talos/x"), "talos/pagination": pw("talos/x")})
    result = cli("lint", "--manifest", m)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("warning: talos/hmac: has the same value as 'talos/pagination'")
    strict = cli("lint", "--manifest", m, "--strict")
    assert_one_line_error(strict, "2 errors, 0 warnings")
    assert strict.stdout.decode().count("error: ") == 2


def test_cli_lint_constraints(tmp_path: Path) -> None:
    m = manifest(
        tmp_path,
        {"talos/hmac": pw("talos/hmac", 16), "talos/pagination": pw("talos/p", 64, "gokey")},
    )
    c = tmp_path / "c.toml"
    c.write_bytes(CONSTRAINTS_TOML.split(b"[secrets.")[0])
    result = cli("lint", "--manifest", m, "--constraints", c)
    assert_one_line_error(result, "3 errors")
    out = result.stdout.decode()
    assert (
        "error: talos/hmac: is 16 characters, consumer 'talos' needs at least 32 [too-short]" in out
    )
    assert "error: talos/pagination: uses charset 'gokey'" in out
    assert "can produce ','" in out


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "$.version: missing"),
        (b"\x00\x01garbage", "not a valid"),
        (b"version = 9\n", "version 9 is not supported"),
        (b"version = 1\nbogus = 1\n", "$.bogus"),
    ],
)
def test_cli_lint_bad_constraints(tmp_path: Path, content: bytes, needle: str) -> None:
    m = manifest(tmp_path, {"a": pw("a")})
    c = tmp_path / "c.toml"
    c.write_bytes(content)
    assert_one_line_error(cli("lint", "--manifest", m, "--constraints", c), needle)


def test_cli_lint_bad_manifest(tmp_path: Path) -> None:
    m = tmp_path / "m.json"
    m.write_text('{"version": 1, "host": "h", "secrets": {"a": {"source": {}}}')
    assert_one_line_error(cli("lint", "--manifest", m))
    assert_one_line_error(cli("lint", "--manifest", tmp_path / "absent.json"), "does not exist")


def test_cli_lint_help_has_example() -> None:
    result = cli("lint", "--help")
    assert result.returncode == 0
    assert b"Example: aux-secrets lint" in result.stdout
