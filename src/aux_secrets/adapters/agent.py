"""The client side of the unlock agent (docs/spec/agent.md).

The agent is a per-user process that holds unlocked vaults for a while. A command asks
it for key-stream bytes of (realm, purpose); the seed never leaves the agent. This
module finds the agent's socket, checks that the process behind it is ours
(SO_PEERCRED), starts an agent on demand, and wraps a held vault as a
:class:`~aux_secrets.core.keystream.Scheme`.
"""

from __future__ import annotations

import hashlib
import os
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aux_secrets.core import agent_wire as wire
from aux_secrets.errors import (
    AuxError,
    ExternalError,
    InputError,
    PolicyError,
    WrongPasswordError,
)

if TYPE_CHECKING:
    from aux_secrets.adapters.vault import Vault

ENV_AGENT = "AUX_SECRETS_AGENT"  # "off" (or 0/no/false): never use or start an agent
ENV_AGENT_DIR = "AUX_SECRETS_AGENT_DIR"  # the socket's directory (tests, several agents)
ENV_AGENT_TIMEOUT = "AUX_SECRETS_AGENT_TIMEOUT"  # seconds an unlock is held
DEFAULT_TIMEOUT = 900
SOCKET_NAME = "agent.sock"
START_WAIT = 10.0
READ_AHEAD = 4096
_SO_PEERCRED_FORMAT = "3i"  # struct ucred: pid, uid, gid


def enabled() -> bool:
    return os.environ.get(ENV_AGENT, "").strip().lower() not in ("off", "0", "no", "false")


def default_timeout() -> int:
    text = os.environ.get(ENV_AGENT_TIMEOUT)
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = int(text)
    except ValueError:
        raise InputError(f"{ENV_AGENT_TIMEOUT} must be a whole number of seconds") from None
    return check_timeout(value)


def check_timeout(seconds: int) -> int:
    if not 1 <= seconds <= 7 * 24 * 3600:
        raise InputError("the agent timeout must be 1 second to 7 days")
    return seconds


def agent_dir() -> Path:
    """$AUX_SECRETS_AGENT_DIR, else $XDG_RUNTIME_DIR/aux-secrets, else /tmp/aux-secrets-UID."""
    explicit = os.environ.get(ENV_AGENT_DIR)
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and Path(runtime).is_dir():
        return Path(runtime) / "aux-secrets"
    return Path(f"/tmp/aux-secrets-{os.getuid()}")


def socket_path() -> Path:
    return agent_dir() / SOCKET_NAME


def check_private_dir(directory: Path) -> None:
    """The socket's directory is a real directory, ours, and closed to everyone else."""
    info = os.lstat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise PolicyError(f"agent directory {directory} is not a directory")
    if info.st_uid != os.getuid():
        raise PolicyError(f"agent directory {directory} belongs to uid {info.st_uid}, not us")
    if info.st_mode & 0o077:
        raise PolicyError(
            f"agent directory {directory} is open to others (mode {info.st_mode & 0o777:o})",
            hint=f"chmod 700 {directory}",
        )


def peer_uid(sock: socket.socket) -> int:
    creds = sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(_SO_PEERCRED_FORMAT)
    )
    _pid, uid, _gid = struct.unpack(_SO_PEERCRED_FORMAT, creds)
    return int(uid)


# --------------------------------------------------------------------------- frames on a socket


def recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks: list[bytes] = []
    remaining = n
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("agent connection closed")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket) -> dict[str, Any]:
    length = wire.frame_length(recv_exact(sock, wire.HEADER_LEN))
    return wire.decode_body(recv_exact(sock, length))


