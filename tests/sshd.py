"""A real OpenSSH server on 127.0.0.1 for the provisioning tests.

Its own host keys, config and client key live in a temp dir; root logs in with
the client key only. The remote side runs this checkout's ``aux-secrets`` (the
venv's script, by absolute path, as a real operator sets ``remote_command``)
with ``--root <tmp>``, so nothing touches the real system.

Use it by importing the fixture into a test module: ``from tests.sshd import sshd``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import require_program

# The venv's console script: what a host that has aux-secrets on its PATH runs.
REMOTE_AUX = str(Path(sys.executable).parent / "aux-secrets")


@dataclass(frozen=True)
class Sshd:
    directory: Path
    port: int
    host_key: Path  # the server's ssh-ed25519 private key (age identity for bundles)
    host_pub: str  # "ssh-ed25519 AAAA..."
    client_key: Path
    known_hosts: Path

    @property
    def target(self) -> str:
        return "root@127.0.0.1"

    def ssh_options(self) -> list[str]:
        """``-o`` options (without ``-o``) that reach this server and trust only its key."""
        return [
            f"Port={self.port}",
            f"IdentityFile={self.client_key}",
            "IdentitiesOnly=yes",
            f"UserKnownHostsFile={self.known_hosts}",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes",
            "ConnectTimeout=10",
            "LogLevel=ERROR",
        ]

    def ssh_option_args(self) -> list[str]:
        """The same as ``--ssh-option X`` pairs for the CLI."""
        out: list[str] = []
        for option in self.ssh_options():
            out += ["--ssh-option", option]
        return out


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A loopback port nothing listens on (for an unreachable host)."""
    return free_port()


def _keygen(path: Path) -> str:
    keygen = require_program("ssh-keygen", "openssh-client")
    subprocess.run(
        [keygen, "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return " ".join(path.with_suffix(".pub").read_text().split()[:2])


def start_sshd(directory: Path) -> tuple[Sshd, subprocess.Popen[bytes]]:
    sshd_bin = require_program("sshd", "openssh-server")
    require_program("ssh", "openssh-client")
    directory.mkdir(parents=True, exist_ok=True)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
    host_key = directory / "ssh_host_ed25519_key"
    host_pub = _keygen(host_key)
    client_key = directory / "client_ed25519"
    client_pub = _keygen(client_key)
    (directory / "authorized_keys").write_text(client_pub + "\n")
    port = free_port()
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub}\n")
    config = directory / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {directory / 'sshd.pid'}",
                f"AuthorizedKeysFile {directory / 'authorized_keys'}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "PermitUserEnvironment no",
                "MaxStartups 100:30:200",
                "MaxSessions 100",
                "Subsystem sftp internal-sftp",  # scp speaks SFTP since OpenSSH 9
                "LogLevel ERROR",
                "",
            ]
        )
    )
    proc = subprocess.Popen(
        [sshd_bin, "-D", "-f", str(config), "-p", str(port), "-E", str(directory / "sshd.log")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            log = (directory / "sshd.log").read_text(errors="replace")
            pytest.fail(f"sshd exited at start: {log}", pytrace=False)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("sshd did not start listening within 10 s", pytrace=False)
        time.sleep(0.05)
    server = Sshd(directory, port, host_key, host_pub, client_key, known_hosts)
    return server, proc


def stop_sshd(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    server, proc = start_sshd(tmp_path_factory.mktemp("sshd"))
    try:
        yield server
    finally:
        stop_sshd(proc)
