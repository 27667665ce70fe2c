"""The optional delivery units for hosts without the NixOS module: pull and incoming (pure).

- ``aux-secrets-pull.timer`` / ``.service``: ``aux-secrets pull`` from the source in
  ``/etc/aux-secrets/pull.env`` every 15 minutes (never at boot's critical path);
- ``aux-secrets-incoming.path`` / ``.service``: take in a bundle that a copy transport,
  colmena or deploy-rs drops into ``storeDir/incoming``;
- ``/etc/aux-secrets/delivery.env``, read by both services: the host's name (and the
  signer to trust) for a host that has no manifest yet, whose first bundle brings one.

Rendered with the same placeholders and checks as :mod:`aux_secrets.core.units`.
"""

from __future__ import annotations

from collections.abc import Mapping

from aux_secrets.core.bundle import check_host_name
from aux_secrets.core.bundle_sign import parse_signer
from aux_secrets.core.manifest import Settings
from aux_secrets.core.units import UNIT_DIR, UnitFile, render, unit_values
from aux_secrets.errors import InputError

PULL_SERVICE = "aux-secrets-pull.service"
PULL_TIMER = "aux-secrets-pull.timer"
INCOMING_PATH = "aux-secrets-incoming.path"
INCOMING_SERVICE = "aux-secrets-incoming.service"
DELIVERY_TEMPLATES = (PULL_SERVICE, PULL_TIMER, INCOMING_PATH, INCOMING_SERVICE)
PULL_ENV_PATH = "etc/aux-secrets/pull.env"
PULL_ENV_NAME = "AUX_SECRETS_PULL_SOURCE"
DELIVERY_ENV_PATH = "etc/aux-secrets/delivery.env"
HOST_ENV_NAME = "AUX_SECRETS_PULL_HOST"
SIGNER_ENV_NAME = "AUX_SECRETS_PULL_SIGNER"


def render_delivery_units(
    templates: Mapping[str, str],
    settings: Settings,
    *,
    program: str,
    manifest: str,
    pull: bool,
    incoming: bool,
) -> list[UnitFile]:
    """The pull timer and its service, and/or the incoming path unit and its service."""
    values = unit_values(settings, program, manifest)
    names: list[tuple[str, bool]] = []
    if pull:
        names += [(PULL_SERVICE, False), (PULL_TIMER, True)]
    if incoming:
        names += [(INCOMING_PATH, True), (INCOMING_SERVICE, True)]
    return [UnitFile(f"{UNIT_DIR}/{n}", render(templates[n], values), e) for n, e in names]


def pull_env(source: str) -> bytes:
    """``/etc/aux-secrets/pull.env`` for an EnvironmentFile=: one checked assignment."""
    if not source or any(c.isspace() or c in "\"'\\$`" or ord(c) < 0x20 for c in source):
        raise InputError(
            "the pull source cannot be written into pull.env "
            "(no whitespace, quotes, backslash, '$' or '`')",
            hint="percent-encode such characters in the URL",
        )
    header = "# aux-secrets pull source (read by aux-secrets-pull.service)\n"
    return f"{header}{PULL_ENV_NAME}={source}\n".encode()


def delivery_env(host: str | None, signer: str | None) -> bytes:
    """``/etc/aux-secrets/delivery.env``: this host's name and the signer it trusts, for
    the pull and incoming services of a host whose manifest comes with its first bundle.

    The signer (an ``ssh-ed25519 AAAA...`` line, as ``aux-secrets signer`` prints it) is
    written as the bare base64 of its key: no whitespace to quote."""
    import base64

    lines = ["# aux-secrets delivery (read by aux-secrets-pull.service, -incoming.service)"]
    if host is not None:
        try:
            check_host_name(host, "--host")
        except InputError as exc:
            raise InputError(
                exc.message, hint="the host's name in the vault (aux-secrets host list)"
            ) from None
        lines.append(f"{HOST_ENV_NAME}={host}")
    if signer is not None:
        key = parse_signer(signer, "--signer")
        lines.append(f"{SIGNER_ENV_NAME}={base64.b64encode(key).decode('ascii')}")
    return ("\n".join(lines) + "\n").encode()
