"""Deeply nested JSON and TOML: one error line from every reader, never a traceback.

The generation record and the pending record are caches: nested too deeply, they count
as absent (docs/spec/installer.md), like any other damaged record.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from aux_secrets.adapters.installer import FileToWrite, Tree, install_tree
from aux_secrets.adapters.installer.layout import META_NAME
from aux_secrets.adapters.installer.restarts import PENDING_NAME
from aux_secrets.core.nesting import MAX_DEPTH, loads_json, loads_toml
from tests.helpers import assert_one_line_error, cli

DEEP = 100_000
SHALLOW_BUT_DEEP = MAX_DEPTH + 1  # parses, but deeper than any format of ours
PW = "correct horse"
FAST = ("--argon2-memory", "8", "--argon2-time", "1")


def deep_json(levels: int) -> str:
    return "[" * levels + "]" * levels


def deep_toml(levels: int, inline: bool = False) -> str:
    if inline:
        return "a = " + "{b = " * levels + "1" + "}" * levels + "\n"
    return "a = " + "[" * levels + "]" * levels + "\n"


@pytest.mark.parametrize("levels", [DEEP, SHALLOW_BUT_DEEP])
def test_the_parsers_raise_their_own_errors(levels: int) -> None:
    with pytest.raises(json.JSONDecodeError, match="nested more than"):
        loads_json(deep_json(levels))
    for inline in (False, True):
        with pytest.raises(tomllib.TOMLDecodeError, match="nested more than"):
            loads_toml(deep_toml(levels, inline))
    within = loads_json(deep_json(MAX_DEPTH))  # the limit itself parses
    for _ in range(MAX_DEPTH - 1):
        within = within[0]
    assert within == []


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("nesting")
    pw = root / "pw"
    pw.write_text(PW + "\n")
    made = cli("init", root / "vault", "--password-file", pw, *FAST)
    assert made.returncode == 0, made.stderr
    return root / "vault", pw


@pytest.mark.parametrize("levels", [DEEP, SHALLOW_BUT_DEEP])
def test_manifest_json_and_toml(tmp_path: Path, levels: int) -> None:
    for name, text in (
        ("m.json", '{"version": 1, "host": ' + deep_json(levels) + "}"),
        ("m.toml", deep_toml(levels)),
    ):
        path = tmp_path / name
        path.write_text(text)
        assert_one_line_error(cli("manifest", "check", path), name)


@pytest.mark.parametrize("levels", [DEEP, SHALLOW_BUT_DEEP])
def test_derive_batch_line(vault: tuple[Path, Path], levels: int) -> None:
    batch = '{"realm": "a"}\n{"realm": "b", "x": ' + deep_json(levels) + "}\n"
    result = cli(
        "derive", "--batch", "-", "--vault", vault[0], "--password-file", vault[1],
        input=batch.encode(),
    )  # fmt: skip
    assert_one_line_error(result, "batch line 2")


@pytest.mark.parametrize("inline", [False, True])
def test_vault_toml(vault: tuple[Path, Path], tmp_path: Path, inline: bool) -> None:
    copy = tmp_path / "vault"
    import shutil

    shutil.copytree(vault[0], copy)
    (copy / "vault.toml").write_text(
        (vault[0] / "vault.toml").read_text() + "[extra]\n" + deep_toml(DEEP, inline)
    )
    result = cli("derive", "x", "--vault", copy, "--password-file", vault[1])
    assert_one_line_error(result, "vault.toml")


def test_hosts_file(vault: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "vault"
    shutil.copytree(vault[0], copy)
    (copy / "hosts").mkdir(exist_ok=True)
    (copy / "hosts/web1.toml").write_text("version = 1\n" + deep_toml(DEEP))
    assert_one_line_error(cli("host", "list", "--vault", copy), "web1.toml")


def test_store_metadata(tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"version": 1, "host": "web1", "secrets": {}}))
    store = tmp_path / "root/var/lib/aux-secrets"
    store.mkdir(parents=True)
    (store / "store.json").write_text(deep_json(DEEP))
    result = cli("status", "--root", tmp_path / "root", "--manifest", manifest)
    assert_one_line_error(result, "store.json")


TREE = Tree("/run/aux-secrets", "/run/aux-secrets.d", keep=1, group="root")


@pytest.mark.parametrize("levels", [DEEP, SHALLOW_BUT_DEEP])
def test_generation_and_pending_records_count_as_absent(tmp_path: Path, levels: int) -> None:
    files = [FileToWrite("secret:a", "/run/aux-secrets/a", b"1", 0, 0, 0o400, ("a.service",))]
    install_tree(TREE, files, root=tmp_path)
    gens = tmp_path / "run/aux-secrets.d"
    meta = gens / "1" / META_NAME
    meta.chmod(0o600)
    meta.write_text('{"version": 1, "items": ' + deep_json(levels) + "}")
    (gens / PENDING_NAME).write_text('{"tryRestart": ' + deep_json(levels) + "}")
    result = install_tree(TREE, files, root=tmp_path)
    # The record of generation 1 is absent: everything appears again, units restarted.
    assert result.plan.appeared == ("secret:a",)
    assert result.plan.try_restart == ("a.service",)
