"""Shared pieces for the local store, activate and status tests (no tests here)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aux_secrets.adapters.localstore import LocalStore
from aux_secrets.core.bundle import (
    OPEN_NOT_AFTER,
    OPEN_NOT_BEFORE,
    BundlePayload,
    BundleSecret,
    BundleSlot,
)
from aux_secrets.core.manifest import Manifest, parse_manifest
from tests.bundles import TEST_SIGNER_SEED, signed_bundle
from tests.helpers import require_program

FP_KEY = b"\x42" * 32


def payload(
    serial: int, host: str = "web1", values: dict[str, bytes] | None = None
) -> BundlePayload:
    values = {"db": b"db-pass-%d" % serial, "api/token": b"tok"} if values is None else values
    secrets = {
        name: BundleSecret(
            slots=(BundleSlot("current", "static", OPEN_NOT_BEFORE, OPEN_NOT_AFTER, value),)
        )
        for name, value in values.items()
    }
    return BundlePayload(
        host=host,
        serial=serial,
        created=datetime(2026, 11, 22, 12, 0, tzinfo=UTC),
        bundle_id=os.urandom(16).hex(),
        fingerprint_key=FP_KEY,
        secrets=secrets,
    )


def rotating_payload(serial: int) -> BundlePayload:
    def slot(role: str, month: int) -> BundleSlot:
        return BundleSlot(
            role,  # type: ignore[arg-type]
            f"2026-{month:02d}",
            datetime(2026, month, 1, tzinfo=UTC),
            datetime(2026 + month // 12, month % 12 + 1, 1, tzinfo=UTC),
            b"hmac-%d" % month,
        )

    base = payload(serial)
    secrets = dict(base.secrets)
    secrets["talos/hmac"] = BundleSecret(
        slots=(slot("current", 11), slot("retired", 10), slot("ahead", 12))
    )
    return BundlePayload(**{**base.__dict__, "secrets": secrets})


@dataclass
class Host:
    """A host under a temporary root: ssh host key, manifest, credential host key."""

    tmp: Path
    backend: str = "systemd-creds"
    name: str = "web1"
    extra_settings: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        self.root = self.tmp / "root"
        (self.root / "etc/ssh").mkdir(parents=True)
        keygen = require_program("ssh-keygen", "openssh-client")
        self.key = self.root / "etc/ssh/ssh_host_ed25519_key"
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(self.key)], check=True)
        self.recipient = self.key.with_suffix(".pub").read_text()
        self.manifest_path = self.tmp / "manifest.json"
        self.credential_secret = self.tmp / "credential.secret"
        self.write_manifest()

    def manifest_doc(self) -> dict[str, Any]:
        secrets = self.secrets
        if secrets is None:
            secrets = {
                "db": {"source": {"store": "db"}, "credential": {"name": "db", "units": []}},
                "api/token": {"source": {"store": "api-token"}},
                "talos/hmac": {
                    "source": {
                        "derive": {
                            "realm": "talos/hmac/{period}",
                            "type": "raw",
                            "length": 32,
                            "encoding": "hex",
                            "rotation": {"period": "monthly", "retired": 1, "ahead": 1},
                        }
                    }
                },
            }
        return {
            "version": 1,
            "host": self.name,
            "settings": {"backend": self.backend, **self.extra_settings},
            "secrets": secrets,
            "templates": {},
        }

    def write_manifest(self) -> None:
        self.manifest_path.write_text(json.dumps(self.manifest_doc()))

    @property
    def manifest(self) -> Manifest:
        return parse_manifest(self.manifest_path.read_bytes(), filename=str(self.manifest_path))

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SYSTEMD_CREDENTIAL_SECRET": str(self.credential_secret),
            "SYSTEMD_LOG_LEVEL": "err",
        }

    def store(self, **kwargs: Any) -> LocalStore:
        return LocalStore(self.manifest.settings, self.root, env=self.env, **kwargs)

    def bundle(self, p: BundlePayload, seed: bytes = TEST_SIGNER_SEED) -> bytes:
        """A bundle for this host signed by ``seed``'s key (default: the test signer)."""
        return signed_bundle(p, [self.recipient], seed)

    def bundle_bytes(self, data: bytes) -> bytes:
        """A bundle for this host of payload bytes made by hand, signed by the test signer."""
        return signed_bundle(data, [self.recipient])

    @property
    def store_dir(self) -> Path:
        return self.root / "var/lib/aux-secrets"

    def snapshot(self) -> dict[str, bytes]:
        """Every file under the store directory and its bytes (for 'nothing changed')."""
        if not self.store_dir.exists():
            return {}
        return {
            str(p.relative_to(self.store_dir)): p.read_bytes()
            for p in sorted(self.store_dir.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")
        }

    def cli_args(self) -> list[str]:
        return ["--manifest", str(self.manifest_path), "--root", str(self.root)]

    @property
    def cli_env(self) -> dict[str, str]:
        return {
            "SYSTEMD_CREDENTIAL_SECRET": str(self.credential_secret),
            "SYSTEMD_LOG_LEVEL": "err",
        }
