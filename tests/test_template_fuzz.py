"""Fuzz the template lexers: a hostile value must never change a document's structure.

For random templates made of realistic fragments, the document rendered with a hostile
value must parse to exactly the document rendered with a harmless marker, with the marker
replaced by the hostile value in every string. A lexer that misjudges where a placeholder
stands fails this (a changed structure, a parse error, or a wrong string).
"""

from __future__ import annotations

import json
import random
import tomllib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from aux_secrets.core.render import SecretValues
from aux_secrets.core.template import render_template
from aux_secrets.errors import InputError
from tests.test_render import NASTY, yaml_load_all

MARK = "Zq9mark"

YAML_FRAGMENTS = [
    "k{i}: {{{{aux:a}}}}",
    'k{i}: "pre {{{{aux:a}}}} post"',
    "k{i}: 'x{{{{aux:a}}}}'",
    'k{i}: [{{{{aux:a}}}}, "{{{{aux:a}}}}", plain]',
    "k{i}: {{x: {{{{aux:a}}}}, y: 'q'}}",
    "k{i}: don't panic",
    "k{i}: |\n  literal {{{{not}}}} 'x\n  more\"",
    'k{i}:\n  - {{{{aux:a}}}}\n  - "{{{{aux:a:retired}}}}"',
    "# a comment with 'quote\" {{{{",
    "k{i}: {{{{aux:a:retired}}}}",
    'k{i}: "multi\n  line {{{{aux:a}}}}"',
    "k{i}: plain # trailing 'comment",
    "k{i}: &anchor{i} {{{{aux:a}}}}",
    "k{i}: !!str {{{{aux:a}}}}",
    "k{i}: {{{{aux:a}}}}   # note",
    "k{i}: [a, [b, {{{{aux:a}}}}], {{c: {{{{aux:a}}}}}}]",
    "k{i}:\n  nested: {{{{aux:a}}}}\n  other: 'it''s'",
    'k{i}: "esc \\" {{{{aux:a}}}} \\\\"',
    "- {{{{aux:a}}}}",
]

TOML_FRAGMENTS = [
    "k{i} = {{{{aux:a}}}}",
    'k{i} = "pre {{{{aux:a}}}} post"',
    "k{i} = 'x{{{{aux:a}}}}'",
    "k{i} = [{{{{aux:a}}}}, \"{{{{aux:a}}}}\", 'lit']",
    "k{i} = {{ x = {{{{aux:a}}}}, y = 1 }}",
    'k{i} = """\nml {{{{aux:a}}}} ""\n"""',
    "k{i} = '''\nraw {{{{aux:a}}}}'''",
    "k{i} = {{{{aux:a:retired}}}}",
    "# comment 'x\" {{{{",
    "k{i} = 1 # {{{{ not a placeholder",
    'k{i} = "esc \\" {{{{aux:a}}}} \\\\"',
    'k{i} = [\n  {{{{aux:a}}}},\n  "{{{{aux:a:retired}}}}",\n]',
]

JSON_MEMBERS = [
    '"k{i}": {{{{aux:a}}}}',
    '"k{i}": "pre {{{{aux:a}}}} post"',
    '"k{i}": [{{{{aux:a}}}}, "{{{{aux:a}}}}", 1]',
    '"k{i}": {{"x": {{{{aux:a}}}}, "y": "q\\"{{{{"}}',
    '"k{i}": {{{{aux:a:retired}}}}',
    '"k{i}": "esc \\\\ {{{{aux:a}}}} \\""',
]


def values(value: str) -> dict[str, SecretValues]:
    return {"a": SecretValues(value.encode(), ((value + "1").encode(), b"old"))}


def swap(doc: Any, value: str) -> Any:
    """``doc`` with the marker replaced by ``value`` in every string (keys too)."""
    if isinstance(doc, str):
        return doc.replace(MARK, value)
    if isinstance(doc, list):
        return [swap(item, value) for item in doc]
    if isinstance(doc, dict):
        return {swap(k, value): swap(v, value) for k, v in doc.items()}
    return doc


def yaml_template(rng: random.Random) -> str:
    picks = [rng.choice(YAML_FRAGMENTS).format(i=i) for i in range(rng.randint(1, 6))]
    if any(p.startswith("- ") for p in picks):
        picks = [p for p in picks if p.startswith("- ")]  # a sequence document
    return "\n".join(picks) + "\n"


hostile = st.lists(st.sampled_from(NASTY), min_size=1, max_size=5).map("".join)


def test_yaml_structure_is_value_independent() -> None:
    rng = random.Random(1234)
    documents: list[bytes] = []
    cases: list[str] = []
    for _ in range(400):
        template = yaml_template(rng)
        value = "".join(rng.choice(NASTY) for _ in range(rng.randint(1, 5)))
        if "," in value:
            value = value.replace(",", ";")
        safe = render_template(template, "yaml", values(MARK))
        try:
            bad = render_template(template, "yaml", values(value))
        except InputError as exc:
            assert "single-quoted YAML scalar" in exc.message, (template, exc.message)
            continue
        documents += [safe, bad]
        cases.append(value)
    assert len(cases) > 200
    loaded = yaml_load_all(documents)
    for n, value in enumerate(cases):
        safe_doc, bad_doc = loaded[2 * n], loaded[2 * n + 1]
        assert swap(safe_doc, value) == bad_doc, (documents[2 * n + 1].decode(), value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, len(TOML_FRAGMENTS) - 1), min_size=1, max_size=6), hostile)
def test_toml_structure_is_value_independent(picks: list[int], value: str) -> None:
    template = "\n".join(TOML_FRAGMENTS[p].format(i=i) for i, p in enumerate(picks)) + "\n"
    safe = tomllib.loads(render_template(template, "toml", values(MARK)).decode())
    try:
        bad = render_template(template, "toml", values(value))
    except InputError as exc:
        assert "contains ','" in exc.message or "TOML literal string" in exc.message, exc.message
        return
    assert tomllib.loads(bad.decode()) == swap(safe, value)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, len(JSON_MEMBERS) - 1), min_size=1, max_size=6), hostile)
def test_json_structure_is_value_independent(picks: list[int], value: str) -> None:
    members = ",\n  ".join(JSON_MEMBERS[p].format(i=i) for i, p in enumerate(picks))
    template = "{\n  " + members + "\n}\n"
    safe = json.loads(render_template(template, "json", values(MARK)))
    try:
        bad = render_template(template, "json", values(value))
    except InputError as exc:
        assert "contains ','" in exc.message, exc.message
        return
    assert json.loads(bad) == swap(safe, value)
