"""The systemd units for hosts without the NixOS module, rendered from their templates.

Pure: template texts and the manifest's settings in, (relative path, text) pairs out.
The same ordering design as the NixOS module's units: the boot-time install runs before
sysinit.target (after the TPM device when credentials are sealed to it), the rotation
service after it, and the generations live on a RAM filesystem mounted before both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aux_secrets.core.manifest import Settings
from aux_secrets.errors import InputError

UNIT_DIR = "etc/systemd/system"
SYSUSERS_PATH = "etc/sysusers.d/aux-secrets.conf"
DEFAULT_MANIFEST = "/etc/aux-secrets/manifest.json"
DEFAULT_TPM2_DEVICE = "/dev/tpmrm0"

INSTALL_UNIT = "aux-secrets-install.service"
ROTATE_SERVICE = "aux-secrets-rotate.service"
ROTATE_TIMER = "aux-secrets-rotate.timer"

# Template file names in the package's data/units/ folder.
TEMPLATES = (
    INSTALL_UNIT,
    ROTATE_SERVICE,
    ROTATE_TIMER,
    "generations.mount",
    "tpm2.conf",
    "sysusers.conf",
)

_PLACEHOLDER = re.compile(r"@([A-Z0-9_]+)@")
_SAFE = re.compile(r"[A-Za-z0-9:_.]")
# A value in a unit file: an absolute path without whitespace, quotes, % or control bytes.
_UNIT_PATH = re.compile(r"/[A-Za-z0-9/_.:+@-]*")


@dataclass(frozen=True)
class UnitFile:
    path: str  # relative to the root, e.g. etc/systemd/system/aux-secrets-install.service
    text: str
    enable: bool  # has an [Install] section to enable


def escape_path(path: str) -> str:
    """``systemd-escape --path``: /run/aux-secrets.d -> run-aux\\x2dsecrets.d."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "-"
    chars = []
    for index, char in enumerate("/".join(parts)):
        if char == "/":
            chars.append("-")
        elif _SAFE.fullmatch(char) and not (index == 0 and char == "."):
            chars.append(char)
        else:
            chars.extend(f"\\x{byte:02x}" for byte in char.encode())
    return "".join(chars)


def mount_unit_name(path: str) -> str:
    return escape_path(path) + ".mount"


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill every ``@NAME@``; a placeholder without a value is a bug in the template."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise KeyError(f"unit template placeholder @{name}@ has no value")
        return values[name]

    return _PLACEHOLDER.sub(fill, template)


def _unit_path(value: str, what: str) -> str:
    if not _UNIT_PATH.fullmatch(value) or "/../" in value + "/" or "//" in value:
        raise InputError(
            f"{what} {value!r} cannot be written into a unit file",
            hint="use an absolute path of letters, digits and /_.:+@-",
        )
    return value


def _tpm2_device(settings: Settings) -> str:
    device = settings.tpm2.device
    if device is not None and device.startswith("/dev/"):
        return device
    return DEFAULT_TPM2_DEVICE


def unit_values(settings: Settings, program: str, manifest: str) -> dict[str, str]:
    """The placeholder values, each checked to be safe in a unit file."""
    device = _unit_path(_tpm2_device(settings), "TPM2 device")
    return {
        "PROGRAM": _unit_path(program, "program"),
        "MANIFEST_ARG": ""
        if manifest == DEFAULT_MANIFEST
        else " --manifest " + _unit_path(manifest, "manifest path"),
        "RUNTIME_DIR": _unit_path(settings.runtime_dir, "runtimeDir"),
        "GENERATIONS_DIR": _unit_path(settings.generations_dir, "generationsDir"),
        "STORE_DIR": _unit_path(settings.store_dir, "storeDir"),
        "CREDENTIAL_KEY": settings.credential_key,
        "TPM2_DEVICE_UNIT": escape_path(device) + ".device",
        "GROUP": settings.group,
    }


def uses_tpm2(settings: Settings) -> bool:
    return settings.backend == "systemd-creds" and "tpm2" in settings.credential_key


def render_units(
    templates: Mapping[str, str], settings: Settings, *, program: str, manifest: str
) -> list[UnitFile]:
    """Every file `units install` writes for these settings, in a stable order."""
    values = unit_values(settings, program, manifest)
    files = [
        UnitFile(f"{UNIT_DIR}/{name}", render(templates[name], values), name != ROTATE_SERVICE)
        for name in (INSTALL_UNIT, ROTATE_SERVICE, ROTATE_TIMER)
    ]
    mount = mount_unit_name(settings.generations_dir)
    files.append(
        UnitFile(f"{UNIT_DIR}/{mount}", render(templates["generations.mount"], values), True)
    )
    if uses_tpm2(settings):
        files.append(
            UnitFile(
                f"{UNIT_DIR}/{INSTALL_UNIT}.d/tpm2.conf",
                render(templates["tpm2.conf"], values),
                False,
            )
        )
    if settings.group != "root":
        files.append(UnitFile(SYSUSERS_PATH, render(templates["sysusers.conf"], values), False))
    return files
