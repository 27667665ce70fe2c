"""The store file format (docs/spec/store-file.md): a text header and an AEAD body.

Pure: keys, nonces and times are arguments. The header (format version, name,
times, version counter, expiry) is readable without a key and is the AEAD's
associated data; the value, the note and the retired values are encrypted.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from enum import Enum

from aux_secrets.errors import DecryptError, FormatVersionError, InputError, PolicyError

FORMAT_VERSION = 1
STORE_REALM_PREFIX = "aux-secrets/store/v1/"
SUFFIX = ".aux"
MAX_VALUE = 1 << 20
MAX_NOTE = 64 << 10
MAX_KEEP = 8
MAX_FILE = 16 << 20
MAX_NAME = 1000
MAX_SEGMENT = 200
MAX_VERSION = 999_999_999
KEY_SIZE = 32
NONCE_SIZE = 24
LINE = 64
PAYLOAD_LAYOUT = 1

_FIRST_LINE = re.compile(rb"aux-secrets-store: ([0-9]{1,9})\n")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_VERSION = re.compile(r"[1-9][0-9]{0,8}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")


_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_.+@=,:~-]{0," + str(MAX_SEGMENT - 1) + "}"
_PLAIN_NAME = re.compile(f"{_SEGMENT}(?:/{_SEGMENT})*")


def validate_name(name: str) -> None:
    """Refuse names that are not safe as a path under store/ (PolicyError naming the rule)."""
    if len(name) <= MAX_NAME and _PLAIN_NAME.fullmatch(name) and SUFFIX + "/" not in name:
        return  # the usual ASCII name; the checks below would all pass
    shown = repr(name)
    if not name:
        raise PolicyError("store name is empty")
    if name.startswith("/"):
        raise PolicyError(f"store name {shown} is absolute; names are relative, e.g. github/token")
    if _CONTROL.search(name):
        raise PolicyError(f"store name {shown} contains a control character or backslash")
    try:
        encoded = name.encode("utf-8")
    except UnicodeEncodeError:
        raise PolicyError(f"store name {shown} is not valid UTF-8") from None
    _check_unambiguous(name, shown)
    if len(encoded) > MAX_NAME:
        raise PolicyError(f"store name is longer than {MAX_NAME} bytes")
    segments = name.split("/")
    for segment in segments:
        if not segment:
            raise PolicyError(f"store name {shown} has an empty segment ('//' or a trailing '/')")
        if segment in (".", ".."):
            raise PolicyError(f"store name {shown} contains '{segment}'")
        if segment.startswith("."):
            raise PolicyError(f"store name {shown} has a segment starting with '.'")
        if segment != segment.strip():
            raise PolicyError(f"store name {shown} has a segment that starts or ends with a space")
        if segment.startswith("-"):
            raise PolicyError(f"store name {shown} has a segment starting with '-'")
        if len(segment.encode("utf-8")) > MAX_SEGMENT:
            raise PolicyError(f"store name {shown} has a segment longer than {MAX_SEGMENT} bytes")
    if any(segment.endswith(SUFFIX) for segment in segments[:-1]):
        # store/<group>.aux/ would share its path with the secret named <group>.
        raise PolicyError(f"store name {shown} has a group segment ending in '{SUFFIX}'")


# Dashes that read as '-' but are other characters (Pd covers most; these are not Pd).
_DASH_LOOKALIKES = frozenset("\u2212\ufe63\uff0d\u2043")


def _check_unambiguous(name: str, shown: str) -> None:
    """Refuse what makes two names look alike in ``store list``: bidi overrides and
    isolates, zero-width and other format characters, spaces other than ' ', dashes
    other than '-', and compatibility forms (fullwidth letters, ligatures: NFKC)."""
    for ch in name:
        category = unicodedata.category(ch)
        odd_space = category.startswith("Z") and ch != " "
        odd_dash = (category == "Pd" and ch != "-") or ch in _DASH_LOOKALIKES
        if category in ("Cf", "Co", "Cn", "Cs") or odd_space or odd_dash:
            what = unicodedata.name(ch, "an unassigned code point")
            raise PolicyError(
                f"store name {shown} contains U+{ord(ch):04X} ({what}), which can make "
                "two names look alike",
                hint="use letters, digits and . _ + @ = , : ~ - in names",
            )
    if unicodedata.normalize("NFKC", name) != name:
        raise PolicyError(
            f"store name {shown} has characters with a plainer equivalent (fullwidth "
            f"letters, ligatures, decomposed accents); write it as "
            f"{unicodedata.normalize('NFKC', name)!r}"
        )


def store_realm(name: str) -> str:
    """The reserved realm whose raw stream keys this name's file."""
    validate_name(name)
    return STORE_REALM_PREFIX + name


