"""The operator's vault and the host's manifest for the booted-host tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import cli
from tests.host.operator import Host
from tests.provision_helpers import Vault, make_vault

HOST = "web1"


def manifest(
    *,
    db_realm: str = "db/web1",
    extra: dict[str, Any] | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """web.service restarts on db/password, api.service reloads on api/token (a fixed
    secret), idle.service (left stopped) restarts on idle/key."""
    secrets: dict[str, Any] = {
        "db/password": {
            "source": {"derive": {"realm": db_realm, "type": "pass", "charset": "alnum"}},
            "restartUnits": ["web.service"],
        },
        "api/token": {"source": {"store": "api/token"}, "reloadUnits": ["api.service"]},
        "idle/key": {
            "source": {
                "derive": {"realm": "idle/web1", "type": "raw", "length": 16, "encoding": "hex"}
            },
            "restartUnits": ["idle.service"],
        },
    }
    secrets.update(extra or {})
    return {"version": 1, "host": HOST, "settings": settings or {}, "secrets": secrets}


SERVICES = {
    "web": "/run/aux-secrets/db/password",
    "api": "/run/aux-secrets/api/token",
    "idle": "/run/aux-secrets/idle/key",
}


def operator_vault(host: Host, directory: Path, token: bytes = b"tok-1") -> Vault:
    """A vault with the fixed secret api/token and the host entry, the host's key scanned."""
    vault = make_vault(directory)
    added = cli(
        "store",
        "add",
        "api/token",
        "--vault",
        vault.root,
        "--password-file",
        vault.password_file,
        input=token,
    )
    assert added.returncode == 0, added.stderr
    pub = host.keyscan()
    options: list[str] = []
    for option in host.ssh_options():
        options += ["--ssh-option", option]
    entry = cli(
        "host",
        "add",
        HOST,
        "--ssh-host-key",
        pub,
        "--target",
        "root@127.0.0.1",
        *options,
        "--vault",
        vault.root,
    )
    assert entry.returncode == 0, entry.stderr
    return vault


def set_token(vault: Vault, value: bytes) -> None:
    done = cli("store", "set", "api/token", *vault.args(), input=value)
    assert done.returncode == 0, done.stderr


def derive(vault: Vault, realm: str, *args: str) -> bytes:
    done = cli("derive", realm, *args, *vault.args())
    assert done.returncode == 0, done.stderr
    return done.stdout


def write_manifest(directory: Path, doc: dict[str, Any]) -> Path:
    path = directory / "web1.json"
    path.write_text(json.dumps(doc, indent=2))
    return path


def provision(host: Host, vault: Vault, manifest_file: Path, *extra: str) -> dict[str, Any]:
    """``aux-secrets provision --host web1 --manifest FILE --json`` from the operator's side."""
    done = host.aux(
        "provision", "--host", HOST, "--manifest", manifest_file, "--json", *extra, *vault.args()
    )
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    return report[0] if isinstance(report, list) else report
