"""nix/manifest.nix and nix/checks.nix under the real evaluator, without nixpkgs.

Each example configuration tests/fixtures/nix/NAME.nix must evaluate to the golden
manifest tests/fixtures/manifests/NAME.json, which the Python parser accepts as canonical.
"""

# ruff: noqa: E501  (Nix snippets and expected messages read best one per line)

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aux_secrets.core.manifest import manifest_to_json, parse_manifest
from tests.helpers import FIXTURES, REPO
from tests.nixeval import NixError, nix_eval, nix_string

EXAMPLES = sorted((FIXTURES / "nix").glob("*.nix"))
MANIFEST_NIX = REPO / "nix" / "manifest.nix"
CHECKS_NIX = REPO / "nix" / "checks.nix"


def normalised(document: object) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def manifest_of(cfg: str, tmp: Path) -> object:
    return nix_eval(f"import {nix_string(MANIFEST_NIX)} ({cfg})", tmp)


def failed(cfg: str, tmp: Path) -> list[str]:
    expr = (
        f"map (c: c.message) (builtins.filter (c: !c.assertion) "
        f"(import {nix_string(CHECKS_NIX)} ({cfg})))"
    )
    result = nix_eval(expr, tmp)
    assert isinstance(result, list)
    return result


def test_every_example_has_a_golden() -> None:
    assert EXAMPLES
    for example in EXAMPLES:
        assert (FIXTURES / "manifests" / f"{example.stem}.json").exists(), example


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_evaluates_to_golden(example: Path, tmp_path: Path) -> None:
    golden = (FIXTURES / "manifests" / f"{example.stem}.json").read_bytes()
    produced = normalised(manifest_of(f"import {nix_string(example)}", tmp_path))
    assert produced == golden
    parsed = parse_manifest(produced, filename=f"{example.stem}.json")
    assert manifest_to_json(parsed) == golden


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_examples_pass_the_assertions(example: Path, tmp_path: Path) -> None:
    assert failed(f"import {nix_string(example)}", tmp_path) == []


def test_defaults_match_the_python_defaults(tmp_path: Path) -> None:
    cfg = '{ host = "h"; secrets.db.derive.realm = "db/h"; templates.t.content = ""; }'
    produced = normalised(manifest_of(cfg, tmp_path))
    minimal = b'{"version": 1, "host": "h", "secrets": {"db": {"source": {"derive": {"realm": "db/h"}}}}, "templates": {"t": {"content": ""}}}'
    assert produced == manifest_to_json(parse_manifest(minimal, filename="m.json"))


def test_env_and_credential_names(tmp_path: Path) -> None:
    cfg = (
        '{ host = "h"; secrets."9p/talos.hmac-key" = '
        '{ store = "x"; credential.units = [ "a.service" ]; }; }'
    )
    secret = manifest_of(cfg, tmp_path)["secrets"]["9p/talos.hmac-key"]  # type: ignore[index]
    assert secret["envName"] == "_9P_TALOS_HMAC_KEY"
    assert secret["credential"] == {"name": "9p-talos.hmac-key", "units": ["a.service"]}


def test_store_retired_is_the_manifest_retired_count(tmp_path: Path) -> None:
    """storeRetired chooses, per secret, how many retired store values a host gets."""
    from aux_secrets.core.manifest import StoreSource, parse_manifest

    cfg = '{ host = "h"; secrets.a = { store = "x"; storeRetired = 2; }; secrets.b.store = "y"; }'
    doc = manifest_of(cfg, tmp_path)
    assert doc["secrets"]["a"]["source"] == {"store": "x", "retired": 2}  # type: ignore[index]
    assert doc["secrets"]["b"]["source"] == {"store": "y"}  # type: ignore[index]
    parsed = parse_manifest(json.dumps(doc).encode(), filename="nix.json")
    assert parsed.secrets["a"].source == StoreSource("x", retired=2)
    assert parsed.secrets["b"].source == StoreSource("y", retired=0)


def test_template_file_is_read(tmp_path: Path) -> None:
    template = tmp_path / "talos.yaml"
    template.write_text("hmac: {{aux:k}}\n")
    cfg = f'{{ host = "h"; secrets.k.store = "k"; templates.t.file = {template}; }}'
    assert manifest_of(cfg, tmp_path)["templates"]["t"]["content"] == "hmac: {{aux:k}}\n"  # type: ignore[index]


