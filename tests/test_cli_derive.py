"""`aux-secrets derive`: vault use, --output/--json/--batch/--rotation, bad input, gokey compat."""

from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import assert_one_line_error, cli, require_program

FAST = ("--argon2-memory", "8", "--argon2-time", "1")
PASSWORD = "correct horse"


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("derive")
    pw = root / "pw"
    pw.write_text(PASSWORD + "\n")
    result = cli("init", root / "vault", "--password-file", pw, *FAST)
    assert result.returncode == 0, result.stderr
    return root / "vault", pw


def run(
    vault: tuple[Path, Path], *args: str | Path, **kw: object
) -> subprocess.CompletedProcess[bytes]:
    return cli("derive", *args, "--vault", vault[0], "--password-file", vault[1], **kw)  # type: ignore[arg-type]


def ok(result: subprocess.CompletedProcess[bytes]) -> bytes:
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_derive_is_deterministic_and_typed(vault: tuple[Path, Path]) -> None:
    first = ok(run(vault, "db/web1"))
    assert first == ok(run(vault, "db/web1"))
    assert len(first) == 10 and not first.endswith(b"\n")
    urlsafe = ok(run(vault, "db/web1", "--charset", "urlsafe", "--length", "64"))
    assert len(urlsafe) == 64 and urlsafe != first
    assert ok(run(vault, "ssh/web1", "--type", "ed25519", "--public")).startswith(b"ssh-ed25519 ")
    pem = ok(run(vault, "ssh/web1", "--type", "ed25519"))
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n") and pem.endswith(b"\n")


def test_output_file_and_json(vault: tuple[Path, Path], tmp_path: Path) -> None:
    target = tmp_path / "secret"
    assert ok(run(vault, "db/web1", "--output", target)) == b""
    assert target.stat().st_mode & 0o777 == 0o600
    assert target.read_bytes() == ok(run(vault, "db/web1"))
    doc = json.loads(ok(run(vault, "k", "--type", "raw", "--json")))
    assert doc["realm"] == "k" and doc["type"] == "raw" and doc["encoding"] == "base64"
    raw = ok(run(vault, "k", "--type", "raw"))
    import base64

    assert base64.b64decode(doc["value"]) == raw and len(raw) == 32


def test_output_into_missing_directory_creates_nothing(
    vault: tuple[Path, Path], tmp_path: Path
) -> None:
    result = run(vault, "db/web1", "--output", tmp_path / "missing" / "secret")
    assert_one_line_error(result, "does not exist")
    assert not (tmp_path / "missing").exists()
    assert result.stdout == b""


def test_output_onto_a_directory_is_one_clear_line(
    vault: tuple[Path, Path], tmp_path: Path
) -> None:
    target = tmp_path / "out"
    target.mkdir()
    result = run(vault, "db/web1", "--output", target)
    line = assert_one_line_error(result, f"{target} is a directory")
    assert ".tmp" not in line
    assert list(target.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_output_onto_a_device_or_pipe_is_refused(vault: tuple[Path, Path], tmp_path: Path) -> None:
    # As /dev/null or /dev/stdout (a link to a pipe) would be: the node stays.
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    (tmp_path / "stdout").symlink_to(fifo)
    for target in (fifo, tmp_path / "stdout"):
        result = run(vault, "db/web1", "--output", target)
        assert_one_line_error(result, str(target), "not a regular file")
    assert stat.S_ISFIFO(fifo.stat().st_mode) and (tmp_path / "stdout").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "stdout"]


def test_output_dash_is_standard_output(vault: tuple[Path, Path], tmp_path: Path) -> None:
    # As `bundle -o -`: no plaintext file named '-' in the working directory.
    expected = ok(run(vault, "db/web1"))
    assert ok(run(vault, "db/web1", "--output", "-", cwd=tmp_path)) == expected
    assert list(tmp_path.iterdir()) == []


