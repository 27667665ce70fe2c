"""render_secret: every format parses back to the values (json, tomllib, PyYAML, sh)."""

from __future__ import annotations

import json
import random
import subprocess
import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aux_secrets.core.render import SecretValues, render_secret, yaml_string
from aux_secrets.errors import InputError
from tests.helpers import require_program

SYSTEM_PYTHON = "/usr/bin/python3"

# Pieces that have broken quoting somewhere: quotes, escapes, YAML indicators, line breaks,
# placeholders, Unicode line separators, NUL.
NASTY = [
    '"',
    "'",
    "\\",
    "\n",
    "\r\n",
    ": ",
    " #",
    "- ",
    "{{",
    "}}",
    "{{aux:other:current}}",
    "{{aux:x}}",
    ",",
    "$HOME",
    "`id`",
    "\t",
    "\x00",
    "\x7f",
    "\x1b",
    "\u0085",
    "\u00a0",
    "\u2028",
    "\u2029",
    "\ufeff",
    "é",
    "😀",
    "&a",
    "*a",
    "!!str",
    "%",
    "@",
    "|",
    ">",
    "[",
    "]",
    "~",
    "null",
    "true",
    "0x1F",
    "1e3",
    "=",
    '"""',
    "'''",
]

texts = st.lists(
    st.one_of(
        st.sampled_from(NASTY),
        st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8),
    ),
    max_size=8,
).map("".join)


