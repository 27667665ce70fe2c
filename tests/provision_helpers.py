"""Building blocks for the provisioning tests: a vault, a host root, a manifest."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import cli
from tests.sshd import REMOTE_AUX, Sshd

PASSWORD = b"provision tests master password\n"


@dataclass(frozen=True)
class Vault:
    root: Path
    password_file: Path

    def args(self) -> list[str]:
        return ["--vault", str(self.root), "--password-file", str(self.password_file)]


def make_vault(directory: Path, name: str = "vault") -> Vault:
    password_file = directory / f"{name}.pw"
    password_file.write_bytes(PASSWORD)
    root = directory / name
    result = cli(
        "init",
        root,
        "--password-file",
        password_file,
        "--argon2-memory",
        "8",
        "--argon2-time",
        "1",
    )
    assert result.returncode == 0, result.stderr
    return Vault(root, password_file)


def recording_systemctl(directory: Path) -> tuple[Path, Path]:
    """A systemctl stand-in that appends its argv to a log (no systemd here)."""
    log = directory / "systemctl.log"
    script = directory / "systemctl"
    script.write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    script.chmod(0o755)
    return script, log


def manifest_doc(host: str, systemctl: Path, extra: dict[str, object] | None = None) -> bytes:
    secrets: dict[str, object] = {
        "db/password": {
            "source": {"derive": {"realm": f"db/{host}", "type": "pass", "charset": "alnum"}},
            "restartUnits": ["postgresql.service"],
        },
        "api/hmac": {
            "source": {
                "derive": {
                    "realm": "api/hmac/{period}",
                    "type": "raw",
                    "length": 32,
                    "encoding": "hex",
                    "rotation": {"period": "monthly", "retired": 1, "ahead": 1},
                }
            },
            "reloadUnits": ["api.service"],
        },
    }
    secrets.update(extra or {})
    doc = {
        "version": 1,
        "host": host,
        "settings": {"backend": "plain", "systemctl": [str(systemctl)]},
        "secrets": secrets,
    }
    return json.dumps(doc, indent=2).encode()


@dataclass(frozen=True)
class HostRoot:
    name: str
    root: Path
    manifest: Path  # ROOT/etc/aux-secrets/manifest.json: the host's own default
    systemctl_log: Path

    def calls(self) -> list[str]:
        if not self.systemctl_log.exists():
            return []
        return self.systemctl_log.read_text().splitlines()

    def installed(self, name: str) -> bytes:
        return (self.root / "run/aux-secrets" / name).read_bytes()


def make_host_root(
    directory: Path, name: str, host_key: Path, extra: dict[str, object] | None = None
) -> HostRoot:
    """A host under a temp root: its ssh host key (to open bundles) and its manifest."""
    root = directory / f"root-{name}"
    (root / "etc/ssh").mkdir(parents=True)
    shutil.copy(host_key, root / "etc/ssh/ssh_host_ed25519_key")
    (root / "etc/ssh/ssh_host_ed25519_key").chmod(0o600)
    (root / "etc/aux-secrets").mkdir(parents=True)
    systemctl, log = recording_systemctl(root)
    manifest = root / "etc/aux-secrets/manifest.json"
    manifest.write_bytes(manifest_doc(name, systemctl, extra))
    return HostRoot(name, root, manifest, log)


def add_host(vault: Vault, host: HostRoot, server: Sshd, *, port: int | None = None) -> None:
    """``host add`` as an operator would: host key, target, port, remote command, root."""
    options = [o for o in server.ssh_options() if not o.startswith("Port=")]
    options.append(f"Port={port if port is not None else server.port}")
    ssh_args: list[str] = []
    for option in options:
        ssh_args += ["--ssh-option", option]
    result = cli(
        "host",
        "add",
        host.name,
        "--ssh-host-key",
        server.host_pub,
        "--target",
        server.target,
        *ssh_args,
        "--remote-command",
        REMOTE_AUX,
        "--remote-root",
        host.root,
        "--manifest",
        host.manifest,
        "--vault",
        vault.root,
    )
    assert result.returncode == 0, result.stderr


def tree_bytes(directory: Path) -> dict[str, bytes]:
    """Every regular file under ``directory`` and its bytes (to prove nothing changed)."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }
