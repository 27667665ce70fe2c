"""Key streams: deterministic byte sources that schemes hand to the type generators."""

from __future__ import annotations

from typing import Protocol


class KeyStream(Protocol):
    """A deterministic, unbounded byte source (gokey's DRNG)."""

    def read(self, n: int) -> bytes:
        """Return the next ``n`` bytes of the stream."""
        ...


class Scheme(Protocol):
    """Turns (realm, purpose) into a key stream.

    ``purpose`` names what the bytes become, so one realm gives unrelated streams per
    type: ``"pass"``, ``"raw"``, ``"key(ED25519)"`` (gokey's suffix spelling), and
    ``"pass(urlsafe)"``-style variants for charsets gokey does not have.
    Realm policy (reserved prefix, emptiness) is checked by callers, not here, so the
    tool's own keys (``aux-secrets/store/v1/...``) use the same schemes.
    """

    name: str

    def stream(self, realm: str, purpose: str) -> KeyStream: ...
