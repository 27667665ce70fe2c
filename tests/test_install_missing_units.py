"""``aux-secrets install`` when the manifest names a unit the host does not have: the
generation is installed, the other units are asked for, the skipped one is named in the
warning, ``--json`` and the audit entry, and the install exits 0."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.fake_systemd import calls, done, fake_systemctl
from tests.helpers import assert_one_line_error, cli, require_program
from tests.test_install_cli import HOST, Host, fixed


def manifest_doc(systemctl: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "host": HOST,
        "settings": {"systemctl": [str(systemctl)]},
        "secrets": {
            "db/password": {
                "source": {"store": "db/password"},
                "restartUnits": ["web.service", "gone.service"],
            },
            "api/token": {"source": {"store": "api/token"}, "reloadUnits": ["api.service"]},
        },
    }


def make_host(tmp_path: Path, **fake: Any) -> Host:
    require_program("systemd-creds", "systemd")
    keygen = require_program("ssh-keygen", "openssh-client")
    root = tmp_path / "root"
    (root / "etc/ssh").mkdir(parents=True)
    key = root / "etc/ssh/ssh_host_ed25519_key"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    script = fake_systemctl(tmp_path, **fake)
    host = Host(root=root, manifest=tmp_path / "manifest.json", calls=tmp_path / "unused", user="")
    host.write_manifest(manifest_doc(script))
    host.deliver({"db/password": fixed(b"pw-1"), "api/token": fixed(b"tok-1")})
    return host


def audit_entries(host: Host) -> list[dict[str, Any]]:
    shown = cli("audit", "show", "--json", "--root", host.root, "--manifest", host.manifest)
    assert shown.returncode == 0, shown.stderr.decode()
    doc = json.loads(shown.stdout)
    return doc if isinstance(doc, list) else doc["entries"]


def test_a_missing_unit_is_skipped_with_a_warning_and_the_install_succeeds(
    tmp_path: Path,
) -> None:
    host = make_host(tmp_path, known=["web.service", "api.service"])
    result = host.install("--json")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["generation"] == 1
    assert (host.root / "run/aux-secrets/db/password").read_bytes() == b"pw-1"
    assert report["tryRestart"] == ["gone.service", "web.service"]  # the plan, unchanged
    assert report["requested"] == [
        {"verb": "try-restart", "units": ["web.service"]},
        {"verb": "try-reload-or-restart", "units": ["api.service"]},
    ]
    assert report["notFound"] == [{"verb": "try-restart", "units": ["gone.service"]}]
    warnings = [x for x in result.stderr.decode().splitlines() if "gone.service" in x]
    assert len(warnings) == 1
    assert warnings[0].startswith("aux-secrets: warning: unit gone.service is not on this host")
    # web restarted once (systemctl had done it despite gone.service), api reloaded once.
    assert done(tmp_path) == ["try-restart web.service", "try-reload-or-restart api.service"]
    assert not (host.root / "run/aux-secrets.d/.pending.json").exists()
    install = [e for e in audit_entries(host) if e["event"] == "install"]
    assert install[-1]["unitsNotFound"] == ["gone.service"]
    assert install[-1]["restartUnits"] == ["gone.service", "web.service"]
    verify = cli("audit", "verify", "--root", host.root, "--manifest", host.manifest)
    assert verify.returncode == 0, verify.stderr.decode()


def test_the_human_summary_names_the_skipped_unit(tmp_path: Path) -> None:
    host = make_host(tmp_path, known=["web.service", "api.service"])
    result = host.install()
    assert result.returncode == 0, result.stderr.decode()
    assert "  not found (skipped its try-restart): gone.service" in result.stdout.decode()
    assert (
        "not on the host gone.service"
        in cli("audit", "show", "--root", host.root, "--manifest", host.manifest).stdout.decode()
    )


def test_a_unit_that_fails_to_restart_is_still_an_error(tmp_path: Path) -> None:
    host = make_host(tmp_path, known=["web.service", "api.service"], failing=["web.service"])
    result = host.install()
    assert_one_line_error(result, "generation 1 is installed", "try-restart web.service failed")
    assert (host.root / "run/aux-secrets/db/password").read_bytes() == b"pw-1"
    # The pending record stays: the next run asks for the restart again.
    assert (host.root / "run/aux-secrets.d/.pending.json").exists()
    # The failing run still has its audit entry.
    assert [e["generation"] for e in audit_entries(host) if e["event"] == "install"] == [1]
    assert calls(tmp_path)[-1] == "[try-restart][web.service]"  # asked again, failed again


def test_a_missing_reload_unit_beside_known_restarts(tmp_path: Path) -> None:
    host = make_host(tmp_path, known=["web.service", "gone.service"])
    result = host.install("--json")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["notFound"] == [{"verb": "try-reload-or-restart", "units": ["api.service"]}]
    assert done(tmp_path) == ["try-restart gone.service", "try-restart web.service"]


def test_no_unit_known_at_all(tmp_path: Path) -> None:
    host = make_host(tmp_path, known=[])
    result = host.install("--json")
    assert result.returncode == 0, result.stderr.decode()
    report = json.loads(result.stdout)
    assert report["requested"] == [] and done(tmp_path) == []
    assert report["notFound"] == [
        {"verb": "try-restart", "units": ["gone.service", "web.service"]},
        {"verb": "try-reload-or-restart", "units": ["api.service"]},
    ]
    lines = result.stderr.decode().splitlines()
    assert len([x for x in lines if "is not on this host" in x]) == 3
