"""`pull` against a real HTTP server on 127.0.0.1 and a plain directory, into temp roots."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, cli
from tests.httpd import Server, serve
from tests.provision_helpers import HostRoot, Vault, make_host_root, make_vault, tree_bytes
from tests.sshd import _keygen, closed_port


@dataclass(frozen=True)
class Fleet:
    vault: Vault
    host: HostRoot
    pub: Path  # the publish directory the server serves

    def bundle(self, name: str = "web1", vault: Vault | None = None) -> bytes:
        """A fresh bundle for ``name`` (serial grows each time)."""
        chosen = vault or self.vault
        out = self.pub.parent / f"made-{name}.age"
        manifest = self.pub.parent / f"manifest-{name}.json"
        doc = json.loads(self.host.manifest.read_bytes())
        manifest.write_text(json.dumps({**doc, "host": name}))
        result = cli("bundle", "--host", name, "--manifest", manifest, "-o", out, *chosen.args())
        assert result.returncode == 0, result.stderr
        return out.read_bytes()

    def publish(self, data: bytes, name: str = "web1", *, ago: int = 60) -> None:
        """Write it as a publish ``ago`` seconds back would have (its Last-Modified)."""
        path = self.pub / f"{name}.age"
        path.write_bytes(data)
        when = time.time() - ago
        os.utime(path, (when, when))


def signer_line(vault: Vault) -> str:
    result = cli("signer", "--ssh", *vault.args())
    assert result.returncode == 0, result.stderr
    return result.stdout.decode().strip()


def pin_signer(host: HostRoot, line: str | None) -> None:
    doc = json.loads(host.manifest.read_bytes())
    doc["settings"]["bundleSigners"] = [line] if line else []
    host.manifest.write_text(json.dumps(doc))


def add_host(vault: Vault, name: str, pub: str) -> None:
    result = cli("host", "add", name, "--ssh-host-key", pub, "--vault", vault.root)
    assert result.returncode == 0, result.stderr


@pytest.fixture
def fleet(tmp_path: Path) -> Fleet:
    vault = make_vault(tmp_path)
    key = tmp_path / "web1_host_key"
    add_host(vault, "web1", _keygen(key))
    host = make_host_root(tmp_path, "web1", key)
    pin_signer(host, signer_line(vault))
    pub = tmp_path / "pub"
    pub.mkdir()
    return Fleet(vault, host, pub)


def pull(host: HostRoot, source: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return cli("pull", source, "--root", host.root, *args)


def store_state(host: HostRoot) -> dict[str, bytes]:
    return tree_bytes(host.root / "var/lib/aux-secrets") | tree_bytes(host.root / "run")


def test_pull_over_http_activates_installs_then_is_up_to_date(fleet: Fleet) -> None:
    fleet.publish(fleet.bundle())
    with serve(fleet.pub) as server:
        first = pull(fleet.host, server.url, "--json")
        assert first.returncode == 0, first.stderr
        report = json.loads(first.stdout)  # one document, install's report inside
        assert report["result"] == "activated"
        assert report["install"]["manifest"] == {"carried": False, "path": str(fleet.host.manifest)}
        assert report["previousSerial"] is None
        assert sorted(report["changed"]) == ["api/hmac", "db/password"]
        derived = cli("derive", "db/web1", "--charset", "alnum", *fleet.vault.args()).stdout
        assert fleet.host.installed("db/password") == derived
        assert derived not in first.stdout + first.stderr
        assert fleet.host.calls() == [
            "try-restart postgresql.service",
            "try-reload-or-restart api.service",
        ]

        again = pull(fleet.host, server.url)
        assert again.returncode == 0, again.stderr
        assert b"holds nothing newer than serial " + str(report["serial"]).encode() in again.stderr
        # The second request was conditional and answered 304: no bundle moved.
        assert server.requests()[-1].endswith("304")
        assert len(fleet.host.calls()) == 2

        fleet.publish(fleet.bundle(), ago=30)
        newer = pull(fleet.host, server.url, "--json")
        assert newer.returncode == 0, newer.stderr
        assert json.loads(newer.stdout)["serial"] > report["serial"]


def test_pull_on_a_host_without_a_manifest_installs_with_the_carried_one(fleet: Fleet) -> None:
    fleet.publish(fleet.bundle())
    fleet.host.manifest.unlink()  # a first deployment: nothing in /etc yet
    with serve(fleet.pub) as server:
        done = pull(fleet.host, server.url, "--host", "web1", "--trust-first-signer", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["result"] == "activated"
    assert report["install"]["manifest"] == {"carried": True, "path": None}
    derived = cli("derive", "db/web1", "--charset", "alnum", *fleet.vault.args()).stdout
    assert fleet.host.installed("db/password") == derived
    assert not fleet.host.manifest.exists()  # nothing written to /etc


def test_a_bundle_replaced_within_the_second_is_not_missed(fleet: Fleet) -> None:
    fleet.publish(fleet.bundle(), ago=0)
    with serve(fleet.pub) as server:
        serial = _pulled(fleet, server)
        fleet.publish(fleet.bundle(), ago=0)  # same second: same Last-Modified
        assert _pulled(fleet, server) > serial
        assert not any(line.endswith("304") for line in server.requests())


def _pulled(fleet: Fleet, server: Server) -> int:
    done = pull(fleet.host, server.url, "--json")
    assert done.returncode == 0, done.stderr
    return int(json.loads(done.stdout)["serial"])


def test_replayed_bundle_is_refused_and_the_host_keeps_its_serial(fleet: Fleet) -> None:
    old = fleet.bundle()
    fleet.publish(fleet.bundle())
    with serve(fleet.pub) as server:
        serial = _pulled(fleet, server)
        before = store_state(fleet.host)
        fleet.publish(old, ago=30)
        result = pull(fleet.host, server.url)
        assert_one_line_error(result, "not newer", f"this host keeps serial {serial}")
        assert store_state(fleet.host) == before


def test_foreign_bundles_are_refused(fleet: Fleet, tmp_path: Path) -> None:
    fleet.publish(fleet.bundle())
    with serve(fleet.pub) as server:
        serial = _pulled(fleet, server)
        before = store_state(fleet.host)
        # Another host's bundle, put where this host's belongs: it does not open here.
        add_host(fleet.vault, "web2", _keygen(tmp_path / "web2_host_key"))
        fleet.publish(fleet.bundle("web2"), ago=50)
        result = pull(fleet.host, server.url)
        assert_one_line_error(result, f"this host keeps serial {serial}")
        # A bundle sealed to this host by another vault: the signer is not the pinned one.
        other = make_vault(tmp_path, "other")
        add_host(other, "web1", (tmp_path / "web1_host_key.pub").read_text())
        fleet.publish(fleet.bundle(vault=other), ago=40)
        result = pull(fleet.host, server.url)
        assert_one_line_error(result, "not in settings.bundleSigners", "keeps serial")
        assert store_state(fleet.host) == before


def test_truncated_tampered_and_garbage_bundles_are_refused(fleet: Fleet) -> None:
    fleet.publish(fleet.bundle())
    with serve(fleet.pub) as server:
        serial = _pulled(fleet, server)
        before = store_state(fleet.host)
        data = fleet.bundle()
        fleet.publish(data[: len(data) // 2], ago=50)  # a file cut short on the server
        assert_one_line_error(pull(fleet.host, server.url), f"keeps serial {serial}")
        tampered = bytearray(data)
        tampered[len(data) // 2] ^= 0x01
        fleet.publish(bytes(tampered), ago=45)  # one bit flipped in the ciphertext
        assert_one_line_error(pull(fleet.host, server.url), "could not be opened", "keeps serial")
        fleet.publish(b"garbage, not an age file\n", ago=42)
        assert_one_line_error(pull(fleet.host, server.url), "not an age file", "keeps serial")
        fleet.publish(data, ago=40)
        (fleet.pub / ".cut").write_text("web1.age\n")  # a transfer cut short
        assert_one_line_error(pull(fleet.host, server.url), "cut short", "keeps serial")
        assert store_state(fleet.host) == before


def test_withheld_or_unreachable_source_leaves_the_host_as_it_is(fleet: Fleet) -> None:
    fleet.publish(fleet.bundle())
    with serve(fleet.pub) as server:
        serial = _pulled(fleet, server)
        before = store_state(fleet.host)
        (fleet.pub / "web1.age").unlink()
        result = pull(fleet.host, server.url)
        assert_one_line_error(result, "HTTP 404", f"keeps serial {serial}")
    down = f"http://127.0.0.1:{closed_port()}/"
    assert_one_line_error(pull(fleet.host, down), "cannot reach", "keeps serial")
    assert store_state(fleet.host) == before


def test_basic_authentication_from_the_url(fleet: Fleet) -> None:
    fleet.publish(fleet.bundle())
    (fleet.pub / ".auth").write_text("reader:s3cret pass")
    with serve(fleet.pub) as server:
        bare = pull(fleet.host, server.url)
        assert_one_line_error(bare, "refused access (HTTP 401)")
        url = server.url.replace("http://", "http://reader:s3cret%20pass@")
        done = cli("pull", "--root", fleet.host.root, env={"AUX_SECRETS_PULL_SOURCE": url})
        assert done.returncode == 0, done.stderr
        assert b"s3cret" not in done.stderr + done.stdout


def test_credentials_in_the_url_never_show(fleet: Fleet) -> None:
    url = f"http://reader:hunter2-secret@127.0.0.1:{closed_port()}/fleet/"
    result = pull(fleet.host, url)
    line = assert_one_line_error(result, "cannot reach", "http://127.0.0.1:")
    assert "hunter2" not in line


def test_pull_from_a_directory_and_a_damaged_cache(fleet: Fleet) -> None:
    fleet.publish(fleet.bundle())
    first = pull(fleet.host, str(fleet.pub))
    assert first.returncode == 0, first.stderr
    assert b"pulled serial" in first.stderr
    cache = fleet.host.root / "var/lib/aux-secrets/pull.json"
    for damaged in (b"", b"{", b'{"version": 9}', b"\xff" * 10):
        cache.write_bytes(damaged)
        again = pull(fleet.host, "file://" + str(fleet.pub))
        assert again.returncode == 0, again.stderr
        assert b"nothing newer" in again.stderr


def test_first_pull_needs_a_pinned_signer(fleet: Fleet) -> None:
    pin_signer(fleet.host, None)
    fleet.publish(fleet.bundle())
    result = pull(fleet.host, str(fleet.pub))
    assert_one_line_error(result, "no signer pinned", "no secrets from a bundle yet")
    assert not (fleet.host.root / "var/lib/aux-secrets/store.json").exists()
    trusted = pull(fleet.host, str(fleet.pub), "--trust-first-signer")
    assert trusted.returncode == 0, trusted.stderr


def test_missing_directory_and_bad_sources(fleet: Fleet, tmp_path: Path) -> None:
    assert_one_line_error(pull(fleet.host, str(tmp_path / "nowhere")), "is not a directory")
    assert_one_line_error(pull(fleet.host, str(fleet.pub)), "does not exist")
    assert_one_line_error(pull(fleet.host, "s3://bucket/x"), "neither http(s)://")
    assert_one_line_error(pull(fleet.host, "http:///x"), "has no host name")
    assert_one_line_error(pull(fleet.host, str(fleet.pub), "--timeout", "0"), "--timeout")
    shutil.rmtree(fleet.pub)
