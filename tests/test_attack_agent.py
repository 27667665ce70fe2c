"""The agent's `answer` request and the fast path under hostile or careless use.

Real processes throughout: another uid, a vault swapped under its path, a vault.toml
replaced after the unlock, an agent killed while a command waits for its answer, many
commands at once, garbage arguments, a dead agent's socket and a bad socket directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from aux_secrets.core import agent_wire as wire
from tests.helpers import assert_one_line_error, cli, require_program
from tests.test_agent import FAST, PY, Setup, _alive, _answers, _raw_exchange, _wait_gone

DERIVE: dict[str, Any] = {"realm": "web/db", "type": "pass", "length": None, "charset": "gokey"}
DERIVE |= {"encoding": None, "public": False, "json": False}
NO_PASSWORD = "no master password source"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    s = Setup(tmp_path)
    yield s
    s.env = {"AUX_SECRETS_AGENT_DIR": str(s.sock_dir)}  # a test may have pointed it elsewhere
    if s.sock_dir.is_dir() and not s.sock_dir.is_symlink():
        os.chown(s.sock_dir, os.getuid(), os.getgid())
        s.sock_dir.chmod(0o700)
    status = s.status()
    if status.get("running"):
        pid = status["pid"]
        s.agent("lock")
        assert isinstance(pid, int)
        if not _wait_gone(pid):
            os.kill(pid, signal.SIGKILL)


def _unlock(setup: Setup, vault: Path | None = None) -> None:
    where = vault or setup.vault
    done = cli("agent", "unlock", "--vault", where, "--password-file", setup.pw, env=setup.env)
    assert done.returncode == 0, done.stderr


def _ask(setup: Setup, **fields: object) -> dict[str, Any]:
    frame = wire.encode_frame({"op": "answer"} | fields)
    (answer,) = _answers(_raw_exchange(setup.sock_dir / "agent.sock", frame))
    return answer


def _derive(setup: Setup, vault: Path, *, env: dict[str, str] | None = None) -> Any:
    return cli("derive", "web/db", "--vault", vault, env=setup.env | (env or {}))


def _expected(setup: Setup, vault: Path) -> bytes:
    done = cli("derive", "web/db", "--vault", vault, "--password-file", setup.pw)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _new_vault(setup: Setup, path: Path) -> Path:
    assert cli("init", path, "--password-file", setup.pw, *FAST).returncode == 0
    return path


def test_another_uid_gets_nothing_from_answer(setup: Setup, request: pytest.FixtureRequest) -> None:
    setpriv = require_program("setpriv", "util-linux")
    if os.getuid() != 0:
        pytest.skip("needs root to run a client as another uid")
    outer = Path(tempfile.mkdtemp(prefix="aux-attack-agent-"))
    request.addfinalizer(lambda: shutil.rmtree(outer, ignore_errors=True))
    outer.chmod(0o711)
    setup.sock_dir = outer / "agent"
    setup.env = {"AUX_SECRETS_AGENT_DIR": str(setup.sock_dir)}
    _unlock(setup)
    setup.sock_dir.chmod(0o755)  # opened on purpose: the peer check alone must refuse
    (setup.sock_dir / "agent.sock").chmod(0o777)
    frame = wire.encode_frame(
        {"op": "answer", "root": os.path.realpath(setup.vault), "command": "derive"}
        | {"args": DERIVE}
    )
    # The refusal comes at once; then the answer request, and anything after it.
    client = (
        "import socket, struct, sys\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        "s.connect(sys.argv[1])\n"
        "head = s.recv(4)\n"
        "data = head + s.recv(struct.unpack('>I', head)[0])\n"
        "try:\n"
        "    s.sendall(bytes.fromhex(sys.argv[2]))\n"
        "    while chunk := s.recv(65536):\n"
        "        data += chunk\n"
        "except (BrokenPipeError, ConnectionResetError):\n"
        "    pass\n"
        "sys.stdout.write(data.hex())\n"
    )
    sock = str(setup.sock_dir / "agent.sock")
    as_nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    done = subprocess.run(
        [*as_nobody, *PY, client, sock, frame.hex()],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answers = _answers(bytes.fromhex(done.stdout.decode()))
    assert len(answers) == 1
    assert answers[0]["ok"] is False and "data" not in answers[0]
    assert "uid 65534 may not use this agent" in str(answers[0]["error"])
    setup.sock_dir.chmod(0o700)
    assert _derive(setup, setup.vault).stdout == _expected(setup, setup.vault)


def test_a_symlinked_vault_swapped_to_another_is_not_answered(setup: Setup, tmp_path: Path) -> None:
    other = _new_vault(setup, tmp_path / "other")
    link = tmp_path / "link"
    link.symlink_to(setup.vault)
    _unlock(setup, link)
    assert _derive(setup, link).stdout == _expected(setup, setup.vault)
    # Swap the link to a vault the agent does not hold: no value, the ordinary error.
    link.unlink()
    link.symlink_to(other)
    assert_one_line_error(_derive(setup, link), NO_PASSWORD)
    answer = _ask(setup, root=str(link), command="derive", args=DERIVE)
    assert answer == {"ok": True, "answered": False}
    # Held as well: answered with that vault's own value, never the first one's.
    _unlock(setup, other)
    assert _derive(setup, link).stdout == _expected(setup, other) != _expected(setup, setup.vault)


def test_a_vault_toml_replaced_after_unlock_is_not_answered(setup: Setup, tmp_path: Path) -> None:
    other = _new_vault(setup, tmp_path / "other")
    _unlock(setup)
    root = os.path.realpath(setup.vault)
    assert _ask(setup, root=root, command="derive", args=DERIVE)["answered"] is True
    original = (setup.vault / "vault.toml").read_bytes()
    # Another vault's vault.toml and seed under the same path.
    (setup.vault / "vault.toml").write_bytes((other / "vault.toml").read_bytes())
    shutil.copy(other / "seed.aux-v1", setup.vault / "other-seed.aux-v1")
    toml = (other / "vault.toml").read_text().replace('"seed.aux-v1"', '"other-seed.aux-v1"')
    (setup.vault / "vault.toml").write_text(toml)
    assert _ask(setup, root=root, command="derive", args=DERIVE)["answered"] is False
    assert_one_line_error(_derive(setup, setup.vault), NO_PASSWORD)
    # The same seed file read as another scheme: another vault id, not answered.
    gokey = '# x\nversion = 1\nscheme = "gokey"\n\n[seed]\nfile = "seed.aux-v1"\n'
    (setup.vault / "vault.toml").write_text(gokey + 'mode = "v2"\nskip = 0\n')
    assert _ask(setup, root=root, command="derive", args=DERIVE)["answered"] is False
    assert_one_line_error(_derive(setup, setup.vault), NO_PASSWORD)
    # A vault.toml that does not parse: declined, and the ordinary command says why.
    (setup.vault / "vault.toml").write_bytes(b"version = [\n")
    assert _ask(setup, root=root, command="derive", args=DERIVE)["answered"] is False
    assert_one_line_error(_derive(setup, setup.vault), "vault.toml")
    (setup.vault / "vault.toml").write_bytes(original)
    assert _ask(setup, root=root, command="derive", args=DERIVE)["answered"] is True


def test_an_agent_killed_during_an_answer_leaves_the_ordinary_path(setup: Setup) -> None:
    _unlock(setup)
    expected = _expected(setup, setup.vault)
    pid = setup.pid()
    os.kill(pid, signal.SIGSTOP)  # it accepts nothing and answers nothing now
    try:
        env = os.environ | setup.env | {"AUX_SECRETS_PASSWORD_FILE": str(setup.pw)}
        command = subprocess.Popen(
            [sys.executable, "-m", "aux_secrets", "derive", "web/db", "--vault", setup.vault],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        # Its connection waits in the listener's queue (a stopped agent accepts nothing)
        # and it waits for the answer: kill the agent then.
        deadline = time.monotonic() + 30
        while not _has_socket(command.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _has_socket(command.pid)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.kill(pid, signal.SIGCONT)
    out, err = command.communicate(timeout=60)
    assert command.returncode == 0, err
    assert out == expected
    assert b"Traceback" not in err
    assert _wait_gone(pid)


def test_a_stopped_agent_delays_commands_but_never_hangs_them(setup: Setup) -> None:
    _unlock(setup)
    setup.run("store", "add", "api/token", "--no-commit", input=b"tok-1")
    expected = _expected(setup, setup.vault)
    pid = setup.pid()
    os.kill(pid, signal.SIGSTOP)  # the kernel still queues connections to its socket
    try:
        with_password = setup.env | {"AUX_SECRETS_PASSWORD_FILE": str(setup.pw)}
        got = _derive(setup, setup.vault, env=with_password)
        assert (got.returncode, got.stdout) == (0, expected), got.stderr
        token = cli("store", "get", "api/token", "--vault", setup.vault, env=with_password)
        assert (token.returncode, token.stdout) == (0, b"tok-1"), token.stderr
        unlock = ("unlock", "--vault", str(setup.vault), "--password-file", str(setup.pw))
        for args in (("status",), unlock):
            stuck = cli("agent", *args, env=setup.env)
            line = assert_one_line_error(stuck, f"the agent (pid {pid}) did not answer within")
            assert line and f"kill {pid}" in stuck.stderr.decode()
    finally:
        os.kill(pid, signal.SIGCONT)
    # Woken up, it answers again, still holding the vault.
    assert _derive(setup, setup.vault).stdout == expected


def _has_socket(pid: int) -> bool:
    """Whether process ``pid`` holds a socket (the fast path's connection to the agent)."""
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd).startswith("socket:"):
                    return True
    return False