@dataclass(frozen=True)
class StoreMeta:
    """The readable header of a store file."""

    name: str
    created: datetime
    updated: datetime
    version: int = 1
    expires: date | None = None


@dataclass(frozen=True)
class RetiredValue:
    version: int
    value: bytes = field(repr=False)


@dataclass(frozen=True)
class Payload:
    """What the AEAD protects."""

    value: bytes = field(repr=False)
    note: str = field(default="", repr=False)
    retired: tuple[RetiredValue, ...] = ()


@dataclass(frozen=True)
class StoredSecret:
    """A decrypted store file: the value, retired values (newest first), note and metadata."""

    name: str
    current: bytes = field(repr=False)
    retired: tuple[bytes, ...] = field(default=(), repr=False)
    retired_versions: tuple[int, ...] = ()
    note: str = field(default="", repr=False)
    meta: StoreMeta | None = None


@dataclass(frozen=True)
class ParsedFile:
    meta: StoreMeta
    nonce: bytes
    header: bytes
    ciphertext: bytes


# --- times -----------------------------------------------------------------


def format_time(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("store times must be timezone-aware")
    t = moment if moment.tzinfo is UTC else moment.astimezone(UTC)
    return t.isoformat(timespec="seconds")[:-6] + "Z"  # "+00:00" -> "Z"


def normalize_time(moment: datetime) -> datetime:
    """Times are kept to the second, in UTC, as the file stores them."""
    return moment.astimezone(UTC).replace(microsecond=0)


def _parse_time(text: str, what: str) -> datetime:
    if not _TIME.fullmatch(text):
        raise InputError(f"{what} is not a time like 2026-11-22T04:03:47Z")
    return _time_fields(text, what)


def _time_fields(t: str, what: str) -> datetime:
    # By hand: strptime is the slowest part of listing ten thousand headers.
    try:
        return datetime(
            int(t[0:4]), int(t[5:7]), int(t[8:10]), int(t[11:13]), int(t[14:16]),
            int(t[17:19]), tzinfo=UTC,
        )  # fmt: skip
    except ValueError:
        raise InputError(f"{what} is not a valid time") from None


def parse_date(text: str, what: str = "expiry date") -> date:
    if not _DATE.fullmatch(text):
        raise InputError(f"{what} {text!r} is not a date like 2027-01-31")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{what} {text!r} is not a valid date") from None


# --- header ----------------------------------------------------------------


def encode_header(meta: StoreMeta, nonce: bytes) -> bytes:
    validate_name(meta.name)
    if len(nonce) != NONCE_SIZE:
        raise ValueError("nonce must be 24 bytes")
    if not 1 <= meta.version <= MAX_VERSION:
        raise InputError(f"store secret {meta.name}: version {meta.version} is out of range")
    if meta.updated < meta.created:
        raise InputError(f"store secret {meta.name}: updated time is before created time")
    lines = [
        f"aux-secrets-store: {FORMAT_VERSION}",
        f"name: {meta.name}",
        f"created: {format_time(meta.created)}",
        f"updated: {format_time(meta.updated)}",
        f"version: {meta.version}",
    ]
    if meta.expires is not None:
        lines.append(f"expires: {meta.expires.isoformat()}")
    lines.append(f"nonce: {base64.b64encode(nonce).decode('ascii')}")
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def check_format_version(data: bytes, what: str) -> None:
    match = _FIRST_LINE.match(data)
    if match is None:
        raise InputError(f"{what} is not an aux-secrets store file (first line)")
    version = int(match.group(1))
    if version != FORMAT_VERSION:
        raise FormatVersionError(
            f"{what} uses store format version {version}; this aux-secrets reads version "
            f"{FORMAT_VERSION}",
            hint="upgrade aux-secrets",
        )


_T = rb"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)"
_HEADER = re.compile(
    rb"aux-secrets-store: 1\nname: ([^\n]+)\ncreated: " + _T + rb"\nupdated: " + _T
    + rb"\nversion: ([1-9][0-9]{0,8})\n(?:expires: ([0-9]{4}-[0-9]{2}-[0-9]{2})\n)?"
    rb"nonce: ([A-Za-z0-9+/]{32})\n\n"
)  # fmt: skip


def parse_header(data: bytes, what: str) -> tuple[StoreMeta, bytes, int]:
    """Parse the readable header; returns (meta, nonce, length of the header bytes).

    ``data`` may be the whole file or just its beginning (listing reads only that).
    A well-formed header takes one regular expression; anything else goes through
    the line-by-line parser, which says what is wrong.
    """
    match = _HEADER.match(data)
    if match is not None:
        name_b, created_b, updated_b, version_b, expires_b, nonce_b = match.groups()
        try:
            name = name_b.decode("utf-8")
            validate_name(name)
            created = datetime.fromisoformat(created_b.decode("ascii"))
            updated = datetime.fromisoformat(updated_b.decode("ascii"))
            expires = None if expires_b is None else date.fromisoformat(expires_b.decode("ascii"))
        except (UnicodeDecodeError, PolicyError, InputError, ValueError):
            pass  # the slow path names the problem
        else:
            if updated >= created and name == name.strip():
                meta = StoreMeta(name, created, updated, int(version_b), expires)
                return meta, base64.b64decode(nonce_b), match.end()
    return _parse_header_lines(data, what)


def _parse_header_lines(data: bytes, what: str) -> tuple[StoreMeta, bytes, int]:
    check_format_version(data, what)
    end = data.find(b"\n\n")
    if end < 0:
        raise InputError(f"{what} is malformed: the header does not end (truncated?)")
    header_len = end + 2
    try:
        text = data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{what} is malformed: the header is not UTF-8") from None
    lines = text.split("\n")[1:]
    keys = ["name", "created", "updated", "version", "expires", "nonce"]
    if len(lines) == 5:
        keys.remove("expires")
    if len(lines) != len(keys):
        raise InputError(f"{what} is malformed: expected {len(keys)} header lines")
    values: dict[str, str] = {}
    for number, (key, line) in enumerate(zip(keys, lines, strict=True), start=2):
        prefix = key + ": "
        if not line.startswith(prefix) or line != line.rstrip() or line[len(prefix) :] == "":
            raise InputError(f"{what} is malformed: line {number} should be '{key}: ...'")
        values[key] = line[len(prefix) :]
    name = values["name"]
    try:
        validate_name(name)
    except PolicyError:
        raise InputError(f"{what} is malformed: the name field is not a valid name") from None
    created = _parse_time(values["created"], f"{what}: created")
    updated = _parse_time(values["updated"], f"{what}: updated")
    if not _VERSION.fullmatch(values["version"]):
        raise InputError(f"{what} is malformed: version is not a positive number")
    expires = parse_date(values["expires"], f"{what}: expires") if "expires" in values else None
    nonce = _b64(values["nonce"].encode("ascii", "replace"), what, "nonce")
    if len(nonce) != NONCE_SIZE:
        raise InputError(f"{what} is malformed: the nonce is not {NONCE_SIZE} bytes")
    if updated < created:
        raise InputError(f"{what} is malformed: updated is before created")
    meta = StoreMeta(name, created, updated, int(values["version"]), expires)
    return meta, nonce, header_len


def _b64(text: bytes, what: str, field_name: str) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InputError(f"{what} is malformed: the {field_name} is not base64") from None
    if base64.b64encode(raw) != text:
        raise InputError(f"{what} is malformed: the {field_name} is not canonical base64")
    return raw


def parse_file(data: bytes, what: str) -> ParsedFile:
    """Split a whole file into header and ciphertext, checking the text form strictly."""
    if len(data) > MAX_FILE:
        raise InputError(f"{what} is larger than {MAX_FILE} bytes")
    meta, nonce, header_len = parse_header(data, what)
    body = data[header_len:]
    if not body.endswith(b"\n") or body.endswith(b"\n\n"):
        raise InputError(f"{what} is malformed: the ciphertext does not end with one newline")
    lines = body[:-1].split(b"\n")
    if any(len(line) != LINE for line in lines[:-1]) or not 0 < len(lines[-1]) <= LINE:
        raise InputError(f"{what} is malformed: the ciphertext lines are not {LINE} wide")
    ciphertext = _b64(b"".join(lines), what, "ciphertext")
    if len(ciphertext) < 16:
        raise InputError(f"{what} is malformed: the ciphertext is too short (truncated?)")
    return ParsedFile(meta, nonce, data[:header_len], ciphertext)


def _wrap(ciphertext: bytes) -> bytes:
    text = base64.b64encode(ciphertext)
    return b"".join(text[i : i + LINE] + b"\n" for i in range(0, len(text), LINE))


# --- payload ---------------------------------------------------------------


def check_value(name: str, value: bytes) -> None:
    if len(value) > MAX_VALUE:
        raise InputError(
            f"the value for {name} is {len(value)} bytes; the store limit is {MAX_VALUE} "
            "bytes (1 MiB)"
        )


def encode_payload(payload: Payload, name: str = "secret") -> bytes:
    check_value(name, payload.value)
    note = payload.note.encode("utf-8")
    if len(note) > MAX_NOTE:
        raise InputError(f"the note for {name} is longer than {MAX_NOTE} bytes")
    if len(payload.retired) > MAX_KEEP:
        raise InputError(f"{name}: at most {MAX_KEEP} retired values are kept")
    parts = [
        struct.pack(">BI", PAYLOAD_LAYOUT, len(payload.value)),
        payload.value,
        struct.pack(">I", len(note)),
        note,
        struct.pack(">B", len(payload.retired)),
    ]
    for old in payload.retired:
        check_value(name, old.value)
        parts += [struct.pack(">II", old.version, len(old.value)), old.value]
    return b"".join(parts)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ValueError("short")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return int(self.take(1)[0])

    def u32(self) -> int:
        value: int = struct.unpack(">I", self.take(4))[0]
        return value

    def blob(self, limit: int) -> bytes:
        n = self.u32()
        if n > limit:
            raise ValueError("too long")
        return self.take(n)


def decode_payload(data: bytes, what: str) -> Payload:
    reader = _Reader(data)
    try:
        if reader.u8() != PAYLOAD_LAYOUT:
            raise ValueError("layout")
        value = reader.blob(MAX_VALUE)
        note = reader.blob(MAX_NOTE).decode("utf-8")
        count = reader.u8()
        if count > MAX_KEEP:
            raise ValueError("count")
        retired = []
        for _ in range(count):
            version = reader.u32()
            retired.append(RetiredValue(version, reader.blob(MAX_VALUE)))
        if reader.pos != len(data):
            raise ValueError("trailing")
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"{what} has a malformed encrypted payload") from None
    return Payload(value, note, tuple(retired))


