from __future__ import annotations

import os
from pathlib import Path

import pytest

from aux_secrets.adapters.systemctl import ActivationLists, Systemctl
from aux_secrets.errors import ConflictError, ExternalError, UsageError


def recorder(tmp_path: Path, exit_code: int = 0) -> tuple[Path, Path]:
    log = tmp_path / "calls"
    script = tmp_path / "systemctl"
    script.write_text(
        f'#!/bin/sh\nfor a in "$@"; do printf "[%s]" "$a"; done >> {log}\necho >> {log}\n'
        f"echo 'Unit x not loaded' >&2\nexit {exit_code}\n"
    )
    script.chmod(0o755)
    return script, log


def test_exact_argv_with_prefix_and_sorted_units(tmp_path: Path) -> None:
    script, log = recorder(tmp_path)
    s = Systemctl([str(script), "--no-block"])
    s.request("try-restart", ["b.service", "a.service"])
    s.request("try-reload-or-restart", ["nginx.service"])
    s.request("try-restart", [])  # nothing to ask: no call
    assert log.read_text().splitlines() == [
        "[--no-block][try-restart][a.service][b.service]",
        "[--no-block][try-reload-or-restart][nginx.service]",
    ]


def test_failure_names_verb_units_and_stderr(tmp_path: Path) -> None:
    script, _ = recorder(tmp_path, exit_code=5)
    with pytest.raises(ExternalError, match=r"try-restart a.service failed \(exit 5\): Unit x"):
        Systemctl([str(script)]).request("try-restart", ["a.service"])


def test_missing_program(tmp_path: Path) -> None:
    with pytest.raises(ExternalError, match="not found"):
        Systemctl([str(tmp_path / "nope")]).request("try-restart", ["a.service"])


def test_unknown_verb_and_empty_argv(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        Systemctl([])
    with pytest.raises(UsageError):
        Systemctl(["systemctl"]).request("stop", ["a.service"])


def test_activation_lists_append(tmp_path: Path) -> None:
    lists = ActivationLists(tmp_path)
    lists.request("try-restart", ["b.service", "a.service"])
    lists.request("try-restart", ["c.service"])
    lists.request("try-reload-or-restart", ["n.service"])
    nixos = tmp_path / "run/nixos"
    assert (nixos / "activation-restart-list").read_text() == "a.service\nb.service\nc.service\n"
    assert (nixos / "activation-reload-list").read_text() == "n.service\n"


def test_activation_list_planted_symlink_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    (tmp_path / "run/nixos").mkdir(parents=True)
    os.symlink(victim, tmp_path / "run/nixos/activation-restart-list")
    with pytest.raises(ConflictError, match="symlink"):
        ActivationLists(tmp_path).request("try-restart", ["a.service"])
    assert victim.read_text() == "keep\n"
