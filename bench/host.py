"""Booted-host benchmark: boot to secrets installed, and install at boot of 1,000 secrets
on a booted Debian 12 (systemd-nspawn) beside the same install with --root.

Run from the repository root, as root:  PYTHONPATH=. .venv/bin/python bench/host.py

Uses the host suite's harness (tests/host): the cached root filesystem, this checkout
installed from wheels, a fresh overlay host reached over ssh. It provisions COUNT derived
secrets (no units to restart) with the real CLI, then measures, REPEAT times each:
- a bare boot of the same root without aux-secrets units (the reference);
- boot to secrets installed: from starting nspawn to `aux-secrets-install.service` active
  and every file in /run/aux-secrets (the harness's wall clock), and the unit's own run
  time (systemd's ExecMainStart -> ExecMainExit timestamps);
- on the booted host, `aux-secrets install --root R` of the same store into a fresh R
  whose run/ is a tmpfs (what the tests and image builders do), process wall time.
Every run checks that all COUNT files are present and aborts on a mismatch.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.helpers import REPO
from tests.host.cache import cache_dir, rootfs
from tests.host.fleet import HOST, operator_vault, provision, write_manifest
from tests.host.layer import build_layer
from tests.host.nspawn import NspawnHost
from tests.host.operator import Host


def bulk_manifest(count: int) -> dict[str, object]:
    secrets = {
        f"bulk/s{i:04d}": {
            "source": {
                "derive": {"realm": f"bulk/{i}", "type": "raw", "length": 32, "encoding": "hex"}
            }
        }
        for i in range(count)
    }
    return {"version": 1, "host": HOST, "settings": {}, "secrets": secrets}


def files_installed(host: Host, root: str = "") -> int:
    return int(host.inside(f"find {root}/run/aux-secrets/bulk -type f | wc -l").strip())


def unit_seconds(host: Host) -> float:
    start = host.inside("systemctl show -P ExecMainStartTimestampMonotonic aux-secrets-install")
    end = host.inside("systemctl show -P ExecMainExitTimestampMonotonic aux-secrets-install")
    return (int(end) - int(start)) / 1e6


def boot_to_installed(machine: NspawnHost, host: Host, count: int) -> tuple[float, float]:
    machine.stop_for_bench()
    started = time.monotonic()
    machine.boot()
    while host.active("aux-secrets-install.service") != "active":
        if time.monotonic() - started > 120:
            raise SystemExit("aux-secrets-install.service never became active")
        time.sleep(0.05)
    wall = time.monotonic() - started
    if files_installed(host) != count:
        raise SystemExit(f"boot installed {files_installed(host)} of {count} files")
    return wall, unit_seconds(host)


def with_root(host: Host, count: int) -> float:
    host.inside(
        "rm -rf /tmp/r && mkdir -p /tmp/r/run /tmp/r/var/lib/systemd /tmp/r/etc/ssh && "
        "mount -t tmpfs -o mode=0755 none /tmp/r/run && "
        "cp -a /var/lib/aux-secrets /tmp/r/var/lib/ && "
        "cp -a /var/lib/systemd/credential.secret /tmp/r/var/lib/systemd/ && "
        "cp -a /etc/ssh/ssh_host_ed25519_key /tmp/r/etc/ssh/"
    )
    try:
        script = (
            "s=$(date +%s.%N); aux-secrets install --root /tmp/r --json >/dev/null; "
            "e=$(date +%s.%N); echo $s $e"
        )
        start, end = (float(x) for x in host.inside(script).split())
        if files_installed(host, "/tmp/r") != count:
            raise SystemExit("--root install is incomplete")
        return end - start
    finally:
        host.inside("umount /tmp/r/run; rm -rf /tmp/r", check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: it boots a host with systemd-nspawn")
    os.umask(0o022)
    t0 = time.monotonic()
    root = rootfs()
    work = Path(tempfile.mkdtemp(prefix="aux-bench-host-"))
    t1 = time.monotonic()
    layer = build_layer(root, REPO, work / "layer")
    t2 = time.monotonic()
    results: dict[str, list[float]] = {
        "bare boot": [],
        "boot to installed": [],
        "install unit at boot": [],
        "install --root": [],
    }
    bare = NspawnHost([layer, root], work / "bare", f"auxbench{os.getpid()}b")
    try:
        for _ in range(args.repeat):
            results["bare boot"].append(bare.boot())
            bare.stop_for_bench()
    finally:
        bare.stop()
    machine = NspawnHost([layer, root], work / "host", f"auxbench{os.getpid()}h")
    try:
        machine.boot()
        host = Host(machine, cache_dir() / "id_ed25519", work)
        vault = operator_vault(host, work)
        host.ssh_ok("aux-secrets units install --now")
        manifest = write_manifest(work, bulk_manifest(args.count))
        p0 = time.monotonic()
        provision(host, vault, manifest)
        provision_s = time.monotonic() - p0
        if files_installed(host) != args.count:
            raise SystemExit("provision installed the wrong number of files")
        for _ in range(args.repeat):
            wall, unit = boot_to_installed(machine, host, args.count)
            results["boot to installed"].append(wall)
            results["install unit at boot"].append(unit)
            results["install --root"].append(with_root(host, args.count))
    finally:
        machine.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"# bench/host.py, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} "
        f"(1 min) at the end; python {sys.version.split()[0]}"
    )
    print(
        f"setup: root filesystem ready in {t1 - t0:.1f}s, layer {t2 - t1:.1f}s, "
        f"first provision of {args.count} secrets {provision_s:.1f}s"
    )
    print(f"{'measure':<24} {'median s':>9} {'min s':>7} {'runs':>5}")
    for name, values in results.items():
        print(f"{name:<24} {statistics.median(values):>9.2f} {min(values):>7.2f} {len(values):>5}")
    ratio = statistics.median(results["install unit at boot"]) / statistics.median(
        results["install --root"]
    )
    print(f"install at boot / install --root: {ratio:.2f}")


if __name__ == "__main__":
    main()
