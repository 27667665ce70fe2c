"""Pull and incoming on a host with no manifest, against hostile input: delivery.env and
pull.env values with newlines, `$` or great length, host names that are no host names,
a source serving another host's bundle or one signed by another key while --signer is
pinned, and truncated or garbage bundles in incoming/. Each is one error line, a
non-zero exit, and nothing written."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
from pathlib import Path

import pytest

from aux_secrets.core.bundle_sign import parse_signer
from tests.helpers import assert_one_line_error, cli
from tests.provision_helpers import make_vault, tree_bytes
from tests.sshd import _keygen
from tests.test_pull import Fleet, add_host, signer_line
from tests.test_pull_first import derived, first, fleet, pull
from tests.test_units import install

__all__ = ["fleet"]  # the fixture, used by name

SIGNER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMz2eK1tZB1W4r1uQd5bC8zv0d1l0n8P0b1wzJk1t9Qe"


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (["--pull-source", "https://x/\nAUX_SECRETS_PULL_HOST=web2"], "pull.env"),
        (["--pull-source", "https://x/$HOME"], "pull.env"),
        (["--pull-source", "https://x/`id`"], "pull.env"),
        (["--pull-source", 'https://x/"a'], "pull.env"),
        (["--pull-source", "https://x/a\u2028b"], "pull.env"),
        (["--pull-source", "https://x/" + "a" * 60_000 + " b"], "pull.env"),
        (["--pull-source", ""], "pull.env"),
        (["--incoming", "--host", "web1\nAUX_SECRETS_PULL_SIGNER=x"], "not a valid host name"),
        (["--incoming", "--host", "../../etc"], "not a valid host name"),
        (["--incoming", "--host", "web1/web2"], "not a valid host name"),
        (["--incoming", "--host", "$(id)"], "not a valid host name"),
        (["--incoming", "--host", "a" * 300], "not a valid host name"),
        (["--incoming", "--signer", "ssh-ed25519 $KEY"], "--signer"),
        # A good value with a bad one: neither file is written.
        (["--pull-source", "/srv/pub", "--host", "web 1"], "not a valid host name"),
        (["--pull-source", "/srv/pub", "--host", "web1", "--signer", "x"], "--signer"),
    ],
)
def test_hostile_delivery_values_write_nothing(
    tmp_path: Path, options: list[str], needle: str
) -> None:
    result = install(tmp_path, *options)
    line = assert_one_line_error(result, needle)
    assert "\n" not in line and len(line) < 1024
    assert not (tmp_path / "etc").exists()


def test_a_signer_line_with_more_after_the_key_writes_only_the_key(tmp_path: Path) -> None:
    """What follows the key is its comment: delivery.env gets the bare base64 only."""
    result = install(tmp_path, "--incoming", "--signer", SIGNER + "\nAUX_SECRETS_PULL_HOST=x")
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "etc/aux-secrets/delivery.env").read_text().splitlines()
    key = base64.b64encode(parse_signer(SIGNER)).decode()
    assert lines[1:] == [f"AUX_SECRETS_PULL_SIGNER={key}"]


def test_a_long_pull_source_is_one_line_of_pull_env(tmp_path: Path) -> None:
    source = "https://secrets.example.org/" + "a" * 100_000 + "/"
    result = install(tmp_path, "--pull-source", source)
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "etc/aux-secrets/pull.env").read_text().splitlines()
    assert lines[1:] == [f"AUX_SECRETS_PULL_SOURCE={source}"]


@pytest.mark.parametrize(
    "host", ["web1\nweb2", "../web1", "web1/../web2", "a" * 300, "$(id)", "web 1", "-web1"]
)
def test_a_host_from_delivery_env_that_is_no_host_name(fleet: Fleet, host: str) -> None:
    first(fleet)
    before = tree_bytes(fleet.host.root)
    done = pull(fleet, "--trust-first-signer", env={"AUX_SECRETS_PULL_HOST": host})
    assert_one_line_error(done, "--host", "is not a valid host name")
    assert tree_bytes(fleet.host.root) == before


@pytest.mark.parametrize(
    "hostname", ["web1\nweb2\n", "../../web1\n", "web1/x\n", "\x1b[2Jweb1\n", "a" * 300]
)
def test_a_system_hostname_that_is_no_host_name(fleet: Fleet, hostname: str) -> None:
    first(fleet)
    (fleet.host.root / "etc/hostname").write_text(hostname)
    before = tree_bytes(fleet.host.root)
    done = pull(fleet, "--trust-first-signer")
    line = assert_one_line_error(done, "no host name")
    assert "\x1b" not in line
    assert tree_bytes(fleet.host.root) == before


@pytest.mark.parametrize("signer", ["AAAA$(id)", SIGNER + "\nX", "ssh-ed25519", " "])
def test_a_signer_from_delivery_env_that_does_not_parse(fleet: Fleet, signer: str) -> None:
    first(fleet)
    before = tree_bytes(fleet.host.root)
    env = {"AUX_SECRETS_PULL_HOST": "web1", "AUX_SECRETS_PULL_SIGNER": signer}
    done = pull(fleet, env=env)
    assert_one_line_error(done, "--signer")
    assert tree_bytes(fleet.host.root) == before


def test_another_hosts_bundle_under_this_hosts_name_is_refused(
    fleet: Fleet, tmp_path: Path
) -> None:
    """Signed by the pinned signer, sealed to this host's key, but made for web2."""
    own_key = (tmp_path / "web1_host_key.pub").read_text()
    add_host(fleet.vault, "web2", own_key)  # the same key under another name
    for_web2 = fleet.bundle("web2")
    add_host(fleet.vault, "web3", _keygen(tmp_path / "web3_host_key"))
    for_web3 = fleet.bundle("web3")
    first(fleet)
    fleet.publish(for_web2, "web1")
    before = tree_bytes(fleet.host.root)
    done = pull(fleet, "--host", "web1", "--signer", signer_line(fleet.vault))
    line = assert_one_line_error(done, "web2")
    assert line.endswith("this host has no secrets from a bundle yet")
    assert tree_bytes(fleet.host.root) == before
    # And web3's own bundle (sealed to web3's key) does not open here at all.
    fleet.publish(for_web3, "web1")
    done = pull(fleet, "--host", "web1", "--signer", signer_line(fleet.vault))
    assert_one_line_error(done, "this host has no secrets from a bundle yet")
    assert tree_bytes(fleet.host.root) == before


