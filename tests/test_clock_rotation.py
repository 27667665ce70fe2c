"""Rotation and clocks on the host, through the CLI against a real sshd on 127.0.0.1.

A value is never taken away because time ran out: the host keeps serving the last one,
marked stale, and says so (install's stderr, status, the operator's verify); a clock
before the bundle was made is named as the cause; ``ahead = 0`` is warned about.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.helpers import cli
from tests.provision_helpers import add_host, make_host_root, make_vault
from tests.sshd import Sshd, sshd

__all__ = ["sshd"]


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _month_start(at: datetime, months: int = 0) -> datetime:
    index = at.year * 12 + at.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def test_values_that_ran_out_stay_installed_stale_and_loud(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    add_host(vault, host, sshd)
    # A bundle made three months ago: api/hmac (monthly, ahead 1) ran out since.
    made = datetime.now(UTC).replace(microsecond=0) - timedelta(days=92)
    result = cli("provision", "--host", "web1", "--at", _iso(made), *vault.args())
    assert result.returncode == 0, result.stderr
    said = result.stdout.decode() + result.stderr.decode()
    assert "api/hmac: its values ran out at" in said and "STALE" in said
    installed = host.installed("api/hmac")
    assert len(installed) == 64

    # Every later install keeps it: the file stays, nothing is restarted for it.
    calls = host.calls()
    again = cli("install", "--root", host.root, "--json")
    assert again.returncode == 0, again.stderr
    doc = json.loads(again.stdout)
    assert doc["missing"] == [] and doc["removed"] == []
    assert [s["name"] for s in doc["stale"]] == ["api/hmac"]
    assert doc["stale"][0]["reason"] == "values-ran-out"
    assert doc["stale"][0]["valuesEnd"] == _iso(_month_start(made, 2))
    assert b"aux-secrets: warning: secret api/hmac: its values ran out" in again.stderr
    assert host.installed("api/hmac") == installed
    assert host.calls() == calls

    status = cli("status", "--root", host.root)
    assert status.returncode == 0, status.stderr
    assert b"secret api/hmac is STALE" in status.stderr
    line = next(x for x in status.stdout.decode().splitlines() if "api/hmac" in x)
    assert line.endswith("STALE")

    verified = cli("verify", "--host", "web1", "--json", *vault.args())
    assert verified.returncode == 1
    verdicts = json.loads(verified.stdout)["web1"]
    assert verdicts["api/hmac"]["verdict"] == "stale"
    assert "values ran out" in verdicts["api/hmac"]["detail"]
    assert verdicts["db/password"]["verdict"] == "ok"


def test_a_clock_before_the_bundle_is_named_and_nothing_is_lost(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    add_host(vault, host, sshd)
    assert cli("provision", "--host", "web1", *vault.args()).returncode == 0
    before = {name: host.installed(name) for name in ("db/password", "api/hmac")}
    now = datetime.now(UTC)

    # A boot without an RTC, before NTP: the clock says 1970.
    booted = cli("install", "--root", host.root, "--at", "1970-01-01T00:00:00Z")
    assert booted.returncode == 0, booted.stderr
    err = booted.stderr.decode()
    assert "the clock (1970-01-01T00:00:00Z) is before this host's bundle was made" in err
    assert "the clock is wrong" in err
    assert "provision" not in err.split("the clock is wrong")[0]
    # The same values as before, and the next rotation counted from the bundle's time.
    assert {name: host.installed(name) for name in before} == before
    assert f"next rotation: {_iso(_month_start(now, 1))}" in booted.stdout.decode()
    assert b"STALE" not in booted.stderr


def test_ahead_zero_is_warned_by_manifest_check_and_lint(tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    manifest.write_text(
        json.dumps(
            {
                "version": 1,
                "host": "web1",
                "secrets": {
                    "hmac": {
                        "source": {
                            "derive": {
                                "realm": "hmac/{period}",
                                "rotation": {"period": "weekly", "retired": 1},
                            }
                        }
                    },
                    "ok": {
                        "source": {
                            "derive": {
                                "realm": "ok/{period}",
                                "rotation": {"period": "weekly", "ahead": 1},
                            }
                        }
                    },
                },
            }
        )
    )
    checked = cli("manifest", "check", manifest)
    assert checked.returncode == 0, checked.stderr
    warnings = [x for x in checked.stderr.decode().splitlines() if "warning" in x]
    assert len(warnings) == 1
    assert "hmac: rotates weekly with ahead = 0" in warnings[0] and "[no-ahead]" in warnings[0]
    as_json = json.loads(cli("manifest", "check", manifest, "--json").stdout)
    assert [w["secret"] for w in as_json["warnings"]] == ["hmac"]

    linted = cli("lint", "--manifest", manifest)
    assert linted.returncode == 0, linted.stderr
    assert "warning: hmac: rotates weekly with ahead = 0" in linted.stdout.decode()
    assert "1 warnings" in linted.stderr.decode()
