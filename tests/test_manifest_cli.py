"""``aux-secrets manifest check`` as a real process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, assert_one_line_error, cli

GOLDENS = sorted((FIXTURES / "manifests").glob("*.json"))


@pytest.mark.parametrize("golden", GOLDENS, ids=lambda p: p.stem)
def test_check_accepts_golden(golden: Path) -> None:
    result = cli("manifest", "check", golden)
    assert result.returncode == 0, result.stderr
    first = result.stdout.decode().splitlines()[0]
    assert "manifest version 1 for host" in first


def test_check_json_summary() -> None:
    result = cli("manifest", "check", "--json", FIXTURES / "manifests" / "talos-hmac.json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["ok"] is True
    assert summary["host"] == "api1"
    names = [s["name"] for s in summary["secrets"]]
    assert names == ["talos/hmac", "talos/pagination"]
    assert summary["secrets"][0]["source"] == "derive pass from talos/hmac/{period} (monthly)"
    assert "talos/hmac:retired" in summary["templates"][0]["uses"]


def test_check_toml() -> None:
    result = cli("manifest", "check", FIXTURES / "manifests" / "debian-hand.toml")
    assert result.returncode == 0, result.stderr
    assert b"host files1" in result.stdout


def test_check_stdin() -> None:
    data = (FIXTURES / "manifests" / "users.json").read_bytes()
    result = cli("manifest", "check", "-", input=data)
    assert result.returncode == 0, result.stderr


def test_check_names_json_path(tmp_path: Path) -> None:
    doc = json.loads((FIXTURES / "manifests" / "web-db.json").read_bytes())
    doc["secrets"]["db/password"]["mode"] = "440"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    before = bad.read_bytes()
    result = cli("manifest", "check", bad)
    line = assert_one_line_error(result, '$.secrets["db/password"].mode', str(bad))
    assert "four octal digits" in line
    assert result.stdout == b""
    assert bad.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "not valid JSON"),
        (b'{"version": 9, "host": "h"}', "$.version"),
        (b"\x00\x01garbage", "not valid JSON"),
        (b'{"version": 1}', "$.host"),
    ],
)
def test_check_refuses_bad_files(tmp_path: Path, content: bytes, needle: str) -> None:
    bad = tmp_path / "m.json"
    bad.write_bytes(content)
    assert_one_line_error(cli("manifest", "check", bad), needle)


def test_check_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(cli("manifest", "check", tmp_path / "nope.json"), "does not exist")


def test_check_summary_escapes_a_realm_with_control_characters(tmp_path: Path) -> None:
    # A realm may be any string (gokey's are); the summary must not send a terminal escape.
    manifest = tmp_path / "m.json"
    realm = "db/\x1b]0;owned\x07web1"
    doc = {
        "version": 1,
        "host": "web1",
        "secrets": {"db": {"source": {"derive": {"realm": realm}}}},
    }
    manifest.write_text(json.dumps(doc))
    result = cli("manifest", "check", manifest)
    assert result.returncode == 0, result.stderr
    assert b"\x1b" not in result.stdout
    assert b"db/\\x1b]0;owned\\x07web1" in result.stdout
