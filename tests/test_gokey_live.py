"""The gokey scheme against the real Debian gokey (0.1.2: unseeded and legacy-seeded)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aux_secrets.core.derive import DeriveRequest, derive
from aux_secrets.core.gokey import GokeySeeded, GokeyUnseeded
from tests.helpers import require_program

# Realms as a user could type them: any non-empty text without NUL or surrogates.
REALMS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=40,
)
# Master passwords: gokey's -P trims surrounding whitespace, so do we; keep them non-empty.
PASSWORDS = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc"), blacklist_characters="\x00"),
    min_size=1,
    max_size=30,
)
LIVE = settings(
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Oracle:
    """Runs gokey with a password file and (optionally) a seed file made by gokey."""

    def __init__(self, workdir: Path) -> None:
        self.gokey = require_program("gokey", "gokey")
        self.dir = workdir
        self.seed_password = "live seed pw"
        self.seed = workdir / "seed.bin"
        subprocess.run(
            [self.gokey, "-p", self.seed_password, "-t", "seed", "-o", str(self.seed)],
            check=True,
            capture_output=True,
        )

    def run(self, password: str, realm: str, type: str, length: int | None, seeded: bool) -> bytes:
        pwfile = self.dir / "pw"
        pwfile.write_bytes(password.encode() + b"\n")
        argv = [self.gokey, "-P", str(pwfile), f"-r={realm}", "-t", type]
        if length is not None:
            argv.append(f"-l={length}")
        argv += ["-s", str(self.seed)] if seeded else ["-u"]
        done = subprocess.run(argv, capture_output=True, check=False, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture(scope="module")
def oracle(tmp_path_factory: pytest.TempPathFactory) -> Oracle:
    return Oracle(tmp_path_factory.mktemp("gokey-live"))


def _ours(oracle: Oracle, password: str, request: DeriveRequest, seeded: bool) -> bytes:
    if seeded:
        scheme: GokeySeeded | GokeyUnseeded = GokeySeeded(
            oracle.seed_password.encode(), oracle.seed.read_bytes(), "legacy"
        )
    else:
        scheme = GokeyUnseeded(password.encode())
    return derive(scheme, request)


def _check(
    oracle: Oracle, password: str, realm: str, type: str, length: int | None, seeded: bool
) -> None:
    pw = oracle.seed_password if seeded else password
    expected = oracle.run(pw, realm, type, length, seeded)
    assert _ours(oracle, pw, DeriveRequest(realm, type, length=length), seeded) == expected


@settings(LIVE, max_examples=40)
@given(password=PASSWORDS, realm=REALMS, length=st.integers(8, 64), seeded=st.booleans())
def test_pass_matches_gokey(
    oracle: Oracle, password: str, realm: str, length: int, seeded: bool
) -> None:
    _check(oracle, password, realm, "pass", length, seeded)


@settings(LIVE, max_examples=10)
@given(password=PASSWORDS, realm=REALMS, seeded=st.booleans())
def test_pass_default_length_matches_gokey(
    oracle: Oracle, password: str, realm: str, seeded: bool
) -> None:
    _check(oracle, password, realm, "pass", None, seeded)


@settings(LIVE, max_examples=15)
@given(
    password=PASSWORDS, realm=REALMS, length=st.none() | st.integers(1, 300), seeded=st.booleans()
)
def test_raw_matches_gokey(
    oracle: Oracle, password: str, realm: str, length: int | None, seeded: bool
) -> None:
    _check(oracle, password, realm, "raw", length, seeded)


@pytest.mark.parametrize("type", ["ed25519", "x25519", "ec256", "ec384", "ec521"])
@settings(LIVE, max_examples=8)
@given(password=PASSWORDS, realm=REALMS, seeded=st.booleans())
def test_small_keys_match_gokey(
    oracle: Oracle, type: str, password: str, realm: str, seeded: bool
) -> None:
    _check(oracle, password, realm, type, None, seeded)


@settings(LIVE, max_examples=4)
@given(password=PASSWORDS, realm=REALMS, seeded=st.booleans())
def test_rsa2048_matches_gokey(oracle: Oracle, password: str, realm: str, seeded: bool) -> None:
    _check(oracle, password, realm, "rsa2048", None, seeded)


@pytest.mark.slow
@pytest.mark.parametrize(("realm", "seeded"), [("mail.example.org/dkim", False), ("Ключ", True)])
def test_rsa4096_matches_gokey(oracle: Oracle, realm: str, seeded: bool) -> None:
    _check(oracle, "rsa4096 master", realm, "rsa4096", None, seeded)


def test_seed_skip_matches_gokey(oracle: Oracle, tmp_path: Path) -> None:
    padded = tmp_path / "padded.bin"
    padded.write_bytes(b"\xff" * 33 + oracle.seed.read_bytes())
    pwfile = tmp_path / "pw"
    pwfile.write_text(oracle.seed_password)
    done = subprocess.run(
        [
            oracle.gokey,
            "-P",
            str(pwfile),
            "-r",
            "skip.example",
            "-t",
            "pass",
            "-s",
            str(padded),
            "-skip",
            "33",
        ],
        capture_output=True,
        check=True,
    )
    scheme = GokeySeeded(oracle.seed_password.encode(), padded.read_bytes(), "legacy", skip=33)
    assert derive(scheme, DeriveRequest("skip.example")) == done.stdout


def test_wrong_password_is_refused_by_gokey_and_us(oracle: Oracle, tmp_path: Path) -> None:
    from aux_secrets.errors import WrongPasswordError

    pwfile = tmp_path / "pw"
    pwfile.write_text("not the seed password")
    done = subprocess.run(
        [oracle.gokey, "-P", str(pwfile), "-r", "x", "-t", "pass", "-s", str(oracle.seed)],
        capture_output=True,
        check=False,
    )
    assert done.returncode != 0 and done.stdout == b""
    with pytest.raises(WrongPasswordError):
        GokeySeeded(b"not the seed password", oracle.seed.read_bytes(), "legacy")
