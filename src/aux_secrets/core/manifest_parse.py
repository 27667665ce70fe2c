"""The strict manifest parser behind :func:`aux_secrets.core.manifest.parse_manifest`.

Walks the decoded JSON/TOML document field by field, fills in every default and refuses
anything else with an InputError naming the file and the JSON path of the problem.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from aux_secrets.core.derive import CHARSETS, ENCODINGS, RAW_MAX_LENGTH, TYPES
from aux_secrets.core.manifest import (
    ACCOUNT_RE,
    BACKENDS,
    CREDENTIAL_KEYS,
    CREDENTIAL_NAME_RE,
    DEFAULT_SETTINGS,
    ENV_NAME_RE,
    FIELDS,
    KEY_TYPES,
    MODE_RE,
    NAME_RE,
    PCRS_RE,
    SECRET_FORMATS,
    TEMPLATE_FORMATS,
    UNIT_RE,
    VERSION,
    CredentialSpec,
    DeriveSource,
    Manifest,
    SecretSpec,
    Settings,
    StoreSource,
    TemplateSpec,
    Tpm2Settings,
    default_credential_name,
    default_env_name,
    is_within,
    json_path,
    placeholders,
)
from aux_secrets.core.nesting import loads_json, loads_toml
from aux_secrets.core.passwords import MAX_LENGTH
from aux_secrets.core.realm import check_user_realm
from aux_secrets.core.rotation import MAX_SLOTS, PERIODS, Rotation
from aux_secrets.core.rotation import PLACEHOLDER as PERIOD_MARK
from aux_secrets.errors import AuxError, FormatVersionError, InputError

T = TypeVar("T")

# No secret file may be written here (the Nix store is world-readable; the others are
# kernel and device trees).
SYSTEM_DIRS = ("/nix/store", "/proc", "/sys", "/dev")


class _Parser:
    """Walks the decoded document; every error names ``filename`` and the JSON path."""

    def __init__(self, filename: str) -> None:
        self.filename = filename

    def fail(self, where: tuple[str, ...], problem: str) -> InputError:
        return InputError(f"manifest {self.filename}: {json_path(*where)}: {problem}")

    # -- typed field readers

    def table(
        self, value: object, where: tuple[str, ...], allowed: tuple[str, ...]
    ) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(where, f"expected an object, got {_kind(value)}")
        for key in value:
            if key not in allowed:
                raise self.fail((*where, key), f"unknown field (allowed: {', '.join(allowed)})")
        return value

    def string(self, value: object, where: tuple[str, ...], *, empty: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(where, f"expected a string, got {_kind(value)}")
        if not empty and not value:
            raise self.fail(where, "must not be empty")
        if "\x00" in value:
            raise self.fail(where, "must not contain a NUL character")
        return value

    def optional_string(self, value: object, where: tuple[str, ...]) -> str | None:
        return None if value is None else self.string(value, where)

    def integer(self, value: object, where: tuple[str, ...], low: int, high: int) -> int:
        if type(value) is not int:
            raise self.fail(where, f"expected an integer, got {_kind(value)}")
        if not low <= value <= high:
            raise self.fail(where, f"must be between {low} and {high}, got {value}")
        return value

    def boolean(self, value: object, where: tuple[str, ...]) -> bool:
        if type(value) is not bool:
            raise self.fail(where, f"expected true or false, got {_kind(value)}")
        return value

    def choice(self, value: object, where: tuple[str, ...], choices: tuple[str, ...]) -> str:
        text = self.string(value, where)
        if text not in choices:
            raise self.fail(
                where, f"unknown value {text!r} (expected one of: {', '.join(choices)})"
            )
        return text

    def pattern(
        self, value: object, where: tuple[str, ...], regex: re.Pattern[str], what: str
    ) -> str:
        text = self.string(value, where)
        if not regex.fullmatch(text):
            raise self.fail(where, f"{text!r} is not {what}")
        return text

    def strings(
        self, value: object, where: tuple[str, ...], item: Callable[[object, tuple[str, ...]], T]
    ) -> tuple[T, ...]:
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, got {_kind(value)}")
        return tuple(item(entry, (*where, str(index))) for index, entry in enumerate(value))

    def path(self, value: object, where: tuple[str, ...]) -> str:
        text = self.string(value, where)
        if not text.startswith("/"):
            raise self.fail(where, f"{text!r} is not an absolute path")
        parts = text.split("/")[1:]
        if text != "/" and ("" in parts or "." in parts or ".." in parts):
            raise self.fail(
                where, f"{text!r} is not a normalised path (no '//', '.', '..' or trailing '/')"
            )
        return text

    def signer(self, value: object, where: tuple[str, ...]) -> str:
        from aux_secrets.core.bundle_sign import parse_signer

        text = self.string(value, where)
        try:
            parse_signer(text)
        except InputError:
            raise self.fail(
                where, "expected 'ssh-ed25519 AAAA...' or the base64 of a 32-byte ed25519 key"
            ) from None
        return text

    def mode(self, value: object, where: tuple[str, ...]) -> str:
        return self.pattern(value, where, MODE_RE, 'a mode of four octal digits like "0400"')

    def unit(self, value: object, where: tuple[str, ...]) -> str:
        return self.pattern(value, where, UNIT_RE, "a systemd unit name like nginx.service")

    def account(self, value: object, where: tuple[str, ...]) -> str:
        return self.pattern(value, where, ACCOUNT_RE, "a user or group name")

    def units(self, value: object, where: tuple[str, ...]) -> tuple[str, ...]:
        return self.strings(value, where, self.unit)

    # -- sections

    def document(self, doc: object) -> Manifest:
        top = self.table(doc, (), ("version", "host", "settings", "secrets", "templates"))
        if "version" not in top:
            raise self.fail(("version",), "missing (this tool writes and reads version 1)")
        version = top["version"]
        if type(version) is not int:
            raise self.fail(("version",), f"expected an integer, got {_kind(version)}")
        if version != VERSION:
            raise FormatVersionError(
                f"manifest {self.filename}: $.version: unknown version {version} "
                f"(this aux-secrets reads version {VERSION})",
                hint="upgrade aux-secrets on this host or regenerate the manifest",
            )
        if "host" not in top:
            raise self.fail(("host",), "missing (the host name the bundle is made for)")
        host = self.pattern(top["host"], ("host",), ACCOUNT_RE, "a host name")
        settings = self.settings(top.get("settings", {}))
        secrets_raw = top.get("secrets", {})
        if not isinstance(secrets_raw, dict):
            raise self.fail(("secrets",), f"expected an object, got {_kind(secrets_raw)}")
        secrets = {
            name: self.secret(name, secrets_raw[name], settings) for name in sorted(secrets_raw)
        }
        templates_raw = top.get("templates", {})
        if not isinstance(templates_raw, dict):
            raise self.fail(("templates",), f"expected an object, got {_kind(templates_raw)}")
        templates = {
            name: self.template(name, templates_raw[name], settings, secrets)
            for name in sorted(templates_raw)
        }
        self.check_paths(settings, secrets, templates)
        self.check_credentials(secrets)
        return Manifest(
            host=host,
            settings=settings,
            secrets=MappingProxyType(secrets),
            templates=MappingProxyType(templates),
        )

    def settings(self, value: object) -> Settings:
        where = ("settings",)
        raw = self.table(value, where, tuple(DEFAULT_SETTINGS))
        doc = {**DEFAULT_SETTINGS, **raw}

        def at(key: str) -> tuple[str, ...]:
            return (*where, key)

        tpm2_raw = self.table(doc["tpm2"], at("tpm2"), ("device", "pcrs"))
        tpm2_doc = {**DEFAULT_SETTINGS["tpm2"], **tpm2_raw}
        tpm2 = Tpm2Settings(
            device=self.optional_string(tpm2_doc["device"], (*at("tpm2"), "device")),
            pcrs=self.pattern(
                tpm2_doc["pcrs"], (*at("tpm2"), "pcrs"), PCRS_RE, 'a PCR list like "7" or "0+7"'
            ),
        )
        settings = Settings(
            runtime_dir=self.path(doc["runtimeDir"], at("runtimeDir")),
            generations_dir=self.path(doc["generationsDir"], at("generationsDir")),
            users_dir=self.path(doc["usersDir"], at("usersDir")),
            store_dir=self.path(doc["storeDir"], at("storeDir")),
            backend=self.choice(doc["backend"], at("backend"), BACKENDS),
            credential_key=self.choice(doc["credentialKey"], at("credentialKey"), CREDENTIAL_KEYS),
            tpm2=tpm2,
            host_keys=self.strings(doc["hostKeys"], at("hostKeys"), self.path),
            bundle_signers=self.strings(doc["bundleSigners"], at("bundleSigners"), self.signer),
            keep_generations=self.integer(doc["keepGenerations"], at("keepGenerations"), 1, 1000),
            group=self.account(doc["group"], at("group")),
            systemctl=self.strings(doc["systemctl"], at("systemctl"), self.string),
        )
        if not settings.systemctl:
            raise self.fail(at("systemctl"), 'must name a program (default: ["systemctl"])')
        if settings.backend == "age" and not settings.host_keys:
            raise self.fail(at("hostKeys"), "the age backend needs at least one host key")
        dirs = ("runtimeDir", "generationsDir", "usersDir", "storeDir")
        values = (
            settings.runtime_dir,
            settings.generations_dir,
            settings.users_dir,
            settings.store_dir,
        )
        for key, directory in zip(dirs, values, strict=True):
            if directory == "/":
                raise self.fail(at(key), "must not be the root directory")
        for i, (key_a, dir_a) in enumerate(zip(dirs, values, strict=True)):
            for key_b, dir_b in zip(dirs[i + 1 :], values[i + 1 :], strict=True):
                if is_within(dir_a, dir_b) or is_within(dir_b, dir_a):
                    raise self.fail(at(key_b), f"overlaps {json_path(*where, key_a)} ({dir_a})")
        return settings

    def source(self, value: object, where: tuple[str, ...]) -> DeriveSource | StoreSource:
        raw = self.table(value, where, ("derive", "store", "retired"))
        if len(set(raw) & {"derive", "store"}) != 1:
            raise self.fail(where, "needs exactly one of derive or store")
        if "retired" in raw and "store" not in raw:
            raise self.fail((*where, "retired"), "is for store secrets (derived: rotation.retired)")
        if "store" in raw:
            name = self.pattern(raw["store"], (*where, "store"), NAME_RE, "a store secret name")
            if ".." in name.split("/"):
                raise self.fail((*where, "store"), "must not contain '..'")
            retired = raw.get("retired", 0)
            if isinstance(retired, bool) or not isinstance(retired, int) or not 0 <= retired <= 8:
                raise self.fail((*where, "retired"), "expected a whole number from 0 to 8")
            return StoreSource(name=name, retired=retired)
        return self.derive(raw["derive"], (*where, "derive"))

    def derive(self, value: object, where: tuple[str, ...]) -> DeriveSource:
        keys = ("realm", "type", "length", "charset", "encoding", "public", "rotation")
        raw = self.table(value, where, keys)
        if "realm" not in raw:
            raise self.fail((*where, "realm"), "missing")
        realm = self.string(raw["realm"], (*where, "realm"))
        try:
            check_user_realm(realm)
        except AuxError as exc:
            raise self.fail((*where, "realm"), exc.message) from None
        type_ = self.choice(raw.get("type", "pass"), (*where, "type"), TYPES)
        length = raw.get("length")
        if length is not None:
            high = RAW_MAX_LENGTH if type_ == "raw" else MAX_LENGTH
            length = self.integer(length, (*where, "length"), 1, high)
            if type_ not in ("pass", "raw"):
                raise self.fail((*where, "length"), f"only pass and raw take a length, not {type_}")
        charset = self.choice(raw.get("charset", "gokey"), (*where, "charset"), CHARSETS)
        if charset != "gokey" and type_ != "pass":
            raise self.fail((*where, "charset"), f"only pass takes a charset, not {type_}")
        encoding = self.optional_string(raw.get("encoding"), (*where, "encoding"))
        public = self.boolean(raw.get("public", False), (*where, "public"))
        if public and type_ not in KEY_TYPES:
            raise self.fail((*where, "public"), f"{type_} has no public half")
        allowed = ENCODINGS[type_]
        if encoding is not None and encoding not in allowed:
            raise self.fail(
                (*where, "encoding"),
                f"{encoding!r} does not apply to {type_} (use one of: {', '.join(allowed)})",
            )
        rotation = None
        if raw.get("rotation") is not None:
            rotation = self.rotation(raw["rotation"], (*where, "rotation"))
        if rotation is not None and PERIOD_MARK not in realm:
            raise self.fail((*where, "realm"), f"a rotating realm must contain {PERIOD_MARK}")
        if rotation is None and PERIOD_MARK in realm:
            raise self.fail((*where, "realm"), f"{PERIOD_MARK} is only filled in with a rotation")
        return DeriveSource(realm, type_, length, charset, encoding, public, rotation)

    def rotation(self, value: object, where: tuple[str, ...]) -> Rotation:
        raw = self.table(value, where, ("period", "retired", "ahead"))
        if "period" not in raw:
            raise self.fail((*where, "period"), "missing")
        return Rotation(
            period=self.choice(raw["period"], (*where, "period"), PERIODS),
            retired=self.integer(raw.get("retired", 0), (*where, "retired"), 0, MAX_SLOTS),
            ahead=self.integer(raw.get("ahead", 0), (*where, "ahead"), 0, MAX_SLOTS),
        )

    def name(self, name: str, where: tuple[str, ...], what: str) -> None:
        if not NAME_RE.fullmatch(name) or ".." in name.split("/"):
            raise self.fail(
                where,
                f"{name!r} is not a valid {what} name "
                "(segments of letters, digits, '_', '.', '-' joined by '/', no '..')",
            )

    def secret(self, name: str, value: object, settings: Settings) -> SecretSpec:
        where = ("secrets", name)
        self.name(name, where, "secret")
        keys = (
            "source", "path", "owner", "group", "mode", "format", "envName",
            "restartUnits", "reloadUnits", "neededForUsers", "credential",
        )  # fmt: skip
        raw = self.table(value, where, keys)
        if "source" not in raw:
            raise self.fail((*where, "source"), "missing (derive or store)")
        source = self.source(raw["source"], (*where, "source"))
        users = self.boolean(raw.get("neededForUsers", False), (*where, "neededForUsers"))
        base = settings.users_dir if users else settings.runtime_dir
        owner = self.account(raw.get("owner", "root"), (*where, "owner"))
        group = self.account(raw.get("group", "root"), (*where, "group"))
        if users and owner != "root":
            raise self.fail(
                (*where, "owner"),
                "neededForUsers secrets are installed before users exist: owner must be root",
            )
        if users and group != "root":
            raise self.fail(
                (*where, "group"),
                "neededForUsers secrets are installed before groups exist: group must be root",
            )
        credential = None
        if raw.get("credential") is not None:
            credential = self.credential(raw["credential"], (*where, "credential"), name)
        return SecretSpec(
            name=name,
            source=source,
            path=self.path(raw.get("path", f"{base}/{name}"), (*where, "path")),
            owner=owner,
            group=group,
            mode=self.mode(raw.get("mode", "0400"), (*where, "mode")),
            format=self.choice(raw.get("format", "value"), (*where, "format"), SECRET_FORMATS),
            env_name=self.pattern(
                raw.get("envName", default_env_name(name)),
                (*where, "envName"),
                ENV_NAME_RE,
                "an environment variable name",
            ),
            restart_units=self.units(raw.get("restartUnits", []), (*where, "restartUnits")),
            reload_units=self.units(raw.get("reloadUnits", []), (*where, "reloadUnits")),
            needed_for_users=users,
            credential=credential,
        )

    def credential(self, value: object, where: tuple[str, ...], secret: str) -> CredentialSpec:
        raw = self.table(value, where, ("name", "units"))
        return CredentialSpec(
            name=self.pattern(
                raw.get("name", default_credential_name(secret)),
                (*where, "name"),
                CREDENTIAL_NAME_RE,
                "a credential name",
            ),
            units=self.units(raw.get("units", []), (*where, "units")),
        )

    def template(
        self, name: str, value: object, settings: Settings, secrets: Mapping[str, SecretSpec]
    ) -> TemplateSpec:
        where = ("templates", name)
        self.name(name, where, "template")
        keys = (
            "content", "format", "path", "owner", "group", "mode", "restartUnits", "reloadUnits",
        )  # fmt: skip
        raw = self.table(value, where, keys)
        if "content" not in raw:
            raise self.fail((*where, "content"), "missing")
        content = self.string(raw["content"], (*where, "content"), empty=True)
        try:
            references = placeholders(content)
        except InputError as exc:
            raise self.fail((*where, "content"), exc.message) from None
        for secret, field in references:
            if secret not in secrets:
                raise self.fail((*where, "content"), f"placeholder names unknown secret {secret!r}")
            if field not in FIELDS:
                raise self.fail(
                    (*where, "content"),
                    f"placeholder field {field!r} of {secret!r} is not one of {', '.join(FIELDS)}",
                )
            if field == "public" and not _has_public(secrets[secret]):
                raise self.fail(
                    (*where, "content"), f"secret {secret!r} has no public half (derive a key type)"
                )
            if secrets[secret].needed_for_users:
                raise self.fail(
                    (*where, "content"),
                    f"secret {secret!r} is neededForUsers; templates cannot use it",
                )
        return TemplateSpec(
            name=name,
            content=content,
            path=self.path(
                raw.get("path", f"{settings.runtime_dir}/templates/{name}"), (*where, "path")
            ),
            format=self.choice(raw.get("format", "text"), (*where, "format"), TEMPLATE_FORMATS),
            owner=self.account(raw.get("owner", "root"), (*where, "owner")),
            group=self.account(raw.get("group", "root"), (*where, "group")),
            mode=self.mode(raw.get("mode", "0400"), (*where, "mode")),
            restart_units=self.units(raw.get("restartUnits", []), (*where, "restartUnits")),
            reload_units=self.units(raw.get("reloadUnits", []), (*where, "reloadUnits")),
        )

    def check_paths(
        self,
        settings: Settings,
        secrets: Mapping[str, SecretSpec],
        templates: Mapping[str, TemplateSpec],
    ) -> None:
        files: list[tuple[str, tuple[str, ...]]] = []
        files += [(spec.path, ("secrets", name, "path")) for name, spec in secrets.items()]
        files += [(spec.path, ("templates", name, "path")) for name, spec in templates.items()]
        forbidden = (
            (settings.generations_dir, "generationsDir"),
            (settings.store_dir, "storeDir"),
        )
        users_generations = settings.users_dir + ".d"
        for path, where in files:
            if path == "/":
                raise self.fail(where, "/ is the root directory, not a file")
            for system_dir in SYSTEM_DIRS:
                if is_within(path, system_dir):
                    raise self.fail(
                        where, f"{path} is inside {system_dir}, where no secret file may go"
                    )
            if is_within(path, users_generations):
                raise self.fail(where, f"{path} is inside the generations of $.settings.usersDir")
            for directory, key in forbidden:
                if is_within(path, directory):
                    raise self.fail(
                        where, f"{path} is inside {json_path('settings', key)} ({directory})"
                    )
            for directory, key in (
                (settings.runtime_dir, "runtimeDir"),
                (settings.users_dir, "usersDir"),
            ):
                if path == directory:
                    raise self.fail(where, f"{path} is {json_path('settings', key)} itself")
        # Sorted, a file's ancestors come before it: look each one up (linear, not n^2).
        seen: dict[str, tuple[str, ...]] = {}
        for path, where in sorted(files):
            if path in seen:
                raise self.fail(where, f"{path} is also written by {json_path(*seen[path])}")
            parts = path.split("/")
            for depth in range(2, len(parts)):
                parent = "/".join(parts[:depth])
                if parent in seen:
                    raise self.fail(
                        where, f"{path} is below the file of {json_path(*seen[parent])}"
                    )
            seen[path] = where

    def check_credentials(self, secrets: Mapping[str, SecretSpec]) -> None:
        seen: dict[str, str] = {}
        for name, spec in secrets.items():
            if spec.credential is None:
                continue
            where = ("secrets", name, "credential", "name")
            if spec.credential.name in seen:
                other = seen[spec.credential.name]
                raise self.fail(
                    where, f"credential {spec.credential.name!r} is also used by secret {other!r}"
                )
            seen[spec.credential.name] = name


def _has_public(spec: SecretSpec) -> bool:
    return isinstance(spec.source, DeriveSource) and spec.source.type in KEY_TYPES


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _no_duplicates(filename: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise InputError(f"manifest {filename}: duplicate key {key!r} in one object")
            out[key] = value
        return out

    return hook


def decode_document(data: bytes, *, filename: str) -> object:
    """Bytes -> the JSON (or, for a ``.toml`` file name, TOML) document; InputError otherwise."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"manifest {filename}: not UTF-8 text") from None
    if filename.endswith(".toml"):
        try:
            return loads_toml(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"manifest {filename}: not valid TOML: {exc}") from None
    try:
        return loads_json(text, object_pairs_hook=_no_duplicates(filename))
    except json.JSONDecodeError as exc:
        raise InputError(
            f"manifest {filename}: not valid JSON: {exc.msg} "
            f"at line {exc.lineno} column {exc.colno}"
        ) from None


def parse_document(doc: object, *, filename: str) -> Manifest:
    """A decoded document -> Manifest, or InputError naming ``filename`` and the JSON path."""
    return _Parser(filename).document(doc)
