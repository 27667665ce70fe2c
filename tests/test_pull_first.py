"""`pull` on a host with no manifest yet (its first bundle brings one): which host it is
(--host / $AUX_SECRETS_PULL_HOST, the active bundle's host, the short hostname) and which
signer it takes bundles from (--signer / $AUX_SECRETS_PULL_SIGNER). Directory sources."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, cli
from tests.provision_helpers import make_host_root, make_vault, tree_bytes
from tests.sshd import _keygen
from tests.test_pull import Fleet, add_host, signer_line


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    """A vault with web1 and web1's root, its manifest still there (no signer pinned)."""
    vault = make_vault(tmp_path)
    key = tmp_path / "web1_host_key"
    add_host(vault, "web1", _keygen(key))
    pub = tmp_path / "pub"
    pub.mkdir()
    return Fleet(vault, make_host_root(tmp_path, "web1", key), pub)


def first(fleet: Fleet) -> Fleet:
    """web1 before its first deployment: no manifest, the bundle published."""
    fleet.publish(fleet.bundle())
    fleet.host.manifest.unlink()
    return fleet


def pull(
    fleet: Fleet, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return cli("pull", fleet.pub, "--root", fleet.host.root, *args, env=env)


def derived(fleet: Fleet) -> bytes:
    return cli("derive", "db/web1", "--charset", "alnum", *fleet.vault.args()).stdout


def test_the_host_and_signer_from_the_environment_take_the_first_bundle(fleet: Fleet) -> None:
    first(fleet)
    env = {"AUX_SECRETS_PULL_HOST": "web1", "AUX_SECRETS_PULL_SIGNER": signer_line(fleet.vault)}
    done = pull(fleet, "--json", env=env)  # no --trust-first-signer: the signer is given
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["host"], report["result"]) == ("web1", "activated")
    assert report["install"]["manifest"] == {"carried": True, "path": None}
    assert fleet.host.installed("db/password") == derived(fleet)
    # Named by nobody now: the active bundle's host.
    again = pull(fleet)
    assert again.returncode == 0, again.stderr
    assert again.stderr.startswith(b"web1: ") and b"holds nothing newer" in again.stderr


def test_the_short_hostname_names_a_host_nothing_else_names(fleet: Fleet) -> None:
    first(fleet)
    (fleet.host.root / "etc/hostname").write_text("web1.example.org\n")
    done = pull(fleet, "--trust-first-signer", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["host"] == "web1"
    assert fleet.host.installed("db/password") == derived(fleet)


@pytest.mark.parametrize("hostname", [None, "localhost\n", "web 1\n"])
def test_no_host_name_is_one_line_with_a_hint(fleet: Fleet, hostname: str | None) -> None:
    first(fleet)
    if hostname is not None:
        (fleet.host.root / "etc/hostname").write_text(hostname)
    before = tree_bytes(fleet.host.root)
    done = pull(fleet, "--trust-first-signer")
    assert_one_line_error(done, "no host name")
    assert b"aux-secrets: hint: pass --host NAME" in done.stderr
    assert tree_bytes(fleet.host.root) == before


def test_a_host_from_the_environment_must_agree_with_the_manifest(fleet: Fleet) -> None:
    fleet.publish(fleet.bundle())
    done = pull(fleet, env={"AUX_SECRETS_PULL_HOST": "web2"})
    assert_one_line_error(done, "--host web2 differs from the manifest's host web1")


def test_a_bundle_from_another_signer_is_refused(fleet: Fleet, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    other = make_vault(tmp_path / "other")  # its signer is not the one that made the bundle
    first(fleet)
    before = tree_bytes(fleet.host.root)
    done = pull(fleet, "--host", "web1", "--signer", signer_line(other), "--trust-first-signer")
    line = assert_one_line_error(done, "takes bundles only from", "(--signer)")
    assert line.endswith("this host has no secrets from a bundle yet")
    assert tree_bytes(fleet.host.root) == before


def test_a_first_bundle_with_no_signer_names_the_ways_to_pin_one(fleet: Fleet) -> None:
    first(fleet)
    done = pull(fleet, "--host", "web1")
    assert_one_line_error(done, "no signer pinned")
    assert b"--signer" in done.stderr
    assert not (fleet.host.root / "var/lib/aux-secrets/store.json").exists()


def test_a_signer_that_does_not_parse(fleet: Fleet) -> None:
    done = pull(fleet, "--signer", "ssh-rsa AAAA")
    assert_one_line_error(done, "--signer")