def test_unknown_attribute_is_an_error_naming_it(tmp_path: Path) -> None:
    cfg = '{ host = "h"; secrets."db/pw" = { store = "x"; fromat = "env"; }; }'
    with pytest.raises(NixError, match=r'unknown attribute aux\.secrets\."db/pw"\.fromat'):
        manifest_of(cfg, tmp_path)
    with pytest.raises(NixError, match=r"unknown attribute aux\.settings\.runtimedir"):
        manifest_of('{ host = "h"; settings.runtimedir = "/x"; }', tmp_path)


BASE = '{ host = "h"; secrets = { ok = { store = "ok"; }; } // SECRETS; templates = TEMPLATES; settings = SETTINGS; }'


def cfg_with(secrets: str = "{ }", templates: str = "{ }", settings: str = "{ }") -> str:
    return (
        BASE.replace("SECRETS", secrets)
        .replace("TEMPLATES", templates)
        .replace("SETTINGS", settings)
    )


ASSERTIONS = [
    ("no source", cfg_with("{ a = { }; }"), 'aux.secrets.a: set exactly one of aux.secrets.a.derive or aux.secrets.a.store (neither is set)'),
    ("two sources", cfg_with('{ a = { store = "x"; derive.realm = "r"; }; }'), "(both are set)"),
    ("bad mode", cfg_with('{ "a/b" = { store = "x"; mode = "640"; }; }'), 'aux.secrets."a/b".mode = "640" is not four octal digits'),
    ("bad template mode", cfg_with(templates='{ t = { content = ""; mode = "rw"; }; }'), 'aux.templates.t.mode = "rw"'),
    ("relative path", cfg_with('{ a = { store = "x"; path = "run/a"; }; }'), 'aux.secrets.a.path = "run/a" is not an absolute path'),
    ("duplicate paths", cfg_with('{ a = { store = "x"; path = "/run/aux-secrets/ok"; }; }'), "aux.secrets.a.path and aux.secrets.ok.path all write /run/aux-secrets/ok"),
    ("template on secret path", cfg_with(templates='{ t = { content = ""; path = "/run/aux-secrets/ok"; }; }'), "aux.secrets.ok.path and aux.templates.t.path all write"),
    ("unknown placeholder", cfg_with(templates='{ t.content = "x={{aux:nope}}"; }'), "aux.templates.t.content uses {{aux:nope:current}}, but aux.secrets.nope is not defined"),
    ("unknown field", cfg_with(templates='{ t.content = "{{aux:ok:old}}"; }'), "aux.templates.t.content uses {{aux:ok:old}}; the field must be one of current, retired, public"),
    ("malformed placeholder", cfg_with(templates='{ t.content = "{{aux:ok"; }'), "aux.templates.t.content has a malformed placeholder"),
    ("content and file", cfg_with(templates='{ t = { content = ""; file = ./flake.nix; }; }'), "aux.templates.t: set only one of aux.templates.t.content or aux.templates.t.file"),
    ("users non-root", cfg_with('{ pw = { store = "x"; neededForUsers = true; owner = "alice"; }; }'), 'aux.secrets.pw.owner and .group must be "root" when aux.secrets.pw.neededForUsers is set'),
    ("rotation without period", cfg_with('{ r = { derive = { realm = "r"; rotation.period = "daily"; }; }; }'), 'aux.secrets.r.derive.realm = "r" must contain {period} because aux.secrets.r.derive.rotation is set'),
    ("period without rotation", cfg_with('{ r.derive.realm = "r/{period}"; }'), "contains {period} but aux.secrets.r.derive.rotation is not set"),
    ("credential on socket", cfg_with('{ c = { store = "x"; credential.units = [ "a.socket" ]; }; }'), "aux.secrets.c.credential.units must list .service units"),
    ("bad secret name", cfg_with('{ "a/../b" = { store = "x"; }; }'), 'aux.secrets."a/../b": the name is not valid'),
    ("bad secret name slash", cfg_with('{ "/abs" = { store = "x"; }; }'), 'aux.secrets."/abs": the name is not valid'),
    ("bad template name", cfg_with(templates='{ "t b".content = ""; }'), 'aux.templates."t b": the name is not valid'),
    ("age without keys", cfg_with(settings='{ backend = "age"; hostKeys = [ ]; }'), 'aux.settings.hostKeys must not be empty when aux.settings.backend = "age"'),
]  # fmt: skip


@pytest.mark.parametrize(
    ("cfg", "message"), [a[1:] for a in ASSERTIONS], ids=[a[0] for a in ASSERTIONS]
)
def test_assertion_fires_with_its_message(cfg: str, message: str, tmp_path: Path) -> None:
    messages = failed(cfg, tmp_path)
    assert len(messages) == 1, messages
    assert message in messages[0]
