"""`host add/list/rm/keyscan`, age1 recipients, `rebuild` argv, and provision_local in-process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.bundles import inner_payload
from tests.helpers import assert_one_line_error, cli, require_program
from tests.provision_helpers import PASSWORD, make_host_root, make_vault, manifest_doc
from tests.sshd import Sshd, sshd

__all__ = ["sshd"]


def test_host_add_list_rm(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    v = ["--vault", str(vault.root)]
    added = cli("host", "add", "web1", "--ssh-host-key", sshd.host_pub + " root@web1", *v)
    assert added.returncode == 0, added.stderr
    fingerprint = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(sshd.host_key) + ".pub"], capture_output=True, text=True
    ).stdout.split()[1]
    assert fingerprint in added.stderr.decode()
    assert (vault.root / "hosts/web1.toml").is_file()
    listed = json.loads(cli("host", "list", "--json", *v).stdout)
    assert list(listed) == ["web1"]
    assert {k: listed["web1"][k] for k in ("recipient", "fingerprint", "target", "lastSerial")} == {
        "recipient": sshd.host_pub,
        "fingerprint": fingerprint,
        "target": None,
        "lastSerial": 0,
    }
    assert_one_line_error(
        cli("host", "add", "web1", "--ssh-host-key", sshd.host_pub, *v), "already"
    )
    assert_one_line_error(cli("host", "add", "web2", *v), "--ssh-host-key")
    assert_one_line_error(cli("host", "add", "web2", "--ssh-host-key", "ssh-ed25519 AAAA", *v))
    assert_one_line_error(cli("host", "add", "../x", "--age", "age1x", *v), "../x")
    assert cli("host", "rm", "web1", *v).returncode == 0
    assert_one_line_error(cli("host", "rm", "web1", *v), "web1")
    assert cli("host", "list", *v).stdout == b""


def test_keyscan_shows_fingerprint_and_stores_after_yes(tmp_path: Path, sshd: Sshd) -> None:
    require_program("ssh-keyscan", "openssh-client")
    vault = make_vault(tmp_path)
    v = ["--vault", str(vault.root)]
    # Without a terminal and without --yes nothing is stored.
    refused = cli("host", "keyscan", "web1", "127.0.0.1", "--port", str(sshd.port), *v)
    assert_one_line_error(refused, "unconfirmed key")
    assert b"hint: pass --yes" in refused.stderr
    assert "SHA256:" in refused.stdout.decode()
    assert not (vault.root / "hosts/web1.toml").exists()
    done = cli("host", "keyscan", "web1", "127.0.0.1", "--port", str(sshd.port), "--yes", *v)
    assert done.returncode == 0, done.stderr
    listed = json.loads(cli("host", "list", "--json", *v).stdout)["web1"]
    assert listed["recipient"] == sshd.host_pub
    assert listed["target"] == "root@127.0.0.1"
    assert listed["fingerprint"] in done.stdout.decode()


def test_age_recipient_bundle_opens_with_age_identity(tmp_path: Path, sshd: Sshd) -> None:
    age = require_program("age", "age")
    keygen = require_program("age-keygen", "age")
    identity = tmp_path / "host.agekey"
    subprocess.run([keygen, "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(
        [keygen, "-y", str(identity)], check=True, capture_output=True, text=True
    ).stdout.strip()
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "box", sshd.host_key)
    assert cli("host", "add", "box", "--age", recipient, "--vault", vault.root).returncode == 0
    out = tmp_path / "box.age"
    made = cli("bundle", "--host", "box", "--manifest", host.manifest, "-o", out, *vault.args())
    assert made.returncode == 0, made.stderr
    opened = subprocess.run(
        [age, "-d", "-i", str(identity), str(out)], capture_output=True, check=True
    )
    assert inner_payload(opened.stdout)["host"] == "box"
    # The ssh host key is not this bundle's recipient: age refuses it.
    wrong = subprocess.run([age, "-d", "-i", str(sshd.host_key), str(out)], capture_output=True)
    assert wrong.returncode != 0


def _fake_nixos_rebuild(tmp_path: Path, system: Path) -> tuple[Path, Path]:
    """Records its argv; 'build' links ./result to a prepared system dir."""
    log = tmp_path / "nixos-rebuild.log"
    script = tmp_path / "nixos-rebuild"
    script.write_text(
        f'#!/bin/sh\necho "$@" >> {log}\nif [ "$1" = build ]; then ln -sfn {system} result; fi\n'
    )
    script.chmod(0o755)
    return script, log


def test_rebuild_builds_provisions_then_switches(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    # The built system carries the manifest the module generated.
    system = tmp_path / "system"
    (system / "etc/aux-secrets").mkdir(parents=True)
    (system / "etc/aux-secrets/manifest.json").write_bytes(host.manifest.read_bytes())
    from tests.sshd import REMOTE_AUX

    added = cli(
        "host",
        "add",
        "web1",
        "--ssh-host-key",
        sshd.host_pub,
        "--target",
        sshd.target,
        *sshd.ssh_option_args(),
        "--remote-command",
        REMOTE_AUX,
        "--remote-root",
        host.root,
        "--vault",
        vault.root,
    )
    assert added.returncode == 0, added.stderr
    fake, log = _fake_nixos_rebuild(tmp_path, system)
    work = tmp_path / "work"
    work.mkdir()
    result = cli(
        "rebuild",
        "switch",
        "--flake",
        ".#web1",
        "--target-host",
        sshd.target,
        "--nixos-rebuild",
        fake,
        *vault.args(),
        cwd=work,
    )
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [
        f"build --flake .#web1 --target-host {sshd.target}",
        f"switch --flake .#web1 --target-host {sshd.target}",
    ]
    # Provisioning happened between build and switch: the host's store has the bundle.
    status = cli("status", "--json", "--root", host.root)
    assert json.loads(status.stdout)["active"]["host"] == "web1"
    assert "provisioned web1 (root@127.0.0.1)" in result.stderr.decode()


def test_rebuild_stops_before_switch_when_build_fails(tmp_path: Path) -> None:
    vault = make_vault(tmp_path)
    log = tmp_path / "calls"
    fake = tmp_path / "nixos-rebuild"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexit 1\n')
    fake.chmod(0o755)
    result = cli("rebuild", "--nixos-rebuild", fake, *vault.args(), cwd=tmp_path)
    assert_one_line_error(result, "build failed")
    assert log.read_text().splitlines() == ["build"]
    refused = cli("rebuild", "build", "--nixos-rebuild", fake, *vault.args(), cwd=tmp_path)
    assert_one_line_error(refused, "build")


def test_provision_local_function_for_the_demo(tmp_path: Path, sshd: Sshd) -> None:
    from aux_secrets.adapters.vault import Vault
    from aux_secrets.workflows import provision

    vault_dir = make_vault(tmp_path)
    host = make_host_root(tmp_path, "demo", sshd.host_key)
    assert (
        cli("host", "add", "demo", "--ssh-host-key", sshd.host_pub, "--vault", vault_dir.root)
    ).returncode == 0
    vault = Vault.load(vault_dir.root)
    scheme = vault.unlock(PASSWORD.strip())
    report = provision.provision_local(vault, scheme, "demo", host.manifest, host.root)
    assert report.where == "local"
    assert sorted(report.changed) == ["api/hmac", "db/password"]
    assert report.restarted == ("postgresql.service",)
    again = provision.provision_local(vault, scheme, "demo", host.manifest, host.root)
    assert again.no_change and again.serial > report.serial
    from aux_secrets.workflows import verify

    drifts = verify.verify_local(vault, scheme, "demo", host.manifest, host.root)
    assert [(d.secret, d.verdict) for d in drifts] == [("api/hmac", "ok"), ("db/password", "ok")]
    assert manifest_doc  # shared helper stays importable


def test_provision_flake_reads_manifest_through_nix_eval(tmp_path: Path, sshd: Sshd) -> None:
    import os

    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    assert (
        cli("host", "add", "web1", "--ssh-host-key", sshd.host_pub, "--vault", vault.root)
    ).returncode == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "nix.log"
    (bin_dir / "nix").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {log}\ncat {host.manifest}\n')
    (bin_dir / "nix").chmod(0o755)
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = cli(
        "provision",
        "--host",
        "web1",
        "--flake",
        ".#web1",
        "--local",
        "--root",
        host.root,
        *vault.args(),
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines()[-3:] == [
        "eval",
        "--json",
        '.#nixosConfigurations."web1".config.aux.manifest',
    ]
    assert host.installed("db/password")
    # nix failing is one clear line naming the flake.
    (bin_dir / "nix").write_text("#!/bin/sh\necho 'error: cannot fetch nixpkgs' >&2\nexit 1\n")
    failed = cli(
        "provision",
        "--host",
        "web1",
        "--flake",
        ".#web1",
        "--local",
        "--root",
        host.root,
        *vault.args(),
        env=env,
    )
    assert_one_line_error(failed, ".#web1", "cannot fetch nixpkgs")


def test_target_that_reads_as_an_ssh_option_is_refused_at_add(tmp_path: Path) -> None:
    vault = make_vault(tmp_path)
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAEGVKQKC44bgmrcHCVH2rHxU+La4OImuQ8LRr03CAlA"
    for bad in ("-oProxyCommand=touch /tmp/pwned", "root@web1 -v"):
        result = cli(
            "host", "add", "web1", "--ssh-host-key", key, "--target", bad, "--vault", vault.root
        )
        assert_one_line_error(result, "not an ssh destination")
        assert not (vault.root / "hosts" / "web1.toml").exists()
    ok = cli(
        "host",
        "add",
        "web1",
        "--ssh-host-key",
        key,
        "--target",
        "root@10.0.0.5",
        "--vault",
        vault.root,
    )
    assert ok.returncode == 0, ok.stderr


def test_ssh_ed25519_without_key_data_is_named() -> None:
    from aux_secrets.adapters.hosts import parse_recipient
    from aux_secrets.errors import InputError

    with pytest.raises(InputError, match="no key data"):
        parse_recipient("ssh-ed25519")
