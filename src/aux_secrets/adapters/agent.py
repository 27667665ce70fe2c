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
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aux_secrets.adapters.agent_socket import (
    ENV_AGENT,
    ENV_AGENT_DIR,
    REQUEST_WAIT,
    SOCKET_NAME,
    check_private_dir,
    enabled,
    open_agent_socket,
    peer_credentials,
    peer_uid,
    recv_frame,
    send_frame,
    socket_dir,
)
from aux_secrets.core import agent_wire as wire
from aux_secrets.errors import (
    AuxError,
    ExternalError,
    InputError,
    WrongPasswordError,
)

if TYPE_CHECKING:
    import socket

    from aux_secrets.adapters.vault import Vault

__all__ = [
    "ENV_AGENT",
    "ENV_AGENT_DIR",
    "SOCKET_NAME",
    "AgentClient",
    "RemoteScheme",
    "agent_dir",
    "check_private_dir",
    "enabled",
    "held_scheme",
    "peer_uid",
    "recv_frame",
    "send_frame",
    "socket_path",
    "start_agent",
    "unlock_in_agent",
    "vault_id",
]

ENV_AGENT_TIMEOUT = "AUX_SECRETS_AGENT_TIMEOUT"  # seconds an unlock is held
DEFAULT_TIMEOUT = 900
START_WAIT = 10.0
READ_AHEAD = 4096
ERROR_PREFIX = "aux-secrets: error: "
HINT_PREFIX = "aux-secrets: hint: "


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
    return Path(socket_dir())


def socket_path() -> Path:
    return agent_dir() / SOCKET_NAME


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
        sock = open_agent_socket(str(path or socket_path()))
        if sock is None:
            return None
        client = cls(sock)
        client.request({"op": "hello", "version": wire.PROTOCOL_VERSION})
        sock.settimeout(REQUEST_WAIT)
        return client

    def close(self) -> None:
        self._sock.close()

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            try:
                send_frame(self._sock, message)
                answer = recv_frame(self._sock)
            except TimeoutError:
                pid = peer_credentials(self._sock)[0]
                raise ExternalError(
                    f"the agent (pid {pid}) did not answer within "
                    f"{self._sock.gettimeout():g} s: it is stopped or stuck",
                    hint=f"end it (kill {pid}), or set AUX_SECRETS_AGENT=off",
                ) from None
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
        reason, hint = _command_error(done.stderr)
        raise ExternalError(
            "the agent did not start" + (f": {reason}" if reason else ""), hint=hint
        )
    deadline = time.monotonic() + START_WAIT
    while True:
        client = AgentClient.connect(path)
        if client is not None:
            return client
        if time.monotonic() > deadline:
            raise ExternalError(f"the agent started but {path} does not answer")
        time.sleep(0.02)


def _command_error(stderr: bytes) -> tuple[str, str | None]:
    """The error and hint an ``aux-secrets`` process printed, without their prefixes (the
    caller's own error line has one already)."""
    lines = [x.strip() for x in stderr.decode(errors="replace").splitlines() if x.strip()]
    errors = [x.removeprefix(ERROR_PREFIX) for x in lines if x.startswith(ERROR_PREFIX)]
    hints = [x.removeprefix(HINT_PREFIX) for x in lines if x.startswith(HINT_PREFIX)]
    reason = errors[-1] if errors else (lines[-1] if lines else "")
    return reason, hints[-1] if hints else None


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
