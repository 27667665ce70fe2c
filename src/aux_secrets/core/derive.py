"""derive(): a scheme, a realm and a type/charset/encoding in; the exact output bytes out.

The same encoders serve every scheme (gokey and aux-v1): the scheme only supplies the key
stream for (realm, purpose). See docs/spec/derivation.md.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aux_secrets.core import encode
from aux_secrets.core.keys import (
    CURVES,
    RSA_BITS,
    ec_private_scalar,
    ed25519_seed,
    rsa_private,
    x25519_private,
)
from aux_secrets.core.keystream import KeyStream, Scheme
from aux_secrets.core.passwords import (
    CHARSETS,
    MAX_LENGTH,
    PasswordPolicy,
    default_length,
    generate_password,
)
from aux_secrets.core.realm import RESERVED_PREFIX, check_user_realm
from aux_secrets.core.rsa_prime import RsaKey
from aux_secrets.errors import PolicyError, UsageError

__all__ = [
    "CHARSETS",
    "ENCODINGS",
    "PUBLIC_ENCODINGS",
    "RESERVED_PREFIX",
    "TYPES",
    "DeriveRequest",
    "check_user_realm",
    "default_encoding",
    "derive",
    "derive_with_public",
    "purpose_of",
]

TYPES: tuple[str, ...] = (
    "pass",
    "raw",
    "ed25519",
    "x25519",
    "ec256",
    "ec384",
    "ec521",
    "rsa2048",
    "rsa4096",
)
ENCODINGS: Mapping[str, tuple[str, ...]] = {
    "pass": ("text",),
    "raw": ("binary", "hex", "base64"),
    "ed25519": ("pem", "openssh", "public", "public-pem"),
    "x25519": ("pem", "wireguard", "public", "public-pem"),
    "ec256": ("pem", "public"),
    "ec384": ("pem", "public"),
    "ec521": ("pem", "public"),
    "rsa2048": ("pem", "openssh", "public", "public-openssh"),
    "rsa4096": ("pem", "openssh", "public", "public-openssh"),
}
# Encodings that hold only the public half (not secret).
PUBLIC_ENCODINGS: frozenset[str] = frozenset({"public", "public-pem", "public-openssh"})
# With public=True, a private encoding name picks the matching public form.
_TO_PUBLIC: Mapping[tuple[str, str], str] = {
    ("ed25519", "pem"): "public-pem",
    ("ed25519", "openssh"): "public",
    ("x25519", "pem"): "public-pem",
    ("x25519", "wireguard"): "public",
    ("rsa2048", "pem"): "public",
    ("rsa2048", "openssh"): "public-openssh",
    ("rsa4096", "pem"): "public",
    ("rsa4096", "openssh"): "public-openssh",
    ("ec256", "pem"): "public",
    ("ec384", "pem"): "public",
    ("ec521", "pem"): "public",
}
RAW_DEFAULT_LENGTH = 32
RAW_MAX_LENGTH = 1 << 20
_KEY_SUFFIX: Mapping[str, str] = {
    "ed25519": "ED25519",
    "x25519": "X25519",
    "ec256": "EC256",
    "ec384": "EC384",
    "ec521": "EC521",
    "rsa2048": "RSA2048",
    "rsa4096": "RSA4096",
}


@dataclass(frozen=True)
class DeriveRequest:
    """What to derive. ``minimums`` (class, count) pairs tighten the password policy."""

    realm: str
    type: str = "pass"
    length: int | None = None
    charset: str = "gokey"
    encoding: str | None = None
    public: bool = False
    minimums: tuple[tuple[str, int], ...] = ()


def default_encoding(type: str) -> str:
    """The encoding used when none is asked for (what gokey prints)."""
    _check_type(type)
    return ENCODINGS[type][0]


def _check_type(type: str) -> None:
    if type not in TYPES:
        raise UsageError(f"unknown type {type!r}: use one of {', '.join(TYPES)}")


def purpose_of(request: DeriveRequest) -> str:
    """The purpose string the scheme streams for (gokey's suffix for gokey's types)."""
    if request.type == "pass":
        return "pass" if request.charset == "gokey" else f"pass({request.charset})"
    if request.type == "raw":
        return "raw"
    return f"key({_KEY_SUFFIX[request.type]})"


def resolve_encoding(request: DeriveRequest) -> str:
    """The encoding ``request`` asks for, after defaults and the public switch."""
    type = request.type
    allowed = ENCODINGS[type]
    encoding = request.encoding
    if encoding is not None and encoding not in allowed:
        raise UsageError(
            f"encoding {encoding!r} does not apply to type {type}: use one of {', '.join(allowed)}"
        )
    if not request.public:
        return encoding or allowed[0]
    if type in ("pass", "raw"):
        raise UsageError(f"type {type} has no public half")
    if encoding is None:
        return "public"
    if encoding in PUBLIC_ENCODINGS:
        return encoding
    return _TO_PUBLIC[(type, encoding)]


def _validate(request: DeriveRequest) -> str:
    _check_type(request.type)
    if not request.realm:
        raise PolicyError("the realm is empty", hint="name the secret, e.g. db/web1")
    if request.type != "pass" and request.charset != "gokey":
        raise UsageError(f"--charset applies to type pass only, not {request.type}")
    if request.type != "pass" and request.minimums:
        raise UsageError(f"character class minimums apply to type pass only, not {request.type}")
    if request.length is not None:
        if request.type not in ("pass", "raw"):
            raise UsageError(
                f"type {request.type} has a fixed size; --length applies to pass and raw only"
            )
        if request.type == "raw" and not 1 <= request.length <= RAW_MAX_LENGTH:
            raise UsageError(f"raw length {request.length} is outside 1..{RAW_MAX_LENGTH} bytes")
        if request.type == "pass" and request.length > MAX_LENGTH:
            raise UsageError(f"password length {request.length} is above the maximum {MAX_LENGTH}")
    if request.type == "pass" and request.charset not in CHARSETS:
        raise UsageError(f"unknown charset {request.charset!r}: use one of {', '.join(CHARSETS)}")
    return resolve_encoding(request)


# Each generator turns one key stream into the requested encodings of the same key: a
# key type's private file and its public half come from one derivation (an RSA key is a
# prime search, done once).
Generator = Callable[[KeyStream, DeriveRequest, Sequence[str]], list[bytes]]


def _derive_pass(
    stream: KeyStream, request: DeriveRequest, encodings: Sequence[str]
) -> list[bytes]:
    length = request.length if request.length is not None else default_length(request.charset)
    policy = PasswordPolicy(request.charset, length, request.minimums)
    return [generate_password(stream, policy).encode("ascii")]


def _derive_raw(stream: KeyStream, request: DeriveRequest, encodings: Sequence[str]) -> list[bytes]:
    data = stream.read(request.length if request.length is not None else RAW_DEFAULT_LENGTH)
    forms: dict[str, Callable[[], bytes]] = {
        "hex": lambda: data.hex().encode("ascii"),
        "base64": lambda: base64.b64encode(data),
        "binary": lambda: data,
    }
    return [forms[e]() for e in encodings]


def _derive_ed25519(
    stream: KeyStream, request: DeriveRequest, encodings: Sequence[str]
) -> list[bytes]:
    seed = ed25519_seed(stream)
    forms: dict[str, Callable[[], bytes]] = {
        "pem": lambda: encode.pkcs8_25519_pem(encode.ED25519_OID, seed),
        "openssh": lambda: encode.ed25519_openssh_private(seed),
        "public": lambda: encode.ed25519_ssh_public(seed),
        "public-pem": lambda: encode.ed25519_public_pem(seed),
    }
    return [forms[e]() for e in encodings]


def _derive_x25519(
    stream: KeyStream, request: DeriveRequest, encodings: Sequence[str]
) -> list[bytes]:
    key = x25519_private(stream)
    forms: dict[str, Callable[[], bytes]] = {
        "pem": lambda: encode.pkcs8_25519_pem(encode.X25519_OID, key),
        "wireguard": lambda: encode.wireguard_key(key),
        "public": lambda: encode.wireguard_key(encode.x25519_public(key)),
        "public-pem": lambda: encode.x25519_public_pem(key),
    }
    return [forms[e]() for e in encodings]


def _derive_ec(stream: KeyStream, request: DeriveRequest, encodings: Sequence[str]) -> list[bytes]:
    curve = CURVES[request.type]
    k = ec_private_scalar(stream, curve)
    forms: dict[str, Callable[[], bytes]] = {
        "pem": lambda: encode.sec1_ec_pem(curve, k),
        "public": lambda: encode.ec_public_pem(curve, k),
    }
    return [forms[e]() for e in encodings]


def _derive_rsa(stream: KeyStream, request: DeriveRequest, encodings: Sequence[str]) -> list[bytes]:
    key = rsa_private(stream, RSA_BITS[request.type])
    forms: dict[str, Callable[[RsaKey], bytes]] = {
        "pem": encode.pkcs1_rsa_pem,
        "openssh": encode.rsa_openssh_private,
        "public": encode.rsa_public_pem,
        "public-openssh": encode.rsa_ssh_public,
    }
    return [forms[e](key) for e in encodings]


_GENERATORS: Mapping[str, Generator] = {
    "pass": _derive_pass,
    "raw": _derive_raw,
    "ed25519": _derive_ed25519,
    "x25519": _derive_x25519,
    "ec256": _derive_ec,
    "ec384": _derive_ec,
    "ec521": _derive_ec,
    "rsa2048": _derive_rsa,
    "rsa4096": _derive_rsa,
}


def _stream_for(scheme: Scheme, request: DeriveRequest) -> tuple[KeyStream, str]:
    """Validate ``request`` (before touching the scheme); its stream and its encoding."""
    encoding = _validate(request)
    if request.type == "pass":
        # Validate the policy before any key stream is made.
        length = request.length if request.length is not None else default_length(request.charset)
        PasswordPolicy(request.charset, length, request.minimums).validate()
    return scheme.stream(request.realm, purpose_of(request)), encoding


def derive(scheme: Scheme, request: DeriveRequest) -> bytes:
    """The bytes ``request`` names, exactly as printed or written (no trailing newline on
    single-line values; PEM and OpenSSH files end with a newline).

    Validates the request (UsageError, PolicyError) before touching the scheme. The reserved
    realm prefix is not checked here: callers serving users call check_user_realm().
    """
    stream, encoding = _stream_for(scheme, request)
    return _GENERATORS[request.type](stream, request, (encoding,))[0]


def derive_with_public(scheme: Scheme, request: DeriveRequest) -> tuple[bytes, bytes | None]:
    """``derive(scheme, request)`` and, for a key type, the key's default public half
    (what ``public=True`` without an encoding gives), from one derivation of the key;
    None as the public half of ``pass`` and ``raw``."""
    stream, encoding = _stream_for(scheme, request)
    if request.type in ("pass", "raw"):
        return _GENERATORS[request.type](stream, request, (encoding,))[0], None
    value, public = _GENERATORS[request.type](stream, request, (encoding, "public"))
    return value, public