def test_batch_one_unlock_and_same_values(vault: tuple[Path, Path], tmp_path: Path) -> None:
    counter = tmp_path / "count"
    command = f"echo x >> {counter}; cat {vault[1]}"
    lines = [
        {"realm": "db/web1"},
        {"realm": "db/web1", "charset": "urlsafe", "length": 64},
        {"realm": "ssh/web1", "type": "ed25519", "public": True},
        {"realm": "k", "type": "raw", "encoding": "hex", "length": 16},
        {"realm": "k", "type": "raw"},
    ]
    batch = "\n".join(json.dumps(line) for line in lines) + "\n\n"
    result = cli(
        "derive",
        "--batch",
        "-",
        "--vault",
        vault[0],
        "--password-command",
        command,
        input=batch.encode(),
    )
    out = [json.loads(line) for line in ok(result).splitlines()]
    assert counter.read_text() == "x\n"  # the password was read (and the vault unlocked) once
    assert [o["realm"] for o in out] == [line["realm"] for line in lines]
    assert out[0]["value"].encode() == ok(run(vault, "db/web1"))
    assert out[2]["value"].startswith("ssh-ed25519 ")
    assert len(out[3]["value"]) == 32 and "encoding" not in out[3]
    assert out[4]["encoding"] == "base64"


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("not json", "not valid JSON"),
        ('["a"]', "expected a JSON object"),
        ('{"realm": "a", "colour": "red"}', "unknown field 'colour'"),
        ('{"realm": 3}', "'realm' must be a string"),
        ('{"realm": "a", "length": "8"}', "'length' has the wrong type"),
        ('{"realm": "a", "type": "dsa"}', "unknown type"),
        ('{"realm": ""}', "realm is empty"),
        ('{"realm": "aux-secrets/store/v1/x"}', "reserved"),
    ],
)
def test_batch_bad_line_names_line_number(vault: tuple[Path, Path], line: str, needle: str) -> None:
    batch = '{"realm": "fine"}\n\n' + line + "\n"
    result = cli(
        "derive",
        "--batch",
        "-",
        "--vault",
        vault[0],
        "--password-file",
        vault[1],
        input=batch.encode(),
    )
    assert_one_line_error(result, "batch line 3", needle)
    assert result.stdout == b""


def test_rotation_slots(vault: tuple[Path, Path]) -> None:
    args = (
        "talos/hmac/{period}",
        "--rotation",
        "monthly",
        "--retired",
        "2",
        "--ahead",
        "1",
        "--at",
        "2026-11-22T00:00:00Z",
        "--charset",
        "urlsafe",
        "--length",
        "64",
    )
    doc = json.loads(ok(run(vault, *args, "--json")))
    slots = doc["slots"]
    assert [s["role"] for s in slots] == ["current", "retired", "retired", "ahead"]
    assert [s["realm"] for s in slots] == [
        "talos/hmac/2026-11",
        "talos/hmac/2026-10",
        "talos/hmac/2026-09",
        "talos/hmac/2026-12",
    ]
    assert slots[0]["not_before"] == "2026-11-01T00:00:00Z"
    assert slots[0]["not_after"] == "2026-12-01T00:00:00Z"
    assert len({s["value"] for s in slots}) == 4
    current = ok(run(vault, *args))
    assert current.decode() == slots[0]["value"]
    assert current == ok(run(vault, "talos/hmac/2026-11", "--charset", "urlsafe", "--length", "64"))
    december = [a if a != "2026-11-22T00:00:00Z" else "2026-12-01T00:00:00Z" for a in args]
    later = json.loads(ok(run(vault, *december, "--json")))
    assert later["slots"][1]["value"] == slots[0]["value"]  # November is retired in December


