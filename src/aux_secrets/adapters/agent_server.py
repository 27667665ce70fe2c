"""The unlock agent's process (docs/spec/agent.md): holds unlocked vaults in memory.

One per user and socket directory. It unlocks a vault when asked (it reads the seed
file itself: the seed is never sent to it and never leaves it), answers key-stream
reads for the vaults it holds, forgets each after its timeout, and forgets everything
and exits on ``lock``. Every connection's peer must be our own uid (SO_PEERCRED). It
writes nothing but its socket and lock file, refuses core dumps and ptrace by making
itself non-dumpable, and exits once it holds nothing and nobody is connected.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import resource
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aux_secrets.adapters import agent
from aux_secrets.adapters.agent_answer import answer_command
from aux_secrets.core import agent_wire as wire
from aux_secrets.errors import AuxError, InputError, WrongPasswordError

if TYPE_CHECKING:
    from aux_secrets.core.keystream import KeyStream, Scheme

LOCK_NAME = "agent.lock"
IDLE_EXIT = 30.0  # seconds with nothing held and nobody connected
STREAM_CACHE = 64  # open key streams kept per connection
_PR_SET_DUMPABLE = 4


@dataclass
class Held:
    scheme: Scheme
    root: str
    expires: float


@dataclass
class AgentState:
    held: dict[str, Held] = field(default_factory=dict)
    connections: int = 0
    last_activity: float = field(default_factory=time.monotonic)
    stopping: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def purge(self) -> None:
        now = time.monotonic()
        for ident in [i for i, h in self.held.items() if h.expires <= now]:
            del self.held[ident]

    def get(self, ident: str) -> Held | None:
        with self.lock:
            self.purge()
            return self.held.get(ident)


def harden() -> None:
    """No core dumps; not dumpable (other processes of the user cannot ptrace or read
    /proc/PID/mem)."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


