"""The bundle payload: what one host needs, before the age layer encrypts it to that host.

Version 1 is canonical JSON (UTF-8, sorted keys, no spaces), specified in
docs/spec/bundle.md. Decoding is strict: an unknown field, a wrong type, an unknown
version or a value that is not in canonical form is refused with the JSON path of the
problem. Messages name fields and secrets, never values.

Pure: the caller passes in the creation time, the bundle id and the fingerprint key.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal

from aux_secrets.core.fields import known_fields
from aux_secrets.core.nesting import TOO_DEEP, loads_json
from aux_secrets.errors import FormatVersionError, InputError

if TYPE_CHECKING:
    from aux_secrets.core.manifest import Manifest

FORMAT = "aux-secrets-bundle"
VERSION = 1
ROLES = ("current", "retired", "ahead")
FINGERPRINT_KEY_BYTES = 32
BUNDLE_ID_RE = re.compile(r"[0-9a-f]{32}")
# One path segment of a secret name; segments are joined by "/".
_SEGMENT_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_HOST_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,252}")
_LABEL_RE = re.compile(r"[\x21-\x7e]{1,200}")
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
MAX_SERIAL = 2**63 - 1

# A window end that is not there: the slot is valid from the beginning or to the end of time.
OPEN_NOT_BEFORE = datetime.min.replace(tzinfo=UTC)
OPEN_NOT_AFTER = datetime.max.replace(tzinfo=UTC)

Role = Literal["current", "retired", "ahead"]


@dataclass(frozen=True)
class BundleSlot:
    """One value of a secret and the half-open window ``[not_before, not_after)`` it is for."""

    role: Role
    label: str
    not_before: datetime
    not_after: datetime
    value: bytes = field(repr=False)


@dataclass(frozen=True)
class BundleSecret:
    """All slots of one secret plus the public half where the manifest asked for one."""

    slots: tuple[BundleSlot, ...]
    public: bytes | None = field(default=None, repr=False)
    # The store secret's expiry date (optional field ``expires``), so the host can warn.
    expires: date | None = None

    def current_slot(self) -> BundleSlot:
        """The slot the bundle maker marked ``current`` (decode guarantees exactly one)."""
        return next(slot for slot in self.slots if slot.role == "current")


@dataclass(frozen=True)
class BundlePayload:
    """The clear content of a bundle (version 1)."""

    host: str
    serial: int
    created: datetime
    bundle_id: str
    fingerprint_key: bytes = field(repr=False)
    secrets: Mapping[str, BundleSecret]
    version: int = VERSION
    # The manifest the bundle was made from (optional field ``manifest``): what a host
    # without a manifest of its own seals and installs with (its first deployment).
    manifest: Manifest | None = None


def check_secret_name(name: str, where: str = "secret name") -> None:
    """Secret names as the manifest allows them: safe segments joined by '/', no '..'."""
    segments = name.split("/") if isinstance(name, str) else []
    if (
        not segments
        or len(name) > 255
        or any(not _SEGMENT_RE.fullmatch(s) or s in (".", "..") for s in segments)
    ):
        raise InputError(f"{where}: {name!r} is not a valid secret name")


def check_host_name(host: str, where: str = "host") -> None:
    if not isinstance(host, str) or not _HOST_RE.fullmatch(host):
        raise InputError(f"{where}: {host!r} is not a valid host name")


def format_instant(at: datetime) -> str:
    """ISO 8601 in UTC with a 'Z', to the second: the only form bundles carry."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise InputError("instant has no time zone")
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_instant_strict(text: object, where: str) -> datetime:
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text):
        raise InputError(f"{where}: expected an instant like 2026-11-22T00:00:00Z")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a valid instant") from None


def parse_date_strict(text: object, where: str) -> date:
    """An ISO calendar date (``2026-12-31``), the only form ``expires`` takes."""
    if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d\d-\d\d", text):
        raise InputError(f"{where}: expected a date like 2026-12-31")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a valid date") from None


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: object, where: str) -> bytes:
    if not isinstance(text, str):
        raise InputError(f"{where}: expected base64 text")
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise InputError(f"{where}: not valid base64") from None
    if _b64encode(data) != text:
        raise InputError(f"{where}: base64 is not in canonical form")
    return data