def send_frame(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(wire.encode_frame(message))


# --------------------------------------------------------------------------- vault identity


def vault_id(vault: Vault) -> str:
    """Names one vault and the secret material that unlocks it.

    The path and everything that decides what the password unlocks (scheme, seed file
    bytes, seed mode and skip, the verifier): a vault replaced under the same path, or
    a rewrapped seed, is another id, so the agent never answers for it with stale keys.
    """
    digest = hashlib.sha256(b"aux-secrets agent vault id v1\0")
    digest.update(os.fsencode(os.path.realpath(vault.root)) + b"\0")
    digest.update(vault.scheme_name.encode() + b"\0")
    digest.update(f"{vault.seed_mode}\0{vault.seed_skip}\0".encode())
    if vault.verifier is not None:
        digest.update(repr(sorted(vault.verifier.to_toml().items())).encode() + b"\0")
    if vault.seed_file is not None:
        digest.update(hashlib.sha256(vault.read_seed_file()).digest())
    return digest.hexdigest()


# --------------------------------------------------------------------------- the client


class AgentClient:
    """One connection to a running agent; requests are serialised (threads may share it)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()

    @classmethod
    def connect(cls, path: Path | None = None) -> AgentClient | None:
        """The running agent, or None when there is none (no socket, a dead one's socket)."""
        path = path or socket_path()
        try:
            check_private_dir(path.parent)
        except FileNotFoundError:
            return None
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            return None
        except OSError as exc:
            sock.close()
            raise ExternalError(f"agent socket {path}: {exc.strerror or exc}") from None
        if peer_uid(sock) != os.getuid():
            sock.close()
            raise PolicyError(f"the process behind {path} is not ours; not using it")
        client = cls(sock)
        client.request({"op": "hello", "version": wire.PROTOCOL_VERSION})
        return client

    def close(self) -> None:
        self._sock.close()

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            try:
                send_frame(self._sock, message)
                answer = recv_frame(self._sock)
            except (OSError, EOFError):
                raise ExternalError(
                    "the agent went away during a request",
                    hint="run the command again (it unlocks without the agent if it must)",
                ) from None
        if answer.get("ok") is True:
            return answer
        text = str(answer.get("error", "the agent refused the request"))
        if answer.get("kind") == "wrong-password":
            raise WrongPasswordError(text)
        raise ExternalError(f"agent: {text}")

    def status(self) -> dict[str, Any]:
        return self.request({"op": "status"})

    def hold(self, vault: Vault) -> RemoteScheme | None:
        ident = vault_id(vault)
        answer = self.request({"op": "hold", "vault": ident})
        if not answer.get("held"):
            return None
        return RemoteScheme(self, ident, str(answer.get("scheme", "")))

    def unlock(self, vault: Vault, password: bytes, timeout: int) -> RemoteScheme:
        ident = vault_id(vault)
        answer = self.request(
            {
                "op": "unlock",
                "root": os.path.realpath(vault.root),
                "vault": ident,
                "password": wire.b64(password),
                "timeout": timeout,
            }
        )
        return RemoteScheme(self, ident, str(answer.get("scheme", "")))

    def read(self, ident: str, realm: str, purpose: str, offset: int, n: int) -> bytes:
        answer = self.request(
            {"op": "read", "vault": ident, "realm": realm, "purpose": purpose}
            | {"offset": offset, "n": n}
        )
        data = wire.unb64(answer, "data")
        if len(data) != n:
            raise ExternalError(f"agent: asked for {n} key-stream bytes, got {len(data)}")
        return data

    def lock(self) -> None:
        self.request({"op": "lock"})


@dataclass
class RemoteStream:
    """A key stream the agent computes; read ahead in blocks, so a reader's many small
    reads cost one round trip."""

    client: AgentClient
    vault: str
    realm: str
    purpose: str
    offset: int = 0
    buffer: bytes = b""

    def read(self, n: int) -> bytes:
        if n > len(self.buffer):
            want = max(n - len(self.buffer), READ_AHEAD)
            self.buffer += self.client.read(self.vault, self.realm, self.purpose, self.offset, want)
            self.offset += want
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out


class RemoteScheme:
    """A vault the agent holds, as a Scheme: the same streams, computed in the agent."""

    def __init__(self, client: AgentClient, ident: str, name: str) -> None:
        self.client = client
        self.ident = ident
        self.name = name

    def stream(self, realm: str, purpose: str) -> RemoteStream:
        return RemoteStream(self.client, self.ident, realm, purpose)


# --------------------------------------------------------------------------- starting one


def start_agent() -> AgentClient:
    """Start an agent in the background (it detaches) and connect to it."""
    path = socket_path()
    done = subprocess.run(
        [sys.executable, "-m", "aux_secrets", "agent", "serve", "--detach"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        close_fds=True,
        check=False,
        timeout=START_WAIT,
    )
    if done.returncode != 0:
        last = done.stderr.decode(errors="replace").strip().splitlines()
        raise ExternalError(
            "the agent did not start" + (f": {last[-1]}" if last else ""),
        )
    deadline = time.monotonic() + START_WAIT
    while True:
        client = AgentClient.connect(path)
        if client is not None:
            return client
        if time.monotonic() > deadline:
            raise ExternalError(f"the agent started but {path} does not answer")
        time.sleep(0.02)


def held_scheme(vault: Vault) -> RemoteScheme | None:
    """The vault as the running agent holds it, or None (no agent, not held, disabled)."""
    if not enabled():
        return None
    try:
        client = AgentClient.connect()
        if client is None:
            return None
        scheme = client.hold(vault)
    except AuxError:
        return None  # an agent we cannot use is no agent: the command unlocks itself
    if scheme is None:
        client.close()
    return scheme


def unlock_in_agent(vault: Vault, password: bytes, timeout: int | None = None) -> RemoteScheme:
    """Unlock ``vault`` in the agent (started if none runs) and use it from there."""
    client = AgentClient.connect() or start_agent()
    return client.unlock(vault, password, timeout if timeout is not None else default_timeout())
