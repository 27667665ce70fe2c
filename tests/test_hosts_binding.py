"""A hosts/NAME.toml is bound to its host name; hosts sharing a key are warned about."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from aux_secrets.adapters.hosts import Host, HostDir
from aux_secrets.errors import InputError
from tests.helpers import assert_one_line_error, cli
from tests.test_hosts import AGE_RECIPIENT, ED_PUB

PW = "correct horse"
FAST = ("--argon2-memory", "8", "--argon2-time", "1")


def test_a_file_copied_over_another_hosts_is_refused(tmp_path: Path) -> None:
    hosts = HostDir(tmp_path / "hosts")
    hosts.add(Host(name="web1", recipient=ED_PUB))
    hosts.add(Host(name="web2", recipient=AGE_RECIPIENT))
    shutil.copyfile(hosts.path("web2"), hosts.path("web1"))
    with pytest.raises(InputError, match="is the file of host 'web2', not 'web1'"):
        hosts.read("web1")
    with pytest.raises(InputError):
        hosts.next_serial("web1", 1_800_000_000)  # no bundle is made for it either
    assert hosts.read("web2").recipient == AGE_RECIPIENT


def test_a_file_from_before_binding_is_read_and_bound_on_its_next_write(tmp_path: Path) -> None:
    hosts = HostDir(tmp_path / "hosts")
    hosts.add(Host(name="web1", recipient=ED_PUB))
    path = hosts.path("web1")
    path.write_text("\n".join(x for x in path.read_text().splitlines() if not x.startswith("host")))
    legacy = hosts.read("web1")
    assert legacy.recipient == ED_PUB
    hosts.next_serial("web1", 1_800_000_000)  # serials live beside the tracked file
    assert "host =" not in path.read_text()
    hosts.add(legacy, replace_existing=True)  # as `host set` writes it
    assert 'host = "web1"' in path.read_text()


@pytest.fixture
def vault(tmp_path: Path) -> Path:
    pw = tmp_path / "pw"
    pw.write_text(PW + "\n")
    made = cli("init", tmp_path / "vault", "--password-file", pw, *FAST)
    assert made.returncode == 0, made.stderr
    return tmp_path / "vault"


def test_cli_names_the_copied_file(vault: Path) -> None:
    v = ("--vault", vault)
    assert cli("host", "add", "web1", "--ssh-host-key", ED_PUB, *v).returncode == 0
    assert cli("host", "add", "web2", "--age", AGE_RECIPIENT, *v).returncode == 0
    shutil.copyfile(vault / "hosts/web2.toml", vault / "hosts/web1.toml")
    assert_one_line_error(cli("host", "list", *v), "web1.toml", "not 'web1'")


def test_shared_recipient_is_warned(vault: Path) -> None:
    v = ("--vault", vault)
    assert cli("host", "add", "web1", "--ssh-host-key", ED_PUB, *v).returncode == 0
    second = cli("host", "add", "web2", "--ssh-host-key", ED_PUB + " other comment", *v)
    assert second.returncode == 0
    assert b"warning: host web2 has the same key as web1" in second.stderr
    third = cli("host", "add", "web3", "--age", AGE_RECIPIENT, *v)
    assert b"warning" not in third.stderr