# -- bad input: one clear line, non-zero exit, nothing written ---------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("x", "--type", "dsa"), "unknown type"),
        (("x", "--charset", "klingon"), "unknown charset"),
        (("x", "--length", "3"), "length"),
        (("x", "--type", "ed25519", "--length", "40"), "--length applies to pass and raw"),
        (("",), "realm is empty"),
        (("aux-secrets/store/v1/x",), "reserved"),
        (("x", "--type", "raw", "--public"), "no public half"),
        (("x", "--retired", "1"), "need --rotation"),
        (("x{period}", "--rotation", "hourly"), "period"),
        (("x/{period}",), "has no rotation"),
        (("x", "--rotation", "monthly"), "no {period}"),
        (("x", "--seed-mode", "legacy"), "need --scheme gokey"),
    ],
)
def test_bad_requests(
    vault: tuple[Path, Path], tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    target = tmp_path / "out"
    result = run(vault, *args, "--output", target)
    assert_one_line_error(result, needle)
    assert not target.exists()
    assert result.stdout == b""


def test_wrong_password(vault: tuple[Path, Path], tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("correct horsE")
    target = tmp_path / "out"
    target.write_bytes(b"keep")
    result = cli("derive", "x", "--vault", vault[0], "--password-file", wrong, "--output", target)
    assert_one_line_error(result, "does not open")
    assert target.read_bytes() == b"keep"


def test_unreadable_password_file(vault: tuple[Path, Path], tmp_path: Path) -> None:
    for path, needle in [(tmp_path, "is a directory"), (tmp_path / "none", "does not exist")]:
        result = cli("derive", "x", "--vault", vault[0], "--password-file", path)
        assert_one_line_error(result, "password file", needle)
    empty = tmp_path / "empty"
    empty.write_text("  \n")
    assert_one_line_error(
        cli("derive", "x", "--vault", vault[0], "--password-file", empty), "empty"
    )


def test_no_terminal_and_no_source(vault: tuple[Path, Path]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    result = subprocess.run(
        [sys.executable, "-m", "aux_secrets", "derive", "x", "--vault", str(vault[0])],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        env=env,
        start_new_session=True,
        timeout=60,
        check=False,
    )
    assert_one_line_error(result, "no terminal")
    assert b"AUX_SECRETS_PASSWORD_FILE" in result.stderr


def test_password_command_failure_does_not_echo(vault: tuple[Path, Path]) -> None:
    result = cli("derive", "x", "--vault", vault[0], "--password-command", "echo hunter2; exit 4")
    assert_one_line_error(result, "exit status 4")
    assert b"hunter2" not in result.stderr + result.stdout


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda b: b[:50], "truncated"),
        (lambda b: b"", "truncated"),
        (lambda b: b"garbage" * 20, "not an aux-v1 seed file"),
        (lambda b: b + b"\n", "trailing"),
        (lambda b: b[:-1] + bytes([b[-1] ^ 1]), "does not open"),
    ],
    ids=["truncated", "empty", "garbage", "trailing", "tampered"],
)
def test_bad_vault_seed_file(tmp_path: Path, edit: object, needle: str) -> None:
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD)
    assert cli("init", tmp_path / "v", "--password-file", pw, *FAST).returncode == 0
    seed = tmp_path / "v" / "seed.aux-v1"
    seed.write_bytes(edit(seed.read_bytes()))  # type: ignore[operator]
    result = cli("derive", "x", "--vault", tmp_path / "v", "--password-file", pw)
    assert_one_line_error(result, needle)
    assert result.stdout == b""


# -- ad-hoc gokey: identical to the real gokey binary --------------------------------


@pytest.fixture(scope="module")
def gokey_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Path]:
    gokey = require_program("gokey", "gokey")
    root = tmp_path_factory.mktemp("gokey")
    pw = root / "pw"
    pw.write_text(PASSWORD)
    seed = root / "seed"
    subprocess.run([gokey, "-p", PASSWORD, "-t", "seed", "-o", str(seed)], check=True)
    return gokey, pw, seed


def gokey_out(gokey: str, pw: Path, *args: str | Path) -> bytes:
    return subprocess.run(
        [gokey, "-P", str(pw), *map(str, args)], capture_output=True, check=True
    ).stdout


