"""Hosts in the vault: one small TOML file per host under ``VAULT/hosts/``.

A host is a name, a recipient (its ssh-ed25519 host key or an age X25519
recipient), how to reach it, and the last bundle serial made for it. One file
per host keeps git diffs readable and lets two hosts be provisioned at once
without rewriting a shared file. The format is docs/spec/vault-hosts.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from aux_secrets.adapters.fs import atomic_write, file_lock, read_bounded, remove_stale_temps
from aux_secrets.core.nesting import loads_toml
from aux_secrets.errors import (
    ConflictError,
    FormatVersionError,
    InputError,
    NotFoundError,
    UsageError,
)

if TYPE_CHECKING:
    from aux_secrets.core.transport import Transport

SERIALS_DIR = ".serials"
# How far beyond the clock a recorded serial may be (many bundles in one second push
# it ahead; years ahead means a changed file).
MAX_SERIAL_AHEAD = 366 * 24 * 3600
HOSTS_FORMAT_VERSION = 1
HOST_FILE_LIMIT = 64 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_AGE_RECIPIENT = re.compile(r"^age1[02-9ac-hj-np-z]{58}$")
_SSH_OPTION = re.compile(r"^[A-Za-z][A-Za-z0-9]*[ =].+$")

_FIELDS: dict[str, type | tuple[type, ...]] = {
    "version": int,
    "host": str,
    "recipient": str,
    "target": str,
    "ssh_options": list,
    "remote_command": str,
    "remote_root": str,
    "remote_manifest": str,
    "use_sudo": bool,
    "manifest": str,
    "flake": str,
    "system": str,
    "last_serial": int,
    "transport": dict,
}


@dataclass(frozen=True)
class Host:
    """One host entry. ``recipient`` is normalised (no comment), see ``parse_recipient``."""

    name: str
    recipient: str
    target: str | None = None
    ssh_options: tuple[str, ...] = ()
    remote_command: str = "aux-secrets"
    remote_root: str | None = None
    remote_manifest: str | None = None
    use_sudo: bool = False
    manifest: str | None = None
    flake: str | None = None
    system: str | None = None
    last_serial: int = 0
    transport: Transport | None = None  # None: the vault's [transport], else ssh
    extra: Mapping[str, object] = field(default_factory=dict, compare=False)

    @property
    def recipient_kind(self) -> str:
        return "ssh-ed25519" if self.recipient.startswith("ssh-ed25519 ") else "age"

    @property
    def fingerprint(self) -> str:
        return recipient_fingerprint(self.recipient)


def check_host_name(name: str) -> None:
    if not _NAME.match(name) or ".." in name:
        raise UsageError(
            f"host name {name!r} is not valid",
            hint="use letters, digits, '.', '_' and '-' (at most 63), starting with a letter/digit",
        )


def parse_recipient(text: str) -> str:
    """Validate a recipient and return its normal form.

    ``ssh-ed25519 AAAA... [comment]`` -> ``ssh-ed25519 AAAA...``;
    ``age1...`` -> itself. Anything else is an InputError.
    """
    text = text.strip()
    if text.startswith("age1"):
        if not _AGE_RECIPIENT.match(text):
            raise InputError(
                "age recipient is malformed (expected age1 followed by 58 bech32 chars)"
            )
        import pyrage

        try:
            pyrage.x25519.Recipient.from_str(text)
        except Exception:
            raise InputError("age recipient is malformed (bad checksum)") from None
        return text
    parts = text.split()
    if parts == ["ssh-ed25519"]:
        raise InputError("ssh-ed25519 host key has no key data after its type")
    if len(parts) >= 2 and parts[0] == "ssh-ed25519":
        blob = _ssh_blob(parts[1])
        if _ssh_string_list(blob) is None:
            raise InputError("ssh-ed25519 host key is malformed")
        return f"ssh-ed25519 {parts[1]}"
    if parts and parts[0].startswith("ssh-"):
        raise InputError(
            f"host key type {parts[0]} is not supported (only ssh-ed25519)",
            hint="use the host's /etc/ssh/ssh_host_ed25519_key.pub, or an age1 recipient",
        )
    raise InputError(
        "recipient must be an 'ssh-ed25519 AAAA...' host key or an 'age1...' recipient"
    )


def _ssh_blob(b64: str) -> bytes:
    try:
        return base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        raise InputError("ssh-ed25519 host key is malformed (bad base64)") from None


def _ssh_string_list(blob: bytes) -> list[bytes] | None:
    out: list[bytes] = []
    pos = 0
    while pos < len(blob):
        if pos + 4 > len(blob):
            return None
        length = int.from_bytes(blob[pos : pos + 4], "big")
        pos += 4
        if pos + length > len(blob):
            return None
        out.append(blob[pos : pos + length])
        pos += length
    if len(out) != 2 or out[0] != b"ssh-ed25519" or len(out[1]) != 32:
        return None
    return out


def recipient_fingerprint(recipient: str) -> str:
    """What an operator compares: ``SHA256:...`` as ssh-keygen -l prints, or the age recipient."""
    if recipient.startswith("ssh-ed25519 "):
        blob = _ssh_blob(recipient.split()[1])
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
        return f"SHA256:{digest}"
    return recipient


def check_ssh_option(option: str) -> None:
    if not _SSH_OPTION.match(option) or "\n" in option:
        raise UsageError(f"ssh option {option!r} is not of the form Name=value")


class HostDir:
    """The ``hosts/`` directory of a vault."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, name: str) -> Path:
        check_host_name(name)
        return self.root / f"{name}.toml"

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name[: -len(".toml")]
            for p in self.root.iterdir()
            if p.name.endswith(".toml") and not p.name.startswith(".") and p.is_file()
        )

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def read(self, name: str) -> Host:
        path = self.path(name)
        if not path.is_file():
            raise NotFoundError(
                f"host {name} is not in the vault ({path} does not exist)",
                hint=f"aux-secrets host add {name} --ssh-host-key 'ssh-ed25519 AAAA...'",
            )
        return parse_host(name, read_bounded(path, HOST_FILE_LIMIT, what="host file"), str(path))

    def all(self) -> list[Host]:
        return [self.read(name) for name in self.names()]

    def sharing_recipient(self, host: Host) -> list[str]:
        """Other hosts whose bundles go to the same key (each could open the other's)."""
        others = []
        for name in self.names():
            if name == host.name:
                continue
            try:
                if self.read(name).recipient == host.recipient:
                    others.append(name)
            except InputError:
                continue  # a broken file is reported when that host is used
        return others

    def add(self, host: Host, *, replace_existing: bool = False) -> None:
        if host.target is not None:
            check_target(host.target, where=f"host {host.name}")
        self.root.mkdir(mode=0o700, exist_ok=True)
        path = self.path(host.name)
        if path.exists() and not replace_existing:
            raise ConflictError(
                f"host {host.name} is already in the vault ({path})",
                hint=f"aux-secrets host rm {host.name}  (or pass --replace)",
            )
        atomic_write(path, encode_host(host), mode=0o600)

    def remove(self, name: str) -> None:
        path = self.path(name)
        if not path.is_file():
            raise NotFoundError(f"host {name} is not in the vault ({path} does not exist)")
        path.unlink()

    def serial_path(self, name: str) -> Path:
        """Where the last serial made for ``name`` is kept: ``hosts/.serials/NAME``, out of
        git (a ``.gitignore`` of ``*``), so provisioning never dirties the tracked
        ``hosts/NAME.toml`` and two operators never conflict over it."""
        check_host_name(name)
        return self.root / SERIALS_DIR / name

    def last_serial(self, name: str) -> int:
        """The last serial recorded for ``name``: the untracked record, or the host file's
        ``last_serial`` (written before the record existed), whichever is larger."""
        host = self.read(name)
        path = self.serial_path(name)
        recorded = 0
        if path.is_file():
            text = read_bounded(path, 64, what="serial record").decode("ascii", "replace")
            if not re.fullmatch(r"[0-9]{1,19}\n?", text):
                raise InputError(
                    f"serial record {path} is not a whole number",
                    hint=f"delete it: the next serial of {name} then comes from the clock",
                )
            recorded = int(text)
        return max(recorded, host.last_serial)

    def next_serial(self, name: str, now_seconds: int) -> int:
        """Reserve a bundle serial for ``name`` that only grows: max(now, last + 1), recorded
        in ``serial_path`` (never in the tracked host file).

        A recorded serial more than MAX_SERIAL_AHEAD beyond the clock is refused: a host
        that accepted such a bundle could never take a normal one again.
        """
        self.root.mkdir(mode=0o700, exist_ok=True)
        with file_lock(self.root / ".lock", what="hosts lock"):
            remove_stale_temps(self.root, lambda target: target.endswith(".toml"))
            last = self.last_serial(name)
            if last > now_seconds + MAX_SERIAL_AHEAD:
                raise InputError(
                    f"the last serial of host {name} ({last}, {self.serial_path(name)} or "
                    f"{self.path(name)}) is far beyond the clock ({now_seconds}); a record "
                    "was changed or the clock is wrong",
                    hint=f"set it near the clock in {self.serial_path(name)} (and drop "
                    f"last_serial from {self.path(name)}); a host that already took a "
                    "far-future serial: see activate --reset-serial",
                )
            serial = max(now_seconds, last + 1)
            directory = self.root / SERIALS_DIR
            directory.mkdir(mode=0o700, exist_ok=True)
            ignore = directory / ".gitignore"
            if not ignore.exists():
                atomic_write(ignore, b"# per-machine bundle serials, never committed\n*\n")
            atomic_write(self.serial_path(name), f"{serial}\n".encode(), mode=0o600)
        return serial


