"""The manifest: what one host needs, and the contract between the NixOS module and the tool.

A manifest never holds a secret value. It names each secret's source (derived from a
realm, or a fixed secret from the store), where its file goes, who owns it, which units
to restart or reload when it changes, and the templates rendered from secrets.

Parsing is strict: an unknown field, a wrong type, a relative path, a mode that is not
four octal digits, two files on the same path, a path inside the generations directory
or an unknown version is refused with an :class:`InputError` whose message contains the
JSON path of the problem (``$.secrets.db.mode``). Every default is filled in, so
:func:`manifest_to_json` writes a canonical, complete document. Spec: docs/spec/manifest.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The vocabulary of derived secrets and rotations is theirs; re-exported for readers.
from aux_secrets.core.derive import CHARSETS, ENCODINGS, TYPES
from aux_secrets.core.rotation import PERIODS, Rotation
from aux_secrets.core.rotation import PLACEHOLDER as PERIOD_MARK
from aux_secrets.errors import FormatVersionError, InputError

__all__ = [
    "CHARSETS",
    "ENCODINGS",
    "PERIODS",
    "PERIOD_MARK",
    "TYPES",
    "CredentialSpec",
    "DeriveSource",
    "FormatVersionError",
    "InputError",
    "Manifest",
    "RotationSpec",
    "SecretSpec",
    "Settings",
    "StoreSource",
    "TemplateSpec",
    "Tpm2Settings",
    "default_credential_name",
    "default_env_name",
    "is_within",
    "json_path",
    "manifest_to_dict",
    "manifest_to_json",
    "parse_manifest",
    "placeholders",
]

VERSION = 1

KEY_TYPES = tuple(t for t in TYPES if t not in ("pass", "raw"))
BACKENDS = ("systemd-creds", "age", "plain")
CREDENTIAL_KEYS = ("host", "tpm2", "host+tpm2")
SECRET_FORMATS = ("value", "env", "json", "yaml", "toml")
TEMPLATE_FORMATS = ("text", "env", "json", "yaml", "toml")
FIELDS = ("current", "retired", "public")

NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*")
CREDENTIAL_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MODE_RE = re.compile(r"[0-7]{4}")
ACCOUNT_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\$?")
UNIT_RE = re.compile(r"[A-Za-z0-9:_.\\@-]+\.(service|socket|target|timer|path|mount|slice|scope)")
PCRS_RE = re.compile(r"[0-9]+([+,][0-9]+)*")
# Anything that starts like a placeholder must be a whole, well-formed one.
PLACEHOLDER_START = "{{aux:"
PLACEHOLDER_RE = re.compile(r"\{\{aux:([^:{}]+)(?::([^:{}]+))?\}\}")

DEFAULT_SETTINGS: dict[str, Any] = {
    "runtimeDir": "/run/aux-secrets",
    "generationsDir": "/run/aux-secrets.d",
    "usersDir": "/run/aux-secrets-for-users",
    "storeDir": "/var/lib/aux-secrets",
    "backend": "systemd-creds",
    "credentialKey": "host",
    "tpm2": {"device": None, "pcrs": "7"},
    "hostKeys": ["/etc/ssh/ssh_host_ed25519_key"],
    "bundleSigners": [],
    "keepGenerations": 5,
    "group": "keys",
    "systemctl": ["systemctl"],
}


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class Tpm2Settings:
    device: str | None = None
    pcrs: str = "7"


@dataclass(frozen=True)
class Settings:
    runtime_dir: str = "/run/aux-secrets"
    generations_dir: str = "/run/aux-secrets.d"
    users_dir: str = "/run/aux-secrets-for-users"
    store_dir: str = "/var/lib/aux-secrets"
    backend: str = "systemd-creds"
    credential_key: str = "host"
    tpm2: Tpm2Settings = Tpm2Settings()
    host_keys: tuple[str, ...] = ("/etc/ssh/ssh_host_ed25519_key",)
    # Bundle signers this host accepts (ssh-ed25519 lines or base64 keys); empty: the
    # first bundle's signer is recorded and required from then on.
    bundle_signers: tuple[str, ...] = ()
    keep_generations: int = 5
    group: str = "keys"
    systemctl: tuple[str, ...] = ("systemctl",)


# The rotation of a derived secret is core.rotation.Rotation itself.
RotationSpec = Rotation


@dataclass(frozen=True)
class DeriveSource:
    realm: str
    type: str = "pass"
    length: int | None = None
    charset: str = "gokey"
    encoding: str | None = None
    public: bool = False
    rotation: Rotation | None = None


@dataclass(frozen=True)
class StoreSource:
    name: str
    # How many of the store secret's retired values the host gets (0: none, the default):
    # an explicit choice per secret, so a replaced (leaked) value is not delivered on.
    retired: int = 0


@dataclass(frozen=True)
class CredentialSpec:
    """Also expose the secret as a systemd credential ``name`` to ``units``."""

    name: str
    units: tuple[str, ...] = ()


@dataclass(frozen=True)
class SecretSpec:
    name: str
    source: DeriveSource | StoreSource
    path: str
    owner: str = "root"
    group: str = "root"
    mode: str = "0400"
    format: str = "value"
    env_name: str = ""
    restart_units: tuple[str, ...] = ()
    reload_units: tuple[str, ...] = ()
    needed_for_users: bool = False
    credential: CredentialSpec | None = None

    @property
    def mode_bits(self) -> int:
        return int(self.mode, 8)


@dataclass(frozen=True)
class TemplateSpec:
    name: str
    content: str
    path: str
    format: str = "text"
    owner: str = "root"
    group: str = "root"
    mode: str = "0400"
    restart_units: tuple[str, ...] = ()
    reload_units: tuple[str, ...] = ()

    @property
    def mode_bits(self) -> int:
        return int(self.mode, 8)

    @property
    def references(self) -> tuple[tuple[str, str], ...]:
        """The (secret, field) pairs the content uses, in order of first use."""
        return placeholders(self.content)


@dataclass(frozen=True)
class Manifest:
    host: str
    settings: Settings
    secrets: Mapping[str, SecretSpec]
    templates: Mapping[str, TemplateSpec]
    version: int = VERSION


# --------------------------------------------------------------------------- helpers


def default_env_name(name: str) -> str:
    """``talos/hmac-key.v2`` -> ``TALOS_HMAC_KEY_V2`` (a leading digit gets a ``_``)."""
    env = re.sub(r"[^A-Za-z0-9]", "_", name).upper()
    return "_" + env if env[:1].isdigit() else env


def default_credential_name(name: str) -> str:
    """Credential names cannot hold ``/``: ``talos/hmac`` -> ``talos-hmac``."""
    return name.replace("/", "-")


def placeholders(text: str) -> tuple[tuple[str, str], ...]:
    """``{{aux:NAME:FIELD}}`` references in ``text``; ``{{aux:NAME}}`` means current.

    Raises InputError (without a JSON path; callers add it) for a malformed one.
    """
    found: list[tuple[str, str]] = []
    position = 0
    while (start := text.find(PLACEHOLDER_START, position)) >= 0:
        match = PLACEHOLDER_RE.match(text, start)
        if match is None:
            snippet = text[start : start + 40].split("\n", 1)[0]
            raise InputError(f"malformed placeholder starting {snippet!r}")
        ref = (match.group(1), match.group(2) or "current")
        if ref not in found:
            found.append(ref)
        position = match.end()
    return tuple(found)


def json_path(*parts: str) -> str:
    """``$.secrets.db.mode``; names that are not plain words in brackets: ``$.secrets["a/b"]``."""
    out = "$"
    for part in parts:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            out += "." + part
        else:
            out += "[" + json.dumps(part) + "]"
    return out


def is_within(path: str, directory: str) -> bool:
    """``path`` is ``directory`` or below it (both normalised absolute paths)."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def parse_manifest(data: bytes, *, filename: str) -> Manifest:
    """Strictly parse a manifest (JSON, or TOML for a ``.toml`` file name).

    Every error is an InputError (FormatVersionError for another version) naming
    ``filename`` and the JSON path of the problem.
    """
    from aux_secrets.core.manifest_parse import decode_document, parse_document

    return parse_document(decode_document(data, filename=filename), filename=filename)


