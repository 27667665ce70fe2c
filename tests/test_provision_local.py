"""`provision --local`: the host's activate and install run in this process, from one decode."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, cli, require_program
from tests.provision_helpers import PASSWORD, HostRoot, Vault, make_host_root, make_vault


def _host_key(directory: Path) -> tuple[Path, str]:
    keygen = require_program("ssh-keygen", "openssh-client")
    key = directory / "ssh_host_ed25519_key"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key, " ".join(key.with_suffix(".pub").read_text().split()[:2])


def _setup(tmp_path: Path) -> tuple[Vault, HostRoot]:
    vault = make_vault(tmp_path)
    key, pub = _host_key(tmp_path)
    host = make_host_root(tmp_path, "web1", key)
    added = cli(
        "host", "add", "web1", "--ssh-host-key", pub, "--manifest", host.manifest,
        "--vault", vault.root,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    return vault, host


def test_payload_is_decoded_once_and_no_host_process_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aux_secrets.adapters import localstore, ssh
    from aux_secrets.adapters.vault import Vault as VaultDir
    from aux_secrets.workflows import provision

    vault_dir, host = _setup(tmp_path)
    vault = VaultDir.load(vault_dir.root)
    scheme = vault.unlock(PASSWORD.strip())
    decodes: list[int] = []
    real_decode = localstore.decode_payload

    def counting(data: bytes) -> object:
        decodes.append(len(data))
        return real_decode(data)

    def no_process(*args: object, **kwargs: object) -> object:
        raise AssertionError("provision --local started a host process")

    def no_reload(self: object) -> object:
        raise AssertionError("install read back the store activate had just decoded")

    monkeypatch.setattr(localstore, "decode_payload", counting)
    monkeypatch.setattr(ssh, "run", no_process)
    monkeypatch.setattr(localstore.LocalStore, "load", no_reload)
    report = provision.provision_local(vault, scheme, "web1", host.manifest, host.root)
    assert len(decodes) == 1
    assert sorted(report.changed) == ["api/hmac", "db/password"]
    assert sorted(report.store_changed) == ["api/hmac", "db/password"]
    assert report.restarted == ("postgresql.service",)
    assert report.reloaded == ("api.service",)
    assert host.calls() == [
        "try-restart postgresql.service",
        "try-reload-or-restart api.service",
    ]


def test_local_rerun_through_the_cli_changes_nothing_and_restarts_nothing(tmp_path: Path) -> None:
    vault, host = _setup(tmp_path)
    argv = ["provision", "--host", "web1", "--local", "--root", host.root, "--json", *vault.args()]
    first = cli(*argv)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["where"] == "local" and report["generation"] == 1
    assert report["restarted"] == ["postgresql.service"]
    calls = host.calls()
    assert len(calls) == 2
    again = cli(*argv)
    assert again.returncode == 0, again.stderr
    rerun = json.loads(again.stdout)
    assert rerun["noChange"] and rerun["restarted"] == [] and rerun["reloaded"] == []
    assert rerun["serial"] > report["serial"]
    assert host.calls() == calls  # the recording systemctl was not asked again
    status = cli("status", "--root", host.root, "--json")
    active = json.loads(status.stdout)["active"]
    assert active["serial"] == rerun["serial"] and status.returncode == 0


def test_a_host_side_failure_is_one_line_naming_the_host(tmp_path: Path) -> None:
    vault, host = _setup(tmp_path)
    store = host.root / "var/lib/aux-secrets"
    store.parent.mkdir(parents=True)
    store.write_bytes(b"not a directory")
    result = cli("provision", "--host", "web1", "--local", "--root", host.root, *vault.args())
    assert_one_line_error(result, "host web1 (local): ", "var/lib/aux-secrets")
    assert store.read_bytes() == b"not a directory"
    assert not (host.root / "run/aux-secrets").exists()
    assert host.calls() == []


def test_a_unit_the_host_lacks_is_reported_not_restarted(tmp_path: Path) -> None:
    from tests.fake_systemd import fake_systemctl

    vault, host = _setup(tmp_path)
    doc = json.loads(host.manifest.read_bytes())
    doc["settings"]["systemctl"] = [str(fake_systemctl(tmp_path, known=["api.service"]))]
    host.manifest.write_text(json.dumps(doc))
    argv = ["provision", "--host", "web1", "--local", "--root", host.root, *vault.args()]
    result = cli(*argv, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["notFound"] == ["postgresql.service"]
    assert report["restarted"] == [] and report["reloaded"] == ["api.service"]
    assert b"postgresql.service is not on this host" in result.stderr
    assert any("postgresql.service" in w for w in report["warnings"])
    shown = cli(*argv)  # nothing changed: the same bundle again restarts nothing
    assert shown.returncode == 0 and b"no change" in shown.stdout
