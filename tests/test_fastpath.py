"""`store get` and `derive` answered from the agent without typer (cli/fastpath.py):
the same bytes, warnings and exit codes as the typer commands, for the argument lists it
takes and for those it hands on."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aux_secrets.cli.fastpath import DERIVE, STORE_GET, parse
from tests.helpers import cli

FAST = ("--argon2-memory", "8", "--argon2-time", "1")
SLOW = {"_AUX_SECRETS_NO_FASTPATH": "1"}
HEAVY = ("typer", "click", "rich")


class Held:
    """A vault the agent holds, with a few store secrets; commands run inside it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.env = {"AUX_SECRETS_AGENT_DIR": str(tmp / "agent")}
        self.pw = tmp / "pw"
        self.pw.write_bytes(b"fast path master password, long enough\n")
        self.vault = tmp / "vault"
        self.other = tmp / "other"  # a vault the agent does not hold
        for root in (self.vault, self.other):
            done = cli("init", root, "--password-file", self.pw, *FAST)
            assert done.returncode == 0, done.stderr
        unlock = ("agent", "unlock", "--vault", self.vault, "--password-file", self.pw)
        assert cli(*unlock, env=self.env).returncode == 0
        for name, value in (("api/token", b"tok-123"), ("api/nl", b"line\n"), ("bin", b"\0\xff")):
            add = ("store", "add", name, "--no-commit", "--vault", self.vault)
            assert cli(*add, input=value, env=self.env).returncode == 0

    def run(self, args: tuple[str, ...], env: dict[str, str] | None = None) -> tuple[object, ...]:
        done = cli(*args, env=self.env | (env or {}), cwd=self.vault)
        return done.returncode, done.stdout, done.stderr


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Held]:
    h = Held(tmp_path_factory.mktemp("fastpath"))
    yield h
    status = json.loads(cli("agent", "status", "--json", env=h.env).stdout)
    cli("agent", "lock", env=h.env)
    pid = status.get("pid")
    deadline = time.monotonic() + 10
    while isinstance(pid, int) and Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.05)


# Taken by the fast path when the agent holds the vault.
ANSWERED = [
    ("derive", "web/db"),
    ("derive", "web/db", "--vault", "VAULT"),
    ("derive", "web/db", "--vault", "VAULTFILE"),
    ("derive", "--vault=VAULT", "web/db"),
    ("derive", "web/db", "-t", "raw", "-l", "16", "-e", "hex"),
    ("derive", "-traw", "-l16", "-ebase64", "web/db"),
    ("derive", "web/db", "--type=raw", "--length=007", "--encoding=binary"),
    ("derive", "web/db", "--type", "raw", "--json"),
    ("derive", "web/db", "--charset", "urlsafe", "--length", "64"),
    ("derive", "web/db", "--charset=digits", "--json"),
    ("derive", "ssh/web1", "--type", "ed25519"),
    ("derive", "ssh/web1", "--type", "ed25519", "--public"),
    ("derive", "ssh/web1", "-t", "ed25519", "-e", "openssh", "--public", "--json"),
    ("derive", "wg/web1", "-t", "x25519", "-e", "wireguard"),
    ("derive", "a/{x}/{y}"),
    ("derive", "ünï/cødé", "--json"),
    ("store", "get", "api/token"),
    ("store", "get", "api/nl"),
    ("store", "get", "bin", "--vault", "VAULT"),
    ("store", "get", "--vault=VAULT", "api/token"),
]
# Handed to the typer command: errors, help, options it does not take, other vaults.
HANDED_ON = [
    ("derive", "a/{period}"),
    ("derive", "web/db", "--public"),
    ("derive", "web/db", "-t", "bogus"),
    ("derive", "web/db", "--length", "0"),
    ("derive", "web/db", "--length", "+5"),
    ("derive", "web/db", "--length", "x"),
    ("derive", "web/db", "--length="),
    ("derive", "web/db", "--type"),
    ("derive", "web/db", "--json", "--json"),
    ("derive", "web/db", "--public=1"),
    ("derive", "web/db", "extra"),
    ("derive", "--", "web/db"),
    ("derive", "-"),
    ("derive", "--help"),
    ("derive", "web/db", "-h"),
    ("derive", "web/db", "--rotation", "monthly"),
    ("derive", "web/db", "--vault", "OTHER"),
    ("derive", "web/db", "--vault", "MISSING"),
    ("derive", "__aux/x"),
    ("derive", "aux-secrets/store-key"),
    ("derive",),
    ("store", "get", "api/missing"),
    ("store", "get", "../x"),
    ("store", "get", "api/token", "--note"),
    ("store", "get", "api/token", "--vault", "OTHER"),
    ("store", "get", "api/token", "--output", "-"),
    ("store", "get"),
    ("store", "get", "--help"),
]