def parse_host(name: str, data: bytes, where: str) -> Host:
    try:
        table = loads_toml(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"host file {where} is not valid TOML: {exc}") from None
    version = table.get("version")
    if version != HOSTS_FORMAT_VERSION:
        if isinstance(version, int) and not isinstance(version, bool):
            raise FormatVersionError(
                f"host file {where} has version {version}; this aux-secrets reads version "
                f"{HOSTS_FORMAT_VERSION}",
                hint="upgrade aux-secrets",
            )
        raise InputError(f"host file {where}: 'version' is missing or not an integer")
    for key, value in table.items():
        expected = _FIELDS.get(key)
        if expected is None:
            raise InputError(f"host file {where}: unknown field {key!r}")
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise InputError(f"host file {where}: field {key!r} has the wrong type")
    bound = table.get("host")
    if bound is not None and bound != name:
        raise InputError(
            f"host file {where} is the file of host {bound!r}, not {name!r} (copied over "
            "another host's file?); nothing is encrypted to it",
            hint=f"restore it from the vault's history, or aux-secrets host add {name} --replace",
        )
    if "recipient" not in table:
        raise InputError(f"host file {where}: 'recipient' is missing")
    try:
        recipient = parse_recipient(str(table["recipient"]))
    except InputError as exc:
        raise InputError(f"host file {where}: {exc.message}") from None
    options = table.get("ssh_options", [])
    assert isinstance(options, list)
    if not all(isinstance(o, str) for o in options):
        raise InputError(f"host file {where}: 'ssh_options' must be a list of strings")
    for option in options:
        try:
            check_ssh_option(option)
        except UsageError as exc:
            raise InputError(f"host file {where}: {exc.message}") from None
    serial = table.get("last_serial", 0)
    assert isinstance(serial, int)
    if serial < 0:
        raise InputError(f"host file {where}: 'last_serial' is negative")

    def opt(key: str) -> str | None:
        value = table.get(key)
        return value if isinstance(value, str) else None

    target = opt("target")
    if target is not None:
        check_target(target, where=f"host file {where}")
    transport = None
    if "transport" in table:
        from aux_secrets.core.transport import parse_transport

        transport = parse_transport(table["transport"], f"host file {where} [transport]")
    return Host(
        name=name,
        recipient=recipient,
        target=target,
        ssh_options=tuple(options),
        remote_command=opt("remote_command") or "aux-secrets",
        remote_root=opt("remote_root"),
        remote_manifest=opt("remote_manifest"),
        use_sudo=bool(table.get("use_sudo", False)),
        manifest=opt("manifest"),
        flake=opt("flake"),
        system=opt("system"),
        last_serial=serial,
        transport=transport,
    )