class AgentServer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / agent.SOCKET_NAME
        self.state = AgentState()
        self.listener: socket.socket | None = None
        self._lock_fd: int | None = None

    # -- setup ------------------------------------------------------------------------
    def bind(self) -> bool:
        """Take the directory's lock and listen; False when another agent runs there."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        agent.check_private_dir(self.directory)
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        # The lock is ours, so a socket left here is a dead agent's.
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)
        try:
            listener.bind(str(self.path))
        finally:
            os.umask(old)
        listener.listen(16)
        listener.settimeout(0.5)
        self.listener = listener
        return True

    # -- the loop ---------------------------------------------------------------------
    def serve_forever(self) -> None:
        assert self.listener is not None
        try:
            while not self.state.stopping:
                try:
                    conn, _ = self.listener.accept()
                except TimeoutError:
                    if self._idle():
                        break
                    continue
                with self.state.lock:
                    self.state.connections += 1
                    self.state.last_activity = time.monotonic()
                threading.Thread(target=self._serve_connection, args=(conn,), daemon=True).start()
        finally:
            self.close()

    def _idle(self) -> bool:
        with self.state.lock:
            self.state.purge()
            quiet = time.monotonic() - self.state.last_activity
            return not self.state.held and self.state.connections == 0 and quiet > IDLE_EXIT

    def close(self) -> None:
        with self.state.lock:
            self.state.held.clear()
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        self._release_directory()

    def _release_directory(self) -> None:
        """Remove our socket and let go of the lock, once: after that the directory may
        already be another agent's, whose socket must stay."""
        with self.state.lock:
            fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(fd)

    def _serve_connection(self, conn: socket.socket) -> None:
        streams: OrderedDict[tuple[str, str, str], tuple[KeyStream, int]] = OrderedDict()
        try:
            uid = agent.peer_uid(conn)
            if uid != os.getuid():
                agent.send_frame(conn, refusal(f"uid {uid} may not use this agent"))
                return
            while not self.state.stopping:
                try:
                    message = agent.recv_frame(conn)
                except (EOFError, OSError):
                    return
                except InputError as exc:
                    agent.send_frame(conn, refusal(exc.message))
                    return
                agent.send_frame(conn, self.answer(message, streams))
        except OSError:
            return
        finally:
            conn.close()
            with self.state.lock:
                self.state.connections -= 1
                self.state.last_activity = time.monotonic()

    # -- requests ---------------------------------------------------------------------
    def answer(
        self, message: dict[str, Any], streams: OrderedDict[tuple[str, str, str], Any]
    ) -> dict[str, Any]:
        try:
            op = wire.field(message, "op", str)
            if op == "hello":
                if message.get("version") != wire.PROTOCOL_VERSION:
                    return refusal(f"this agent speaks protocol {wire.PROTOCOL_VERSION}")
                return {"ok": True, "version": wire.PROTOCOL_VERSION, "pid": os.getpid()}
            if op == "status":
                return self._status()
            if op == "hold":
                held = self.state.get(wire.field(message, "vault", str))
                return {"ok": True, "held": held is not None} | (
                    {"scheme": held.scheme.name} if held else {}
                )
            if op == "unlock":
                return self._unlock(message)
            if op == "read":
                return self._read(message, streams)
            if op == "answer":
                return answer_command(message, self._held_scheme)
            if op == "lock":
                with self.state.lock:
                    self.state.held.clear()
                    self.state.stopping = True
                # Gone before the answer: a command right after `lock` starts a new agent
                # instead of reaching this one while it winds down.
                self._release_directory()
                return {"ok": True}
            return refusal(f"unknown op '{op}'")
        except WrongPasswordError as exc:
            return refusal(exc.message, kind="wrong-password")
        except AuxError as exc:
            return refusal(exc.message)

    def _held_scheme(self, ident: str) -> Scheme | None:
        held = self.state.get(ident)
        return held.scheme if held is not None else None

    def _status(self) -> dict[str, Any]:
        now = time.monotonic()
        with self.state.lock:
            self.state.purge()
            vaults = [
                {"root": h.root, "scheme": h.scheme.name, "expiresIn": int(h.expires - now)}
                for h in self.state.held.values()
            ]
        return {"ok": True, "pid": os.getpid(), "vaults": sorted(vaults, key=lambda v: v["root"])}

    def _unlock(self, message: dict[str, Any]) -> dict[str, Any]:
        from aux_secrets.adapters.vault import Vault

        root = wire.field(message, "root", str)
        timeout = agent.check_timeout(wire.field(message, "timeout", int))
        password = wire.unb64(message, "password")
        vault = Vault.load(Path(root))
        ident = agent.vault_id(vault)
        if ident != wire.field(message, "vault", str):
            return refusal(f"the vault at {root} changed while it was being unlocked")
        scheme = vault.unlock(password)
        with self.state.lock:
            self.state.held[ident] = Held(scheme, root, time.monotonic() + timeout)
        return {"ok": True, "scheme": scheme.name}

    def _read(
        self, message: dict[str, Any], streams: OrderedDict[tuple[str, str, str], Any]
    ) -> dict[str, Any]:
        ident, realm, purpose, offset, n = wire.read_request(message)
        held = self.state.get(ident)
        if held is None:
            return refusal("this vault is not unlocked in the agent (its timeout passed?)")
        key = (ident, realm, purpose)
        cached = streams.pop(key, None)
        if cached is None or cached[1] > offset:
            cached = (held.scheme.stream(realm, purpose), 0)
        stream, position = cached
        while position < offset:  # a reader that skipped ahead (never more than MAX_OFFSET)
            step = min(offset - position, wire.MAX_READ)
            stream.read(step)
            position += step
        data = stream.read(n)
        streams[key] = (stream, offset + n)
        while len(streams) > STREAM_CACHE:
            streams.popitem(last=False)
        return {"ok": True, "data": wire.b64(data)}


def refusal(text: str, *, kind: str = "refused") -> dict[str, Any]:
    return {"ok": False, "kind": kind, "error": text}


def _os_error_text(exc: OSError) -> str:
    """'PATH: reason', as the rest of aux-secrets words a failed file operation."""
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return exc.strerror or str(exc)


def serve(directory: Path, *, detach: bool) -> int:
    """Run an agent for ``directory``; 0 also when one already runs there."""
    harden()
    if not detach:
        server = AgentServer(directory)
        if server.bind():
            server.serve_forever()
        return 0
    read_end, write_end = os.pipe()
    if os.fork() != 0:  # the caller waits for this parent; the agent is the grandchild
        os.close(write_end)
        with os.fdopen(read_end, "rb") as pipe:
            said = pipe.read()
        if said.startswith(b"ok"):
            return 0
        raise InputError(said.decode(errors="replace") or "the agent exited while starting")
    os.close(read_end)
    os.setsid()
    os.chdir("/")
    try:
        server = AgentServer(directory)
        running = server.bind()
    except (AuxError, OSError) as exc:
        text = exc.message if isinstance(exc, AuxError) else _os_error_text(exc)
        os.write(write_end, text.encode())
        os._exit(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.write(write_end, b"ok")
    os.close(write_end)
    if running:
        try:
            server.serve_forever()
        finally:
            os._exit(0)
    os._exit(0)
