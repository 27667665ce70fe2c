"""Provisioning end to end against a real sshd on 127.0.0.1, into temp roots."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.bundles import inner_payload
from tests.helpers import assert_one_line_error, cli, require_program
from tests.provision_helpers import (
    HostRoot,
    add_host,
    make_host_root,
    make_vault,
    tree_bytes,
)
from tests.sshd import Sshd, closed_port, sshd

__all__ = ["sshd"]


def _provision(vault_args: list[str], *args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return cli("provision", *args, *vault_args)


def _derive(vault_args: list[str], realm: str, *args: str) -> bytes:
    result = cli("derive", realm, *args, *vault_args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_provision_end_to_end_over_ssh(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    add_host(vault, host, sshd)

    result = _provision(vault.args(), "--host", "web1", "--manifest", host.manifest)
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert "web1 (root@127.0.0.1): bundle serial" in out
    assert "restarted  postgresql.service" in out
    assert "reloaded   api.service" in out
    # What the host installed is what the vault derives.
    expected = _derive(vault.args(), "db/web1", "--charset", "alnum")
    assert host.installed("db/password") == expected
    assert len(host.installed("api/hmac")) == 64
    assert host.calls() == ["try-restart postgresql.service", "try-reload-or-restart api.service"]
    # No value on any command line: the sshd log and our stdout never hold it.
    assert expected not in result.stdout + result.stderr

    # A rerun: new, larger serial; the host changes nothing and restarts nothing.
    serial_1 = int(out.split("bundle serial ")[1].split(",")[0])
    again = _provision(vault.args(), "--host", "web1", "--manifest", host.manifest, "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["serial"] > serial_1
    assert report["noChange"] is True
    assert report["restarted"] == []
    assert host.calls() == ["try-restart postgresql.service", "try-reload-or-restart api.service"]


def test_bundle_is_a_standard_age_file(tmp_path: Path, sshd: Sshd) -> None:
    age = require_program("age", "age")
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    add_host(vault, host, sshd)
    bundle = tmp_path / "web1.age"
    result = cli(
        "bundle", "--host", "web1", "--manifest", host.manifest, "-o", bundle, *vault.args()
    )
    assert result.returncode == 0, result.stderr
    assert bundle.read_bytes().startswith(b"age-encryption.org/v1\n")
    opened = subprocess.run(
        [age, "-d", "-i", str(sshd.host_key), str(bundle)], capture_output=True, check=True
    )
    payload = inner_payload(opened.stdout)
    assert payload["format"] == "aux-secrets-bundle"
    assert payload["host"] == "web1"
    assert sorted(payload["secrets"]) == ["api/hmac", "db/password"]
    roles = [s["role"] for s in payload["secrets"]["api/hmac"]["slots"]]
    assert roles == ["current", "retired", "ahead"]
    # A host's bundle for another manifest's host is refused before anything is made.
    other = make_host_root(tmp_path, "web2", sshd.host_key)
    refused = cli(
        "bundle",
        "--host",
        "web1",
        "--manifest",
        other.manifest,
        "-o",
        tmp_path / "x",
        *vault.args(),
    )
    assert_one_line_error(refused, "web2")
    assert not (tmp_path / "x").exists()


def _bundle(vault_args: list[str], host: str, manifest: Path, out: Path) -> Path:
    result = cli("bundle", "--host", host, "--manifest", manifest, "-o", out, *vault_args)
    assert result.returncode == 0, result.stderr
    return out


def _activate_over_ssh(
    server: Sshd, host: HostRoot, bundle: bytes, *extra: str
) -> subprocess.CompletedProcess[bytes]:
    from tests.sshd import REMOTE_AUX

    argv = ["ssh"]
    for option in server.ssh_options():
        argv += ["-o", option]
    argv += [
        server.target,
        " ".join([REMOTE_AUX, "activate", "--bundle", "-", "--root", str(host.root), *extra]),
    ]
    return subprocess.run(argv, input=bundle, capture_output=True, check=False, timeout=60)


def test_activate_refuses_tampered_foreign_and_replayed_bundles(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    add_host(vault, host, sshd)
    other = make_host_root(tmp_path, "web2", sshd.host_key)
    add_host(vault, other, sshd)
    older = _bundle(vault.args(), "web1", host.manifest, tmp_path / "older.age")
    newer = _bundle(vault.args(), "web1", host.manifest, tmp_path / "newer.age")
    foreign = _bundle(vault.args(), "web2", other.manifest, tmp_path / "web2.age")

    done = _activate_over_ssh(sshd, host, newer.read_bytes())
    assert done.returncode == 0, done.stderr
    before = tree_bytes(host.root)

    tampered = bytearray(newer.read_bytes())
    tampered[-20] ^= 0x01
    for data in (bytes(tampered), older.read_bytes(), foreign.read_bytes(), b"", b"garbage"):
        refused = _activate_over_ssh(sshd, host, data)
        assert refused.returncode != 0
        assert b"aux-secrets: error: " in refused.stderr
        assert b"Traceback" not in refused.stderr
        assert tree_bytes(host.root) == before


def test_fleet_one_unreachable_host_never_stops_the_others(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    good = [make_host_root(tmp_path, name, sshd.host_key) for name in ("a1", "a2")]
    for host in good:
        add_host(vault, host, sshd)
    dead = make_host_root(tmp_path, "a3", sshd.host_key)
    add_host(vault, dead, sshd, port=closed_port())

    result = _provision(vault.args(), "--all", "-j", "3")
    assert result.returncode == 1
    out = result.stdout.decode()
    assert "provisioned 2 of 3 hosts" in out
    row = next(line for line in out.splitlines() if " a3 " in line)
    assert "FAILED" in row
    assert "a3" in result.stderr.decode().splitlines()[-1]
    assert "Connection refused" in out or "connect" in out.lower()
    for host in good:
        assert host.installed("db/password")
    assert not (dead.root / "run").exists()

    # A broken host file is that host's failure too; the rerun changes nothing elsewhere.
    (vault.root / "hosts/a0.toml").write_bytes(b"version = 1\nrecipient = 'garbage'\n")
    json_run = _provision(vault.args(), "--all", "--json")
    assert json_run.returncode == 1
    doc = json.loads(json_run.stdout)
    assert doc["a1"]["noChange"] is True and doc["a2"]["noChange"] is True
    assert "ssh to root@127.0.0.1 failed" in doc["a3"]["error"]
    assert "a0.toml" in doc["a0"]["error"]


def test_verify_detects_a_secret_changed_behind_the_vaults_back(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    add_host(vault, host, sshd)
    assert _provision(vault.args(), "--host", "web1").returncode == 0

    ok = cli("verify", "--host", "web1", *vault.args())
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.decode().splitlines() == [
        "ok         web1:api/hmac",
        "ok         web1:db/password",
    ]

    # Someone with another vault delivers their own values to the host.
    rogue = make_vault(tmp_path, "rogue")
    add_host(rogue, host, sshd)
    # Its serial must beat the active one, so it is made after ours.
    rogue_bundle = _bundle(rogue.args(), "web1", host.manifest, tmp_path / "rogue.age")
    # Signed by another vault: refused, the host trusts the signer of its first bundle...
    refused = _activate_over_ssh(sshd, host, rogue_bundle.read_bytes())
    assert_one_line_error(refused, "but this host trusts")
    # ...until root on the host says otherwise, behind the vault's back.
    forced = _activate_over_ssh(sshd, host, rogue_bundle.read_bytes(), "--trust-new-signer")
    assert forced.returncode == 0, forced.stderr

    drift = cli("verify", "--host", "web1", "--json", *vault.args())
    assert drift.returncode == 1
    verdicts = json.loads(drift.stdout)["web1"]
    assert {k: v["verdict"] for k, v in verdicts.items()} == {
        "api/hmac": "stale",
        "db/password": "stale",
    }
    assert_one_line_error(drift, "drift")


def test_verify_reports_missing_and_unexpected(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    add_host(vault, host, sshd)
    assert _provision(vault.args(), "--host", "web1").returncode == 0
    # The vault's view of the host now asks for one more secret and one fewer.
    wanted = json.loads(host.manifest.read_text())
    del wanted["secrets"]["api/hmac"]
    wanted["secrets"]["new/token"] = {"source": {"derive": {"realm": "new/token"}}}
    view = tmp_path / "view.json"
    view.write_text(json.dumps(wanted))
    result = cli("verify", "--host", "web1", "--manifest", view, "--json", *vault.args())
    assert result.returncode == 1
    verdicts = {k: v["verdict"] for k, v in json.loads(result.stdout)["web1"].items()}
    assert verdicts == {"api/hmac": "unexpected", "db/password": "ok", "new/token": "missing"}


def test_provision_local_into_a_temp_root(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    add_host(vault, host, sshd)
    result = _provision(vault.args(), "--host", "web1", "--local", "--root", host.root, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["where"] == "local"
    assert sorted(report["changed"]) == ["api/hmac", "db/password"]
    assert host.installed("db/password") == _derive(vault.args(), "db/web1", "--charset", "alnum")


def test_unknown_host_and_missing_options(tmp_path: Path) -> None:
    vault = make_vault(tmp_path)
    assert_one_line_error(cli("provision", "--host", "nope", *vault.args()), "nope")
    assert_one_line_error(cli("provision", *vault.args()), "--host")
    assert_one_line_error(cli("provision", "--all", *vault.args()), "no hosts")
    assert_one_line_error(cli("verify", "--host", "x", "--all", *vault.args()), "--all")


def test_stored_token_and_its_retired_value_reach_the_host(tmp_path: Path, sshd: Sshd) -> None:
    age = require_program("age", "age")
    vault = make_vault(tmp_path)
    for command, value in (("add", b"token-one"), ("set", b"token-two")):
        stored = cli("store", command, "github/token", "--no-commit", *vault.args(), input=value)
        assert stored.returncode == 0, stored.stderr
    # The retired value is delivered because this manifest asks for one (the default: none).
    source = {"store": "github/token", "retired": 1}
    extra = {"github/token": {"source": source, "restartUnits": ["ci.service"]}}
    host = make_host_root(tmp_path, "web1", sshd.host_key, extra)
    add_host(vault, host, sshd)
    result = _provision(vault.args(), "--host", "web1")
    assert result.returncode == 0, result.stderr
    assert host.installed("github/token") == b"token-two"
    assert any(call.startswith("try-restart") and "ci.service" in call for call in host.calls())
    assert b"token-" not in result.stdout + result.stderr
    bundle = _bundle(vault.args(), "web1", host.manifest, tmp_path / "b.age")
    opened = subprocess.run(
        [age, "-d", "-i", str(sshd.host_key), str(bundle)], capture_output=True, check=True
    )
    slots = inner_payload(opened.stdout)["secrets"]["github/token"]["slots"]
    assert [s["role"] for s in slots] == ["current", "retired"]
    assert all(s["label"] for s in slots)
