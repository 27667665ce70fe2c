"""docs/spec/manifest.schema.json agrees with the parser on the goldens and on broken documents.

jsonschema is not a dependency, so a small validator covers the keywords the schema uses.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from aux_secrets.core import manifest as m
from tests.helpers import FIXTURES, REPO

SCHEMA = json.loads((REPO / "docs" / "spec" / "manifest.schema.json").read_text())
GOLDENS = sorted((FIXTURES / "manifests").glob("*.json"))
TYPES = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _type_ok(value: object, name: str) -> bool:
    if name == "integer":
        return type(value) is int
    return isinstance(value, TYPES[name]) and not (name != "boolean" and isinstance(value, bool))


def errors(value: object, schema: dict[str, Any], where: str = "$") -> list[str]:
    if "$ref" in schema:
        target = SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[1]]
        return errors(value, {**target, **{k: v for k, v in schema.items() if k != "$ref"}}, where)
    found: list[str] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_type_ok(value, n) for n in names):
            return [f"{where}: type"]
    if "const" in schema and value != schema["const"]:
        found.append(f"{where}: const")
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: enum")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            found.append(f"{where}: pattern")
        if len(value) < schema.get("minLength", 0):
            found.append(f"{where}: minLength")
        if "not" in schema and not errors(value, schema["not"], where):
            found.append(f"{where}: not")
    low, high = schema.get("minimum", -(2**63)), schema.get("maximum", 2**63)
    if type(value) is int and not low <= value <= high:
        found.append(f"{where}: range")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            found.append(f"{where}: minItems")
        for i, item in enumerate(value):
            found += errors(item, schema.get("items", {}), f"{where}[{i}]")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                found.append(f"{where}.{key}: required")
        props = schema.get("properties", {})
        for key, item in value.items():
            if "propertyNames" in schema:
                found += errors(key, schema["propertyNames"], f"{where}.{key}(name)")
            if key in props:
                found += errors(item, props[key], f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                found.append(f"{where}.{key}: additional")
            elif isinstance(schema.get("additionalProperties"), dict):
                found += errors(item, schema["additionalProperties"], f"{where}.{key}")
    if "oneOf" in schema:
        matching = [s for s in schema["oneOf"] if not errors(value, s, where)]
        if len(matching) != 1:
            found.append(f"{where}: oneOf matched {len(matching)}")
    return found


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda p: p.stem)
def test_goldens_match_schema(golden: Any) -> None:
    assert errors(json.loads(golden.read_bytes()), SCHEMA) == []


@pytest.mark.parametrize(
    ("patch", "where"),
    [
        (lambda d: d.update(version=2), "$.version"),
        (lambda d: d.update(extra=1), "$.extra"),
        (lambda d: d["settings"].update(backend="vault"), "$.settings.backend"),
        (lambda d: next(iter(d["secrets"].values())).update(mode="400"), ".mode"),
        (lambda d: next(iter(d["secrets"].values())).update(path="rel"), ".path"),
        (lambda d: next(iter(d["secrets"].values())).update(source={}), ".source"),
        (lambda d: next(iter(d["secrets"].values())).update(restartUnits=["x"]), ".restartUnits"),
    ],
)
def test_schema_refuses_what_the_parser_refuses(patch: Any, where: str) -> None:
    doc = json.loads((FIXTURES / "manifests" / "web-db.json").read_bytes())
    patch(doc)
    found = errors(doc, SCHEMA)
    assert any(where in e for e in found), found
    with pytest.raises(m.InputError):
        m.parse_manifest(json.dumps(doc).encode(), filename="x.json")


def test_schema_vocabulary_is_the_parsers() -> None:
    defs = SCHEMA["$defs"]
    assert defs["derive"]["properties"]["type"]["enum"] == list(m.TYPES)
    assert defs["derive"]["properties"]["charset"]["enum"] == list(m.CHARSETS)
    assert defs["rotation"]["properties"]["period"]["enum"] == list(m.PERIODS)
    assert defs["secret"]["properties"]["format"]["enum"] == list(m.SECRET_FORMATS)
    assert defs["template"]["properties"]["format"]["enum"] == list(m.TEMPLATE_FORMATS)
    assert defs["settings"]["properties"]["backend"]["enum"] == list(m.BACKENDS)
    defaults = {
        k: v["default"] for k, v in defs["settings"]["properties"].items() if "default" in v
    }
    assert defaults == {k: v for k, v in m.DEFAULT_SETTINGS.items() if k != "tpm2"}
