"""Property tests: canonical JSON round-trips exactly; mutated manifests fail cleanly."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aux_secrets.core.manifest import manifest_to_json, parse_manifest
from aux_secrets.errors import InputError
from tests.helpers import FIXTURES

GOLDENS = [json.loads(p.read_bytes()) for p in sorted((FIXTURES / "manifests").glob("*.json"))]

segment = st.from_regex(r"[a-z0-9_][a-z0-9_.-]{0,8}", fullmatch=True).filter(
    lambda s: s not in (".", "..") and ".." not in s
)
names = st.lists(segment, min_size=1, max_size=3).map("/".join)
accounts = st.sampled_from(["root", "app", "postgres", "www-data", "talos"])
units = st.lists(st.sampled_from(["a.service", "b.socket", "web@1.service"]), max_size=2)

derive = st.fixed_dictionaries(
    {"realm": names},
    optional={
        "type": st.just("pass"),
        "length": st.integers(1, 128),
        "charset": st.sampled_from(["gokey", "alnum", "hex"]),
    },
).map(lambda d: {"derive": d})
store = names.map(lambda n: {"store": n})

secret = st.fixed_dictionaries(
    {"source": st.one_of(derive, store)},
    optional={
        "owner": accounts,
        "group": accounts,
        "mode": st.from_regex(r"0[0-7]{3}", fullmatch=True),
        "format": st.sampled_from(["value", "env", "json", "yaml", "toml"]),
        "restartUnits": units,
        "reloadUnits": units,
    },
)


@st.composite
def manifests(draw: st.DrawFn) -> dict[str, Any]:
    secrets = draw(st.dictionaries(names, secret, max_size=5))
    # Names that are a prefix of another name would nest files: keep leaves only.
    keys = sorted(secrets)
    secrets = {k: v for k, v in secrets.items() if not any(o.startswith(k + "/") for o in keys)}
    templates = {}
    for i, name in enumerate(sorted(secrets)[:2]):
        templates[f"t{i}"] = {"content": f"x={{{{aux:{name}}}}}\n", "format": "text"}
    return {"version": 1, "host": draw(segment), "secrets": secrets, "templates": templates}


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(manifests())
def test_canonical_json_round_trips(doc: dict[str, Any]) -> None:
    first = parse_manifest(json.dumps(doc).encode(), filename="m.json")
    canonical = manifest_to_json(first)
    again = parse_manifest(canonical, filename="m.json")
    assert again == first
    assert manifest_to_json(again) == canonical


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*prefix, index))
    return out


junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 10_000),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(GOLDENS), st.data(), junk)
def test_mutated_manifest_parses_or_names_a_json_path(
    golden: dict[str, Any], data: st.DataObject, value: Any
) -> None:
    doc = json.loads(json.dumps(golden))
    path = data.draw(st.sampled_from(_paths(doc)[1:]))
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    try:
        parse_manifest(json.dumps(doc).encode(), filename="m.json")
    except InputError as exc:
        assert exc.message.startswith("manifest m.json: $"), exc.message
        assert "\n" not in exc.message
