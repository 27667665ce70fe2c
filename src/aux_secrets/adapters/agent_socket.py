"""The agent's socket: where it is, who is behind it, and frames on it (docs/spec/agent.md).

Shared by the client (``adapters/agent.py``), the agent (``adapters/agent_server.py``)
and the fast path (``cli/fastpath.py``), which answers ``store get`` and ``derive`` in
a fraction of the time the rest of aux-secrets takes to import: so this imports only
``socket``, ``struct`` and the wire format, and paths are strings (no pathlib).
"""

from __future__ import annotations

import os
import socket
import stat
import struct

from aux_secrets.core import agent_wire as wire
from aux_secrets.errors import ExternalError, PolicyError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

ENV_AGENT = "AUX_SECRETS_AGENT"  # "off" (or 0/no/false): never use or start an agent
ENV_AGENT_DIR = "AUX_SECRETS_AGENT_DIR"  # the socket's directory (tests, several agents)
SOCKET_NAME = "agent.sock"
_SO_PEERCRED_FORMAT = "3i"  # struct ucred: pid, uid, gid
# A stopped or wedged agent still accepts connections (the kernel queues them), so every
# wait on it is bounded: the greeting and the fast path's answer are quick (milliseconds),
# a request may derive an RSA key or run Argon2id (seconds).
GREETING_WAIT = 3.0
REQUEST_WAIT = 120.0


def enabled() -> bool:
    return os.environ.get(ENV_AGENT, "").strip().lower() not in ("off", "0", "no", "false")


def socket_dir() -> str:
    """$AUX_SECRETS_AGENT_DIR, else $XDG_RUNTIME_DIR/aux-secrets, else /tmp/aux-secrets-UID."""
    explicit = os.environ.get(ENV_AGENT_DIR)
    if explicit:
        return explicit
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "aux-secrets")
    return f"/tmp/aux-secrets-{os.getuid()}"


def check_private_dir(directory: str | os.PathLike[str]) -> None:
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


def peer_credentials(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process behind ``sock``, from the kernel."""
    creds = sock.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize(_SO_PEERCRED_FORMAT)
    )
    pid, uid, _gid = struct.unpack(_SO_PEERCRED_FORMAT, creds)
    return int(pid), int(uid)


def peer_uid(sock: socket.socket) -> int:
    return peer_credentials(sock)[1]


def open_agent_socket(path: str) -> socket.socket | None:
    """A connection to the agent at ``path`` whose process is ours, or None when no agent
    runs there (no directory, no socket, a dead agent's socket). Its waits are bounded by
    GREETING_WAIT until the caller sets another timeout."""
    try:
        check_private_dir(os.path.dirname(path))
    except FileNotFoundError:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(GREETING_WAIT)
    try:
        sock.connect(path)
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    except OSError as exc:
        sock.close()
        raise ExternalError(f"agent socket {path}: {exc.strerror or exc}") from None
    if peer_uid(sock) != os.getuid():
        sock.close()
        raise PolicyError(f"the process behind {path} is not ours; not using it")
    return sock


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
