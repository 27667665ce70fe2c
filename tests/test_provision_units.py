"""Provisioning pieces that need no host: the fleet runner, host command lines, drift verdicts."""

from __future__ import annotations

import shlex
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aux_secrets.adapters.hosts import Host
from aux_secrets.errors import ExternalError, UsageError
from aux_secrets.workflows import provision, verify

ED_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"


def test_fleet_one_failure_never_stops_the_others() -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def job(name: str) -> str:
        with lock:
            seen.append(name)
        if name == "b":
            raise ExternalError("ssh to b failed: Connection refused", hint="check the port")
        if name == "c":
            raise RuntimeError("secret-looking text must not be shown")
        return f"done {name}"

    done: list[str] = []
    outcomes = provision.run_fleet(
        ["a", "b", "c", "d"], job, jobs=2, on_done=lambda o: done.append(o.host)
    )
    assert sorted(seen) == ["a", "b", "c", "d"]
    assert sorted(done) == ["a", "b", "c", "d"]
    assert [o.host for o in outcomes] == ["a", "b", "c", "d"]
    assert [o.ok for o in outcomes] == [True, False, False, True]
    assert outcomes[0].value == "done a"
    assert outcomes[1].error == "ssh to b failed: Connection refused"
    assert outcomes[1].hint == "check the port"
    assert outcomes[2].error == "internal error (RuntimeError)"


def test_fleet_concurrency_is_bounded() -> None:
    running = 0
    peak = 0
    lock = threading.Lock()
    gate = threading.Barrier(3, timeout=5)

    def job(name: str) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            if name in ("h0", "h1", "h2"):
                gate.wait()  # proves three really run at once
        finally:
            with lock:
                running -= 1

    outcomes = provision.run_fleet([f"h{i}" for i in range(9)], job, jobs=3)
    assert all(o.ok for o in outcomes), outcomes
    assert peak == 3
    with pytest.raises(UsageError):
        provision.run_fleet(["a"], job, jobs=0)


def test_host_commands_carry_no_values_and_quote_paths() -> None:
    host = Host(name="web1", recipient=ED_PUB, target="root@10.0.0.1", remote_root="/tmp/a b")
    route = provision.Route.for_host(host, ssh_options=["Port=22"], use_sudo=True)
    commands = provision.host_commands(route, ["activate", "install"])
    assert commands == [
        # --host: a host with no manifest yet (its first deployment) knows who it is.
        [
            *("sudo", "-n", "aux-secrets", "activate", "--bundle", "-", "--json"),
            *("--host", "web1", "--root", "/tmp/a b"),
        ],
        ["sudo", "-n", "aux-secrets", "install", "--json", "--root", "/tmp/a b"],
    ]
    line = provision.remote_line(commands)
    assert line.split(" && ")[0] == shlex.join(commands[0])
    assert shlex.split(line.split(" && ")[1]) == commands[1]
    assert route.ssh_options == ("Port=22",)
    assert route.target == "root@10.0.0.1"
    custom = provision.Route.for_host(
        host, remote_command="/run/current-system/sw/bin/aux-secrets", manifest="/etc/m.json"
    )
    assert provision.host_commands(custom, ["status"]) == [
        [
            "/run/current-system/sw/bin/aux-secrets",
            "status",
            "--json",
            "--root",
            "/tmp/a b",
            "--manifest",
            "/etc/m.json",
        ]
    ]


def test_no_target_is_a_usage_error() -> None:
    route = provision.Route.for_host(Host(name="web1", recipient=ED_PUB))
    with pytest.raises(UsageError) as info:
        provision.run_on_host(route, ["status"], b"", 5)
    assert info.value.hint and "--target-host" in info.value.hint


def test_flake_argv() -> None:
    argv = provision.flake_eval_argv(".#web1")
    assert argv[0] == "nix"
    assert argv[-3:-1] == ["eval", "--json"]
    assert argv[-1] == '.#nixosConfigurations."web1".' + provision.FLAKE_MANIFEST_ATTR
    assert provision.flake_eval_argv("github:me/infra#db")[-1].startswith(
        'github:me/infra#nixosConfigurations."db".'
    )
    for bad in ("web1", ".#", '.#a"b'):
        with pytest.raises(UsageError):
            provision.flake_eval_argv(bad)


def test_compare_fingerprints_verdicts() -> None:
    expected = {
        "a": ("fp1:aa", frozenset({"fp1:a0"})),
        "b": ("fp1:bb", frozenset()),
        "c": ("fp1:cc", frozenset()),
        "d": ("fp1:dd", frozenset()),
    }
    reported = {"a": "fp1:a0", "b": "fp1:bb", "c": "fp1:zz", "e": "fp1:ee"}
    verdicts = {d.secret: d.verdict for d in verify.compare_fingerprints(expected, reported)}
    assert verdicts == {
        "a": "stale",
        "b": "ok",
        "c": "stale",
        "d": "missing",
        "e": "unexpected",
    }


