"""Templates: placeholders escaped for where they stand, refused where they cannot be safe."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aux_secrets.core.render import SecretValues
from aux_secrets.core.template import find_placeholders, referenced, render_template
from aux_secrets.errors import InputError
from tests.test_render import nasty_values, sh_env, texts, yaml_load_all

# The attack values the issue names, plus a few more.
ATTACKS = [
    'a"b',
    "line1\nline2",
    "key: value",
    "{{",
    "{{aux:other:current}}",
    "{{aux:other}}",
    "back\\slash\\",
    "it's",
    "''",
    '""',
    "# not a comment",
    "- item",
    "[1, 2]",
    "{a: b}",
    "\\u0041",
    "\\x41",
    "$(id)",
    "${HOME}",
    "`id`",
    "tab\there",
    "a\\",
    '\\"',
    "\u2028",
    "&anchor *alias",
    "!!binary",
    " leading and trailing ",
    "",
]


def vals(current: str, retired: list[str] | None = None, public: str | None = None) -> SecretValues:
    return SecretValues(
        current.encode(),
        tuple(r.encode() for r in retired or []),
        None if public is None else public.encode(),
    )


def attack_values(current: str) -> dict[str, SecretValues]:
    return {
        "hmac": vals(current, [current + "1", "old"]),
        "other": vals("OTHER-MUST-NOT-APPEAR"),
        "key": vals("PRIVATE", [], public=current),
    }


# --------------------------------------------------------------------------- placeholders


def test_find_placeholders_and_default_field() -> None:
    text = "a {{aux:db/pw}} b {{aux:talos/hmac:retired}} {{aux:k:public}}"
    assert [(p.name, p.field) for p in find_placeholders(text)] == [
        ("db/pw", "current"),
        ("talos/hmac", "retired"),
        ("k", "public"),
    ]
    assert referenced(text + " {{aux:db/pw:current}}") == [
        ("db/pw", "current"),
        ("talos/hmac", "retired"),
        ("k", "public"),
    ]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("x {{aux:db}", "malformed placeholder at line 1"),
        ("\n{{aux:}}", "malformed placeholder at line 2"),
        ("{{aux:a:b:c}}", "malformed placeholder"),
        ("{{aux:db:private}}", "unknown field 'private'"),
    ],
)
def test_malformed_placeholders(text: str, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        render_template(text, "text", {"db": vals("x")})


def test_unknown_secret_named() -> None:
    with pytest.raises(InputError, match="unknown secret 'talos/nope'"):
        render_template("x={{aux:talos/nope}}", "text", {"talos/hmac": vals("x")})


def test_public_missing_named() -> None:
    with pytest.raises(InputError, match="secret 'db' has no public half"):
        render_template("{{aux:db:public}}", "text", {"db": vals("x")})


def test_unknown_format() -> None:
    with pytest.raises(InputError, match="unknown template format 'ini'"):
        render_template("x", "ini", {})


# --------------------------------------------------------------------------- text


def test_text_is_raw_and_single_pass() -> None:
    values = {"a": vals("{{aux:b}}", ["r1", "r2"]), "b": vals("SECRET-B")}
    out = render_template("A={{aux:a}} R={{aux:a:retired}} B={{aux:b}}", "text", values)
    assert out == b"A={{aux:b}} R=r1,r2 B=SECRET-B"


def test_text_binary_value_spliced_raw() -> None:
    out = render_template("<{{aux:a}}>", "text", {"a": SecretValues(b"\xff\x00\n")})
    assert out == b"<\xff\x00\n>"


def test_text_refuses_comma_in_retired() -> None:
    with pytest.raises(InputError, match="contains ','"):
        render_template("{{aux:a:retired}}", "text", {"a": vals("x", ["a,b"])})


# --------------------------------------------------------------------------- YAML

TALOS_YAML = """\
# Talos configuration
secrets:
  hmac:
    current: {{aux:hmac}}
    retired: {{aux:hmac:retired}}
  pagination:
    current: "{{aux:hmac}}"   # quoted by the author
    retired:
      - {{aux:hmac:current}}
      - '{{aux:hmac}}'
  joined: "prefix {{aux:hmac:retired}} suffix"
  flow: {a: {{aux:hmac}}, b: [{{aux:hmac}}, "x{{aux:hmac}}y"]}
  public: {{aux:key:public}}
  {{aux:hmac}}: as a key
  ? {{aux:hmac}}
  : complex key