def _paths(held: Held, args: tuple[str, ...]) -> tuple[str, ...]:
    names = {"VAULT": held.vault, "OTHER": held.other, "MISSING": held.tmp / "missing"}
    names["VAULTFILE"] = held.vault / "vault.toml"
    return tuple(
        str(names[a]) if a in names else a.replace("=VAULT", f"={held.vault}") for a in args
    )


@pytest.mark.parametrize("args", ANSWERED + HANDED_ON, ids=" ".join)
def test_the_same_as_the_typer_command(held: Held, args: tuple[str, ...]) -> None:
    argv = _paths(held, args)
    fast = held.run(argv)
    assert fast == held.run(argv, SLOW)
    if args in ANSWERED:
        assert fast[0] == 0 and fast[1], fast


def _imports(held: Held, args: tuple[str, ...], cwd: Path | None = None) -> tuple[int, set[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "aux_secrets", *_paths(held, args)],
        capture_output=True,
        env=env | held.env,
        cwd=cwd or held.vault,
        check=False,
    )
    lines = done.stderr.decode(errors="replace").splitlines()
    names = {line.rsplit("|", 1)[-1].strip() for line in lines if line.startswith("import time:")}
    return done.returncode, names


@pytest.mark.parametrize("args", ANSWERED, ids=" ".join)
def test_answered_without_importing_typer(held: Held, args: tuple[str, ...]) -> None:
    code, names = _imports(held, args)
    assert code == 0
    assert not {n for n in names if n.split(".")[0] in HEAVY}


def test_the_import_check_can_fail(held: Held) -> None:
    code, names = _imports(held, ("derive", "web/db", "--help"))
    assert code == 0
    assert "typer" in names  # (click comes vendored in it, or beside it)


def _on_terminal(held: Held, args: tuple[str, ...], env: dict[str, str]) -> bytes:
    leader, follower = pty.openpty()
    full = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "aux_secrets", *args],
            stdout=follower,
            stderr=subprocess.DEVNULL,
            env=full | held.env | env,
            cwd=held.vault,
            check=False,
        )
        assert done.returncode == 0
        return os.read(leader, 65536)
    finally:
        os.close(leader)
        os.close(follower)


@pytest.mark.parametrize(
    "args",
    [("derive", "web/db"), ("derive", "ssh/x", "-t", "ed25519"), ("store", "get", "api/token")],
    ids=" ".join,
)
def test_the_terminal_newline_rule_is_the_same(held: Held, args: tuple[str, ...]) -> None:
    fast = _on_terminal(held, args, {})
    assert fast == _on_terminal(held, args, SLOW)
    assert fast.endswith(b"\n") == (args[0] == "derive")


@pytest.mark.parametrize(
    "args", [("derive", "web/db"), ("store", "get", "api/token")], ids=" ".join
)
def test_a_closed_pipe_is_reported_the_same(held: Held, args: tuple[str, ...]) -> None:
    def closed(env: dict[str, str]) -> tuple[int, bytes]:
        reader, writer = os.pipe()
        os.close(reader)
        full = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
        try:
            done = subprocess.run(
                [sys.executable, "-m", "aux_secrets", *args],
                stdout=writer,
                stderr=subprocess.PIPE,
                env=full | held.env | env,
                cwd=held.vault,
                check=False,
            )
        finally:
            os.close(writer)
        return done.returncode, done.stderr

    fast = closed({})
    assert fast == closed(SLOW)
    assert fast == (1, b"")  # as click exits on a closed pipe


