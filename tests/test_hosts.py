"""Hosts in the vault (hosts/NAME.toml), keyscan, and the ssh transport against a real sshd."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from aux_secrets.adapters import hosts as hostsmod
from aux_secrets.adapters import ssh
from aux_secrets.adapters.hosts import Host, HostDir, parse_recipient
from aux_secrets.errors import (
    ConflictError,
    ExternalError,
    FormatVersionError,
    InputError,
    NotFoundError,
    UsageError,
)
from tests.helpers import require_program
from tests.sshd import Sshd, closed_port, sshd

__all__ = ["sshd"]

ED_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
AGE_RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p"


def test_recipient_normalised_and_validated() -> None:
    assert parse_recipient(ED_PUB + " root@web1\n") == ED_PUB
    assert parse_recipient(AGE_RECIPIENT) == AGE_RECIPIENT
    for bad in (
        "ssh-ed25519 AAAA",  # truncated blob
        "ssh-ed25519 !!!notbase64",
        AGE_RECIPIENT[:-1] + "q",  # bad checksum
        "age1short",
        "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ",
        "",
        "hello",
    ):
        with pytest.raises(InputError):
            parse_recipient(bad)


def test_fingerprint_matches_ssh_keygen(tmp_path: Path) -> None:
    keygen = require_program("ssh-keygen", "openssh-client")
    key = tmp_path / "k"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    pub = key.with_suffix(".pub").read_text()
    printed = subprocess.run(
        [keygen, "-l", "-E", "sha256", "-f", str(key.with_suffix(".pub"))],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()[1]
    assert hostsmod.recipient_fingerprint(parse_recipient(pub)) == printed


def test_host_round_trip_and_serial(tmp_path: Path) -> None:
    hosts = HostDir(tmp_path / "hosts")
    host = Host(
        name="web1",
        recipient=ED_PUB,
        target="root@127.0.0.1",
        ssh_options=("Port=2222",),
        remote_root="/tmp/r",
        use_sudo=True,
    )
    hosts.add(host)
    assert hosts.names() == ["web1"]
    assert hosts.read("web1") == host
    with pytest.raises(ConflictError):
        hosts.add(host)
    first = hosts.next_serial("web1", 1000)
    assert first == 1000
    # The clock went backwards (or two runs in one second): the serial still grows.
    assert hosts.next_serial("web1", 500) == 1001
    assert hosts.next_serial("web1", 1001) == 1002
    # Kept out of the tracked host file (hosts/.serials/, ignored by git).
    assert hosts.read("web1").last_serial == 0
    assert hosts.last_serial("web1") == 1002
    assert hosts.serial_path("web1").read_text() == "1002\n"
    assert (tmp_path / "hosts/.serials/.gitignore").read_text().splitlines()[-1] == "*"
    hosts.remove("web1")
    assert hosts.names() == []
    with pytest.raises(NotFoundError):
        hosts.read("web1")


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x" * 64, "a..b"])
def test_bad_host_names(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError):
        HostDir(tmp_path).path(name)


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", InputError),  # no version
        (b"\xff\xfe garbage", InputError),
        (b'version = 1\nrecipient = "ssh-ed25519 AAAAC3Nza', InputError),  # truncated
        (b'version = 2\nrecipient = "' + AGE_RECIPIENT.encode() + b'"\n', FormatVersionError),
        (b'version = 1\nrecipient = "' + AGE_RECIPIENT.encode() + b'"\nfoo = 1\n', InputError),
        (
            b'version = 1\nrecipient = "' + AGE_RECIPIENT.encode() + b'"\nlast_serial = "1"\n',
            InputError,
        ),
        (b'version = 1\nrecipient = "' + AGE_RECIPIENT[:-2].encode() + b'zz"\n', InputError),
        (b'version = 1\nrecipient = "x"\nssh_options = ["-oProxyCommand=x"]\n', InputError),
    ],
)
def test_bad_host_files_are_refused(tmp_path: Path, content: bytes, error: type) -> None:
    hosts = HostDir(tmp_path)
    path = tmp_path / "web1.toml"
    path.write_bytes(content)
    with pytest.raises(error) as info:
        hosts.read("web1")
    assert "web1.toml" in str(info.value)
    assert path.read_bytes() == content


def test_keyscan_reads_the_real_host_key(sshd: Sshd) -> None:
    require_program("ssh-keyscan", "openssh-client")
    keys = hostsmod.keyscan("127.0.0.1", port=sshd.port)
    assert keys == [sshd.host_pub]


def test_keyscan_nothing_listening() -> None:
    require_program("ssh-keyscan", "openssh-client")
    with pytest.raises(NotFoundError):
        hostsmod.keyscan("127.0.0.1", port=closed_port(), timeout=3)


def test_ssh_argv_order_and_quoting() -> None:
    argv = ssh.ssh_argv(
        "root@h",
        ["aux-secrets", "activate", "--root", "/tmp/a b"],
        options=["Port=2"],
        env={"NIX_SSHOPTS": "-p 22 -o Compression=yes"},
    )
    assert argv[:3] == ["ssh", "-o", "Port=2"]
    assert argv[3:7] == ["-p", "22", "-o", "Compression=yes"]
    assert argv[-2:] == ["root@h", "aux-secrets activate --root '/tmp/a b'"]
    with pytest.raises(UsageError):
        ssh.ssh_argv("-oProxyCommand=x", ["true"])


def test_ssh_streams_stdin_and_honours_nix_sshopts(
    sshd: Sshd, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = os.urandom(200_000)
    result = ssh.run_remote(sshd.target, ["cat"], stdin=payload, options=sshd.ssh_options())
    assert result.returncode == 0
    assert result.stdout == payload
    # The port only through NIX_SSHOPTS, as nixos-rebuild users set it.
    options = [o for o in sshd.ssh_options() if not o.startswith("Port=")]
    monkeypatch.setenv("NIX_SSHOPTS", f"-p {sshd.port}")
    result = ssh.run_remote(sshd.target, ["sh", "-c", "exit 3"], options=options)
    assert result.returncode == 3


def test_ssh_unreachable_is_one_clear_error() -> None:
    with pytest.raises(ExternalError) as info:
        ssh.run_remote(
            "root@127.0.0.1", ["true"], options=[f"Port={closed_port()}", "ConnectTimeout=3"]
        )
    assert "root@127.0.0.1" in info.value.message