def _validate(payload: BundlePayload) -> None:
    if payload.version != VERSION:
        raise FormatVersionError(f"bundle payload version {payload.version} is not supported")
    check_host_name(payload.host, "$.host")
    if isinstance(payload.serial, bool) or not isinstance(payload.serial, int):
        raise InputError("$.serial: expected a whole number")
    if not 1 <= payload.serial <= MAX_SERIAL:
        raise InputError("$.serial: must be between 1 and 2^63-1")
    if not BUNDLE_ID_RE.fullmatch(payload.bundle_id):
        raise InputError("$.bundleId: expected 32 lowercase hex digits")
    if len(payload.fingerprint_key) != FINGERPRINT_KEY_BYTES:
        raise InputError(f"$.fingerprintKey: expected {FINGERPRINT_KEY_BYTES} bytes")
    if payload.manifest is not None and payload.manifest.host != payload.host:
        raise InputError(f"$.manifest.host: the manifest is not for host {payload.host!r}")
    for name, secret in payload.secrets.items():
        where = f"$.secrets.{name}"
        check_secret_name(name, where)
        if not secret.slots:
            raise InputError(f"{where}.slots: a secret needs at least one slot")
        if sum(1 for s in secret.slots if s.role == "current") != 1:
            raise InputError(f"{where}.slots: expected exactly one slot with role 'current'")
        labels = [s.label for s in secret.slots]
        if len(set(labels)) != len(labels):
            raise InputError(f"{where}.slots: two slots share a label")
        for index, slot in enumerate(secret.slots):
            at = f"{where}.slots[{index}]"
            if slot.role not in ROLES:
                raise InputError(f"{at}.role: expected one of {', '.join(ROLES)}")
            if not isinstance(slot.label, str) or not _LABEL_RE.fullmatch(slot.label):
                raise InputError(f"{at}.label: expected 1 to 200 printable ASCII characters")
            if not slot.not_before < slot.not_after:
                raise InputError(f"{at}: notBefore must be earlier than notAfter")


def encode_payload(payload: BundlePayload) -> bytes:
    """Canonical JSON bytes of a payload (validated first)."""
    _validate(payload)
    return _encode_valid(payload)


def _encode_valid(payload: BundlePayload) -> bytes:
    secrets: dict[str, Any] = {}
    for name, secret in payload.secrets.items():
        entry: dict[str, Any] = {
            "public": None if secret.public is None else _b64encode(secret.public),
            "slots": [
                {
                    "label": slot.label,
                    "notAfter": None
                    if slot.not_after >= OPEN_NOT_AFTER
                    else format_instant(slot.not_after),
                    "notBefore": None
                    if slot.not_before <= OPEN_NOT_BEFORE
                    else format_instant(slot.not_before),
                    "role": slot.role,
                    "value": _b64encode(slot.value),
                }
                for slot in secret.slots
            ],
        }
        if secret.expires is not None:  # absent: not a store secret, or one without expiry
            entry["expires"] = secret.expires.isoformat()
        secrets[name] = entry
    document = {
        "bundleId": payload.bundle_id,
        "created": format_instant(payload.created),
        "fingerprintKey": _b64encode(payload.fingerprint_key),
        "format": FORMAT,
        "host": payload.host,
        "secrets": secrets,
        "serial": payload.serial,
        "version": VERSION,
    }
    if payload.manifest is not None:
        from aux_secrets.core.manifest import manifest_to_dict

        document["manifest"] = manifest_to_dict(payload.manifest)
    return canonical_json(document)


def canonical_json(document: object) -> bytes:
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InputError(f"duplicate field {key!r}")
        result[key] = value
    return result


def _reject_constant(name: str) -> None:
    raise InputError(f"{name} is not allowed in JSON")