def test_a_dead_agents_socket_leaves_commands_correct(setup: Setup) -> None:
    _unlock(setup)
    assert setup.run("store", "add", "api/token", "--no-commit", input=b"tok-1").returncode == 0
    expected = _expected(setup, setup.vault)
    pid = setup.pid()
    os.kill(pid, signal.SIGKILL)
    assert _wait_gone(pid)
    assert (setup.sock_dir / "agent.sock").exists()
    with_password = {"AUX_SECRETS_PASSWORD_FILE": str(setup.pw)}
    assert _derive(setup, setup.vault, env=with_password).stdout == expected
    got = cli("store", "get", "api/token", "--vault", setup.vault, env=setup.env | with_password)
    assert (got.returncode, got.stdout) == (0, b"tok-1")
    assert_one_line_error(setup.run("store", "get", "api/token"), NO_PASSWORD)


def test_two_hundred_parallel_fast_path_commands(setup: Setup) -> None:
    _unlock(setup)
    assert setup.run("store", "add", "api/token", "--no-commit", input=b"tok-1").returncode == 0
    expected = _expected(setup, setup.vault)
    pid = setup.pid()
    env = os.environ | setup.env
    commands = []
    for i in range(200):
        args = ["derive", "web/db"] if i % 2 else ["store", "get", "api/token"]
        commands.append(
            subprocess.Popen(
                [sys.executable, "-m", "aux_secrets", *args, "--vault", setup.vault],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        )
    results = [(c.communicate(timeout=300), c.returncode) for c in commands]
    for i, ((out, err), code) in enumerate(results):
        assert code == 0, err
        assert out == (expected if i % 2 else b"tok-1"), i
    assert _alive(pid) and setup.pid() == pid


def test_garbage_arguments_in_an_answer_are_declined(setup: Setup) -> None:
    _unlock(setup)
    root = os.path.realpath(setup.vault)
    pid = setup.pid()
    big = "a/" + "x" * (3 << 20)
    cases: list[dict[str, Any]] = [
        DERIVE | {"length": True},
        DERIVE | {"length": -1},
        DERIVE | {"length": 0},
        DERIVE | {"length": 10**200},
        DERIVE | {"length": 1.5},
        DERIVE | {"type": "raw", "length": 1 << 40},
        DERIVE | {"type": "frobnicate"},
        DERIVE | {"type": ["pass"]},
        DERIVE | {"charset": "\x00"},
        DERIVE | {"encoding": "\n"},
        DERIVE | {"public": "yes"},
        DERIVE | {"json": 1},
        DERIVE | {"realm": ""},
        DERIVE | {"realm": {"nested": [[[[]]]]}},
        {k: v for k, v in DERIVE.items() if k != "realm"},
    ]
    for args in cases:
        answer = _ask(setup, root=root, command="derive", args=args)
        assert answer == {"ok": True, "answered": False}, str(args)[:200]
    # A realm of 3 MiB (more than argv could carry) is answered or declined; nothing breaks.
    assert _ask(setup, root=root, command="derive", args=DERIVE | {"realm": big})["ok"] is True
    for name in ("", "/etc/passwd", "a/../../x", "a\x00", "x" * 100_000, 7, None):
        answer = _ask(setup, root=root, command="store-get", args={"name": name})
        assert answer == {"ok": True, "answered": False}, str(name)[:50]
    for args in ([], "x", None, 3):
        assert _ask(setup, root=root, command="derive", args=args)["ok"] is False
    # A frame above the limit is refused and closed; the agent keeps serving.
    refused = _answers(_raw_exchange(setup.sock_dir / "agent.sock", b"\x7f\xff\xff\xff"))
    assert len(refused) == 1 and refused[0]["ok"] is False
    assert _alive(pid) and setup.pid() == pid
    assert _derive(setup, setup.vault).stdout == _expected(setup, setup.vault)


def test_agent_off_never_connects(setup: Setup, tmp_path: Path) -> None:
    """With AUX_SECRETS_AGENT=off no command touches the socket, even a listening one."""
    sock_dir = tmp_path / "fake"
    sock_dir.mkdir(mode=0o700)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(sock_dir / "agent.sock"))
    listener.listen(16)
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(conn)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    env = {"AUX_SECRETS_AGENT_DIR": str(sock_dir)}
    add = cli(
        "store",
        "add",
        "api/token",
        "--vault",
        setup.vault,
        "--no-commit",
        "--password-file",
        setup.pw,
        input=b"t",
    )
    assert add.returncode == 0, add.stderr
    try:
        for value in ("off", "0", "no", "false", " OFF "):
            off = env | {"AUX_SECRETS_AGENT": value}
            for args in (["derive", "web/db"], ["store", "get", "api/token"]):
                done = cli(*args, "--vault", setup.vault, env=off)
                assert_one_line_error(done, NO_PASSWORD)
        assert accepted == []
        # The check is real: without the variable the same commands do connect.
        cli("derive", "web/db", "--vault", setup.vault, env=env)
        assert accepted
    finally:
        listener.close()