# --- whole files -------------------------------------------------------------


def encrypt_file(key: bytes, nonce: bytes, meta: StoreMeta, payload: Payload) -> bytes:
    """Encode one store file. ``key`` from the scheme, ``nonce`` 24 random bytes."""
    from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_encrypt

    if len(key) != KEY_SIZE:
        raise ValueError("key must be 32 bytes")
    header = encode_header(meta, nonce)
    plain = encode_payload(payload, meta.name)
    ciphertext: bytes = crypto_aead_xchacha20poly1305_ietf_encrypt(plain, header, nonce, key)
    return header + _wrap(ciphertext)


def decrypt_file(key: bytes, data: bytes, name: str) -> tuple[StoreMeta, Payload]:
    """Decrypt the file of secret ``name``; any authentication failure is one opaque error."""
    from nacl.bindings import crypto_aead_xchacha20poly1305_ietf_decrypt
    from nacl.exceptions import CryptoError

    what = f"store secret {name}"
    parsed = parse_file(data, what)
    if parsed.meta.name != name:
        raise opaque_error(name)
    try:
        plain: bytes = crypto_aead_xchacha20poly1305_ietf_decrypt(
            parsed.ciphertext, parsed.header, parsed.nonce, key
        )
    except CryptoError:
        raise opaque_error(name) from None
    return parsed.meta, decode_payload(plain, what)


