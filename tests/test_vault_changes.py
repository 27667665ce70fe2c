"""Workflow 4, a vault change: store versions never go down on a host, a stale clone is
named, serials never dirty the tracked tree, revocation, trailing newlines, expiry.

Through the CLI, against a real sshd on 127.0.0.1 and real git.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.bundles import inner_payload
from tests.helpers import assert_one_line_error, cli, require_program
from tests.provision_helpers import Vault, add_host, make_host_root, make_vault, tree_bytes
from tests.sshd import Sshd, sshd

__all__ = ["sshd"]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Op",
    "GIT_AUTHOR_EMAIL": "op@example.invalid",
    "GIT_COMMITTER_NAME": "Op",
    "GIT_COMMITTER_EMAIL": "op@example.invalid",
    "GIT_CONFIG_GLOBAL": "/dev/null",
}


def _git(root: Path, *args: str) -> str:
    require_program("git", "git")
    done = subprocess.run(
        ["git", "-C", str(root), *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **GIT_ENV},
    )
    return done.stdout


def _store(
    vault: Vault, *args: str, value: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return cli("store", *args, *vault.args(), input=value, env=GIT_ENV)


TOKEN = {"api/token": {"source": {"store": "api/token"}, "restartUnits": ["api.service"]}}


def test_a_stale_vault_clone_cannot_take_a_host_back(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    _git(vault.root, "init", "-q", "-b", "main")
    assert _store(vault, "add", "api/token", value=b"tok-1").returncode == 0
    host = make_host_root(tmp_path, "web1", sshd.host_key, TOKEN)
    add_host(vault, host, sshd)
    _git(vault.root, "add", "-A")
    _git(vault.root, "commit", "-q", "-m", "hosts")
    # A second operator's clone, made now; then the first one sets a new value.
    clone = Vault(tmp_path / "clone", vault.password_file)
    _git(tmp_path, "clone", "-q", str(vault.root), str(clone.root))
    assert _store(vault, "set", "api/token", value=b"tok-2").returncode == 0
    first = cli("provision", "--host", "web1", *vault.args())
    assert first.returncode == 0, first.stderr
    assert host.installed("api/token") == b"tok-2"
    # Provisioning never dirties the tracked tree (serials live in hosts/.serials/).
    assert _git(vault.root, "status", "--porcelain") == ""

    # The clone is behind: its bundle (a newer serial) would bring tok-1 back. Refused.
    before = tree_bytes(host.root)
    stale = cli("provision", "--host", "web1", *clone.args())
    line = assert_one_line_error(stale, "store secret api/token back from version 2 to version 1")
    assert "git pull" in stale.stderr.decode() and line
    assert tree_bytes(host.root) == before
    # After a fetch the operator side also says the clone is behind its upstream.
    _git(clone.root, "fetch", "-q")
    warned = cli("provision", "--host", "web1", *clone.args())
    assert b"the vault is 1 commit behind origin/main" in warned.stderr
    # Going back on purpose is possible, and says nothing is wrong.
    back = cli("provision", "--host", "web1", "--allow-downgrade", *clone.args())
    assert back.returncode == 0, back.stderr
    assert host.installed("api/token") == b"tok-1"


def test_revoke_drops_every_old_value_and_names_the_hosts(tmp_path: Path, sshd: Sshd) -> None:
    age = require_program("age", "age")
    vault = make_vault(tmp_path)
    assert _store(vault, "add", "api/token", "--no-commit", value=b"tok-1").returncode == 0
    assert (
        _store(vault, "set", "api/token", "--no-commit", "--keep", "2", value=b"tok-2").returncode
        == 0
    )
    # This host asks for one retired value (a rollover grace); the other host asks for none.
    wants_old = {
        "api/token": {**TOKEN["api/token"], "source": {"store": "api/token", "retired": 1}}
    }
    host = make_host_root(tmp_path, "web1", sshd.host_key, wants_old)
    other = make_host_root(tmp_path, "web2", sshd.host_key, TOKEN)
    add_host(vault, host, sshd)
    add_host(vault, other, sshd)

    def slots(name: str, manifest: Path) -> list[tuple[str, str]]:
        bundle = tmp_path / f"{name}.age"
        made = cli("bundle", "--host", name, "--manifest", manifest, "-o", bundle, *vault.args())
        assert made.returncode == 0, made.stderr
        opened = subprocess.run(
            [age, "-d", "-i", str(sshd.host_key), str(bundle)], capture_output=True, check=True
        )
        doc = inner_payload(opened.stdout)["secrets"]["api/token"]["slots"]
        return [(s["role"], s["label"]) for s in doc]

    # The store version labels the current value; retired values only where asked for.
    assert slots("web1", host.manifest) == [("current", "v2"), ("retired", "v1")]
    assert slots("web2", other.manifest) == [("current", "v2")]

    where = cli("where-used", "--store", "api/token", "--json", "--vault", vault.root)
    assert where.returncode == 0, where.stderr
    assert json.loads(where.stdout)["hosts"] == {
        "web1": {"secrets": ["api/token"], "error": None},
        "web2": {"secrets": ["api/token"], "error": None},
    }

    same = _store(vault, "revoke", "api/token", "--no-commit", value=b"tok-1")
    assert_one_line_error(same, "one it held before")
    revoked = _store(vault, "revoke", "api/token", "--no-commit", value=b"tok-3")
    assert revoked.returncode == 0, revoked.stderr
    said = revoked.stderr.decode()
    assert "version 3 replaces version 2" in said
    assert "hosts that use it, to provision now: web1, web2" in said
    assert slots("web1", host.manifest) == [("current", "v3")]  # nothing old, even if asked
    assert b"tok-" not in revoked.stdout + revoked.stderr


def test_a_trailing_newline_is_named_when_stored_and_when_installed(
    tmp_path: Path, sshd: Sshd
) -> None:
    vault = make_vault(tmp_path)
    echoed = _store(vault, "add", "api/token", "--no-commit", value=b"tok-1\n")
    assert echoed.returncode == 0, echoed.stderr
    assert b"ends with a newline (as `echo` adds)" in echoed.stderr
    assert b"--strip-newline" in echoed.stderr
    clean = _store(vault, "add", "api/other", "--no-commit", value=b"tok-1")
    assert b"newline" not in clean.stderr
    env = {"api/token": {"source": {"store": "api/token"}, "format": "env", "envName": "TOKEN"}}
    host = make_host_root(tmp_path, "web1", sshd.host_key, env)
    add_host(vault, host, sshd)
    result = cli("provision", "--host", "web1", *vault.args())
    assert result.returncode != 0
    err = result.stderr.decode()
    assert "ends with a newline (as `echo` adds)" in err
    assert "use the 'value' format" not in err


def test_expiry_is_warned_at_provision_and_store_check_fails(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    soon = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    later = (datetime.now(UTC) + timedelta(days=300)).date().isoformat()
    assert (
        _store(vault, "add", "api/token", "--no-commit", "--expires", soon, value=b"t").returncode
        == 0
    )
    ok = cli("store", "check", "--vault", vault.root)
    assert_one_line_error(ok, "1 stored secret expired, expiring within 30 days")
    assert f"api/token: expires in 5 days ({soon})" in ok.stdout.decode()
    assert cli("store", "check", "--days", "3", "--vault", vault.root).returncode == 0
    doc = json.loads(cli("store", "check", "--json", "--vault", vault.root).stdout)
    assert doc["ok"] is False and doc["secrets"][0]["daysLeft"] == 5

    host = make_host_root(tmp_path, "web1", sshd.host_key, TOKEN)
    add_host(vault, host, sshd)
    result = cli("provision", "--host", "web1", *vault.args())
    assert result.returncode == 0, result.stderr
    assert f"host web1: api/token: store secret api/token expires on {soon}" in (
        result.stderr.decode()
    )
    verified = cli("verify", "--host", "web1", "--json", *vault.args())
    assert verified.returncode == 0, verified.stderr
    detail = json.loads(verified.stdout)["web1"]["api/token"]["detail"]
    assert "expires on" in detail

    renewed = _store(vault, "set", "api/token", "--no-commit", "--keep-value", "--expires", later)
    assert renewed.returncode == 0, renewed.stderr
    assert cli("store", "check", "--vault", vault.root).returncode == 0