def test_a_pinned_signer_holds_after_the_first_bundle(fleet: Fleet, tmp_path: Path) -> None:
    """Taken in with --signer, then a bundle of another vault sealed to this host."""
    (tmp_path / "other").mkdir()
    other = make_vault(tmp_path / "other")
    add_host(other, "web1", (tmp_path / "web1_host_key.pub").read_text())
    foreign = fleet.bundle(vault=other)
    first(fleet)
    pinned = signer_line(fleet.vault)
    assert pull(fleet, "--host", "web1", "--signer", pinned).returncode == 0
    fleet.publish(foreign, ago=30)
    before = tree_bytes(fleet.host.root)
    done = pull(fleet, "--signer", pinned)
    assert_one_line_error(done, "(--signer)", "keeps serial")
    assert tree_bytes(fleet.host.root) == before
    assert fleet.host.installed("db/password") == derived(fleet)


def _incoming(fleet: Fleet) -> Path:
    incoming = fleet.host.root / "var/lib/aux-secrets/incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    return incoming


def test_truncated_and_garbage_bundles_in_incoming(fleet: Fleet) -> None:
    """What aux-secrets-incoming.service runs, on a host with no manifest."""
    data = fleet.bundle()
    fleet.host.manifest.unlink()
    incoming = _incoming(fleet)
    env = {"AUX_SECRETS_PULL_HOST": "web1", "AUX_SECRETS_PULL_SIGNER": signer_line(fleet.vault)}

    def take_in() -> subprocess.CompletedProcess[bytes]:
        return cli("pull", "--trust-first-signer", "--root", fleet.host.root, incoming, env=env)

    cases = {
        "cut short": data[: len(data) // 2],
        "empty": b"",
        "garbage": b"\x00\xff garbage, not an age file\n" * 100,
        "age header only": data[:120],
    }
    for what, content in cases.items():
        (incoming / "web1.age").write_bytes(content)
        before = tree_bytes(fleet.host.root)
        done = take_in()
        line = assert_one_line_error(done, "this host has no secrets from a bundle yet")
        assert "\n" not in line, what
        assert tree_bytes(fleet.host.root) == before, what
        assert not (fleet.host.root / "run/aux-secrets").exists(), what
    (incoming / "web1.age").unlink()
    (incoming / "web1.age").mkdir()  # not even a file
    assert_one_line_error(take_in(), "this host has no secrets")
    (incoming / "web1.age").rmdir()
    (incoming / "web1.age").write_bytes(data)
    done = take_in()
    assert done.returncode == 0, done.stderr
    assert fleet.host.installed("db/password") == derived(fleet)
    report = cli("pull", "--root", fleet.host.root, incoming, "--json", env=env)
    assert json.loads(report.stdout)["result"] == "up-to-date"


@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "socket", "loop"])
def test_a_published_bundle_that_is_no_file_is_refused_at_once(fleet: Fleet, kind: str) -> None:
    """A directory source is an untrusted channel too (a share, a stick): a fifo there must
    not leave the pull waiting for a writer forever, nor a device feed it endlessly."""
    first(fleet)
    path = fleet.pub / "web1.age"
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")
    elif kind == "socket":
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
        listener.close()
    elif kind == "loop":
        path.symlink_to(path.name)
    else:
        path.mkdir()
    before = tree_bytes(fleet.host.root)
    done = cli(
        "pull", fleet.pub, "--root", fleet.host.root, "--host", "web1",
        "--signer", signer_line(fleet.vault), timeout=60,
    )  # fmt: skip
    assert_one_line_error(done, str(path), "this host has no secrets from a bundle yet")
    assert tree_bytes(fleet.host.root) == before
