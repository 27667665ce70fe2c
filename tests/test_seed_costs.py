"""A seed header tampered within the accepted bounds: one error line, before Argon2id runs.

vault.toml pins the Argon2id costs the seed file was written with; a header asking for
others is refused without running Argon2id (it used to take minutes and ~4 GiB). An
older vault pinning nothing refuses costs far above the defaults, and names the pin to
add. Where memory is limited, Argon2id failing to allocate is one line too.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from aux_secrets.core import auxv1
from tests.helpers import assert_one_line_error, cli

PW = "correct horse"
FAST = ("--argon2-memory", "8", "--argon2-time", "1")
OFFSET = len(auxv1.MAGIC) + 2  # memory KiB, time cost, parallelism: three big-endian u32


def make(tmp_path: Path) -> tuple[Path, Path]:
    pw = tmp_path / "pw"
    pw.write_text(PW + "\n")
    vault = tmp_path / "vault"
    assert cli("init", vault, "--password-file", pw, *FAST).returncode == 0
    return vault, pw


def set_header(vault: Path, memory: int, time_cost: int, lanes: int) -> None:
    seed = next(p for p in vault.iterdir() if p.name.startswith("seed"))
    data = bytearray(seed.read_bytes())
    struct.pack_into(">III", data, OFFSET, memory, time_cost, lanes)
    seed.write_bytes(bytes(data))


def derive(vault: Path, pw: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
    return cli("derive", "some/realm", "--vault", vault, "--password-file", pw, *extra)


def test_init_pins_the_costs(tmp_path: Path) -> None:
    vault, _ = make(tmp_path)
    seed = tomllib.loads((vault / "vault.toml").read_text())["seed"]
    assert (seed["memory_kib"], seed["time_cost"], seed["parallelism"]) == (8, 1, 1)


@pytest.mark.parametrize(
    "costs",
    [
        (auxv1.MAX_MEMORY_KIB, auxv1.MAX_TIME_COST, 1),  # the review's minutes and 4 GiB
        (8, auxv1.MAX_TIME_COST, 1),
        (32, 1, 4),
        (9, 1, 1),
    ],
)
def test_tampered_costs_within_bounds_refused_before_argon2(
    tmp_path: Path, costs: tuple[int, int, int]
) -> None:
    vault, pw = make(tmp_path)
    good = derive(vault, pw)
    assert good.returncode == 0
    set_header(vault, *costs)
    result = derive(vault, pw)
    line = assert_one_line_error(result, "the seed file was changed")
    assert f"memory {costs[0]} KiB" in line
    assert b"hint: restore the seed file" in result.stderr


def unpin(vault: Path) -> None:
    text = (vault / "vault.toml").read_text()
    kept = [
        line
        for line in text.splitlines()
        if not line.startswith(("memory_kib", "time_cost", "parallelism"))
    ]
    (vault / "vault.toml").write_text("\n".join(kept) + "\n")


def test_a_vault_without_pins_refuses_costs_far_above_the_defaults(tmp_path: Path) -> None:
    vault, pw = make(tmp_path)
    unpin(vault)
    assert derive(vault, pw).returncode == 0
    set_header(vault, auxv1.MAX_MEMORY_KIB, auxv1.MAX_TIME_COST, 1)
    result = derive(vault, pw)
    assert_one_line_error(result, "far above the defaults")
    assert b"memory_kib = 4194304" in result.stderr


def test_rewrap_pins_an_unpinned_vault(tmp_path: Path) -> None:
    vault, pw = make(tmp_path)
    unpin(vault)
    new = tmp_path / "new"
    new.write_text("another horse\n")
    done = cli(
        "seed", "rewrap", "--vault", vault, "--password-file", pw, "--new-password-file", new
    )
    assert done.returncode == 0, done.stderr
    seed = tomllib.loads((vault / "vault.toml").read_text())["seed"]
    assert seed["memory_kib"] == 8
    assert derive(vault, new).returncode == 0


def test_not_enough_memory_is_one_line(tmp_path: Path) -> None:
    prlimit = shutil.which("prlimit")
    assert prlimit, "prlimit (util-linux) is needed"
    vault, pw = make(tmp_path)
    # Honest, pinned costs of 1 GiB, under an address-space limit of 768 MiB.
    text = (vault / "vault.toml").read_text().replace("memory_kib = 8\n", "memory_kib = 1048576\n")
    (vault / "vault.toml").write_text(text)
    set_header(vault, 1024 * 1024, 1, 1)
    result = subprocess.run(
        [prlimit, f"--as={768 * 1024 * 1024}", "--", sys.executable, "-m", "aux_secrets",
         "derive", "some/realm", "--vault", str(vault), "--password-file", str(pw)],
        capture_output=True, timeout=300, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")},
    )  # fmt: skip
    assert_one_line_error(result, "Argon2id could not run")