"""


def _talos_expected(value: str) -> dict[str, object]:
    return {
        "secrets": {
            "hmac": {"current": value, "retired": [value + "1", "old"]},
            "pagination": {"current": value, "retired": [value, value]},
            "joined": f"prefix {value}1,old suffix",
            "flow": {"a": value, "b": [value, f"x{value}y"]},
            "public": value,
            value: "as a key",
        }
    }


def test_yaml_attacks_parse_back_exactly() -> None:
    documents, expected = [], []
    for value in ATTACKS + nasty_values(120, 5):
        if "," in value:
            continue  # the joined retired list refuses commas (tested below)
        try:
            documents.append(render_template(TALOS_YAML, "yaml", attack_values(value)))
        except InputError as exc:
            # Line breaks and control characters cannot stand in a single-quoted scalar.
            assert "single-quoted YAML scalar" in exc.message
            assert any(not c.isprintable() for c in value), repr(value)
            template = TALOS_YAML.replace("      - '{{aux:hmac}}'\n", "      - {{aux:hmac}}\n")
            documents.append(render_template(template, "yaml", attack_values(value)))
        want = _talos_expected(value)
        secrets = want["secrets"]
        assert isinstance(secrets, dict)
        # "? x : complex key" overrides the "x: as a key" entry (same key).
        secrets[value] = "complex key"
        expected.append(want)
    loaded = yaml_load_all(documents)
    for doc, want, raw in zip(loaded, expected, documents, strict=True):
        assert doc == want, raw.decode()
        assert b"OTHER-MUST-NOT-APPEAR" not in raw


def test_yaml_single_quoted_refuses_line_breaks() -> None:
    with pytest.raises(InputError, match="single-quoted YAML scalar"):
        render_template("a: '{{aux:hmac}}'\n", "yaml", {"hmac": vals("x\ny")})


def test_yaml_single_quoted_doubles_quote() -> None:
    out = render_template("a: 'x{{aux:h}}'\n", "yaml", {"h": vals("it's")})
    assert out == b"a: 'xit''s'\n"


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("a: x{{aux:h}}\n", "middle of an unquoted YAML scalar"),
        ("a: {{aux:h}}x\n", "next to other unquoted YAML text"),
        ("a: {{aux:h}} {{aux:h}}\n", "next to other unquoted YAML text"),
        ("a:{{aux:h}}\n", "middle of an unquoted YAML scalar"),
        ("a: b # {{aux:h}}\n", "inside a comment"),
        ("# {{aux:h}}\n", "inside a comment"),
        ("a: |\n  {{aux:h}}\n", "inside a block scalar"),
        ("a: >-\n  text\n\n  more {{aux:h}}\nb: 1\n", "inside a block scalar"),
        ("a: |  # {{aux:h}}\n", "inside a comment"),
        ('a: "\\{{aux:h}}"\n', "right after a backslash"),
        ('a: "x"{{aux:h}}\n', "middle of an unquoted YAML scalar"),
        ("a: plain\n  {{aux:h}}\n", "middle of an unquoted YAML scalar"),
        ("a: it's {{aux:h}}\n", "middle of an unquoted YAML scalar"),
    ],
)
def test_yaml_refusals(template: str, why: str) -> None:
    with pytest.raises(InputError, match=why) as info:
        render_template(template, "yaml", {"h": vals("SECRET: x")})
    assert "SECRET" not in info.value.message
    assert "{{aux:h:current}}" in info.value.message


def test_yaml_block_scalar_ends_at_dedent() -> None:
    template = "a: |\n  literal {{text}}\nb: {{aux:h}}\n"
    out = render_template(template, "yaml", {"h": vals("v: 1")})
    assert yaml_load_all([out]) == [{"a": "literal {{text}}\n", "b": "v: 1"}]


def test_yaml_apostrophe_inside_plain_scalar_does_not_open_a_string() -> None:
    template = "note: don't panic\nkey: {{aux:h}}\nlist: [it's, {{aux:h}}]\n"
    out = render_template(template, "yaml", {"h": vals("x: 'y'\n- z")})
    assert yaml_load_all([out]) == [
        {"note": "don't panic", "key": "x: 'y'\n- z", "list": ["it's", "x: 'y'\n- z"]}
    ]


def test_yaml_refuses_invalid_utf8_naming_secret() -> None:
    with pytest.raises(InputError, match="secret 'h' field 'current' is not valid UTF-8"):
        render_template("a: {{aux:h}}\n", "yaml", {"h": SecretValues(b"\xff")})


# --------------------------------------------------------------------------- JSON

JSON_TEMPLATE = """\
{
  "hmac": {"current": {{aux:hmac}}, "retired": {{aux:hmac:retired}}},
  "quoted": "pre {{aux:hmac}} post",
  "joined": "{{aux:hmac:retired}}",
  "list": [{{aux:hmac}}, {{aux:key:public}}],
  {{aux:hmac}}: 1
}
"""


@settings(max_examples=200, deadline=None)
@given(texts.filter(lambda t: "," not in t))
def test_json_template_round_trip(value: str) -> None:
    out = render_template(JSON_TEMPLATE, "json", attack_values(value))
    assert json.loads(out) == {
        "hmac": {"current": value, "retired": [value + "1", "old"]},
        "quoted": f"pre {value} post",
        "joined": f"{value}1,old",
        "list": [value, value],
        value: 1,
    }
    assert b"OTHER-MUST-NOT-APPEAR" not in out


@pytest.mark.parametrize("value", ATTACKS)
def test_json_attacks(value: str) -> None:
    if "," in value:
        return
    test_json_template_round_trip.hypothesis.inner_test(value)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ('{"a": x{{aux:h}}}', "next to other unquoted JSON text"),
        ('{"a": {{aux:h}}x}', "next to other unquoted JSON text"),
        ('{"a": "\\{{aux:h}}"}', "right after a backslash"),
    ],
)
def test_json_refusals(template: str, why: str) -> None:
    with pytest.raises(InputError, match=why):
        render_template(template, "json", {"h": vals("v")})


def test_json_refuses_invalid_utf8() -> None:
    with pytest.raises(InputError, match=r"secret 'h' field 'retired' \(value 2\)"):
        render_template(
            '{"a": {{aux:h:retired}}}', "json", {"h": SecretValues(b"x", (b"o", b"\x80"))}
        )


# --------------------------------------------------------------------------- TOML

TOML_TEMPLATE = """\
# {{ not a placeholder }}
[secrets.hmac]
current = {{aux:hmac}}
retired = {{aux:hmac:retired}}
quoted = "pre {{aux:hmac}} post"
multi = \"\"\"
line {{aux:hmac}}\"\"\"
inline = { a = {{aux:hmac}}, b = [ {{aux:hmac}}, "x" ] }
{{aux:hmac}} = "as a key"