def nasty_values(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    values = list(NASTY)
    for _ in range(count):
        parts = [rng.choice(NASTY) for _ in range(rng.randint(1, 6))]
        parts.insert(
            rng.randint(0, len(parts)), "".join(chr(rng.randint(32, 0x2FF)) for _ in range(4))
        )
        values.append("".join(parts))
    return values


def _control(c: str) -> bool:
    return (ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F


# --------------------------------------------------------------------------- oracles


def yaml_load_all(documents: list[bytes]) -> list[object]:
    """Parse YAML documents with PyYAML from Debian's python3-yaml (a separate interpreter)."""
    if not Path(SYSTEM_PYTHON).exists():
        pytest.fail("python3 is not installed: apt-get install python3-yaml", pytrace=False)
    script = (
        "import json, sys\n"
        "try:\n    import yaml\nexcept ImportError:\n    sys.exit(3)\n"
        "docs = json.load(sys.stdin)\n"
        "print(json.dumps([yaml.safe_load(d) for d in docs]))\n"
    )
    texts = [d.decode("utf-8") for d in documents]
    result = subprocess.run(
        [SYSTEM_PYTHON, "-c", script],
        input=json.dumps(texts).encode(),
        capture_output=True,
        timeout=120,
        check=False,
    )
    if result.returncode == 3:
        pytest.fail("PyYAML is not installed: apt-get install python3-yaml", pytrace=False)
    assert result.returncode == 0, result.stderr.decode()
    loaded = json.loads(result.stdout)
    assert isinstance(loaded, list)
    return loaded


def sh_env(content: bytes, names: list[str], tmp_path: Path) -> list[str]:
    """What POSIX sh (dash) sets after sourcing an env file."""
    sh = require_program("sh", "dash")
    path = tmp_path / "env"
    path.write_bytes(content)
    script = (
        '. "$1" && shift && for n in "$@"; do eval "printf \'%s\\0\' \\"\\${$n-UNSET}\\""; done'
    )
    result = subprocess.run(
        [sh, "-c", script, "sh", str(path), *names], capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode().split("\0")[:-1]


_YAML_ESCAPES = {
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "t": "\t",
    "\t": "\t",
    "n": "\n",
    "v": "\v",
    "f": "\f",
    "r": "\r",
    "e": "\x1b",
    " ": " ",
    '"': '"',
    "/": "/",
    "\\": "\\",
    "N": "\x85",
    "_": "\xa0",
    "L": "\u2028",
    "P": "\u2029",
}


def yaml_dq_decode(scalar: str) -> str:
    """A tiny independent reader of one single-line YAML double-quoted scalar (spec 7.3.1)."""
    assert scalar.startswith('"') and scalar.endswith('"'), scalar
    body, out, i = scalar[1:-1], [], 0
    assert "\n" not in body
    while i < len(body):
        c = body[i]
        if c == '"':
            raise AssertionError(f"unescaped quote in {scalar!r}")
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1]
        if e in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[e]
            out.append(chr(int(body[i + 2 : i + 2 + width], 16)))
            i += 2 + width
        else:
            out.append(_YAML_ESCAPES[e])
            i += 2
    return "".join(out)


# --------------------------------------------------------------------------- value


def test_value_is_current_bytes_exactly() -> None:
    raw = bytes(range(256))
    assert render_secret(SecretValues(raw, (b"old",)), "value", "X") == raw


# --------------------------------------------------------------------------- env


def test_env_talos_shape(tmp_path: Path) -> None:
    values = SecretValues(b"cur-64", (b"old-1", b"old-2"))
    out = render_secret(values, "env", "TALOS_SECRETS_HMAC")
    assert out == b"TALOS_SECRETS_HMAC_CURRENT=cur-64\nTALOS_SECRETS_HMAC_RETIRED=old-1,old-2\n"
    assert sh_env(out, ["TALOS_SECRETS_HMAC_CURRENT", "TALOS_SECRETS_HMAC_RETIRED"], tmp_path) == [
        "cur-64",
        "old-1,old-2",
    ]


def test_env_without_retired_and_with_public() -> None:
    out = render_secret(SecretValues(b"k", (), b"pub"), "env", "SSH")
    assert out == b"SSH_CURRENT=k\nSSH_PUBLIC=pub\n"


def test_env_quotes_what_needs_it(tmp_path: Path) -> None:
    value = "a b\"c'd\\e$HOME`id`#x;y&z|w*?~{{aux:o}}"
    out = render_secret(SecretValues(value.encode()), "env", "A")
    assert out.startswith(b'A_CURRENT="')
    assert sh_env(out, ["A_CURRENT"], tmp_path) == [value]


@pytest.mark.parametrize("bad", [b"a\nb", b"a\rb", b"a\x00b", b"\x1b[31m", b"\x7f"])
def test_env_refuses_line_breaks_and_controls(bad: bytes) -> None:
    with pytest.raises(InputError, match=r"secret 'db/pw' field 'current'") as info:
        render_secret(SecretValues(bad), "env", "DB", name="db/pw")
    assert bad.decode("latin-1") not in info.value.message


def test_env_refuses_comma_in_retired_list() -> None:
    with pytest.raises(InputError, match=r"field 'retired' \(value 2\) contains ','"):
        render_secret(SecretValues(b"x", (b"ok", b"a,b")), "env", "T", name="t")


def test_env_refuses_invalid_utf8_and_bad_names() -> None:
    with pytest.raises(InputError, match="not valid UTF-8"):
        render_secret(SecretValues(b"\xff\xfe"), "env", "T", name="t")
    with pytest.raises(InputError, match="not a valid variable name"):
        render_secret(SecretValues(b"x"), "env", "1BAD")
    with pytest.raises(InputError, match="not a valid variable name"):
        render_secret(SecretValues(b"x"), "env", "A=B")


@settings(max_examples=200, deadline=None)
@given(texts)
def test_env_values_without_controls_are_bare_or_double_quoted(text: str) -> None:
    if any(_control(c) for c in text):
        with pytest.raises(InputError):
            render_secret(SecretValues(text.encode()), "env", "A")
        return
    line = render_secret(SecretValues(text.encode()), "env", "A").decode()
    assert line.count("\n") == 1
    value = line[len("A_CURRENT=") : -1]
    if not value.startswith('"'):
        assert value == text
    else:
        # systemd's EnvironmentFile= rules inside double quotes: \ before " \ ` $ is dropped.
        body, out, i = value[1:-1], [], 0
        while i < len(body):
            if body[i] == "\\" and body[i + 1] in '"\\`$':
                out.append(body[i + 1])
                i += 2
            else:
                assert body[i] not in '"\\`$'
                out.append(body[i])
                i += 1
        assert "".join(out) == text


def test_env_sh_round_trip_many(tmp_path: Path) -> None:
    values = [v for v in nasty_values(200, 7) if not any(_control(c) for c in v)]
    content = b"".join(
        render_secret(SecretValues(v.encode()), "env", f"V{k}") for k, v in enumerate(values)
    )
    assert sh_env(content, [f"V{k}_CURRENT" for k in range(len(values))], tmp_path) == values


# --------------------------------------------------------------------------- json / toml / yaml


@settings(max_examples=300, deadline=None)
@given(texts, st.lists(texts, max_size=3), st.none() | texts)
def test_json_and_toml_round_trip(current: str, retired: list[str], public: str | None) -> None:
    values = SecretValues(
        current.encode(),
        tuple(r.encode() for r in retired),
        None if public is None else public.encode(),
    )
    expected: dict[str, object] = {"current": current, "retired": retired}
    if public is not None:
        expected["public"] = public
    assert json.loads(render_secret(values, "json", "X")) == expected
    assert tomllib.loads(render_secret(values, "toml", "X").decode()) == expected


@settings(max_examples=300, deadline=None)
@given(texts)
def test_yaml_scalar_round_trip_tiny_reader(text: str) -> None:
    scalar = yaml_string(text)
    assert "\n" not in scalar
    assert yaml_dq_decode(scalar) == text


def test_yaml_round_trip_pyyaml() -> None:
    values = nasty_values(300, 11)
    docs = [
        render_secret(SecretValues(v.encode(), (v[::-1].encode(), b"x")), "yaml", "X")
        for v in values
    ]
    docs.append(render_secret(SecretValues(b"only"), "yaml", "X"))
    docs.append(render_secret(SecretValues(b"k", (), b"ssh-ed25519 AAAA"), "yaml", "X"))
    loaded = yaml_load_all(docs)
    for value, doc in zip(values, loaded, strict=False):
        assert doc == {"current": value, "retired": [value[::-1], "x"]}
    assert loaded[-2] == {"current": "only", "retired": []}
    assert loaded[-1] == {"current": "k", "retired": [], "public": "ssh-ed25519 AAAA"}


def test_structured_shapes() -> None:
    values = SecretValues(b"c", (b"r1", b"r2"))
    assert render_secret(values, "yaml", "X") == b'current: "c"\nretired:\n  - "r1"\n  - "r2"\n'
    assert render_secret(values, "toml", "X") == b'current = "c"\nretired = ["r1", "r2"]\n'
    assert render_secret(values, "json", "X") == (
        b'{\n  "current": "c",\n  "retired": ["r1", "r2"]\n}\n'
    )


@pytest.mark.parametrize("fmt", ["json", "yaml", "toml"])
def test_structured_refuse_invalid_utf8_naming_secret(fmt: str) -> None:
    with pytest.raises(InputError, match=r"secret 'talos/hmac' field 'retired' \(value 1\)"):
        render_secret(SecretValues(b"ok", (b"\xc3\x28",)), fmt, "X", name="talos/hmac")
    with pytest.raises(InputError, match=r"secret 'k' field 'current' is not valid UTF-8"):
        render_secret(SecretValues(b"\xff"), fmt, "X", name="k")


def test_unknown_format() -> None:
    with pytest.raises(InputError, match="unknown format 'xml'"):
        render_secret(SecretValues(b"x"), "xml", "X")
