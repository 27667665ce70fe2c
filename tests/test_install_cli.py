"""``aux-secrets install`` end to end: real systemd-creds local store, a recording systemctl."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aux_secrets.core.bundle import (
    OPEN_NOT_AFTER,
    OPEN_NOT_BEFORE,
    BundlePayload,
    BundleSecret,
    BundleSlot,
)
from tests.bundles import signed_bundle
from tests.helpers import assert_one_line_error, cli, require_program

HOST = "web1"
NOV = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def month(y: int, m: int) -> datetime:
    return datetime(y, m, 1, tzinfo=UTC)


def fixed(value: bytes, public: bytes | None = None) -> BundleSecret:
    return BundleSecret(
        slots=(BundleSlot("current", "fixed", OPEN_NOT_BEFORE, OPEN_NOT_AFTER, value),),
        public=public,
    )


def monthly(prefix: bytes) -> BundleSecret:
    return BundleSecret(
        slots=(
            BundleSlot("current", "2026-11", month(2026, 11), month(2026, 12), prefix + b"-nov"),
            BundleSlot("retired", "2026-10", month(2026, 10), month(2026, 11), prefix + b"-oct"),
            BundleSlot("ahead", "2026-12", month(2026, 12), month(2027, 1), prefix + b"-dec"),
        )
    )


@dataclass
class Host:
    root: Path
    manifest: Path
    calls: Path
    user: str
    serial: int = 0

    def install(self, *args: str, at: datetime = NOV) -> subprocess.CompletedProcess[bytes]:
        return cli(
            "install",
            "--root",
            self.root,
            "--manifest",
            self.manifest,
            "--at",
            at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            *args,
        )

    def recorded(self) -> list[str]:
        if not self.calls.exists():
            return []
        return self.calls.read_text().splitlines()

    def deliver(self, secrets: dict[str, BundleSecret]) -> None:
        self.serial += 1
        payload = BundlePayload(
            host=HOST,
            serial=self.serial,
            created=NOV,
            bundle_id=uuid.uuid4().hex,
            fingerprint_key=b"k" * 32,
            secrets=secrets,
        )
        pub = (self.root / "etc/ssh/ssh_host_ed25519_key.pub").read_text().strip()
        bundle = self.root / f"bundle-{self.serial}.age"
        bundle.write_bytes(signed_bundle(payload, [pub]))
        done = cli("activate", "--bundle", bundle, "--root", self.root, "--manifest", self.manifest)
        assert done.returncode == 0, done.stderr.decode()

    def write_manifest(self, doc: dict[str, Any]) -> None:
        self.manifest.write_text(json.dumps(doc))


def manifest_doc(recorder: Path, user: str) -> dict[str, Any]:
    return {
        "version": 1,
        "host": HOST,
        "settings": {"systemctl": [str(recorder)], "group": user, "keepGenerations": 2},
        "secrets": {
            "db/password": {
                "source": {"derive": {"realm": "db/web1"}},
                "owner": user,
                "group": user,
                "mode": "0440",
                "restartUnits": ["postgresql.service"],
            },
            "hmac": {
                "source": {
                    "derive": {
                        "realm": "talos/hmac/{period}",
                        "rotation": {"period": "monthly", "retired": 1, "ahead": 1},
                    }
                },
                "format": "env",
                "envName": "HMAC",
                "reloadUnits": ["api.service"],
            },
            "api-token": {
                "source": {"store": "api-token"},
                "path": "/etc/app/token",
                "restartUnits": ["app.service"],
            },
            "root-password": {"source": {"store": "root-password"}, "neededForUsers": True},
        },
        "templates": {
            "app.yaml": {
                "content": "hmac: {{aux:hmac}}\nretired: {{aux:hmac:retired}}\n",
                "format": "yaml",
                "restartUnits": ["app.service"],
            }
        },
    }


SECRETS = {
    "db/password": fixed(b"db-pass"),
    "hmac": monthly(b"hmac"),
    "api-token": fixed(b"tok-1"),
    "root-password": fixed(b"$6$hash"),
}


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    require_program("systemd-creds", "systemd")
    keygen = require_program("ssh-keygen", "openssh-client")
    root = tmp_path / "root"
    (root / "etc/ssh").mkdir(parents=True)
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(root / "etc/ssh/ssh_host_ed25519_key")],
        check=True,
    )
    calls = tmp_path / "calls.log"
    recorder = tmp_path / "systemctl"
    recorder.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n')
    recorder.chmod(0o755)
    user = "auxi" + uuid.uuid4().hex[:8]
    subprocess.run(["groupadd", user], check=True)
    subprocess.run(["useradd", "-M", "-N", "-g", user, "-s", "/usr/sbin/nologin", user], check=True)
    h = Host(root=root, manifest=tmp_path / "manifest.json", calls=calls, user=user)
    h.write_manifest(manifest_doc(recorder, user))
    try:
        h.deliver(dict(SECRETS))
        yield h
    finally:
        subprocess.run(["userdel", user], check=False)
        subprocess.run(["groupdel", user], check=False)


def owner_mode(path: Path) -> tuple[str, str, int]:
    import grp
    import pwd

    st = os.lstat(path)
    return (
        pwd.getpwuid(st.st_uid).pw_name,
        grp.getgrgid(st.st_gid).gr_name,
        stat.S_IMODE(st.st_mode),
    )


def test_first_install_then_no_change(host: Host) -> None:
    result = host.install()
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    assert "generation 1 installed" in out
    assert out.splitlines()[-1] == "next rotation: 2026-12-01T00:00:00Z"
    run = host.root / "run/aux-secrets"
    assert (run / "db/password").read_bytes() == b"db-pass"
    assert owner_mode(run / "db/password") == (host.user, host.user, 0o440)
    assert (run / "hmac").read_bytes() == b"HMAC_CURRENT=hmac-nov\nHMAC_RETIRED=hmac-oct\n"
    assert owner_mode(run / "hmac") == ("root", "root", 0o400)
    assert (run / "templates/app.yaml").read_bytes() == b'hmac: "hmac-nov"\nretired: ["hmac-oct"]\n'
    token = host.root / "etc/app/token"
    assert token.is_symlink() and token.read_bytes() == b"tok-1"
    assert not (run / "root-password").exists()  # neededForUsers goes to its own tree
    assert owner_mode(host.root / "run/aux-secrets.d") == ("root", host.user, 0o751)
    assert host.recorded() == [
        "try-restart app.service postgresql.service",
        "try-reload-or-restart api.service",
    ]
    # The same store and manifest again: no new generation, nothing rewritten, zero
    # restarts; only the audit log records the run.
    generations = host.root / "run/aux-secrets.d"
    listing = sorted(p.name for p in generations.iterdir())
    files = [p for p in generations.rglob("*") if p.is_file()]
    stamps = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files}
    again = host.install("--json")
    assert again.returncode == 0, again.stderr.decode()
    report = json.loads(again.stdout)
    assert report["generation"] == 1 and report["previous"] == 1 and report["kept"]
    assert report["tryRestart"] == [] and report["tryReloadOrRestart"] == []
    assert report["changed"] == [] and report["appeared"] == [] and report["requested"] == []
    assert report["nextRotation"] == "2026-12-01T00:00:00Z"
    assert len(host.recorded()) == 2
    assert sorted(p.name for p in generations.iterdir()) == listing
    assert {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in files} == stamps
    assert os.readlink(host.root / "run/aux-secrets").endswith("aux-secrets.d/1")
    assert token.is_symlink() and token.read_bytes() == b"tok-1"
    human = host.install()
    assert human.returncode == 0, human.stderr.decode()
    assert "generation 1 kept" in human.stdout.decode()
    assert "no units to restart or reload" in human.stdout.decode()
    assert len(host.recorded()) == 2
    audit = cli("audit", "verify", "--root", host.root, "--manifest", host.manifest)
    assert audit.returncode == 0, audit.stderr.decode()
    assert "4 entries" in audit.stdout.decode()  # activate + three installs


def test_rotation_boundary_passed_installs_new_current(host: Host) -> None:
    assert host.install().returncode == 0
    before = len(host.recorded())
    result = host.install("--json", at=month(2026, 12))
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["changed"] == [
        {"kind": "secret", "name": "hmac"},
        {"kind": "template", "name": "app.yaml"},
    ]
    assert (host.root / "run/aux-secrets/hmac").read_bytes() == (
        b"HMAC_CURRENT=hmac-dec\nHMAC_RETIRED=hmac-nov\n"
    )
    assert host.recorded()[before:] == [
        "try-restart app.service",
        "try-reload-or-restart api.service",
    ]
    assert report["nextRotation"] == "2027-01-01T00:00:00Z"


def test_changed_store_value_restarts_only_its_units(host: Host) -> None:
    assert host.install().returncode == 0
    before = len(host.recorded())
    host.deliver({**SECRETS, "api-token": fixed(b"tok-2")})
    result = host.install()
    assert result.returncode == 0, result.stderr.decode()
    assert host.recorded()[before:] == ["try-restart app.service"]
    assert (host.root / "etc/app/token").read_bytes() == b"tok-2"


def test_missing_secret_others_installed(host: Host) -> None:
    host.deliver({k: v for k, v in SECRETS.items() if k != "api-token"})
    result = host.install()
    line = assert_one_line_error(result, "api-token")
    assert "hint: aux-secrets provision --host web1" in result.stderr.decode()
    assert "1 not installed" in line
    assert (host.root / "run/aux-secrets/db/password").read_bytes() == b"db-pass"
    assert "missing   secret api-token: not in the local store" in result.stdout.decode()


def test_dry_run_writes_nothing(host: Host) -> None:
    before = sorted(str(p) for p in host.root.rglob("*"))
    result = host.install("--dry-run", "--json")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["dryRun"] is True and report["generation"] == 1
    assert report["tryRestart"] == ["app.service", "postgresql.service"]
    assert sorted(str(p) for p in host.root.rglob("*")) == before
    assert host.recorded() == []


def test_for_users_tree(host: Host) -> None:
    result = host.install("--for-users")
    assert result.returncode == 0, result.stderr.decode()
    users = host.root / "run/aux-secrets-for-users"
    assert os.readlink(users) == "aux-secrets-for-users.d/1"
    assert (users / "root-password").read_bytes() == b"$6$hash"
    assert owner_mode(users / "root-password") == ("root", "root", 0o400)
    assert sorted(p.name for p in users.iterdir()) == [".generation.json", "root-password"]
    assert not (host.root / "run/aux-secrets").exists()


def test_activation_lists(host: Host) -> None:
    # At boot there is no previous generation: every file appears, and a listed unit would
    # be restarted (started) by the next switch. Nothing is listed.
    result = host.install("--activation-lists")
    assert result.returncode == 0, result.stderr.decode()
    nixos = host.root / "run/nixos"
    assert (host.root / "run/aux-secrets/db/password").read_bytes() == b"db-pass"
    assert not nixos.exists()
    # A switch after the rotation boundary lists the units of what changed.
    result = host.install("--activation-lists", at=month(2026, 12))
    assert result.returncode == 0, result.stderr.decode()
    assert (nixos / "activation-restart-list").read_text() == "app.service\n"
    assert (nixos / "activation-reload-list").read_text() == "api.service\n"
    assert host.recorded() == []


def test_activation_lists_after_a_reboot_with_a_dangling_link(host: Host) -> None:
    """/run/aux-secrets pointing at a generation that is gone (its filesystem replaced)
    counts as no previous generation too."""
    (host.root / "run").mkdir()
    (host.root / "run/aux-secrets").symlink_to("aux-secrets.d/7")
    result = host.install("--activation-lists")
    assert result.returncode == 0, result.stderr.decode()
    assert not (host.root / "run/nixos").exists()
    assert (host.root / "run/aux-secrets/db/password").read_bytes() == b"db-pass"


def test_tampered_store_changes_nothing(host: Host) -> None:
    assert host.install().returncode == 0
    blob = next((host.root / "var/lib/aux-secrets").glob("store-*.bin"))
    data = bytearray(blob.read_bytes())
    data[-5] ^= 1
    blob.write_bytes(bytes(data))
    before = os.readlink(host.root / "run/aux-secrets")
    result = host.install()
    assert_one_line_error(result, "local store")
    assert os.readlink(host.root / "run/aux-secrets") == before
    assert sorted(os.listdir(host.root / "run/aux-secrets.d")) == [".lock", "1"]


def test_unknown_owner_named(host: Host) -> None:
    doc = json.loads(host.manifest.read_text())
    doc["secrets"]["db/password"]["owner"] = "no-such-user-aux"
    host.write_manifest(doc)
    result = host.install()
    assert_one_line_error(result, "owner 'no-such-user-aux'", "db/password")
    # That secret only: the others are installed.
    assert not (host.root / "run/aux-secrets/db/password").exists()
    installed = [p for p in (host.root / "run/aux-secrets/").rglob("*") if p.is_file()]
    assert installed


def test_planted_symlink_at_runtime_dir(host: Host, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (host.root / "run").mkdir()
    os.symlink(victim, host.root / "run/aux-secrets")
    result = host.install()
    assert_one_line_error(result, "run/aux-secrets", "not to a generation")
    assert list(victim.iterdir()) == []


def test_manifest_path_inside_generations_dir_refused(host: Host) -> None:
    doc = json.loads(host.manifest.read_text())
    doc["secrets"]["db/password"]["path"] = "/run/aux-secrets.d/9/x"
    host.write_manifest(doc)
    result = host.install()
    assert_one_line_error(result, "$.secrets")
    assert not (host.root / "run").exists()


def test_manifest_path_in_system_place_refused(host: Host) -> None:
    doc = json.loads(host.manifest.read_text())
    doc["secrets"]["db/password"]["path"] = "/proc/self/x"
    host.write_manifest(doc)
    result = host.install()
    # Refused by the manifest parser (with the JSON path) or, for manifests it lets
    # through, by the installer's own check (tests/test_installer.py); never written.
    assert_one_line_error(result, "/proc/self/x")
    assert not (host.root / "run").exists()


def test_failing_systemctl_reported_after_install(host: Host, tmp_path: Path) -> None:
    failing = tmp_path / "failing-systemctl"
    failing.write_text("#!/bin/sh\necho 'Failed to connect to bus' >&2\nexit 1\n")
    failing.chmod(0o755)
    doc = json.loads(host.manifest.read_text())
    doc["settings"]["systemctl"] = [str(failing)]
    host.write_manifest(doc)
    result = host.install()
    assert_one_line_error(result, "generation 1 is installed", "try-restart")
    assert (host.root / "run/aux-secrets/db/password").read_bytes() == b"db-pass"


def test_value_the_format_cannot_hold_skips_only_that_item(host: Host) -> None:
    bad = BundleSecret(
        slots=(BundleSlot("current", "2026-11", month(2026, 11), month(2026, 12), b"\xff\xfe"),)
    )
    host.deliver({**SECRETS, "hmac": bad})
    result = host.install()
    line = assert_one_line_error(result, "2 not installed", "hmac", "app.yaml")
    assert "\xff" not in line
    assert "hint: fix the manifest" in result.stderr.decode()
    assert (host.root / "run/aux-secrets/db/password").read_bytes() == b"db-pass"
    assert not (host.root / "run/aux-secrets/hmac").exists()
    assert "not valid UTF-8" in result.stdout.decode()


def test_nothing_activated_yet(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"version": 1, "host": HOST, "secrets": {}}))
    root = tmp_path / "root"
    root.mkdir()
    for extra in ([], ["--for-users"], ["--dry-run"], ["--activation-lists"]):
        result = cli("install", "--root", root, "--manifest", manifest, *extra)
        # Its own exit status: the NixOS units accept it, and fail on every other error.
        assert result.returncode == 75, result
        assert_one_line_error(result, f"no bundle has been delivered to host {HOST} yet")
        assert f"hint: aux-secrets provision --host {HOST}" in result.stderr.decode()
        assert list(root.iterdir()) == []


def test_a_broken_store_is_not_the_no_bundle_status(host: Host) -> None:
    host.deliver(dict(SECRETS))
    meta = host.root / "var/lib/aux-secrets/store.json"
    meta.write_bytes(meta.read_bytes()[:10])
    result = cli("install", "--root", host.root, "--manifest", host.manifest)
    assert result.returncode == 1, result


def test_garbage_manifest_is_one_line(tmp_path: Path) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(b'{"version": 1, "host": ')
    result = cli("install", "--root", tmp_path, "--manifest", manifest)
    assert_one_line_error(result, "manifest")


def test_rotating_credential_is_resealed_when_its_boundary_passes(host: Host) -> None:
    doc = json.loads(host.manifest.read_text())
    doc["secrets"]["hmac"]["credential"] = {"name": "hmac", "units": ["cred.service"]}
    host.write_manifest(doc)
    host.deliver(dict(SECRETS))
    cred = host.root / "var/lib/aux-secrets/credentials/hmac.cred"

    def unseal() -> bytes:
        env = {
            **os.environ,
            "SYSTEMD_CREDENTIAL_SECRET": str(host.root / "var/lib/systemd/credential.secret"),
            "SYSTEMD_LOG_LEVEL": "err",
        }
        done = subprocess.run(
            ["systemd-creds", "decrypt", "--with-key=host", "--name=hmac", str(cred), "-"],
            capture_output=True,
            env=env,
            check=True,
        )
        return done.stdout

    assert host.install().returncode == 0
    assert unseal() == b"hmac-nov"
    # No operator present: the December install alone re-seals the credential.
    before = len(host.recorded())
    result = host.install(at=month(2026, 12))
    assert result.returncode == 0, result.stderr.decode()
    assert unseal() == b"hmac-dec"
    # ... and restarts the unit that loads it, or it keeps the November credential.
    assert host.recorded()[before:] == [
        "try-restart app.service cred.service",
        "try-reload-or-restart api.service",
    ]


def test_root_that_is_a_file_is_named_as_such(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.write_bytes(b"not a directory")
    result = cli("install", "--root", root)
    assert_one_line_error(result, f"root directory {root} is not a directory")
    assert root.read_bytes() == b"not a directory"


def test_a_broken_audit_log_never_stops_the_restarts(host: Host) -> None:
    assert host.install().returncode == 0
    log = host.root / "var/lib/aux-secrets/audit.jsonl"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join(lines[:-1]))  # an entry cut from the end: appends refused
    before = len(host.recorded())
    result = host.install(at=month(2026, 12))
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr
    assert "warning: generation 2 is live, but the audit log did not record it" in stderr
    assert host.recorded()[before:] == [
        "try-restart app.service",
        "try-reload-or-restart api.service",
    ]
    assert (host.root / "run/aux-secrets/hmac").read_bytes().startswith(b"HMAC_CURRENT=hmac-dec")


def test_a_torn_audit_line_is_recovered_by_the_next_install(host: Host) -> None:
    assert host.install().returncode == 0
    log = host.root / "var/lib/aux-secrets/audit.jsonl"
    head = host.root / "var/lib/aux-secrets/audit.head"
    kept = head.read_bytes()
    assert host.install(at=month(2026, 12)).returncode == 0
    data = log.read_bytes()
    log.write_bytes(data[:-30])  # what an append cut short by a full disk used to leave
    head.write_bytes(kept)
    result = host.install(at=month(2026, 12))
    assert result.returncode == 0, result.stderr.decode()
    audit = cli("audit", "verify", "--root", host.root, "--manifest", host.manifest)
    assert audit.returncode == 0, audit.stderr.decode()
    events = [json.loads(line)["event"] for line in log.read_bytes().splitlines()]
    assert events == ["activate", "install", "repair", "install"]
