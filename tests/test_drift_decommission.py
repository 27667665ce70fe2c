"""Drift that sees what services read, unreachable is not drift, and decommissioning.

Through the CLI against a real sshd on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.helpers import assert_one_line_error, cli
from tests.provision_helpers import add_host, make_host_root, make_vault
from tests.sshd import Sshd, closed_port, sshd

__all__ = ["sshd"]


def test_verify_sees_an_installed_file_changed_on_the_host(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    add_host(vault, host, sshd)
    assert cli("provision", "--host", "web1", *vault.args()).returncode == 0
    assert cli("verify", "--host", "web1", *vault.args()).returncode == 0

    # Someone edits what the service reads; the local store is untouched.
    installed = host.root / "run/aux-secrets/db/password"
    os.chmod(installed, 0o600)
    installed.write_bytes(b"edited by hand")
    shown = cli("status", "--root", host.root)
    assert b"the installed secret db/password is not what was installed" in shown.stderr
    assert "INSTALLED FILE CHANGED" in shown.stdout.decode()
    drift = cli("verify", "--host", "web1", "--json", *vault.args())
    assert drift.returncode == 1
    verdicts = json.loads(drift.stdout)["web1"]
    assert verdicts["db/password"]["verdict"] == "changed"
    assert "install" in verdicts["db/password"]["detail"]
    assert verdicts["api/hmac"]["verdict"] == "ok"

    # A removed file is seen too; an install puts both back.
    (host.root / "run/aux-secrets/api/hmac").unlink()
    removed = json.loads(cli("verify", "--host", "web1", "--json", *vault.args()).stdout)
    assert removed["web1"]["api/hmac"]["verdict"] == "changed"
    assert cli("install", "--root", host.root).returncode == 0
    assert cli("verify", "--host", "web1", *vault.args()).returncode == 0


def test_an_unreachable_host_is_not_drift(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    good = make_host_root(tmp_path, "a1", sshd.host_key)
    add_host(vault, good, sshd)
    dead = make_host_root(tmp_path, "a2", sshd.host_key)
    add_host(vault, dead, sshd, port=closed_port())
    assert cli("provision", "--host", "a1", *vault.args()).returncode == 0

    result = cli("verify", "--all", *vault.args())
    assert result.returncode == 2
    row = next(line for line in result.stdout.decode().splitlines() if " a2 " in line)
    assert "UNREACHABLE" in row
    line = assert_one_line_error(result, "no drift on the hosts checked", "a2")
    assert "drift found" not in line
    doc = json.loads(cli("verify", "--all", "--json", *vault.args()).stdout)
    assert doc["a2"]["state"] == "unreachable"

    # Drift on a reachable host still wins: exit 1, and the unreachable one is counted.
    (good.root / "run/aux-secrets/db/password").unlink()
    both = cli("verify", "--all", *vault.args())
    assert both.returncode == 1
    assert_one_line_error(both, "drift found", "(a1)", "1 could not be checked")


def test_decommissioning_names_what_the_host_held_and_who_shares_it(
    tmp_path: Path, sshd: Sshd
) -> None:
    vault = make_vault(tmp_path)
    token = cli("store", "add", "ci/token", "--no-commit", *vault.args(), input=b"tok")
    assert token.returncode == 0, token.stderr
    shared = {
        "ci/token": {"source": {"store": "ci/token"}},
        "cluster/key": {"source": {"derive": {"realm": "cluster/key", "type": "raw"}}},
    }
    web1 = make_host_root(tmp_path, "web1", sshd.host_key, shared)
    web2 = make_host_root(tmp_path, "web2", sshd.host_key, shared)
    for host in (web1, web2):
        add_host(vault, host, sshd)

    used = cli("where-used", "--realm", "cluster/key", "--vault", vault.root)
    assert used.returncode == 0, used.stderr
    assert used.stdout.decode().split() == ["web1", "cluster/key", "web2", "cluster/key"]
    by_period = cli("where-used", "--realm", "api/hmac/2026-11", "--json", "--vault", vault.root)
    assert sorted(json.loads(by_period.stdout)["hosts"]) == ["web1", "web2"]

    report = cli("host", "decommission", "web1", "--json", "--vault", vault.root)
    assert report.returncode == 0, report.stderr
    doc = json.loads(report.stdout)["secrets"]
    assert doc["ci/token"]["sharedWith"] == ["web2"]
    assert "store revoke ci/token" in doc["ci/token"]["rotate"]
    assert doc["cluster/key"]["sharedWith"] == ["web2"]
    assert "cluster/key/v2" in doc["cluster/key"]["rotate"]
    assert doc["db/password"]["sharedWith"] == []  # realm db/web1 is web1's own
    assert "api/hmac/v2/{period}" in doc["api/hmac"]["rotate"]
    assert "ahead" in doc["api/hmac"]["rotate"]

    removed = cli("host", "rm", "web1", "--vault", vault.root)
    assert removed.returncode == 0, removed.stderr
    said = removed.stderr.decode()
    assert "host web1 held 4 secrets, 3 of them shared with other hosts" in said
    assert "removed host web1" in said
    assert not (vault.root / "hosts/web1.toml").exists()
    # A broken entry elsewhere is named, never silently left out of the answer.
    (vault.root / "hosts/web3.toml").write_text('version = 1\nrecipient = "garbage"\n')
    partial = cli("where-used", "--store", "ci/token", "--vault", vault.root)
    assert_one_line_error(partial, "could not be read")
    assert "web2" in partial.stdout.decode()
