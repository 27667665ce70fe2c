"""The manifest model: goldens accepted and canonical, every rejection names its JSON path."""

# ruff: noqa: E501  (the rejection table reads best one case per line)

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from aux_secrets.core.manifest import (
    DeriveSource,
    StoreSource,
    default_env_name,
    json_path,
    manifest_to_json,
    parse_manifest,
    placeholders,
)
from aux_secrets.errors import FormatVersionError, InputError
from tests.helpers import FIXTURES

GOLDENS = sorted((FIXTURES / "manifests").glob("*.json"))
HAND = sorted((FIXTURES / "manifests").glob("*.toml"))


def minimal() -> dict[str, Any]:
    return {
        "version": 1,
        "host": "web1",
        "secrets": {
            "db": {"source": {"derive": {"realm": "db/web1"}}, "restartUnits": ["app.service"]},
            "token": {"source": {"store": "api/token"}},
        },
        "templates": {"app/env": {"content": "PW={{aux:db}}\nT={{aux:token:current}}\n"}},
    }


def parse(doc: object, filename: str = "m.json") -> Any:
    return parse_manifest(json.dumps(doc).encode(), filename=filename)


def test_there_are_goldens() -> None:
    names = {p.stem for p in GOLDENS}
    assert {"web-db", "api-token", "talos-hmac", "credentials", "users"} <= names


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda p: p.stem)
def test_golden_is_accepted_and_canonical(golden: Path) -> None:
    data = golden.read_bytes()
    manifest = parse_manifest(data, filename=golden.name)
    assert manifest_to_json(manifest) == data
    assert manifest.secrets


@pytest.mark.parametrize("hand", HAND, ids=lambda p: p.name)
def test_toml_manifest_is_accepted(hand: Path) -> None:
    manifest = parse_manifest(hand.read_bytes(), filename=hand.name)
    again = parse_manifest(manifest_to_json(manifest), filename="again.json")
    assert again == manifest


def test_defaults_are_filled() -> None:
    m = parse(minimal())
    db = m.secrets["db"]
    assert db.path == "/run/aux-secrets/db"
    assert (db.owner, db.group, db.mode, db.format) == ("root", "root", "0400", "value")
    assert db.env_name == "DB"
    assert db.mode_bits == 0o400
    assert isinstance(db.source, DeriveSource)
    assert (db.source.type, db.source.charset, db.source.length) == ("pass", "gokey", None)
    assert m.secrets["token"].source == StoreSource("api/token")
    assert m.templates["app/env"].path == "/run/aux-secrets/templates/app/env"
    assert m.templates["app/env"].references == (("db", "current"), ("token", "current"))
    s = m.settings
    assert (s.runtime_dir, s.generations_dir, s.store_dir) == (
        "/run/aux-secrets",
        "/run/aux-secrets.d",
        "/var/lib/aux-secrets",
    )
    assert (s.backend, s.keep_generations, s.systemctl) == ("systemd-creds", 5, ("systemctl",))


def test_needed_for_users_defaults_to_users_dir() -> None:
    doc = minimal()
    doc["secrets"]["pw"] = {"source": {"store": "pw"}, "neededForUsers": True}
    assert parse(doc).secrets["pw"].path == "/run/aux-secrets-for-users/pw"


def test_custom_runtime_dir_moves_default_paths() -> None:
    doc = minimal()
    doc["settings"] = {"runtimeDir": "/run/keys"}
    assert parse(doc).secrets["db"].path == "/run/keys/db"


def test_env_names() -> None:
    assert default_env_name("talos/hmac-key.v2") == "TALOS_HMAC_KEY_V2"
    assert default_env_name("1password") == "_1PASSWORD"


def test_json_path_notation() -> None:
    assert json_path("secrets", "db", "mode") == "$.secrets.db.mode"
    assert json_path("secrets", "db/pw", "mode") == '$.secrets["db/pw"].mode'
    assert json_path("settings", "hostKeys", "0") == '$.settings.hostKeys["0"]'


def test_toml_is_parsed_by_file_name() -> None:
    text = b'version = 1\nhost = "h"\n[secrets.db.source]\nstore = "db"\n'
    assert parse_manifest(text, filename="h.toml").secrets["db"].source == StoreSource("db")
    with pytest.raises(InputError, match="not valid JSON"):
        parse_manifest(text, filename="h.json")


def test_placeholders() -> None:
    assert placeholders("a {{aux:x}} b {{aux:y:retired}} {{aux:x:current}}") == (
        ("x", "current"),
        ("y", "retired"),
    )
    with pytest.raises(InputError, match="malformed"):
        placeholders("{{aux:x")