def opaque_error(name: str) -> DecryptError:
    return DecryptError(
        f"store secret {name} cannot be decrypted (tampered, renamed, from another vault, "
        "or not under this vault's keys)",
        hint="run 'aux-secrets store verify'; restore the file from git if it was changed",
    )


def to_secret(meta: StoreMeta, payload: Payload) -> StoredSecret:
    return StoredSecret(
        name=meta.name,
        current=payload.value,
        retired=tuple(old.value for old in payload.retired),
        retired_versions=tuple(old.version for old in payload.retired),
        note=payload.note,
        meta=meta,
    )


class Unchanged(Enum):
    """Marks an optional field a change leaves as it was."""

    KEEP = "keep"


KEEP = Unchanged.KEEP


def replaced(
    meta: StoreMeta,
    payload: Payload,
    value: bytes,
    now: datetime,
    *,
    keep: int = 1,
    note: str | Unchanged = KEEP,
    expires: date | Unchanged | None = KEEP,
) -> tuple[StoreMeta, Payload]:
    """The next version: the current value becomes the newest retired one, ``keep`` kept.

    ``note`` and ``expires`` stay as they were unless given (``expires=None`` clears it).
    """
    if not 0 <= keep <= MAX_KEEP:
        raise InputError(f"--keep must be between 0 and {MAX_KEEP}")
    if meta.version >= MAX_VERSION:
        raise InputError(f"store secret {meta.name} reached the largest version number")
    retired = ((RetiredValue(meta.version, payload.value), *payload.retired))[:keep]
    new_meta = replace(
        meta,
        updated=max(normalize_time(now), meta.created),
        version=meta.version + 1,
        expires=meta.expires if expires is KEEP else expires,
    )
    new_payload = Payload(value, payload.note if note is KEEP else note, retired)
    return new_meta, new_payload


def edited(
    meta: StoreMeta,
    payload: Payload,
    now: datetime,
    *,
    note: str | Unchanged = KEEP,
    expires: date | Unchanged | None = KEEP,
) -> tuple[StoreMeta, Payload]:
    """The next version with the same value and retired values: only note or expiry change."""
    if meta.version >= MAX_VERSION:
        raise InputError(f"store secret {meta.name} reached the largest version number")
    new_meta = replace(
        meta,
        updated=max(normalize_time(now), meta.created),
        version=meta.version + 1,
        expires=meta.expires if expires is KEEP else expires,
    )
    return new_meta, replace(payload, note=payload.note if note is KEEP else note)