[{{aux:hmac}}]
k = 1
"""


# A value equal to one of the table's own keys makes the template itself define that key
# twice: invalid TOML whatever the escaping.
TOML_TABLE_KEYS = ("current", "retired", "quoted", "multi", "inline")


@settings(max_examples=200, deadline=None)
@given(texts.filter(lambda v: v not in TOML_TABLE_KEYS))
def test_toml_template_round_trip(value: str) -> None:
    out = render_template(TOML_TEMPLATE, "toml", attack_values(value))
    doc = tomllib.loads(out.decode())
    hmac = doc["secrets"]["hmac"]
    assert hmac["current"] == value
    assert hmac["retired"] == [value + "1", "old"]
    assert hmac["quoted"] == f"pre {value} post"
    assert hmac["multi"] == f"line {value}"
    assert hmac["inline"] == {"a": value, "b": [value, "x"]}
    assert hmac[value] == "as a key"
    if value != "secrets":
        assert doc[value] == {"k": 1}


@pytest.mark.parametrize("value", ATTACKS)
def test_toml_attacks(value: str) -> None:
    test_toml_template_round_trip.hypothesis.inner_test(value)  # type: ignore[attr-defined]


def test_toml_literal_strings() -> None:
    out = render_template("a = 'x{{aux:h}}'\nb = '''\n{{aux:h}}'''\n", "toml", {"h": vals('a"\\b')})
    assert tomllib.loads(out.decode()) == {"a": 'xa"\\b', "b": 'a"\\b'}
    for bad in ("it's", "a\nb"):
        with pytest.raises(InputError, match="TOML literal string"):
            render_template("a = 'x{{aux:h}}'\n", "toml", {"h": vals(bad)})


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("a = x{{aux:h}}\n", "next to other unquoted TOML text"),
        ("a = {{aux:h}}x\n", "next to other unquoted TOML text"),
        ("a = 1 # {{aux:h}}\n", "inside a comment"),
        ('a = "\\{{aux:h}}"\n', "right after a backslash"),
    ],
)
def test_toml_refusals(template: str, why: str) -> None:
    with pytest.raises(InputError, match=why):
        render_template(template, "toml", {"h": vals("v")})


# --------------------------------------------------------------------------- env


ENV_TEMPLATE = """\
# Talos
TALOS_SECRETS_HMAC_CURRENT={{aux:hmac}}
TALOS_SECRETS_HMAC_RETIRED={{aux:hmac:retired}}
QUOTED="pre {{aux:hmac}} post"
URL=postgres://app:{{aux:safe}}@db/app
SINGLE='x{{aux:safe}}'
"""


def test_env_template_sh_round_trip(tmp_path: Path) -> None:
    names = ["TALOS_SECRETS_HMAC_CURRENT", "TALOS_SECRETS_HMAC_RETIRED", "QUOTED", "URL", "SINGLE"]
    for value in [v for v in ATTACKS if "\n" not in v and "," not in v and v != "tab\there"]:
        values = attack_values(value)
        values["safe"] = vals("Safe_pass-123")
        out = render_template(ENV_TEMPLATE, "env", values)
        assert sh_env(out, names, tmp_path) == [
            value,
            f"{value}1,old",
            f"pre {value} post",
            "postgres://app:Safe_pass-123@db/app",
            "xSafe_pass-123",
        ], out.decode()


@pytest.mark.parametrize(
    ("template", "value", "why"),
    [
        ("URL=x{{aux:h}}\n", "a b", "needs quoting"),
        ("URL={{aux:h}}@host\n", "$x", "needs quoting"),
        ("A={{aux:h}}\n", "a\nb", "line break or control character"),
        ('A="{{aux:h}}"\n', "a\x00b", "line break or control character"),
        ("A='{{aux:h}}'\n", "it's", "single-quoted env value"),
        ("# {{aux:h}}\n", "x", "inside a comment"),
        ("; {{aux:h}}\n", "x", "inside a comment"),
        ("{{aux:h}}=1\n", "x", "in a variable name"),
        ("A_{{aux:h}}=1\n", "x", "in a variable name"),
        ('A="\\{{aux:h}}"\n', "x", "right after a backslash"),
        ("A=\\{{aux:h}}\n", "x", "right after a backslash"),
        ("A= {{aux:h}}\n", "x", "after unquoted whitespace"),
        ("A=x {{aux:h}}\n", "x", "after unquoted whitespace"),
        ('A="x" {{aux:h}}\n', "x", "after unquoted whitespace"),
    ],
)
def test_env_refusals(template: str, value: str, why: str) -> None:
    with pytest.raises(InputError, match=why):
        render_template(template, "env", {"h": vals(value)})


def test_env_whole_value_quoted_only_when_needed() -> None:
    out = render_template(
        "A={{aux:h}}\nB={{aux:g}}\n", "env", {"h": vals("plain-1"), "g": vals("a b")}
    )
    assert out == b'A=plain-1\nB="a b"\n'


# --------------------------------------------------------------------------- single pass


@pytest.mark.parametrize("fmt", ["text", "env", "json", "yaml", "toml"])
def test_values_are_never_expanded_again(fmt: str) -> None:
    template = {
        "text": "{{aux:a}}",
        "env": "A={{aux:a}}\n",
        "json": '{"a": {{aux:a}}}',
        "yaml": "a: {{aux:a}}\n",
        "toml": "a = {{aux:a}}\n",
    }[fmt]
    values = {"a": vals("{{aux:b}}{{aux:b:retired}}"), "b": vals("B-SECRET", ["B-OLD"])}
    out = render_template(template, fmt, values)
    assert b"{{aux:b}}" in out
    assert b"B-SECRET" not in out and b"B-OLD" not in out


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=5))
def test_many_placeholders_in_order(names: list[str]) -> None:
    template = " ".join(f"{{{{aux:{n}}}}}" for n in names)
    out = render_template(template, "text", {"a": vals("A"), "b": vals("B")})
    assert out.decode() == " ".join(n.upper() for n in names)
