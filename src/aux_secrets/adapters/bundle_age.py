"""The age layer of a bundle: encrypt the payload to a host, open it with the host's key.

Bundles are standard age files (age-encryption.org/v1), so
``age -d -i /etc/ssh/ssh_host_ed25519_key bundle.age`` opens one. Recipients are
``ssh-ed25519 AAAA...`` public keys (the host's ssh host key) or ``age1...`` X25519
recipients; identities are OpenSSH private key files or age identity files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aux_secrets.adapters.fs import read_bounded
from aux_secrets.errors import DecryptError, InputError, NotFoundError, PolicyError

AGE_MAGIC = b"age-encryption.org/v1\n"
MAX_BUNDLE_BYTES = 80 * 1024 * 1024
MAX_IDENTITY_BYTES = 64 * 1024
OPAQUE = (
    "the bundle could not be opened with this host's key "
    "(made for another key, tampered with, or truncated)"
)


def parse_recipient(text: str) -> Any:
    """A pyrage recipient from ``ssh-ed25519 AAAA... [comment]`` or ``age1...``."""
    import pyrage

    text = text.strip()
    try:
        if text.startswith("age1"):
            return pyrage.x25519.Recipient.from_str(text)
        if text.startswith("ssh-ed25519 "):
            return pyrage.ssh.Recipient.from_str(" ".join(text.split()[:2]))
    except pyrage.RecipientError:
        raise InputError(f"recipient {text[:40]!r}... is not a valid public key") from None
    raise PolicyError(
        f"recipient {text[:24]!r}... is neither an ssh-ed25519 key nor an age1 recipient",
        hint="add the host with --ssh-host-key 'ssh-ed25519 AAAA...' or --age age1...",
    )


def seal_bundle(payload_bytes: bytes, recipients: Sequence[str]) -> bytes:
    """Encrypt payload bytes as an age file to every recipient."""
    import pyrage

    if not recipients:
        raise InputError("a bundle needs at least one recipient")
    parsed = [parse_recipient(r) for r in recipients]
    try:
        return bytes(pyrage.encrypt(payload_bytes, parsed))
    except pyrage.EncryptError as exc:  # pragma: no cover - pyrage refuses nothing we pass
        raise InputError(f"age encryption failed: {exc}") from None


def load_identities(paths: Sequence[Path]) -> list[Any]:
    """Identities from OpenSSH private key files and age identity files that exist."""
    import pyrage

    identities: list[Any] = []
    for path in paths:
        if not path.exists():
            continue
        data = read_bounded(path, MAX_IDENTITY_BYTES, what="identity file")
        if b"AGE-SECRET-KEY-1" in data:
            for number, raw in enumerate(data.decode("ascii", "replace").splitlines(), 1):
                line = raw.strip()
                if not line or line.startswith("#"):
                    continue
                try:
                    identities.append(pyrage.x25519.Identity.from_str(line))
                except pyrage.IdentityError:
                    raise InputError(
                        f"identity file {path} line {number} is not an age identity"
                    ) from None
            continue
        try:
            identities.append(pyrage.ssh.Identity.from_buffer(data))
        except pyrage.IdentityError:
            raise InputError(
                f"identity file {path} is neither an OpenSSH private key nor an age identity file",
                hint="an encrypted (passphrase) ssh key cannot be used; host keys have none",
            ) from None
    if not identities:
        shown = ", ".join(str(p) for p in paths) or "(none configured)"
        raise NotFoundError(
            f"no host key to open the bundle with: {shown}",
            hint="set settings.hostKeys in the manifest to the host's ssh_host_ed25519_key",
        )
    return identities


def open_bundle(data: bytes, identity_paths: Sequence[Path]) -> bytes:
    """Decrypt an age bundle; any authentication failure is one opaque DecryptError."""
    import pyrage

    if len(data) > MAX_BUNDLE_BYTES:
        raise InputError(f"bundle is larger than {MAX_BUNDLE_BYTES} bytes")
    if not data.startswith(AGE_MAGIC):
        raise InputError(
            "the bundle is not an age file (expected 'age-encryption.org/v1')",
            hint="make one with: aux-secrets bundle --host HOST --manifest M -o FILE",
        )
    identities = load_identities(identity_paths)
    try:
        return bytes(pyrage.decrypt(data, identities))
    except pyrage.DecryptError:
        raise DecryptError(OPAQUE) from None


__all__ = ["AGE_MAGIC", "load_identities", "open_bundle", "parse_recipient", "seal_bundle"]
