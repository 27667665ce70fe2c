"""Realm policy for user requests: the ``aux-secrets/`` prefix is the tool's own."""

from __future__ import annotations

from aux_secrets.errors import PolicyError

RESERVED_PREFIX = "aux-secrets/"


def check_user_realm(realm: str) -> None:
    """Refuse a realm a user may not ask for: empty, or under the reserved prefix."""
    if not realm:
        raise PolicyError("the realm is empty", hint="name the secret, e.g. db/web1")
    if realm.startswith(RESERVED_PREFIX):
        raise PolicyError(
            f"realm {realm!r} is under the reserved prefix {RESERVED_PREFIX!r}, "
            "which is for aux-secrets' own keys",
            hint="choose a realm that does not start with 'aux-secrets/'",
        )