def _set(doc: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    target: Any = doc
    for key in path[:-1]:
        target = target.setdefault(key, {})
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value


_DELETE = object()

# (what, where to change, new value, JSON path expected in the message, words expected)
REJECTIONS: list[tuple[str, tuple[str, ...], object, str, str]] = [
    ("unknown top field", ("extra",), 1, "$.extra", "unknown field"),
    ("no version", ("version",), _DELETE, "$.version", "missing"),
    ("string version", ("version",), "1", "$.version", "expected an integer"),
    ("no host", ("host",), _DELETE, "$.host", "missing"),
    ("host wrong type", ("host",), 7, "$.host", "expected a string"),
    ("secrets not object", ("secrets",), [], "$.secrets", "expected an object"),
    ("templates not object", ("templates",), "x", "$.templates", "expected an object"),
    ("unknown secret field", ("secrets", "db", "fromat"), "env", "$.secrets.db.fromat", "unknown"),
    ("secret not object", ("secrets", "db"), "db/web1", "$.secrets.db", "expected an object"),
    ("no source", ("secrets", "db", "source"), _DELETE, "$.secrets.db.source", "missing"),
    ("two sources", ("secrets", "db", "source", "store"), "db", "$.secrets.db.source", "exactly one"),
    ("no source kind", ("secrets", "db", "source"), {}, "$.secrets.db.source", "exactly one"),
    ("unknown source", ("secrets", "db", "source"), {"vault": "x"}, "$.secrets.db.source.vault", "unknown"),
    ("no realm", ("secrets", "db", "source", "derive"), {}, "$.secrets.db.source.derive.realm", "missing"),
    ("empty realm", ("secrets", "db", "source", "derive", "realm"), "", ".derive.realm", "empty"),
    ("reserved realm", ("secrets", "db", "source", "derive", "realm"), "aux-secrets/x", ".realm", "reserved"),
    ("unknown type", ("secrets", "db", "source", "derive", "type"), "dsa", ".derive.type", "'dsa'"),
    ("unknown charset", ("secrets", "db", "source", "derive", "charset"), "emoji", ".charset", "emoji"),
    ("length zero", ("secrets", "db", "source", "derive", "length"), 0, ".derive.length", "between"),
    ("length float", ("secrets", "db", "source", "derive", "length"), 32.0, ".derive.length", "integer"),
    ("length bool", ("secrets", "db", "source", "derive", "length"), True, ".derive.length", "boolean"),
    ("public on pass", ("secrets", "db", "source", "derive", "public"), True, ".derive.public", "public"),
    ("public not bool", ("secrets", "db", "source", "derive", "public"), "yes", ".derive.public", "true or false"),
    ("rotation without {period}", ("secrets", "db", "source", "derive", "rotation"), {"period": "monthly"}, ".derive.realm", "{period}"),
    ("unknown period", ("secrets", "db", "source", "derive", "rotation"), {"period": "hourly"}, ".rotation.period", "hourly"),
    ("negative retired", ("secrets", "db", "source", "derive", "rotation"), {"period": "daily", "retired": -1}, ".rotation.retired", "between"),
    ("store name with ..", ("secrets", "token", "source", "store"), "../x", "$.secrets.token.source.store", "store secret name"),
    ("relative path", ("secrets", "db", "path"), "run/db", "$.secrets.db.path", "absolute"),
    ("path with ..", ("secrets", "db", "path"), "/run/aux-secrets/../etc/shadow", "$.secrets.db.path", "normalised"),
    ("path trailing slash", ("secrets", "db", "path"), "/run/x/", "$.secrets.db.path", "normalised"),
    ("path in generations", ("secrets", "db", "path"), "/run/aux-secrets.d/3/db", "$.secrets.db.path", "generationsDir"),
    ("path in store", ("secrets", "db", "path"), "/var/lib/aux-secrets/db", "$.secrets.db.path", "storeDir"),
    ("path is runtimeDir", ("secrets", "db", "path"), "/run/aux-secrets", "$.secrets.db.path", "runtimeDir"),
    ("path in nix store", ("secrets", "db", "path"), "/nix/store/abc-db", "$.secrets.db.path", "/nix/store"),
    ("path is the root", ("secrets", "db", "path"), "/", "$.secrets.db.path", "root directory"),
    ("path in proc", ("secrets", "db", "path"), "/proc/self/environ", "$.secrets.db.path", "no secret file may go"),
    ("path in users generations", ("secrets", "db", "path"), "/run/aux-secrets-for-users.d/1/db", "$.secrets.db.path", "usersDir"),
    ("mode three digits", ("secrets", "db", "mode"), "400", "$.secrets.db.mode", "four octal"),
    ("mode not octal", ("secrets", "db", "mode"), "0800", "$.secrets.db.mode", "four octal"),
    ("mode as number", ("secrets", "db", "mode"), 400, "$.secrets.db.mode", "expected a string"),
    ("unknown format", ("secrets", "db", "format"), "xml", "$.secrets.db.format", "xml"),
    ("bad env name", ("secrets", "db", "envName"), "1X", "$.secrets.db.envName", "environment"),
    ("bad owner", ("secrets", "db", "owner"), "a b", "$.secrets.db.owner", "user or group"),
    ("units not list", ("secrets", "db", "restartUnits"), "app.service", ".restartUnits", "list"),
    ("bad unit", ("secrets", "db", "restartUnits"), ["app"], '.restartUnits["0"]', "unit"),
    ("bad reload unit", ("secrets", "db", "reloadUnits"), [3], '.reloadUnits["0"]', "string"),
    ("users flag type", ("secrets", "db", "neededForUsers"), 1, ".neededForUsers", "true or false"),
    ("users non-root owner", ("secrets", "db", "owner"), "alice", "$.secrets.db.owner", "must be root"),
    ("credential bad name", ("secrets", "db", "credential"), {"name": "a/b"}, ".credential.name", "credential"),
    ("credential unknown", ("secrets", "db", "credential"), {"unit": []}, ".credential.unit", "unknown"),
    ("template no content", ("templates", "app/env", "content"), _DELETE, '$.templates["app/env"].content', "missing"),
    ("template unknown secret", ("templates", "app/env", "content"), "{{aux:nope}}", '["app/env"].content', "'nope'"),
    ("template unknown field", ("templates", "app/env", "content"), "{{aux:db:old}}", '["app/env"].content', "'old'"),
    ("template malformed", ("templates", "app/env", "content"), "x {{aux:db", '["app/env"].content', "malformed"),
    ("template public of pass", ("templates", "app/env", "content"), "{{aux:db:public}}", ".content", "public"),
    ("template unknown field name", ("templates", "app/env", "owner_"), "x", '["app/env"].owner_', "unknown"),
    ("template bad format", ("templates", "app/env", "format"), "value", '["app/env"].format', "value"),
    ("template bad mode", ("templates", "app/env", "mode"), "rw", '["app/env"].mode', "four octal"),
    ("settings unknown", ("settings", "runtimedir"), "/x", "$.settings.runtimedir", "unknown"),
    ("settings relative dir", ("settings", "runtimeDir"), "run/x", "$.settings.runtimeDir", "absolute"),
    ("settings backend", ("settings", "backend"), "vault", "$.settings.backend", "vault"),
    ("settings key", ("settings", "credentialKey"), "tpm", "$.settings.credentialKey", "tpm"),
    ("settings pcrs empty", ("settings", "tpm2"), {"pcrs": ""}, "$.settings.tpm2.pcrs", "empty"),
    ("settings tpm2 unknown", ("settings", "tpm2"), {"enable": True}, "$.settings.tpm2.enable", "unknown"),
    ("settings keep zero", ("settings", "keepGenerations"), 0, "$.settings.keepGenerations", "between"),
    ("settings systemctl empty", ("settings", "systemctl"), [], "$.settings.systemctl", "program"),
    ("settings host key relative", ("settings", "hostKeys"), ["key"], '$.settings.hostKeys["0"]', "absolute"),
    ("settings age without keys", ("settings",), {"backend": "age", "hostKeys": []}, "$.settings.hostKeys", "age"),
    ("settings dirs overlap", ("settings", "generationsDir"), "/run/aux-secrets/gen", "$.settings.generationsDir", "overlaps"),
    ("settings root dir", ("settings", "storeDir"), "/", "$.settings.storeDir", "root"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "value", "where", "words"),
    [r[1:] for r in REJECTIONS],
    ids=[r[0] for r in REJECTIONS],
)
def test_rejection_names_json_path(
    change: tuple[str, ...], value: object, where: str, words: str
) -> None:
    doc = minimal()
    if change[-1] == "owner" and change[1] == "db":
        doc["secrets"]["db"]["neededForUsers"] = True
    if change[:3] == ("templates", "app/env", "content") and value is not _DELETE:
        doc["templates"]["app/env"]["content"] = value
    else:
        _set(doc, change, value if value is _DELETE else copy.deepcopy(value))
    if change[-1] == "public" and value is True:
        doc["templates"] = {}
    with pytest.raises(InputError) as caught:
        parse(doc)
    message = caught.value.message
    assert message.startswith("manifest m.json: "), message
    assert where in message, message
    assert words in message, message
    assert "\n" not in message


def test_unknown_version_is_a_format_version_error() -> None:
    doc = minimal()
    doc["version"] = 2
    with pytest.raises(FormatVersionError, match=r"\$\.version: unknown version 2"):
        parse(doc)


@pytest.mark.parametrize(
    "name", ["../x", "a/../b", "/abs", "a//b", "", ".hidden", "a b", "a/", "é"]
)
def test_bad_secret_names(name: str) -> None:
    doc = minimal()
    doc["secrets"][name] = {"source": {"store": "x"}, "path": "/run/other"}
    with pytest.raises(InputError, match=r"\$\.secrets\[.*not a valid secret name"):
        parse(doc)


def test_two_secrets_on_one_path() -> None:
    doc = minimal()
    doc["secrets"]["token"]["path"] = "/run/aux-secrets/db"
    with pytest.raises(InputError) as caught:
        parse(doc)
    assert "$.secrets.token.path" in caught.value.message
    assert "also written by $.secrets.db.path" in caught.value.message


def test_template_and_secret_on_one_path() -> None:
    doc = minimal()
    doc["templates"]["app/env"]["path"] = "/run/aux-secrets/token"
    with pytest.raises(InputError, match=r'\$\.templates\["app/env"\]\.path.*also written'):
        parse(doc)


def test_file_below_another_file() -> None:
    doc = minimal()
    doc["secrets"]["token"]["path"] = "/run/aux-secrets/db/token"
    with pytest.raises(InputError, match=r"\$\.secrets\.token\.path: .* below the file of"):
        parse(doc)


def test_duplicate_credential_names() -> None:
    doc = minimal()
    doc["secrets"]["db"]["credential"] = {"name": "c", "units": ["a.service"]}
    doc["secrets"]["token"]["credential"] = {"name": "c", "units": []}
    with pytest.raises(InputError, match=r"\$\.secrets\.token\.credential\.name"):
        parse(doc)


def test_needed_for_users_cannot_feed_templates() -> None:
    doc = minimal()
    doc["secrets"]["db"]["neededForUsers"] = True
    with pytest.raises(InputError, match="neededForUsers"):
        parse(doc)


def test_rotating_realm_needs_rotation() -> None:
    doc = minimal()
    doc["secrets"]["db"]["source"]["derive"]["realm"] = "db/{period}"
    with pytest.raises(InputError, match=r"\.derive\.realm: \{period\} is only filled"):
        parse(doc)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "not valid JSON"),
        (b'{"version": 1, "host": "h"', "not valid JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b"[1, 2]", "$: expected an object"),
        (b'{"version": 1, "version": 1, "host": "h"}', "duplicate key 'version'"),
        (b"null", "$: expected an object"),
    ],
)
def test_garbage_input(data: bytes, words: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_manifest(data, filename="m.json")
    assert words in caught.value.message


def test_truncated_golden_is_refused() -> None:
    data = GOLDENS[0].read_bytes()
    for cut in (1, len(data) // 3, len(data) - 2):
        with pytest.raises(InputError):
            parse_manifest(data[:cut], filename="cut.json")


def test_manifest_is_immutable() -> None:
    m = parse(minimal())
    with pytest.raises(AttributeError):
        m.host = "other"  # type: ignore[misc]
    with pytest.raises(TypeError):
        m.secrets["new"] = m.secrets["db"]  # type: ignore[index]


def test_encoding_must_fit_type() -> None:
    doc = minimal()
    doc["secrets"]["db"]["source"]["derive"]["encoding"] = "openssh"
    with pytest.raises(InputError, match=r"\$\.secrets\.db\.source\.derive\.encoding: 'openssh'"):
        parse(doc)
    doc["secrets"]["db"]["source"]["derive"]["type"] = "ed25519"
    assert parse({**doc, "templates": {}}).secrets["db"].source.encoding == "openssh"


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda p: p.stem)
def test_golden_templates_render(golden: Path) -> None:
    from aux_secrets.core.render import SecretValues
    from aux_secrets.core.template import render_template

    manifest = parse_manifest(golden.read_bytes(), filename=golden.name)
    values = {
        name: SecretValues(b"current-" + name.encode(), (b"old-1", b"old-2"), b"public-key")
        for name in manifest.secrets
    }
    for name, spec in manifest.templates.items():
        rendered = render_template(spec.content, spec.format, values)  # type: ignore[arg-type]
        for secret, _field in spec.references:
            assert secret in values, name
        assert b"{{aux:" not in rendered
