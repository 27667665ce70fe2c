"""Golden renderings of the Talos configuration from a fixed test vault (tests/vectors/render)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aux_secrets.core.auxv1 import AuxV1
from aux_secrets.core.manifest import Manifest, parse_manifest
from aux_secrets.core.render import SecretValues, render_secret
from aux_secrets.core.rotation import OPEN_NOT_AFTER, OPEN_NOT_BEFORE, format_instant, parse_instant
from aux_secrets.core.template import render_template
from aux_secrets.errors import InputError, NotFoundError
from aux_secrets.workflows import resolve
from tests.helpers import VECTORS
from tests.test_render import sh_env, yaml_load_all

DIR = VECTORS / "render"
SEED = bytes(range(32))
AT = parse_instant("2026-11-22T00:00:00Z")
DEFAULT_CURRENT = b'legacy$default"fallback\\secret-`0123456789`-abcdefghijklmnopqrstuv'
DEFAULT_RETIRED = b"previous-default-secret-rotated-out-on-2026-03-01-padded-to-64c"
FORMATS = ("value", "env", "json", "yaml", "toml")


class Stored:
    def __init__(self, current: bytes, retired: tuple[bytes, ...]) -> None:
        self.current = current
        self.retired = retired
        self.retired_versions = (1,)


def read_store(name: str) -> Stored:
    if name != "talos/legacy-default":
        raise NotFoundError(f"store secret {name} does not exist")
    return Stored(DEFAULT_CURRENT, (DEFAULT_RETIRED,))


def manifest() -> Manifest:
    return parse_manifest(
        (DIR / "talos-manifest.json").read_bytes(), filename="talos-manifest.json"
    )


def resolved() -> dict[str, resolve.ResolvedSecret]:
    return resolve.resolve_manifest(manifest(), AuxV1(SEED), read_store, AT)


def test_slots_match_vector() -> None:
    want = json.loads((DIR / "talos-slots.json").read_text())
    assert want["at"] == format_instant(AT)
    got = resolved()
    assert sorted(got) == sorted(want["secrets"])
    for name, secret in got.items():
        slots = [
            {
                "role": s.role,
                "label": s.label,
                "realm": s.realm,
                "not_before": None
                if s.not_before == OPEN_NOT_BEFORE
                else format_instant(s.not_before),
                "not_after": None if s.not_after == OPEN_NOT_AFTER else format_instant(s.not_after),
                "value": s.value.decode(),
            }
            for s in secret.slots
        ]
        assert slots == want["secrets"][name]["slots"], name
        public = secret.public.decode() if secret.public is not None else None
        assert public == want["secrets"][name]["public"], name


@pytest.mark.parametrize(
    "name", ["talos/hmac", "talos/pagination", "talos/default", "talos/signing"]
)
@pytest.mark.parametrize("fmt", FORMATS)
def test_secret_files_match_vectors(name: str, fmt: str) -> None:
    spec = manifest().secrets[name]
    values = resolved()[name].values()
    path = DIR / f"secret-{name.replace('/', '-')}.{fmt}"
    if not path.exists():
        assert (name, fmt) == ("talos/signing", "env")
        with pytest.raises(InputError, match="line break"):
            render_secret(values, fmt, spec.env_name, name=name)
        return
    assert render_secret(values, fmt, spec.env_name, name=name) == path.read_bytes()


def test_templates_match_vectors() -> None:
    m = manifest()
    values = resolve.values_of(resolved())
    yaml_out = render_template(m.templates["talos/secrets.yaml"].content, "yaml", values)
    env_out = render_template(m.templates["talos/env"].content, "env", values)
    assert yaml_out == (DIR / "talos-secrets.yaml").read_bytes()
    assert env_out == (DIR / "talos.env").read_bytes()


def _expected_config(values: dict[str, SecretValues]) -> dict[str, object]:
    def family(name: str) -> dict[str, object]:
        v = values[name]
        return {"current": v.current.decode(), "retired": [r.decode() for r in v.retired]}

    public = values["talos/signing"].public
    assert public is not None
    return {
        "secrets": {
            "hmac": family("talos/hmac"),
            "pagination": family("talos/pagination"),
            "default": family("talos/default"),
        },
        "signing": {"public": public.decode()},
    }


def test_yaml_vectors_parse_to_the_values() -> None:
    values = resolve.values_of(resolved())
    doc_values = {
        "talos/hmac": SecretValues(
            b"use-a-random-64-char-hmac-secret-for-api-key-checksum-validation",
            (b"previous-hmac-secret-rotated-out-on-2026-03-01-padded-to-64chars-",),
        ),
        "talos/pagination": SecretValues(
            b"use-a-random-64-char-pagination-token-secret-generated-at-deploy",
            (b"previous-pagination-token-secret-rotated-out-on-2026-03-01--64chars",),
        ),
        "talos/default": SecretValues(b"64-char-fallback-pagination-secret"),
        "talos/signing": SecretValues(
            b"unused", (), b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample"
        ),
    }
    loaded = yaml_load_all(
        [(DIR / "talos-secrets.yaml").read_bytes(), (DIR / "doc-secrets.yaml").read_bytes()]
    )
    assert loaded == [_expected_config(values), _expected_config(doc_values)]
    m = manifest()
    assert (
        render_template(m.templates["talos/secrets.yaml"].content, "yaml", doc_values)
        == (DIR / "doc-secrets.yaml").read_bytes()
    )
    assert (
        render_template(m.templates["talos/env"].content, "env", doc_values)
        == (DIR / "doc.env").read_bytes()
    )


def test_env_vector_sources_to_the_values(tmp_path: Path) -> None:
    values = resolve.values_of(resolved())
    names = [
        "TALOS_SECRETS_HMAC_CURRENT",
        "TALOS_SECRETS_HMAC_RETIRED",
        "TALOS_SECRETS_PAGINATION_CURRENT",
        "TALOS_SECRETS_PAGINATION_RETIRED",
        "TALOS_SECRETS_DEFAULT_CURRENT",
        "TALOS_SECRETS_DEFAULT_RETIRED",
    ]
    got = sh_env((DIR / "talos.env").read_bytes(), names, tmp_path)
    want = []
    for name in ("talos/hmac", "talos/pagination", "talos/default"):
        want += [values[name].current.decode(), b",".join(values[name].retired).decode()]
    assert got == want
    assert got[4] == DEFAULT_CURRENT.decode()


def test_families_never_share_a_value() -> None:
    values = resolve.values_of(resolved())
    seen: list[bytes] = []
    for name in ("talos/hmac", "talos/pagination"):
        seen += [values[name].current, *values[name].retired]
    assert len(set(seen)) == len(seen)
    assert all(len(v) == 64 for v in seen)
