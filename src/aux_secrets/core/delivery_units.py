"""The optional delivery units for hosts without the NixOS module: pull and incoming (pure).

- ``aux-secrets-pull.timer`` / ``.service``: ``aux-secrets pull`` from the source in
  ``/etc/aux-secrets/pull.env`` every 15 minutes (never at boot's critical path);
- ``aux-secrets-incoming.path`` / ``.service``: take in a bundle that a copy transport,
  colmena or deploy-rs drops into ``storeDir/incoming``.

Rendered with the same placeholders and checks as :mod:`aux_secrets.core.units`.
"""

from __future__ import annotations

from collections.abc import Mapping

from aux_secrets.core.manifest import Settings
from aux_secrets.core.units import UNIT_DIR, UnitFile, render, unit_values
from aux_secrets.core.units import _unit_path as unit_path
from aux_secrets.errors import InputError

PULL_SERVICE = "aux-secrets-pull.service"
PULL_TIMER = "aux-secrets-pull.timer"
INCOMING_PATH = "aux-secrets-incoming.path"
INCOMING_SERVICE = "aux-secrets-incoming.service"
DELIVERY_TEMPLATES = (PULL_SERVICE, PULL_TIMER, INCOMING_PATH, INCOMING_SERVICE)
PULL_ENV_PATH = "etc/aux-secrets/pull.env"
PULL_ENV_NAME = "AUX_SECRETS_PULL_SOURCE"


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
    # The manifest these units need (they take a bundle in for a known host).
    values["MANIFEST"] = unit_path(manifest, "manifest path")
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
