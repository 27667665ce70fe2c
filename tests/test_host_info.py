"""host show, set and list (header, manifest, last bundle, reach); keyscan's options."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.helpers import assert_one_line_error, cli, require_program
from tests.provision_helpers import make_vault
from tests.sshd import Sshd, sshd

__all__ = ["sshd"]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when we return: nobody listens


def test_show_set_and_list(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    v = ["--vault", str(vault.root)]
    added = cli(
        "host",
        "add",
        "web1",
        "--ssh-host-key",
        sshd.host_pub,
        "--target",
        "root@127.0.0.1",
        "-o",
        f"Port={sshd.port}",
        "--manifest",
        "hosts/web1.json",
        *v,
    )
    assert added.returncode == 0, added.stderr
    shown = json.loads(cli("host", "show", "web1", "--json", "--reach", *v).stdout)
    assert shown["target"] == "root@127.0.0.1"
    assert shown["sshOptions"] == [f"Port={sshd.port}"]
    assert shown["manifest"] == "hosts/web1.json" and shown["manifestKind"] == "manifest"
    assert shown["lastBundle"] == {"serial": None, "at": None}
    assert shown["reachable"] == "yes"
    text = cli("host", "show", "web1", *v).stdout.decode()
    assert "last bundle:     never" in text and "target:          root@127.0.0.1" in text

    # set: change some settings, keep the key and everything else.
    closed = _closed_port()
    changed = cli("host", "set", "web1", "-o", f"Port={closed}", "--use-sudo", *v)
    assert changed.returncode == 0, changed.stderr
    assert b"updated host web1: ssh-options, use-sudo" in changed.stderr
    shown = json.loads(cli("host", "show", "web1", "--json", "--reach", *v).stdout)
    assert shown["sshOptions"] == [f"Port={closed}"] and shown["useSudo"] is True
    assert shown["recipient"] == sshd.host_pub and shown["manifest"] == "hosts/web1.json"
    assert shown["reachable"].startswith("no (")
    unset = cli("host", "set", "web1", "--unset", "manifest", "--flake", ".#web1", *v)
    assert unset.returncode == 0, unset.stderr
    shown = json.loads(cli("host", "show", "web1", "--json", *v).stdout)
    assert shown["manifest"] == ".#web1" and shown["manifestKind"] == "flake"
    assert "reachable" not in shown
    assert_one_line_error(cli("host", "set", "web1", *v), "nothing to change")
    assert_one_line_error(cli("host", "set", "web1", "--unset", "recipient", *v), "--unset")
    assert_one_line_error(
        cli("host", "set", "web1", "--unset", "target", "--target", "x@y", *v), "same setting"
    )
    assert_one_line_error(cli("host", "set", "nope", "--target", "x@y", *v), "nope")
    assert_one_line_error(cli("host", "set", "web1", "-o", "NoEquals", *v), "Name=value")

    # list: a header, one row per host, reachability on request.
    assert cli("host", "add", "db1", "--age", _age_recipient(tmp_path), *v).returncode == 0
    listed = cli("host", "list", "--reach", *v).stdout.decode().splitlines()
    assert listed[0].split() == ["HOST", "KEY", "TARGET", "MANIFEST", "LAST", "BUNDLE", "REACHABLE"]
    rows = {line.split()[0]: line for line in listed[1:]}
    assert set(rows) == {"db1", "web1"}
    assert rows["db1"].rstrip().endswith("n/a") and " never " in rows["db1"]
    assert ".#web1" in rows["web1"] and "no (" in rows["web1"]
    doc = json.loads(cli("host", "list", "--json", *v).stdout)
    assert sorted(doc) == ["db1", "web1"] and doc["db1"]["recipientKind"] == "age"


def _age_recipient(tmp_path: Path) -> str:
    import subprocess

    keygen = require_program("age-keygen", "age")
    key = tmp_path / "db1.agekey"
    subprocess.run([keygen, "-o", str(key)], check=True, capture_output=True)
    out = subprocess.run([keygen, "-y", str(key)], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def test_empty_list_says_so(tmp_path: Path) -> None:
    vault = make_vault(tmp_path)
    done = cli("host", "list", "--vault", vault.root)
    assert done.returncode == 0 and done.stdout == b""
    assert b"no hosts in the vault" in done.stderr


def test_keyscan_takes_the_options_of_host_add(tmp_path: Path, sshd: Sshd) -> None:
    require_program("ssh-keyscan", "openssh-client")
    vault = make_vault(tmp_path)
    v = ["--vault", str(vault.root)]
    done = cli(
        "host",
        "keyscan",
        "web1",
        "127.0.0.1",
        "-o",
        f"Port={sshd.port}",
        "-o",
        "ConnectTimeout=5",
        "--remote-command",
        "/run/current-system/sw/bin/aux-secrets",
        "--manifest",
        "hosts/web1.json",
        "--use-sudo",
        "--yes",
        *v,
    )
    assert done.returncode == 0, done.stderr
    assert b"ConnectTimeout=5 are stored for provisioning but not used for the scan" in done.stderr
    shown = json.loads(cli("host", "show", "web1", "--json", *v).stdout)
    assert shown["recipient"] == sshd.host_pub
    assert shown["sshOptions"] == [f"Port={sshd.port}", "ConnectTimeout=5"]
    assert shown["remoteCommand"] == "/run/current-system/sw/bin/aux-secrets"
    assert shown["manifest"] == "hosts/web1.json" and shown["useSudo"] is True
    both = cli(
        "host", "keyscan", "web2", "127.0.0.1", "-p", "22", "-o", f"Port={sshd.port}", "--yes", *v
    )
    assert_one_line_error(both, "give the port once")
    assert_one_line_error(
        cli("host", "keyscan", "web2", "127.0.0.1", "-o", "NoEquals", "--yes", *v),
        "Name=value",
    )


def test_help_has_examples() -> None:
    for sub in ("show", "set", "list", "keyscan"):
        done = cli("host", sub, "--help")
        assert done.returncode == 0 and b"Example" in done.stdout, sub
