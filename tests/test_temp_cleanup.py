"""Temp files a SIGKILL leaves are removed by the next run that holds the same lock.

First the names a kill leaves are planted exactly (every writer's temp name), then real
installs and activates are SIGKILLed at random moments in a loop: after one more normal
run, no temp file is left anywhere under the host's root.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from aux_secrets.adapters.fs import atomic_write, remove_stale_temps
from aux_secrets.adapters.hosts import Host as HostEntry
from aux_secrets.adapters.hosts import HostDir
from tests.test_hosts import ED_PUB
from tests.test_install_cli import NOV, SECRETS, Host, fixed, host

__all__ = ["host"]


def temps(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.name.endswith(".tmp") and (p.is_file() or p.is_symlink())
    )


def test_planted_temp_names_are_removed_by_the_next_run(host: Host) -> None:
    assert host.install().returncode == 0
    store = host.root / "var/lib/aux-secrets"
    gens = host.root / "run/aux-secrets.d"
    (store / "credentials").mkdir(exist_ok=True)
    planted_files = [
        gens / "..pending.json.a1b2c3d4.tmp",
        store / ".audit.head.zz9_yy8x.tmp",
        store / ".store.json.qwertyui.tmp",
        store / ".store-9.bin.asdfghjk.tmp",
        store / "credentials/.index.json.mnbvcxzl.tmp",
        store / "credentials/.db.cred.poiuytre.tmp",
    ]
    for path in planted_files:
        path.write_bytes(b"half")
    os.symlink("aux-secrets.d/1", host.root / "run/.aux-secrets.4242.tmp")
    os.symlink("x", host.root / "etc/app/.token.777.tmp")
    # Not ours: a file with a similar name but not a temp name, and a user's regular file.
    keep = [store / "notes.tmp", host.root / "etc/app/.token.778.tmp"]
    for path in keep:
        path.write_bytes(b"mine")
    host.deliver({**SECRETS, "api-token": fixed(b"tok-9")})  # activate: store + audit
    assert host.install().returncode == 0  # install: generations, links, credentials
    assert temps(host.root) == sorted(str(p.relative_to(host.root)) for p in keep)


def test_sigkill_in_a_loop_leaves_nothing_after_the_next_run(host: Host) -> None:
    rng = random.Random(11)
    at = NOV.strftime("%Y-%m-%dT%H:%M:%SZ")
    argv = [sys.executable, "-m", "aux_secrets", "install", "--root", str(host.root),
            "--manifest", str(host.manifest), "--at", at]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    for _ in range(12):
        child = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(0.05, 1.5))
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    assert host.install().returncode == 0
    assert temps(host.root) == []


def test_vault_and_hosts_temps(tmp_path: Path) -> None:
    hosts = HostDir(tmp_path / "hosts")
    hosts.add(HostEntry(name="web1", recipient=ED_PUB))
    (tmp_path / "hosts/.web1.toml.abcdefgh.tmp").write_bytes(b"half")
    hosts.next_serial("web1", 1_800_000_000)
    assert temps(tmp_path) == []
    other = tmp_path / "other"
    other.mkdir()
    atomic_write(other / "x", b"1")
    (other / ".x.12345678.tmp").write_bytes(b"half")
    (other / ".y.12345678.tmp").write_bytes(b"someone else's")
    assert remove_stale_temps(other, lambda target: target == "x") == [".x.12345678.tmp"]
    assert temps(other) == [".y.12345678.tmp"]