def manifest_to_dict(manifest: Manifest) -> dict[str, Any]:
    """The complete document, every default written out (the shape of the spec)."""
    s = manifest.settings
    return {
        "version": manifest.version,
        "host": manifest.host,
        "settings": {
            "runtimeDir": s.runtime_dir,
            "generationsDir": s.generations_dir,
            "usersDir": s.users_dir,
            "storeDir": s.store_dir,
            "backend": s.backend,
            "credentialKey": s.credential_key,
            "tpm2": {"device": s.tpm2.device, "pcrs": s.tpm2.pcrs},
            "hostKeys": list(s.host_keys),
            "bundleSigners": list(s.bundle_signers),
            "keepGenerations": s.keep_generations,
            "group": s.group,
            "systemctl": list(s.systemctl),
        },
        "secrets": {name: _secret_dict(spec) for name, spec in manifest.secrets.items()},
        "templates": {name: _template_dict(spec) for name, spec in manifest.templates.items()},
    }


def _source_dict(source: DeriveSource | StoreSource) -> dict[str, Any]:
    if isinstance(source, StoreSource):
        # "retired" is written only when not 0, so manifests from before it read the same.
        return {"store": source.name, **({"retired": source.retired} if source.retired else {})}
    rotation = source.rotation
    return {
        "derive": {
            "realm": source.realm,
            "type": source.type,
            "length": source.length,
            "charset": source.charset,
            "encoding": source.encoding,
            "public": source.public,
            "rotation": None
            if rotation is None
            else {"period": rotation.period, "retired": rotation.retired, "ahead": rotation.ahead},
        }
    }


def _secret_dict(spec: SecretSpec) -> dict[str, Any]:
    credential = spec.credential
    return {
        "source": _source_dict(spec.source),
        "path": spec.path,
        "owner": spec.owner,
        "group": spec.group,
        "mode": spec.mode,
        "format": spec.format,
        "envName": spec.env_name,
        "restartUnits": list(spec.restart_units),
        "reloadUnits": list(spec.reload_units),
        "neededForUsers": spec.needed_for_users,
        "credential": None
        if credential is None
        else {"name": credential.name, "units": list(credential.units)},
    }


def _template_dict(spec: TemplateSpec) -> dict[str, Any]:
    return {
        "content": spec.content,
        "format": spec.format,
        "path": spec.path,
        "owner": spec.owner,
        "group": spec.group,
        "mode": spec.mode,
        "restartUnits": list(spec.restart_units),
        "reloadUnits": list(spec.reload_units),
    }


def manifest_to_json(manifest: Manifest) -> bytes:
    """Canonical bytes: keys sorted, two-space indent, a final newline, all defaults present."""
    return (json.dumps(manifest_to_dict(manifest), indent=2, sort_keys=True) + "\n").encode()
