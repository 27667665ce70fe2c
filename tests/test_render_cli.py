"""The render command against a real vault: masked preview, --reveal, --at, failures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import VECTORS, assert_one_line_error, cli

PASSWORD = b"render tests master password\n"
MANIFEST = VECTORS / "render" / "talos-manifest.json"
DEFAULT_VALUE = b'legacy$default"fallback\\secret'


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("render-vault")
    password_file = directory / "pw"
    password_file.write_bytes(PASSWORD)
    root = directory / "vault"
    result = cli(
        "init", root, "--password-file", password_file, "--argon2-memory", "8", "--argon2-time", "1"
    )
    assert result.returncode == 0, result.stderr
    result = cli(
        "store",
        "add",
        "talos/legacy-default",
        "--vault",
        root,
        "--password-file",
        password_file,
        "--no-commit",
        input=DEFAULT_VALUE,
    )
    assert result.returncode == 0, result.stderr
    return root, password_file


def args(vault: tuple[Path, Path]) -> list[str | Path]:
    return ["--vault", vault[0], "--password-file", vault[1]]


def derive(vault: tuple[Path, Path], realm: str, *extra: str) -> bytes:
    result = cli("derive", realm, *extra, *args(vault))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_masked_preview_shows_structure_not_values(vault: tuple[Path, Path]) -> None:
    result = cli("render", "--manifest", MANIFEST, "--at", "2026-11-22T00:00:00Z", *args(vault))
    assert result.returncode == 0, result.stderr
    out = result.stdout.decode()
    assert out.startswith("# host talos1 at 2026-11-22T00:00:00Z (masked)\n")
    assert (
        "== template talos/secrets.yaml -> /etc/talos/secrets.yaml (talos:talos 0440, yaml)" in out
    )
    assert '    current: "********"\n    retired: ["********"]\n' in out
    assert 'TALOS_SECRETS_PAGINATION_RETIRED="********,********"' in out
    hmac = derive(vault, "talos/hmac/2026-11", "--charset", "urlsafe", "--length", "64")
    assert hmac not in result.stdout
    assert b"legacy" not in result.stdout
    # The public half of a key is not secret and is shown.
    public = derive(vault, "talos/signing", "--type", "ed25519", "--public").strip()
    assert public in result.stdout


def test_reveal_shows_derived_and_stored_values(vault: tuple[Path, Path]) -> None:
    result = cli(
        "render", "--manifest", MANIFEST, "--at", "2026-11-22T00:00:00Z", "--reveal", *args(vault)
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    current = derive(vault, "talos/hmac/2026-11", "--charset", "urlsafe", "--length", "64")
    retired = derive(vault, "talos/hmac/2026-10", "--charset", "urlsafe", "--length", "64")
    assert b"TALOS_SECRETS_HMAC_CURRENT=" + current + b"\n" in out
    assert b'    current: "' + current + b'"\n    retired: ["' + retired + b'"]' in out
    assert b'"current": "legacy$default\\"fallback\\\\secret"' in out  # JSON escaping
    assert b'TALOS_SECRETS_DEFAULT_CURRENT="legacy\\$default\\"fallback\\\\secret"' in out


def test_at_travels_in_time(vault: tuple[Path, Path]) -> None:
    result = cli(
        "render", "--manifest", MANIFEST, "--at", "2026-12-01T00:00:00Z", "--reveal", *args(vault)
    )
    assert result.returncode == 0, result.stderr
    december = derive(vault, "talos/hmac/2026-12", "--charset", "urlsafe", "--length", "64")
    november = derive(vault, "talos/hmac/2026-11", "--charset", "urlsafe", "--length", "64")
    assert b"TALOS_SECRETS_HMAC_CURRENT=" + december + b"\n" in result.stdout
    assert b"TALOS_SECRETS_HMAC_RETIRED=" + november + b"\n" in result.stdout


def test_short_values_masked_at_fixed_length(vault: tuple[Path, Path], tmp_path: Path) -> None:
    m = tmp_path / "m.json"
    m.write_text(
        json.dumps(
            {
                "version": 1,
                "host": "h",
                "secrets": {
                    "pin": {
                        "source": {"derive": {"realm": "pin", "length": 4, "charset": "digits"}}
                    }
                },
            }
        )
    )
    result = cli("render", "--manifest", m, *args(vault))
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines()[-1] == "********"


def test_missing_store_secret_is_an_error_line_others_render(
    vault: tuple[Path, Path], tmp_path: Path
) -> None:
    doc = json.loads(MANIFEST.read_text())
    doc["secrets"]["talos/default"]["source"] = {"store": "talos/absent"}
    m = tmp_path / "m.json"
    m.write_text(json.dumps(doc))
    result = cli("render", "--manifest", m, "--at", "2026-11-22T00:00:00Z", *args(vault))
    assert result.returncode != 0
    stderr = result.stderr.decode()
    assert "error: secret 'talos/default': store secret talos/absent does not exist" in stderr
    # the templates that use it
    assert "template 'talos/env': uses secret 'talos/default', which could not be" in stderr
    assert "aux-secrets: error: 3 of 6 files of host 'talos1' could not be rendered" in stderr
    assert b"== secret talos/hmac" in result.stdout
    assert b"Traceback" not in result.stderr


def test_wrong_password(vault: tuple[Path, Path], tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"not the password\n")
    result = cli("render", "--manifest", MANIFEST, "--vault", vault[0], "--password-file", bad)
    assert_one_line_error(result)
    assert result.stdout == b""


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--at", "tomorrow"], "not an ISO 8601 instant"),
        (["--at", "2026-11-22T00:00:00"], "has no time zone"),
        (["--host", "other"], "is for host 'talos1', not 'other'"),
    ],
)
def test_usage_errors(vault: tuple[Path, Path], extra: list[str], needle: str) -> None:
    result = cli("render", "--manifest", MANIFEST, *extra, *args(vault))
    assert_one_line_error(result, needle)


def test_bad_manifest(vault: tuple[Path, Path], tmp_path: Path) -> None:
    m = tmp_path / "m.json"
    m.write_bytes(MANIFEST.read_bytes()[:200])
    assert_one_line_error(cli("render", "--manifest", m, *args(vault)), str(m))


def test_help_has_example() -> None:
    result = cli("render", "--help")
    assert result.returncode == 0
    assert b"Example: aux-secrets render --manifest" in result.stdout


def test_host_finds_its_manifest_in_the_vault(vault: tuple[Path, Path]) -> None:
    from pyrage import x25519

    root = vault[0]
    (root / "talos1.json").write_bytes(MANIFEST.read_bytes())
    recipient = str(x25519.Identity.generate().to_public())
    added = cli(
        "host", "add", "talos1", "--age", recipient, "--manifest", "talos1.json", "--vault", root
    )
    assert added.returncode == 0, added.stderr
    result = cli("render", "--host", "talos1", "--at", "2026-11-22T00:00:00Z", *args(vault))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(b"# host talos1 at 2026-11-22T00:00:00Z (masked)\n")
    missing = cli("render", "--host", "nobody", *args(vault))
    assert_one_line_error(missing, "host nobody is not in the vault")