@pytest.mark.parametrize("damage", ["mode", "owner", "symlink"])
def test_a_bad_socket_directory_is_refused_in_one_line(
    setup: Setup, tmp_path: Path, damage: str
) -> None:
    _unlock(setup)
    assert setup.run("store", "add", "api/token", "--no-commit", input=b"tok-1").returncode == 0
    expected = _expected(setup, setup.vault)
    if damage == "mode":
        setup.sock_dir.chmod(0o755)
        needle = "open to others"
    elif damage == "owner":
        if os.getuid() != 0:
            pytest.skip("needs root to give the directory to another uid")
        os.chown(setup.sock_dir, 65534, 65534)
        needle = "belongs to uid 65534"
    else:
        link = tmp_path / "agent-link"
        link.symlink_to(setup.sock_dir)
        setup.env = {"AUX_SECRETS_AGENT_DIR": str(link)}
        needle = "is not a directory"
    # Neither the fast path nor the ordinary command uses the agent behind it.
    assert_one_line_error(setup.run("derive", "web/db"), NO_PASSWORD)
    assert_one_line_error(setup.run("store", "get", "api/token"), NO_PASSWORD)
    # A command that would use it says why, in one line, and starts nothing.
    assert_one_line_error(setup.agent("status"), needle)
    assert_one_line_error(setup.run("agent", "unlock", "--password-file", setup.pw), needle)
    # The command unlocking itself still works.
    assert setup.run("derive", "web/db", "--password-file", setup.pw).stdout == expected


