"""`aux-secrets activate` as a real process: host keys, replay, tamper, stdin, credentials."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from aux_secrets.core.bundle import (
    OPEN_NOT_AFTER,
    OPEN_NOT_BEFORE,
    BundlePayload,
    BundleSecret,
    BundleSlot,
)
from tests.helpers import assert_one_line_error, cli
from tests.test_localstore_support import Host, payload, rotating_payload


def activate(host: Host, bundle: bytes, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return cli(
        "activate", "--bundle", "-", *host.cli_args(), *extra, input=bundle, env=host.cli_env
    )


def test_activate_from_stdin_and_file(tmp_path: Path) -> None:
    host = Host(tmp_path)
    first = activate(host, host.bundle(rotating_payload(1)))
    assert first.returncode == 0, first.stderr
    assert b"serial 1" in first.stderr
    bundle_file = tmp_path / "b.age"
    bundle_file.write_bytes(host.bundle(payload(2)))
    second = cli("activate", "--bundle", bundle_file, *host.cli_args(), "--json", env=host.cli_env)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert report["serial"] == 2 and report["previousSerial"] == 1
    assert report["changed"] == ["db"] and report["removed"] == ["talos/hmac"]
    assert report["credentials"] == [str(host.store_dir / "credentials" / "db.cred")]
    assert b"db-pass" not in second.stdout + second.stderr


def test_root_defaults_the_credential_host_key_under_root(tmp_path: Path) -> None:
    host = Host(tmp_path)
    result = cli("activate", "--bundle", "-", *host.cli_args(), input=host.bundle(payload(1)))
    assert result.returncode == 0, result.stderr
    assert (host.root / "var/lib/systemd/credential.secret").exists()
    assert not host.credential_secret.exists()


def test_bundle_for_another_host_changes_nothing(tmp_path: Path) -> None:
    host = Host(tmp_path)
    assert activate(host, host.bundle(payload(1))).returncode == 0
    before = host.snapshot()
    result = activate(host, host.bundle(payload(5, host="db7")))
    assert_one_line_error(result, "made for host 'db7'", "'web1'")
    assert host.snapshot() == before


def test_host_option_without_manifest(tmp_path: Path) -> None:
    host = Host(tmp_path, backend="systemd-creds")
    # No manifest at ROOT/etc/aux-secrets/manifest.json: --host names this host and the
    # built-in settings apply (systemd-creds with the host key).
    args = ["activate", "--bundle", "-", "--root", str(host.root)]
    ok = cli(*args, "--host", "web1", input=host.bundle(payload(1)), env=host.cli_env)
    assert ok.returncode == 0, ok.stderr
    wrong = cli(*args, "--host", "web2", input=host.bundle(payload(2)), env=host.cli_env)
    assert_one_line_error(wrong, "made for host 'web1'")
    missing = cli(*args, input=host.bundle(payload(3)), env=host.cli_env)
    assert_one_line_error(missing, "manifest")
    clash = cli(
        "activate", "--bundle", "-", *host.cli_args(), "--host", "web9",
        input=host.bundle(payload(3)), env=host.cli_env,
    )  # fmt: skip
    assert_one_line_error(clash, "--host web9")


def test_a_store_that_changes_hosts_says_so(tmp_path: Path) -> None:
    """A host without a manifest is named by --host: taking another host's bundle there
    (a cloned host key, a wrong --host) is allowed, as a renamed host needs, but said."""
    host = Host(tmp_path, backend="systemd-creds")
    args = ["activate", "--bundle", "-", "--root", str(host.root)]
    first = cli(*args, "--host", "web1", input=host.bundle(payload(1)), env=host.cli_env)
    assert first.returncode == 0, first.stderr
    assert b"warning" not in first.stderr
    same = cli(*args, "--host", "web1", input=host.bundle(payload(2)), env=host.cli_env)
    assert same.returncode == 0 and b"warning" not in same.stderr
    other = cli(*args, "--host", "db7", input=host.bundle(payload(3, host="db7")), env=host.cli_env)
    assert other.returncode == 0, other.stderr
    warned = [x for x in other.stderr.decode().splitlines() if "warning" in x]
    assert warned == [
        "aux-secrets: warning: the local store held host web1's secrets; it now holds host "
        "db7's (a renamed host, or another host's bundle taken by mistake)"
    ]


@pytest.mark.parametrize("serial", [3, 2])
def test_replay_refused_nothing_changed(tmp_path: Path, serial: int) -> None:
    host = Host(tmp_path)
    assert activate(host, host.bundle(payload(3))).returncode == 0
    before = host.snapshot()
    result = activate(host, host.bundle(payload(serial)))
    assert_one_line_error(result, f"bundle serial {serial} is not newer than the active serial 3")
    assert host.snapshot() == before


def _versioned(serial: int, version: int) -> BundlePayload:
    base = payload(serial)
    slot = BundleSlot(
        "current", f"v{version}", OPEN_NOT_BEFORE, OPEN_NOT_AFTER, b"tok-%d" % version
    )
    return replace(base, secrets={**base.secrets, "api/token": BundleSecret(slots=(slot,))})


@pytest.mark.parametrize("serial", [3, 2])
def test_stale_clone_bundle_says_downgrade_even_at_the_same_serial(
    tmp_path: Path, serial: int
) -> None:
    # Two operators' clones take serials from the clock: a stale clone's bundle can carry
    # the active serial. The operator must hear "pull the vault", not "replayed".
    host = Host(tmp_path)
    assert activate(host, host.bundle(_versioned(3, 2))).returncode == 0
    before = host.snapshot()
    stale = activate(host, host.bundle(_versioned(serial, 1)))
    line = assert_one_line_error(stale, "store secret api/token back from version 2 to version 1")
    assert "git pull" in stale.stderr.decode() and line
    assert host.snapshot() == before
    # The same versions again at that serial are a replay, as before.
    replay = activate(host, host.bundle(_versioned(serial, 2)))
    assert_one_line_error(replay, f"bundle serial {serial} is not newer than the active serial 3")
    assert host.snapshot() == before


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty", "other-key"])
def test_bad_bundle_is_one_line_nothing_changed(tmp_path: Path, damage: str) -> None:
    host = Host(tmp_path)
    assert activate(host, host.bundle(payload(1))).returncode == 0
    before = host.snapshot()
    good = bytearray(host.bundle(payload(2)))
    if damage == "flip":
        good[len(good) - 20] ^= 0x10
        data = bytes(good)
    elif damage == "truncate":
        data = bytes(good[: len(good) // 2])
    elif damage == "garbage":
        data = b"\x00garbage" * 10
    elif damage == "empty":
        data = b""
    else:
        other = Host(tmp_path / "other")
        data = other.bundle(payload(2))
    line = assert_one_line_error(activate(host, data))
    assert "db-pass" not in line
    assert host.snapshot() == before


def test_bad_manifest_is_one_line(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.manifest_path.write_text('{"version": 1, "host": "web1", "bogus": 1}')
    assert_one_line_error(activate(host, host.bundle(payload(1))), "bogus")
    assert not host.store_dir.exists()


def test_corrupted_store_metadata_refuses_activate(tmp_path: Path) -> None:
    """Replay protection rests on store.json: a damaged one stops activate, not bypasses it."""
    host = Host(tmp_path)
    assert activate(host, host.bundle(payload(1))).returncode == 0
    (host.store_dir / "store.json").write_bytes(b"{garbage")
    assert_one_line_error(activate(host, host.bundle(payload(2))), "store.json")


def test_missing_host_key(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.key.unlink()
    assert_one_line_error(activate(host, host.bundle(payload(1))), "no host key")


def test_help_has_example() -> None:
    result = cli("activate", "--help")
    assert result.returncode == 0
    assert b"aux-secrets activate --bundle" in result.stdout


def test_symlinked_store_dir_refused(tmp_path: Path) -> None:
    host = Host(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    host.store_dir.parent.mkdir(parents=True)
    host.store_dir.symlink_to(elsewhere)
    assert_one_line_error(activate(host, host.bundle(payload(1))), "is not a directory")
    assert list(elsewhere.iterdir()) == []
