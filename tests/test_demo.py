"""The README's first command: the demo runs the whole flow and leaves a correct tree."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.helpers import cli, require_program


def test_demo_runs_the_whole_flow(tmp_path: Path) -> None:
    require_program("systemd-creds", "systemd")
    workdir = tmp_path / "demo"
    result = cli("demo", "--dir", workdir, "--keep", timeout=600)
    out = result.stdout.decode()
    assert result.returncode == 0, result.stderr.decode()
    # Every step ran, and the verify step found every secret in place.
    for step in range(1, 10):
        assert f"\n== {step}. " in out
    assert out.count("    ok         web1:") == 5
    # The second provision changed only the rotated token and restarted only its unit.
    second = out.split("== 8. ")[1].split("== 9. ")[0]
    assert "changed    github-token" in second
    assert "changed    db-password" not in second
    assert "systemctl calls: systemctl try-restart github-runner.service\n" in second

    root = workdir / "host-root"
    current = root / "run" / "aux-secrets"
    assert current.is_symlink()
    assert (root / "run" / "aux-secrets.d" / "2").is_dir()
    token = (current / "github-token").read_bytes()
    assert b"GITHUB_TOKEN_CURRENT=ghp_rotated" in token
    assert b"GITHUB_TOKEN_RETIRED=ghp_demo" in token
    assert stat.S_IMODE((current / "db-password").stat().st_mode) == 0o400
    config = (root / "etc" / "talos" / "config.yaml").read_text()
    assert config.startswith('secrets:\n  hmac:\n    current: "')
    # The demo prints no imported token value; derived values are shown on purpose.
    assert "ghp_" not in out


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    result = cli("demo", "--dir", tmp_path)
    assert result.returncode != 0
    assert b"is not empty" in result.stderr
    assert (tmp_path / "something").read_text() == "x"