def test_parse_takes_only_what_it_knows() -> None:
    assert parse(["web", "-traw", "--length=5"], DERIVE) == ("web", {"type": "raw", "length": "5"})
    assert parse(["--json", "web"], DERIVE) == ("web", {"json": ""})
    assert parse(["n", "--vault", "d"], STORE_GET) == ("n", {"vault": "d"})
    for bad in (
        ["web", "-t"],
        ["web", "-t", "-l"],
        ["web", "--json=1"],
        ["web", "--jso"],
        ["web", "-t", "a", "--type", "b"],
        ["a", "b"],
        [""],
        [],
        ["--", "web"],
        ["web", "--vault="],
    ):
        assert parse(bad, DERIVE) is None, bad
    assert parse(["n", "--note"], STORE_GET) is None


# What the fast path may import of aux-secrets, and what it must not import at all: the
# time it takes is mostly imports, and this keeps it near the interpreter's start.
FAST_MODULES = {
    "aux_secrets",
    "aux_secrets.adapters",
    "aux_secrets.adapters.agent_socket",
    "aux_secrets.adapters.umask",
    "aux_secrets.adapters.vault_locate",
    "aux_secrets.cli",
    "aux_secrets.cli.derive_emit",
    "aux_secrets.cli.fastpath",
    "aux_secrets.cli.main",
    "aux_secrets.cli.output",
    "aux_secrets.core",
    "aux_secrets.core.agent_wire",
    "aux_secrets.core.escape",
    "aux_secrets.core.nesting",
    "aux_secrets.errors",
}
NOT_ON_THE_FAST_PATH = {"typing", "pathlib", "tomllib", "dataclasses", "hashlib", "subprocess"}
NOT_ON_THE_FAST_PATH |= {"cryptography", "nacl", "argon2", "threading"}


@pytest.mark.parametrize("args", ANSWERED, ids=" ".join)
def test_answered_with_only_the_lean_modules(held: Held, args: tuple[str, ...]) -> None:
    code, names = _imports(held, args)
    assert code == 0
    ours = {n for n in names if n.split(".")[0] == "aux_secrets"}
    assert ours <= FAST_MODULES, ours - FAST_MODULES
    assert not {n for n in names if n.split(".")[0] in NOT_ON_THE_FAST_PATH}


def test_the_lean_import_check_can_fail(held: Held) -> None:
    """Declined (a vault the agent does not hold): the ordinary command imports the rest."""
    code, names = _imports(held, ("derive", "web/db", "--vault", "OTHER"))
    assert code != 0
    assert "aux_secrets.adapters.vault" in names and "typing" in names


def test_an_agent_that_does_not_know_the_request_is_not_an_error(
    held: Held, tmp_path: Path
) -> None:
    """An agent of an older aux-secrets refuses `answer`: the typer command runs instead."""
    import socket
    import threading

    from aux_secrets.cli import fastpath
    from aux_secrets.core import agent_wire as wire

    directory = tmp_path / "old-agent"
    directory.mkdir(mode=0o700)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(directory / "agent.sock"))
    listener.listen(1)
    asked: list[bytes] = []

    def old_agent() -> None:
        conn, _ = listener.accept()
        with conn:
            asked.append(conn.recv(65536))
            conn.sendall(wire.encode_frame({"ok": False, "kind": "refused", "error": "unknown op"}))

    server = threading.Thread(target=old_agent)
    server.start()
    env = {"AUX_SECRETS_AGENT_DIR": str(directory), "AUX_SECRETS_AGENT": ""}
    try:
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            assert fastpath.answer(["derive", "web/db", "--vault", str(held.vault)]) is None
    finally:
        server.join(10)
        listener.close()
    request = wire.decode_body(asked[0][wire.HEADER_LEN :])
    assert request["op"] == "answer" and request["command"] == "derive"
    assert request["root"] == os.path.realpath(held.vault)


def test_the_vault_is_found_from_a_directory_inside_it(held: Held) -> None:
    inside = held.vault / "deep" / "er"
    inside.mkdir(parents=True, exist_ok=True)
    code, names = _imports(held, ("derive", "web/db"), cwd=inside)
    assert code == 0
    assert "aux_secrets.cli.fastpath" in names and "typer" not in names
    done = cli("derive", "web/db", env=held.env, cwd=inside)
    assert done.stdout == cli("derive", "web/db", env=held.env | SLOW, cwd=inside).stdout
