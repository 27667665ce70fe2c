"""`provision`, `provision --all`, `verify` and `rebuild` over each host's transport.

Real programs throughout: scp and ssh to the loopback sshd, /bin/sh, a plain
directory, and Python's http.server for publish-and-pull.
"""

from __future__ import annotations

import json
import shlex
import stat
import subprocess
from pathlib import Path

import tomli_w

from tests.helpers import assert_one_line_error, cli
from tests.httpd import serve
from tests.provision_helpers import HostRoot, Vault, add_host, make_host_root, make_vault
from tests.sshd import REMOTE_AUX, Sshd, sshd

__all__ = ["sshd"]


def set_transport(vault: Vault, host: str | None, table: dict[str, object]) -> None:
    """Append a [transport] table to a host file, or to vault.toml with ``host=None``."""
    path = vault.root / ("vault.toml" if host is None else f"hosts/{host}.toml")
    with path.open("a") as handle:
        handle.write("\n" + tomli_w.dumps({"transport": table}))


def provision(vault: Vault, *args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return cli("provision", *args, *vault.args())


def ssh_words(server: Sshd) -> list[str]:
    words = ["ssh"]
    for option in server.ssh_options():
        words += ["-o", option]
    return words


def activate_dropped(host: HostRoot, bundle: Path) -> None:
    """What the host's aux-secrets-incoming.path unit runs when a bundle appears."""
    done = cli("activate", "--bundle", bundle, "--root", host.root, "--json")
    assert done.returncode == 0, done.stderr
    installed = cli("install", "--root", host.root)
    assert installed.returncode == 0, installed.stderr


def test_copy_transport_over_scp_then_the_host_takes_it_in(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    add_host(vault, host, sshd)
    incoming = host.root / "var/lib/aux-secrets-incoming"
    incoming.mkdir(parents=True)
    set_transport(
        vault, "web1", {"kind": "copy", "copy": [{"destination": f"{{target}}:{incoming}/"}]}
    )

    result = provision(vault, "--host", "web1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["delivered"] is True
    assert report["where"] == f"root@127.0.0.1:{incoming}/"
    assert (incoming / "web1.age").read_bytes().startswith(b"age-encryption.org/v1\n")
    assert not (host.root / "run/aux-secrets").exists()  # nothing activated by provision
    activate_dropped(host, incoming / "web1.age")
    derived = cli("derive", "db/web1", "--charset", "alnum", *vault.args()).stdout
    assert host.installed("db/password") == derived
    assert derived not in result.stdout + result.stderr
    text = provision(vault, "--host", "web1")
    assert b"delivered to root@127.0.0.1:" in text.stdout, text.stderr


def test_command_transport_that_runs_the_host_side_reports_like_ssh(
    tmp_path: Path, sshd: Sshd
) -> None:
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    add_host(vault, host, sshd)
    remote = shlex.join(
        [REMOTE_AUX, "activate", "--bundle", "-", "--json", "--root", str(host.root)]
    )
    remote += " && " + shlex.join([REMOTE_AUX, "install", "--json", "--root", str(host.root)])
    set_transport(
        vault,
        "web1",
        {
            "kind": "command",
            "command": [*ssh_words(sshd), "{target}", remote],
            "status": [
                *ssh_words(sshd),
                "{target}",
                REMOTE_AUX,
                "status",
                "--json",
                "--root",
                str(host.root),
            ],
        },
    )
    result = provision(vault, "--host", "web1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["delivered"] is False
    assert report["where"] == "command ssh"
    assert report["restarted"] == ["postgresql.service"]
    assert host.calls() == ["try-restart postgresql.service", "try-reload-or-restart api.service"]

    checked = cli("verify", "--host", "web1", *vault.args())
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.decode().count("ok ") == 2


def test_provision_all_with_a_vault_script_and_one_host_on_ssh(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    hosts = [make_host_root(tmp_path, name, sshd.host_key) for name in ("web1", "web2", "db1")]
    for host in hosts:
        add_host(vault, host, sshd)
    drop = tmp_path / "drop"
    drop.mkdir()
    set_transport(vault, None, {"kind": "command", "script": f'cat > "{drop}/$1.age"'})
    set_transport(vault, "db1", {"kind": "ssh"})

    result = provision(vault, "--all", "-j", "2", "--json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["web1"]["delivered"], doc["web2"]["delivered"]) == (True, True)
    assert doc["db1"]["delivered"] is False and doc["db1"]["restarted"] == ["postgresql.service"]
    assert sorted(p.name for p in drop.iterdir()) == ["web1.age", "web2.age"]
    activate_dropped(hosts[1], drop / "web2.age")
    # verify cannot ask a drop-only host; it says so in one line and checks the others.
    checked = cli("verify", "--all", "--json", *vault.args())
    assert checked.returncode == 2  # not drift: hosts that could not be checked
    assert b"no drift on the hosts checked, but 2 could not be checked" in checked.stderr
    verdicts = json.loads(checked.stdout)
    assert "cannot ask the host for its status" in verdicts["web1"]["error"]
    assert {v["verdict"] for v in verdicts["db1"].values()} == {"ok"}
    # --target-host means ssh whatever the vault says.
    direct = provision(vault, "--host", "web1", "--target-host", sshd.target, "--json")
    assert direct.returncode == 0, direct.stderr
    assert json.loads(direct.stdout)["delivered"] is False


def test_a_failing_transport_fails_its_host_only(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    for name in ("web1", "web2"):
        add_host(vault, make_host_root(tmp_path, name, sshd.host_key), sshd)
    drop = tmp_path / "drop"
    drop.mkdir()
    set_transport(vault, None, {"kind": "copy", "copy": [{"destination": f"{drop}/"}]})
    set_transport(
        vault, "web2", {"kind": "command", "script": "echo 'no route to web2' >&2; exit 3"}
    )
    one = provision(vault, "--host", "web2")
    assert_one_line_error(one, "host web2 (command (script)): no route to web2")
    fleet = provision(vault, "--all")
    assert fleet.returncode == 1
    assert b"1 of 2 hosts failed: web2" in fleet.stderr
    assert (drop / "web1.age").exists()


def test_a_bad_vault_transport_is_one_line(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    add_host(vault, make_host_root(tmp_path, "web1", sshd.host_key), sshd)
    set_transport(vault, None, {"kind": "command", "command": ["cp", "{secret}", "/x"]})
    assert_one_line_error(provision(vault, "--host", "web1"), "unknown placeholder {secret}")


def test_publish_all_then_every_host_pulls_over_http(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    hosts = [make_host_root(tmp_path, name, sshd.host_key) for name in ("web1", "web2")]
    for host in hosts:
        add_host(vault, host, sshd)
    pub = tmp_path / "pub"
    result = provision(vault, "--all", "--publish", pub, "--json")
    assert result.returncode == 0, result.stderr
    assert {d["where"] for d in json.loads(result.stdout).values()} == {
        str(pub / "web1.age"),
        str(pub / "web2.age"),
    }
    assert stat.S_IMODE(pub.stat().st_mode) == 0o755  # a web server's user reads it
    assert stat.S_IMODE((pub / "web1.age").stat().st_mode) == 0o644
    index = json.loads((pub / "index.json").read_text())
    assert sorted(index["hosts"]) == ["web1", "web2"]
    with serve(pub) as server:
        for host in hosts:
            pulled = cli("pull", server.url, "--root", host.root, "--trust-first-signer")
            assert pulled.returncode == 0, pulled.stderr
            assert host.installed("db/password")
    # A publish transport in vault.toml does the same without --publish.
    set_transport(vault, None, {"kind": "publish", "directory": "public"})
    again = provision(vault, "--host", "web1")
    assert again.returncode == 0, again.stderr
    assert (vault.root / "public/web1.age").exists()
    assert_one_line_error(
        provision(vault, "--host", "web1", "--publish", pub, "--local"), "--publish writes"
    )


def _fake_nixos_rebuild(tmp_path: Path, system: Path) -> tuple[Path, Path]:
    log = tmp_path / "nixos-rebuild.log"
    script = tmp_path / "nixos-rebuild"
    script.write_text(
        f'#!/bin/sh\necho "$@" >> {log}\nif [ "$1" = build ]; then ln -sfn {system} result; fi\n'
    )
    script.chmod(0o755)
    return script, log


def test_rebuild_delivers_over_the_copy_transport_with_nixos_rebuild_flags(
    tmp_path: Path, sshd: Sshd
) -> None:
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    add_host(vault, host, sshd)
    system = tmp_path / "system"
    (system / "etc/aux-secrets").mkdir(parents=True)
    (system / "etc/aux-secrets/manifest.json").write_bytes(host.manifest.read_bytes())
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    # {target} is nixos-rebuild's --target-host when given.
    set_transport(
        vault, "web1", {"kind": "copy", "copy": [{"destination": f"{{target}}:{incoming}/"}]}
    )
    fake, log = _fake_nixos_rebuild(tmp_path, system)
    work = tmp_path / "work"
    work.mkdir()
    flags = ["--flake", ".#web1", "--target-host", "root@localhost", "--build-host", "b@builder"]
    result = cli(
        "rebuild",
        "switch",
        *flags,
        "--use-remote-sudo",
        "--nixos-rebuild",
        fake,
        *vault.args(),
        cwd=work,
    )
    assert_one_line_error(result, "delivery to web1 failed", "root@localhost")
    assert log.read_text().splitlines() == [" ".join(["build", *flags, "--use-remote-sudo"])]
    flags[3] = sshd.target
    result = cli(
        "rebuild",
        "switch",
        *flags,
        "--use-remote-sudo",
        "--nixos-rebuild",
        fake,
        *vault.args(),
        cwd=work,
    )
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines()[-2:] == [
        " ".join(["build", *flags, "--use-remote-sudo"]),
        " ".join(["switch", *flags, "--use-remote-sudo"]),
    ]
    assert "delivered web1's bundle serial" in result.stderr.decode()
    activate_dropped(host, incoming / "web1.age")
