"""The unlock agent as a real process: unlock once, use, expire, lock, be killed, refuse others."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aux_secrets.core import agent_wire as wire
from tests.helpers import assert_one_line_error, cli, require_program

FAST = ("--argon2-memory", "8", "--argon2-time", "1")
PY = ("/usr/bin/python3", "-c")
PASSWORD = b"correct horse battery staple"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (a detached agent is not our child, but be sure).
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ", 1)[1][0] != "Z"


def _wait_gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


class Setup:
    def __init__(self, tmp: Path) -> None:
        self.sock_dir = tmp / "agent"
        self.env = {"AUX_SECRETS_AGENT_DIR": str(self.sock_dir)}
        self.pw = tmp / "pw"
        self.pw.write_bytes(PASSWORD + b"\n")
        self.vault = tmp / "vault"
        done = cli("init", self.vault, "--password-file", self.pw, *FAST)
        assert done.returncode == 0, done.stderr

    def run(self, *args: str | os.PathLike[str], input: bytes | None = None) -> Any:
        return cli(*args, "--vault", self.vault, input=input, env=self.env)

    def agent(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return cli("agent", *args, env=self.env)

    def status(self) -> dict[str, object]:
        done = self.agent("status", "--json")
        doc: dict[str, object] = json.loads(done.stdout)
        return doc

    def pid(self) -> int:
        value = self.status()["pid"]
        assert isinstance(value, int)
        return value


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    s = Setup(tmp_path)
    yield s
    if s.sock_dir.is_dir():
        s.sock_dir.chmod(0o700)
    status = s.status()
    if status.get("running"):
        pid = status["pid"]
        s.agent("lock")
        assert isinstance(pid, int)
        if not _wait_gone(pid):
            os.kill(pid, signal.SIGKILL)


def test_unlock_once_then_commands_ask_no_password(setup: Setup) -> None:
    expected = setup.run("derive", "--password-file", setup.pw, "web/db").stdout
    assert expected
    # Without the agent and without a password source: a clear error, no hang.
    assert_one_line_error(setup.run("derive", "web/db"), "no master password source")
    done = cli(
        "agent", "unlock", "--vault", setup.vault, "--password-file", setup.pw, env=setup.env
    )
    assert done.returncode == 0, done.stderr
    assert setup.run("derive", "web/db").stdout == expected
    # The store encrypts and decrypts through the agent's key streams as well.
    assert setup.run("store", "add", "api/token", "--no-commit", input=b"tok-123").returncode == 0
    assert setup.run("store", "get", "api/token").stdout == b"tok-123"
    assert setup.run("store", "get", "api/token", "--password-file", setup.pw).stdout == b"tok-123"
    status = setup.status()
    assert status["running"] is True
    vaults = status["vaults"]
    assert isinstance(vaults, list) and len(vaults) == 1
    assert vaults[0]["root"] == os.path.realpath(setup.vault)
    assert vaults[0]["scheme"] == "aux-v1"
    # Nothing secret in what the agent shows or leaves behind.
    text = json.dumps(status).encode()
    assert PASSWORD not in text
    assert sorted(p.name for p in setup.sock_dir.iterdir()) == ["agent.lock", "agent.sock"]
    assert setup.sock_dir.stat().st_mode & 0o777 == 0o700
    assert (setup.sock_dir / "agent.sock").stat().st_mode & 0o077 == 0
    pid = int(str(status["pid"]))
    assert PASSWORD not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert PASSWORD not in Path(f"/proc/{pid}/environ").read_bytes()
    # No core file can hold the seed.
    limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
    core = next(line for line in limits if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"]


def test_wrong_password_is_refused_and_nothing_held(setup: Setup, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"not the password\n")
    done = cli("agent", "unlock", "--vault", setup.vault, "--password-file", bad, env=setup.env)
    assert_one_line_error(done, "master password")
    assert setup.status()["vaults"] == []
    assert_one_line_error(setup.run("derive", "web/db"), "no master password source")


def test_expiry_forgets_the_vault(setup: Setup) -> None:
    done = cli(
        "agent",
        "unlock",
        "--timeout",
        "1",
        "--vault",
        setup.vault,
        "--password-file",
        setup.pw,
        env=setup.env,
    )
    assert done.returncode == 0, done.stderr
    time.sleep(2.5)
    assert setup.status()["vaults"] == []
    assert_one_line_error(setup.run("derive", "web/db"), "no master password source")


def test_lock_forgets_at_once_and_the_agent_exits(setup: Setup) -> None:
    assert setup.run("agent", "unlock", "--password-file", setup.pw).returncode == 0
    pid = setup.pid()
    done = setup.agent("lock")
    assert done.returncode == 0, done.stderr
    assert _wait_gone(pid)
    assert not (setup.sock_dir / "agent.sock").exists()
    assert_one_line_error(setup.run("derive", "web/db"), "no master password source")
    assert setup.agent("status").returncode == 1


def test_a_killed_agent_leaves_commands_working(setup: Setup) -> None:
    assert setup.run("agent", "unlock", "--password-file", setup.pw).returncode == 0
    pid = setup.pid()
    expected = setup.run("derive", "web/db").stdout
    os.kill(pid, signal.SIGKILL)
    assert _wait_gone(pid)
    assert (setup.sock_dir / "agent.sock").exists()  # the dead agent's socket is left
    assert_one_line_error(setup.run("derive", "web/db"), "no master password source")
    assert setup.run("derive", "web/db", "--password-file", setup.pw).stdout == expected
    # A new agent takes over the directory from the dead one.
    assert setup.run("agent", "unlock", "--password-file", setup.pw).returncode == 0
    assert setup.pid() != pid
    assert setup.run("derive", "web/db").stdout == expected


def test_a_changed_seed_is_not_answered_from_the_agent(setup: Setup, tmp_path: Path) -> None:
    assert setup.run("agent", "unlock", "--password-file", setup.pw).returncode == 0
    seed = setup.vault / "seed.aux-v1"
    seed.write_bytes(seed.read_bytes()[:-1] + bytes([seed.read_bytes()[-1] ^ 1]))
    # The agent does not hold this (tampered) vault: the command must unlock it itself.
    assert_one_line_error(setup.run("derive", "web/db"), "no master password source")


def _raw_exchange(path: Path, frames: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(frames)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _answers(data: bytes) -> list[dict[str, object]]:
    out = []
    while data:
        length = struct.unpack(">I", data[:4])[0]
        out.append(json.loads(data[4 : 4 + length]))
        data = data[4 + length :]
    return out


def test_bad_frames_get_a_refusal_not_a_crash(setup: Setup) -> None:
    assert setup.run("agent", "unlock", "--password-file", setup.pw).returncode == 0
    path = setup.sock_dir / "agent.sock"
    hello = wire.encode_frame({"op": "hello", "version": 1})
    cases = {
        "garbage": struct.pack(">I", 4) + b"\xff\xfe{[",
        "not an object": wire.encode_frame([1, 2]),  # type: ignore[arg-type]
        "oversized": struct.pack(">I", wire.MAX_FRAME + 1),
    }
    for what, frame in cases.items():
        answers = _answers(_raw_exchange(path, hello + frame))
        assert answers[0]["ok"] is True, what
        assert answers[-1]["ok"] is False, what
    # A truncated frame: the agent waits, sees the end, and drops the connection.
    truncated = _answers(_raw_exchange(path, hello + struct.pack(">I", 50) + b"{}"))
    assert [a["ok"] for a in truncated] == [True]
    answers = _answers(
        _raw_exchange(
            path,
            wire.encode_frame({"op": "hello", "version": 99})
            + wire.encode_frame({"op": "read", "vault": "00", "realm": "x", "purpose": "raw"})
            + wire.encode_frame(
                {"op": "read", "vault": "00", "realm": "x", "purpose": "raw"}
                | {"offset": 0, "n": wire.MAX_READ + 1}
            )
            + wire.encode_frame(
                {"op": "read", "vault": "00", "realm": "x", "purpose": "raw", "offset": 0, "n": 4}
            )
            + wire.encode_frame({"op": "frobnicate"})
            + wire.encode_frame({"op": "unlock", "root": "/nonexistent"} | {"vault": "00"}),
        )
    )
    assert [a["ok"] for a in answers] == [False] * 6
    assert "not unlocked" in str(answers[3]["error"])
    # The agent still works after all that.
    assert setup.run("derive", "web/db").returncode == 0


def test_another_uid_is_refused(setup: Setup, request: pytest.FixtureRequest) -> None:
    setpriv = require_program("setpriv", "util-linux")
    if os.getuid() != 0:
        pytest.skip("needs root to run a client as another uid")
    # pytest's temporary directories are closed to other users: use one they may enter.
    outer = Path(tempfile.mkdtemp(prefix="aux-agent-test-"))
    request.addfinalizer(lambda: shutil.rmtree(outer, ignore_errors=True))
    outer.chmod(0o711)
    setup.sock_dir = outer / "agent"
    setup.env = {"AUX_SECRETS_AGENT_DIR": str(setup.sock_dir)}
    assert setup.run("agent", "unlock", "--password-file", setup.pw).returncode == 0
    # Open the directory and socket on purpose: the peer-credential check must still refuse.
    setup.sock_dir.chmod(0o755)
    (setup.sock_dir / "agent.sock").chmod(0o777)
    sock = str(setup.sock_dir / "agent.sock")
    # The agent answers a stranger at once with one refusal and closes: read it.
    client = (
        "import socket, struct, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect(sys.argv[1])\n"
        "n = struct.unpack('>I', s.recv(4))[0]\n"
        "print(s.recv(n).decode())\n"
    )
    done = subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *PY, client, sock],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["ok"] is False
    assert "uid 65534 may not use this agent" in answer["error"]
    # And our own client refuses a socket directory others may enter.
    assert_one_line_error(setup.agent("status"), "open to others")
    setup.sock_dir.chmod(0o700)
    assert setup.run("derive", "web/db").returncode == 0
    pid = setup.pid()
    setup.agent("lock")
    assert _wait_gone(pid)


def test_agent_off_ignores_a_running_agent(setup: Setup) -> None:
    assert setup.run("agent", "unlock", "--password-file", setup.pw).returncode == 0
    done = cli(
        "derive", "web/db", "--vault", setup.vault, env=setup.env | {"AUX_SECRETS_AGENT": "off"}
    )
    assert_one_line_error(done, "no master password source")


def test_agent_help_has_examples() -> None:
    for sub in ("unlock", "lock", "status"):
        done = cli("agent", sub, "--help")
        assert done.returncode == 0
        assert b"Example" in done.stdout


def test_a_command_right_after_lock_gets_a_new_agent(setup: Setup) -> None:
    for _ in range(3):
        assert setup.run("agent", "unlock", "--password-file", setup.pw).returncode == 0
        pid = setup.pid()
        assert setup.agent("lock").returncode == 0
        # Not the old agent winding down: `unlock` at once starts and uses a new one.
        done = setup.run("agent", "unlock", "--password-file", setup.pw)
        assert done.returncode == 0, done.stderr
        assert setup.pid() != pid
        assert setup.run("derive", "web/db").returncode == 0
        assert setup.agent("lock").returncode == 0


def test_answer_requests_only_for_a_held_vault(setup: Setup, tmp_path: Path) -> None:
    """The fast path's `answer` op: a held vault's output; anything else declined."""
    other = tmp_path / "other"
    assert cli("init", other, "--password-file", setup.pw, *FAST).returncode == 0
    assert setup.run("agent", "unlock", "--password-file", setup.pw).returncode == 0
    assert setup.run("store", "add", "api/token", "--no-commit", input=b"tok-1").returncode == 0
    root = os.path.realpath(setup.vault)
    derive = {"realm": "web/db", "type": "pass", "length": None, "charset": "gokey"}
    derive |= {"encoding": None, "public": False, "json": False}

    def ask(**fields: object) -> dict[str, object]:
        frame = wire.encode_frame({"op": "answer"} | fields)
        (answer,) = _answers(_raw_exchange(setup.sock_dir / "agent.sock", frame))
        return answer

    expected = setup.run("derive", "web/db", "--password-file", setup.pw).stdout
    answer = ask(root=root, command="derive", args=derive)
    assert answer["answered"] is True and answer["warnings"] == []
    assert wire.unb64(answer, "data") == expected
    answer = ask(root=root, command="store-get", args={"name": "api/token"})
    assert wire.unb64(answer, "data") == b"tok-1"
    warned = ask(root=root, command="derive", args=derive | {"realm": "a/{x}"})
    assert "{x} is not a placeholder" in str(warned["warnings"])
    declined = [
        {"root": str(other), "command": "derive", "args": derive},  # not held
        {"root": os.path.relpath(root), "command": "derive", "args": derive},
        {"root": root, "command": "frobnicate", "args": {}},
        {"root": root, "command": "derive", "args": derive | {"length": "8"}},
        {"root": root, "command": "derive", "args": derive | {"realm": "a/{period}"}},
        {"root": root, "command": "derive", "args": derive | {"realm": "aux-secrets/x"}},
        {"root": root, "command": "store-get", "args": {"name": "api/missing"}},
        {"root": root, "command": "store-get", "args": {"name": "../x"}},
        {"root": root, "command": "store-get", "args": {}},
        {"root": root + "/nonexistent", "command": "derive", "args": derive},
    ]
    for fields in declined:
        assert ask(**fields) == {"ok": True, "answered": False}, fields
    for broken in ({"command": "derive", "args": derive}, {"root": root, "args": derive}):
        assert ask(**broken)["ok"] is False
    # A tampered seed is another vault: declined, not answered with the held keys.
    seed = setup.vault / "seed.aux-v1"
    seed.write_bytes(seed.read_bytes()[:-1] + bytes([seed.read_bytes()[-1] ^ 1]))
    assert ask(root=root, command="derive", args=derive)["answered"] is False