@pytest.mark.parametrize("kind", ["directory", "fifo", "file"])
def test_a_socket_path_that_is_no_socket(setup: Setup, kind: str) -> None:
    """Left there by something else: a file or fifo is a dead agent's leftover and is
    replaced; a directory is not removed, and the error says so once, in one line."""
    setup.sock_dir.mkdir(mode=0o700)
    path = setup.sock_dir / "agent.sock"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.write_text("x")
    assert_one_line_error(setup.run("derive", "web/db"), NO_PASSWORD)
    done = setup.run("agent", "unlock", "--password-file", setup.pw)
    if kind != "directory":
        assert done.returncode == 0, done.stderr
        assert _derive(setup, setup.vault).stdout == _expected(setup, setup.vault)
        return
    line = assert_one_line_error(done, "the agent did not start", str(path), "Is a directory")
    assert line.count("aux-secrets:") == 1, line
    assert path.is_dir()


FAST_PATH_CASES = [
    ["derive", "web/db"],
    ["derive", "web/db", "-t", "raw", "-e", "hex"],
    ["derive", "web/db", "-t", "pass", "-e", "hex"],
    ["derive", "web/db", "-t", "raw", "-l", "16", "-e", "base64"],
    ["derive", "web/db", "--public"],
    ["derive", "web/db", "-t", "ed25519", "--public", "-e", "openssh"],
    ["derive", "web/db", "-t", "x25519", "-e", "wireguard", "--public"],
    ["derive", "web/db", "-t", "ec256", "-e", "pem"],
    ["derive", "web/db", "-t", "raw", "-e", "hex", "--json"],
    ["derive", "web/db", "-t", "ed25519", "--json", "--public"],
    ["derive", "web/db", "--charset", "alnum", "-l", "40"],
    ["derive", "web/db", "--charset", "frob"],
    ["derive", "web/db", "-l", "0"],
    ["derive", "web/db", "-t", "raw", "-l", "0"],
    ["derive", "web/db", "-l", "99999999999"],
    ["derive", "web/db", "-e", "frob"],
    ["derive", "web/db", "-t", "frob"],
    ["derive", "a/{x}"],
    ["derive", "a/{period}"],
    ["derive", "aux-secrets/x"],
    ["derive", ""],
    ["derive", "web/db", "-traw", "-ehex", "-l8"],
    ["derive", "web/db", "--type=raw", "--encoding=hex", "--length=8"],
    ["store", "get", "api/token"],
    ["store", "get", "api/missing"],
    ["store", "get", "../x"],
    ["store", "get", "api"],
    ["store", "get", "/api/token"],
]


