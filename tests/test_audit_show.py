"""`audit show`: the host's audit log as lines or JSON, by secret and time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aux_secrets.adapters.audit import AuditLog
from aux_secrets.core.audit import AuditEvent
from tests.helpers import assert_one_line_error, cli


@pytest.fixture
def root(tmp_path: Path) -> Path:
    store = tmp_path / "var/lib/aux-secrets"
    store.mkdir(parents=True, mode=0o700)
    log = AuditLog(store)
    events = [
        AuditEvent("activate", datetime(2026, 11, 1, 8, tzinfo=UTC), "web1", "a" * 32, 100),
        AuditEvent(
            "install",
            datetime(2026, 11, 1, 8, 0, 5, tzinfo=UTC),
            "web1",
            "a" * 32,
            100,
            1,
            changed=("api/hmac", "db/password"),
            fingerprints={"api/hmac": "fp1:" + "1" * 32, "db/password": "fp1:" + "2" * 32},
            restart_units=("postgresql.service",),
            reload_units=("api.service",),
        ),
        AuditEvent(
            "install",
            datetime(2026, 12, 1, 8, tzinfo=UTC),
            "web1",
            "b" * 32,
            200,
            2,
            changed=("api/hmac",),
            fingerprints={"api/hmac": "fp1:" + "3" * 32},
            reload_units=("api.service",),
        ),
    ]
    for event in events:
        log.append(event)
    return tmp_path


def show(root: Path, *args: str) -> list[str]:
    done = cli("audit", "show", "--root", root, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.decode().splitlines()


def test_lines_and_filters(root: Path) -> None:
    lines = show(root)
    assert len(lines) == 3
    assert lines[1].startswith("2026-11-01T08:00:05Z  #1  install ")
    assert "changed api/hmac, db/password" in lines[1]
    assert "restart postgresql.service" in lines[1] and "reload api.service" in lines[1]
    assert [line.split()[1] for line in show(root, "--secret", "db/password")] == ["#1"]
    assert [line.split()[1] for line in show(root, "--since", "2026-11-15")] == ["#2"]
    assert [line.split()[1] for line in show(root, "--until", "2026-11-01T08:00:01Z")] == ["#0"]
    assert [line.split()[1] for line in show(root, "--last", "2")] == ["#1", "#2"]
    empty = cli("audit", "show", "--root", root, "--secret", "nope")
    assert empty.returncode == 0 and empty.stdout == b"" and b"no entries match" in empty.stderr


def test_json(root: Path) -> None:
    done = cli("audit", "show", "--root", root, "--json", "--secret", "api/hmac")
    doc = json.loads(done.stdout)
    assert [d["seq"] for d in doc] == [1, 2]
    assert doc[1]["fingerprints"] == {"api/hmac": "fp1:" + "3" * 32}
    assert doc[1]["generation"] == 2 and doc[1]["reloadUnits"] == ["api.service"]


def test_bad_input_and_a_tampered_log(root: Path) -> None:
    assert_one_line_error(cli("audit", "show", "--root", root, "--since", "yesterday"), "--since")
    assert_one_line_error(
        cli("audit", "show", "--root", root, "--since", "2026-12-02", "--until", "2026-12-01"),
        "--until must be after --since",
    )
    assert_one_line_error(cli("audit", "show", "--root", root, "--last", "0"), "--last")
    path = root / "var/lib/aux-secrets/audit.jsonl"
    path.write_bytes(path.read_bytes().replace(b"db/password", b"db/passwort"))
    assert_one_line_error(cli("audit", "show", "--root", root), "audit")


def test_help_has_an_example() -> None:
    done = cli("audit", "show", "--help")
    assert done.returncode == 0 and b"Example" in done.stdout
