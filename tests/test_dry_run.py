"""`provision --dry-run`: what would change on each host and which units, delivering nothing."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import assert_one_line_error, cli
from tests.provision_helpers import add_host, make_host_root, make_vault, tree_bytes
from tests.sshd import Sshd, closed_port, sshd

__all__ = ["sshd"]


def test_dry_run_shows_changes_and_units_and_delivers_nothing(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    add_host(vault, host, sshd)
    before = tree_bytes(host.root)

    first = cli("provision", "--host", "web1", "--dry-run", *vault.args())
    assert first.returncode == 0, first.stderr
    out = first.stdout.decode()
    assert "2 of 2 secrets would change, 2 units; nothing delivered" in out
    assert "add        db/password" in out and "add        api/hmac" in out
    assert "restart    postgresql.service" in out and "reload     api.service" in out
    assert tree_bytes(host.root) == before  # no bundle, no install, no systemctl call
    assert host.calls() == []

    assert cli("provision", "--host", "web1", *vault.args()).returncode == 0
    calls = host.calls()
    again = cli("provision", "--host", "web1", "--dry-run", "--json", *vault.args())
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["noChange"] is True and doc["changes"] == [] and doc["restart"] == []

    # Next year the rotating secret moves on: only it, and only its unit.
    later = cli(
        "provision",
        "--host",
        "web1",
        "--dry-run",
        "--json",
        "--at",
        "2031-01-01T00:00:00Z",
        *vault.args(),
    )
    doc = json.loads(later.stdout)
    assert [(c["secret"], c["action"]) for c in doc["changes"]] == [("api/hmac", "update")]
    assert doc["restart"] == [] and doc["reload"] == ["api.service"]
    assert host.calls() == calls


def test_dry_run_all_hosts(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    done = make_host_root(tmp_path, "a1", sshd.host_key)
    fresh = make_host_root(tmp_path, "a2", sshd.host_key)
    dead = make_host_root(tmp_path, "a3", sshd.host_key)
    add_host(vault, done, sshd)
    add_host(vault, fresh, sshd)
    add_host(vault, dead, sshd, port=closed_port())
    assert cli("provision", "--host", "a1", *vault.args()).returncode == 0
    result = cli("provision", "--all", "--dry-run", "--json", *vault.args())
    assert result.returncode == 1  # a3 could not be asked
    doc = json.loads(result.stdout)
    assert doc["a1"]["noChange"] is True
    assert {c["action"] for c in doc["a2"]["changes"]} == {"add"}
    assert "error" in doc["a3"]
    assert not (fresh.root / "run").exists()
    table = cli("provision", "--all", "--dry-run", *vault.args()).stdout.decode()
    assert "dry run: nothing delivered" in table
    assert_one_line_error(
        cli("provision", "--all", "--dry-run", "--publish", tmp_path / "pub", *vault.args()),
        "--dry-run",
    )