def test_the_fast_path_says_what_the_ordinary_command_says(setup: Setup) -> None:
    """Output, errors and exit status, argument list by argument list, with the agent
    answering (the fast path) and without it (the typer command, the agent's key streams)."""
    _unlock(setup)
    assert setup.run("store", "add", "api/token", "--no-commit", input=b"tok-1").returncode == 0
    ordinary = setup.env | {"_AUX_SECRETS_NO_FASTPATH": "1"}

    def both(args: list[str]) -> tuple[Any, Any]:
        fast = cli(*args, "--vault", setup.vault, env=setup.env)
        slow = cli(*args, "--vault", setup.vault, env=ordinary)
        return fast, slow

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(both, FAST_PATH_CASES))
    for args, (fast, slow) in zip(FAST_PATH_CASES, results, strict=True):
        assert (fast.returncode, fast.stdout, fast.stderr) == (
            slow.returncode, slow.stdout, slow.stderr,
        ), args  # fmt: skip
    # And the fast path did answer: typer was never imported.
    command = [sys.executable, "-X", "importtime", "-m", "aux_secrets"]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    for env, typer_loaded in ((setup.env, False), (ordinary, True)):
        traced = subprocess.run(
            [*command, "derive", "web/db", "--vault", str(setup.vault)],
            capture_output=True,
            env=clean | env,
            timeout=60,
            check=False,
        )
        assert traced.returncode == 0, traced.stderr
        assert (b" typer\n" in traced.stderr) is typer_loaded