def ours(pw: Path, *args: str | Path) -> subprocess.CompletedProcess[bytes]:
    return cli("derive", *args, "--scheme", "gokey", "--password-file", pw)


CASES = [
    ("pass", ()),
    ("raw", ("--encoding", "hex")),
    ("ed25519", ()),
    ("ec256", ()),
]


@pytest.mark.parametrize(("type_", "extra"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("seeded", [False, True], ids=["unseeded", "legacy-seeded"])
def test_matches_gokey(
    gokey_setup: tuple[str, Path, Path], type_: str, extra: tuple[str, ...], seeded: bool
) -> None:
    gokey, pw, seed = gokey_setup
    realm = "example.com/ünïcode"
    seed_args: tuple[str | Path, ...] = ("-s", seed) if seeded else ("-u",)
    expected = gokey_out(gokey, pw, "-r", realm, "-t", type_, *seed_args)
    if type_ == "raw":
        expected = expected.hex().encode()
    our_seed: tuple[str | Path, ...] = (
        ("--seed", seed, "--seed-mode", "legacy") if seeded else ("--no-seed",)
    )
    result = ours(pw, realm, "--type", type_, *extra, *our_seed)
    assert ok(result) == expected
    assert (b"CVE-2025-13353" in result.stderr) == seeded


def test_passwords_match_gokey_batch(gokey_setup: tuple[str, Path, Path], tmp_path: Path) -> None:
    gokey, pw, seed = gokey_setup
    rng = random.Random(20261122)
    alphabet = "abcxyz0189-./_ÄéЖ日本😀"
    requests = [
        {
            "realm": "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 24))),
            "length": rng.randint(8, 64),
        }
        for _ in range(12)
    ]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(json.dumps(r) for r in requests) + "\n")
    for seed_args, our_args in [
        ((), ()),
        (("-s", str(seed)), ("--seed", str(seed), "--seed-mode", "legacy")),
    ]:
        result = cli(
            "derive", "--batch", batch, "--scheme", "gokey", "--password-file", pw, *our_args
        )
        got = [json.loads(line)["value"].encode() for line in ok(result).splitlines()]
        want = [
            gokey_out(gokey, pw, "-r", r["realm"], "-l", str(r["length"]), *seed_args)
            for r in requests
        ]
        assert got == want


def test_gokey_keys_without_seed_need_no_seed(gokey_setup: tuple[str, Path, Path]) -> None:
    _, pw, _ = gokey_setup
    result = ours(pw, "x", "--type", "ed25519")
    assert_one_line_error(result, "needs --no-seed")
    ok(ours(pw, "x"))  # passwords work unseeded, as with gokey


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda b: b[:100], "gokey seed file is 100 bytes"),
        (lambda b: b"", "empty"),
        (lambda b: b + b"\x00", "257 bytes"),
        (lambda b: bytes(256), "wrong master password"),
    ],
    ids=["truncated", "empty", "trailing", "garbage"],
)
def test_bad_gokey_seed(
    gokey_setup: tuple[str, Path, Path], tmp_path: Path, edit: object, needle: str
) -> None:
    _, pw, seed = gokey_setup
    bad = tmp_path / "seed"
    bad.write_bytes(edit(seed.read_bytes()))  # type: ignore[operator]
    assert_one_line_error(ours(pw, "x", "--seed", bad), needle)


def test_gokey_wrong_password_and_skip(gokey_setup: tuple[str, Path, Path], tmp_path: Path) -> None:
    gokey, pw, seed = gokey_setup
    wrong = tmp_path / "wrong"
    wrong.write_text("nope")
    assert_one_line_error(
        ours(wrong, "x", "--seed", seed, "--seed-mode", "legacy"), "wrong master password"
    )
    padded = tmp_path / "padded"
    padded.write_bytes(b"0123456789" + seed.read_bytes())
    expected = gokey_out(gokey, pw, "-r", "x", "-s", seed)
    got = ours(pw, "x", "--seed", padded, "--seed-skip", "10", "--seed-mode", "legacy")
    assert ok(got) == expected