def load_json(data: bytes, what: str) -> object:
    """Strict JSON: UTF-8, no duplicate keys, no NaN/Infinity."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} is not UTF-8 text") from None
    try:
        return loads_json(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except json.JSONDecodeError as exc:
        if exc.msg == TOO_DEEP:
            raise InputError(f"{what} is {TOO_DEEP}") from None
        raise InputError(f"{what} is not valid JSON (line {exc.lineno})") from None
    except InputError as exc:  # from the hooks: a duplicate key, NaN or Infinity
        raise InputError(f"{what}: {exc.message}") from None


def _window_end(value: object, where: str, open_value: datetime) -> datetime:
    if value is None:
        return open_value
    return parse_instant_strict(value, where)


def _manifest(doc: object) -> Manifest | None:
    """The carried manifest, parsed as strictly as a manifest file (None when absent)."""
    if doc is None:
        return None
    if not isinstance(doc, dict):
        raise InputError("$.manifest: expected an object")
    from aux_secrets.core.manifest_parse import parse_document

    return parse_document(doc, filename="carried by the bundle ($.manifest)")


_NEWER_BUNDLE_HINT = (
    "the bundle may come from a newer aux-secrets: upgrade aux-secrets on this host"
)


def decode_payload(data: bytes) -> BundlePayload:
    """Parse and validate payload bytes; InputError / FormatVersionError naming the field."""
    if len(data) > MAX_PAYLOAD_BYTES:
        raise InputError(f"bundle payload is larger than {MAX_PAYLOAD_BYTES} bytes")
    document = load_json(data, "bundle payload")
    if not isinstance(document, dict):
        raise InputError("bundle payload: expected a JSON object")
    if document.get("format") != FORMAT:
        raise InputError(f"bundle payload: $.format is not {FORMAT!r}")
    version = document.get("version")
    if version != VERSION or isinstance(version, bool):
        raise FormatVersionError(
            f"bundle payload version {version!r} is not supported (this build reads {VERSION})",
            hint="upgrade aux-secrets on this host",
        )
    skipped: list[str] = []  # a newer writer's fields (docs/spec/evolution.md)
    top = known_fields(
        document,
        "$",
        {"format", "version", "host", "serial", "created", "bundleId", "fingerprintKey", "secrets"},
        {"manifest"},
        skipped=skipped,
        hint=_NEWER_BUNDLE_HINT,
    )
    if not isinstance(top["host"], str):
        raise InputError("$.host: expected a string")
    if not isinstance(top["bundleId"], str):
        raise InputError("$.bundleId: expected a string")
    secrets_doc = top["secrets"]
    if not isinstance(secrets_doc, dict):
        raise InputError("$.secrets: expected an object")
    secrets: dict[str, BundleSecret] = {}
    for name, secret_doc in secrets_doc.items():
        where = f"$.secrets.{name}"
        check_secret_name(name, where)
        sec = known_fields(
            secret_doc, where, {"slots", "public"}, {"expires"}, skipped=skipped,
            hint=_NEWER_BUNDLE_HINT,
        )  # fmt: skip
        slots_doc = sec["slots"]
        if not isinstance(slots_doc, list):
            raise InputError(f"{where}.slots: expected a list")
        slots: list[BundleSlot] = []
        for index, slot_doc in enumerate(slots_doc):
            at = f"{where}.slots[{index}]"
            s = known_fields(
                slot_doc, at, {"role", "label", "notBefore", "notAfter", "value"},
                skipped=skipped, hint=_NEWER_BUNDLE_HINT,
            )  # fmt: skip
            if s["role"] not in ROLES:
                raise InputError(f"{at}.role: expected one of {', '.join(ROLES)}")
            if not isinstance(s["label"], str):
                raise InputError(f"{at}.label: expected a string")
            slots.append(
                BundleSlot(
                    role=s["role"],
                    label=s["label"],
                    not_before=_window_end(s["notBefore"], f"{at}.notBefore", OPEN_NOT_BEFORE),
                    not_after=_window_end(s["notAfter"], f"{at}.notAfter", OPEN_NOT_AFTER),
                    value=_b64decode(s["value"], f"{at}.value"),
                )
            )
        public = None if sec["public"] is None else _b64decode(sec["public"], f"{where}.public")
        expires = (
            None if "expires" not in sec else parse_date_strict(sec["expires"], f"{where}.expires")
        )
        secrets[name] = BundleSecret(slots=tuple(slots), public=public, expires=expires)
    payload = BundlePayload(
        host=top["host"],
        serial=top["serial"],
        created=parse_instant_strict(top["created"], "$.created"),
        bundle_id=top["bundleId"],
        fingerprint_key=_b64decode(top["fingerprintKey"], "$.fingerprintKey"),
        secrets=secrets,
        manifest=_manifest(top.get("manifest")),
    )
    _validate(payload)
    # Canonical form, so that one payload has one byte string. With a newer writer's
    # fields the re-encoding lacks them: then the document itself must be canonical.
    canonical = canonical_json(document) if skipped else _encode_valid(payload)
    if canonical != data:  # validated just above: encode without checking again
        raise InputError("bundle payload is not in canonical form")
    return payload


__all__ = [
    "FORMAT",
    "OPEN_NOT_AFTER",
    "OPEN_NOT_BEFORE",
    "ROLES",
    "VERSION",
    "BundlePayload",
    "BundleSecret",
    "BundleSlot",
    "canonical_json",
    "check_host_name",
    "check_secret_name",
    "decode_payload",
    "encode_payload",
    "format_instant",
    "load_json",
    "parse_date_strict",
    "parse_instant_strict",
]
