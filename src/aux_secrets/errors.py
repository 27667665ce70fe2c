"""The one error hierarchy. The CLI maps each class to a message line and an exit code.

Messages never contain secret values: they name files, secrets, realms and fields.
"""

from __future__ import annotations


class AuxError(Exception):
    """Base of every error aux-secrets raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(AuxError):
    """A command-line argument or option combination that cannot work."""

    exit_code = 2


class InputError(AuxError):
    """Malformed input: a file or value that does not parse or fails validation."""


class FormatVersionError(InputError):
    """A file written by a newer (or unknown) format version."""


class DecryptError(AuxError):
    """Authentication failed. Deliberately opaque: no detail that could serve as an oracle."""


class WrongPasswordError(DecryptError):
    """The master password does not open the vault."""


class NotFoundError(AuxError):
    """A named thing (secret, host, vault, file) does not exist."""


class NotDeliveredError(NotFoundError):
    """The host's local store is empty: no bundle has been delivered yet.

    Its own exit status, so boot and switch units can treat a host that was never
    provisioned as a loud but non-fatal state, and every other failure as fatal."""

    exit_code = 75  # EX_TEMPFAIL: nothing is wrong that provisioning will not fix


class ConflictError(AuxError):
    """The action would overwrite, replay or race something it must not."""


class ExternalError(AuxError):
    """A program we run (gokey, age, systemd-creds, ssh, git, systemctl) failed."""


class UnreachableError(ExternalError):
    """The host could not be reached (ssh itself failed): nothing is known about it."""


class PolicyError(AuxError):
    """A request that is well-formed but refused by policy (reserved realm, too short...)."""