def check_target(target: str, *, where: str) -> None:
    """An ssh destination (``[user@]host``): never an option ssh would read as ``-o...``."""
    if not target or target.startswith("-") or any(c.isspace() for c in target):
        raise InputError(
            f"{where}: target {target!r} is not an ssh destination",
            hint="give it as [USER@]ADDRESS, e.g. root@10.0.0.5; ssh options go in --ssh-option",
        )


def encode_host(host: Host) -> bytes:
    import tomli_w

    table: dict[str, object] = {
        "version": HOSTS_FORMAT_VERSION,
        "host": host.name,  # binds the file to its name: a copy under another name is refused
        "recipient": host.recipient,
    }
    for key in ("target", "remote_root", "remote_manifest", "manifest", "flake", "system"):
        value = getattr(host, key)
        if value is not None:
            table[key] = value
    if host.ssh_options:
        table["ssh_options"] = list(host.ssh_options)
    if host.remote_command != "aux-secrets":
        table["remote_command"] = host.remote_command
    if host.use_sudo:
        table["use_sudo"] = True
    table["last_serial"] = host.last_serial
    if host.transport is not None:
        from aux_secrets.core.transport import transport_table

        table["transport"] = transport_table(host.transport)
    return tomli_w.dumps(table).encode()


def parse_keyscan(output: bytes, address: str) -> list[str]:
    """The ssh-ed25519 keys in ``ssh-keyscan`` output (``host keytype base64`` lines)."""
    keys: list[str] = []
    for raw in output.decode("utf-8", "replace").splitlines():
        parts = raw.split()
        if raw.startswith("#") or len(parts) < 3 or parts[1] != "ssh-ed25519":
            continue
        keys.append(parse_recipient(f"{parts[1]} {parts[2]}"))
    if not keys:
        raise NotFoundError(
            f"ssh-keyscan found no ssh-ed25519 host key at {address}",
            hint="check the address and port, or pass the key with --ssh-host-key",
        )
    return sorted(set(keys))


def keyscan(address: str, *, port: int | None = None, timeout: int = 10) -> list[str]:
    """Ask ``address`` for its ssh-ed25519 host key with the real ssh-keyscan."""
    import subprocess

    from aux_secrets.errors import ExternalError

    argv = ["ssh-keyscan", "-T", str(timeout), "-t", "ed25519"]
    if port is not None:
        argv += ["-p", str(port)]
    argv += ["--", address]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout + 5, check=False)
    except FileNotFoundError:
        raise ExternalError(
            "ssh-keyscan is not installed", hint="apt-get install openssh-client"
        ) from None
    except subprocess.TimeoutExpired:
        raise ExternalError(f"ssh-keyscan {address} timed out") from None
    return parse_keyscan(done.stdout, address)


def options_list(values: Sequence[str]) -> tuple[str, ...]:
    for value in values:
        check_ssh_option(value)
    return tuple(values)
