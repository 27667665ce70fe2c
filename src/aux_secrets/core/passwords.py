"""Password generation from a key stream: gokey's policy and the extra charsets.

gokey (charset ``gokey``): a 94-character alphabet in gokey's order; byte 255 is skipped,
bytes below 188 map to ``alphabet[b // 2]``, the rest are rejected; the whole password is
regenerated until it has at least 3 upper, 3 lower, 1 digit and 1 special character.

Other charsets: a byte ``b`` is accepted when ``b < 256 - 256 % n`` and maps to
``alphabet[b % n]`` (uniform, no modulo bias); optional class minimums regenerate the whole
password, like gokey does, until they hold.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from aux_secrets.core.keystream import KeyStream
from aux_secrets.errors import PolicyError, UsageError

GOKEY_ALPHABET = (
    "abcdefghijklmnopqrstuvwxyz"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "1234567890"
    "`~!@#$%^&*()-_=+[{]}\\|;:'\",<.>/?"
)
ALPHABETS: Mapping[str, str] = {
    "gokey": GOKEY_ALPHABET,
    "alnum": string.ascii_uppercase + string.ascii_lowercase + string.digits,
    "urlsafe": string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_",
    "hex": "0123456789abcdef",
    "base64": string.ascii_uppercase + string.ascii_lowercase + string.digits + "+/",
    "digits": string.digits,
}
CHARSETS: tuple[str, ...] = tuple(ALPHABETS)
CLASSES: tuple[str, ...] = ("upper", "lower", "digit", "special")

GOKEY_MIN_LENGTH = 8
GOKEY_MINIMUMS: Mapping[str, int] = {"upper": 3, "lower": 3, "digit": 1, "special": 1}
DEFAULT_LENGTH: Mapping[str, int] = {"gokey": 10}
OTHER_DEFAULT_LENGTH = 32
MAX_LENGTH = 4096


def _class_of(ch: str) -> str:
    if ch.isdigit():
        return "digit"
    if ch.isupper():
        return "upper"
    if ch.islower():
        return "lower"
    return "special"


# Per charset: the characters of each class it has (classes it lacks are absent).
_CLASS_MEMBERS: Mapping[str, Mapping[str, frozenset[str]]] = {
    name: {
        cls: frozenset(c for c in alphabet if _class_of(c) == cls)
        for cls in CLASSES
        if any(_class_of(c) == cls for c in alphabet)
    }
    for name, alphabet in ALPHABETS.items()
}


@dataclass(frozen=True)
class PasswordPolicy:
    """What a password must look like: its charset, length and per-class minimums."""

    charset: str = "gokey"
    length: int = 10
    minimums: tuple[tuple[str, int], ...] = ()

    def required(self) -> dict[str, int]:
        need = dict(GOKEY_MINIMUMS) if self.charset == "gokey" else {}
        for cls, count in self.minimums:
            need[cls] = max(need.get(cls, 0), count)
        return need

    def validate(self) -> None:
        if self.charset not in ALPHABETS:
            raise UsageError(f"unknown charset {self.charset!r}: use one of {', '.join(CHARSETS)}")
        if self.length > MAX_LENGTH:
            raise UsageError(f"password length {self.length} is above the maximum {MAX_LENGTH}")
        if self.charset == "gokey" and self.length < GOKEY_MIN_LENGTH:
            raise PolicyError(
                f"password length {self.length} is below the gokey policy minimum "
                f"of {GOKEY_MIN_LENGTH}"
            )
        if self.length < 1:
            raise PolicyError(f"password length {self.length} is below the minimum of 1")
        present = _CLASS_MEMBERS[self.charset]
        need = self.required()
        for cls, count in need.items():
            if cls not in CLASSES:
                raise UsageError(
                    f"unknown character class {cls!r}: use one of {', '.join(CLASSES)}"
                )
            if count < 0:
                raise UsageError(f"minimum for {cls} must not be negative")
            if count and cls not in present:
                raise PolicyError(f"charset {self.charset!r} has no {cls} characters")
        if sum(need.values()) > self.length:
            raise PolicyError(
                f"password length {self.length} is below the minimum of {sum(need.values())} "
                "that the class minimums need"
            )


def default_length(charset: str) -> int:
    return DEFAULT_LENGTH.get(charset, OTHER_DEFAULT_LENGTH)


def _gokey_indices(stream: KeyStream) -> Iterator[int]:
    while True:
        for b in stream.read(64):
            if b < 188:
                yield b >> 1


def _uniform_indices(stream: KeyStream, n: int) -> Iterator[int]:
    limit = 256 - 256 % n
    while True:
        for b in stream.read(64):
            if b < limit:
                yield b % n


def _compliant(password: str, need: list[tuple[frozenset[str], int]]) -> bool:
    return all(sum(map(members.__contains__, password)) >= count for members, count in need)


def generate_password(stream: KeyStream, policy: PasswordPolicy) -> str:
    """The first password drawn from ``stream`` that satisfies ``policy``."""
    policy.validate()
    alphabet = ALPHABETS[policy.charset]
    if policy.charset == "gokey":
        indices = _gokey_indices(stream)
    else:
        indices = _uniform_indices(stream, len(alphabet))
    members = _CLASS_MEMBERS[policy.charset]
    need = [(members[cls], n) for cls, n in policy.required().items() if n]
    while True:
        password = "".join(alphabet[next(indices)] for _ in range(policy.length))
        if _compliant(password, need):
            return password