def test_manifest_choice(tmp_path: Path) -> None:
    host = Host(name="web1", recipient=ED_PUB)
    with pytest.raises(UsageError) as info:
        provision.manifest_for_host(host, tmp_path)
    assert info.value.hint and "--manifest" in info.value.hint
    with pytest.raises(UsageError):
        provision.manifest_for_host(host, tmp_path, manifest=tmp_path / "m", flake=".#x")
    system = tmp_path / "result"
    (system / "etc/aux-secrets").mkdir(parents=True)
    (system / "etc/aux-secrets/manifest.json").write_bytes(b"{}")
    source = provision.manifest_for_host(host, tmp_path, system=system)
    assert source.data == b"{}"
    from aux_secrets.errors import NotFoundError

    with pytest.raises(NotFoundError):
        provision.manifest_for_host(host, tmp_path, system=tmp_path)


def test_host_report_from_activate_and_install_json() -> None:
    stdout = (
        b'{\n  "bundleId": "ab", "previousSerial": 1, "changed": ["db/password"]\n}\n'
        b'{"generation": 2, "changed": [{"kind": "secret", "name": "db/password"}],'
        b' "appeared": [{"kind": "template", "name": "app/url"}], "removed": [],'
        b' "tryRestart": ["postgresql.service"], "tryReloadOrRestart": []}\n'
    )
    bundle = provision.Bundle("web1", 7, "ab", datetime(2026, 11, 22, tzinfo=UTC), 2, b"")
    report = provision.report_from_output(bundle, "local", stdout, b"warning\n")
    assert report.store_changed == ("db/password",)
    assert report.changed == ("db/password", "app/url")
    assert report.restarted == ("postgresql.service",)
    assert report.generation == 2
    assert not report.no_change
    assert "restarted postgresql.service" in report.summary()
    quiet = provision.report_from_output(
        bundle, "local", b'{"generation": 3, "changed": [], "tryRestart": []}', b""
    )
    assert quiet.no_change
    assert quiet.summary() == "serial 7: no change"


def test_host_report_names_units_the_host_lacks_and_its_warnings() -> None:
    stdout = (
        b'{"generation": 2, "changed": [{"kind": "secret", "name": "db"}],'
        b' "tryRestart": ["gone.service", "web.service"], "tryReloadOrRestart": ["gone.service"],'
        b' "notFound": [{"verb": "try-restart", "units": ["gone.service"]},'
        b' {"verb": "try-reload-or-restart", "units": ["gone.service"]}]}\n'
    )
    stderr = b"Warning: ssh chatter\naux-secrets: warning: unit gone.service is not on this host\n"
    bundle = provision.Bundle("web1", 7, "ab", datetime(2026, 11, 22, tzinfo=UTC), 1, b"")
    report = provision.report_from_output(bundle, "ssh", stdout, stderr)
    assert report.restarted == ("web.service",) and report.reloaded == ()
    assert report.not_found == ("gone.service",)
    assert report.warnings == ("unit gone.service is not on this host",)
    assert "not on the host gone.service" in report.summary()


def test_parse_status_shapes_and_garbage() -> None:
    from aux_secrets.errors import InputError

    assert verify.parse_status(
        b'{"secrets": {"a": {"fingerprint": "fp1:aa"}, "b": {"fingerprint": null}}}', "h"
    ) == {"a": "fp1:aa"}
    assert verify.parse_status(b'{"secrets": {"a": "fp1:aa"}}', "h") == {"a": "fp1:aa"}
    assert verify.parse_status(b'{"secrets": [{"name": "a", "fingerprint": "fp1:aa"}]}', "h") == {
        "a": "fp1:aa"
    }
    for bad in (b"", b"\xff", b"[1]", b'{"secrets": 3}', b'{"secr', b"null"):
        with pytest.raises(InputError) as info:
            verify.parse_status(bad, "web1")
        assert "web1" in info.value.message


def test_rebuild_plan_and_named_activate() -> None:
    from aux_secrets.cli.rebuild import rebuild_plan

    assert rebuild_plan(["boot", "--flake", ".#web1", "--target-host", "root@h"]) == (
        "boot",
        ["--flake", ".#web1", "--target-host", "root@h"],
        "root@h",
        False,
    )
    assert rebuild_plan(["--use-remote-sudo", "--target-host=u@h"]) == (
        "switch",
        ["--use-remote-sudo", "--target-host=u@h"],
        "u@h",
        True,
    )
    with pytest.raises(UsageError):
        rebuild_plan(["build-vm"])
    route = provision.Route(local=True, host_name="web1")
    activate = provision.host_commands(route, ["activate"])[0]
    assert activate[activate.index("activate") :] == [
        "activate",
        "--bundle",
        "-",
        "--json",
        "--host",
        "web1",
    ]
