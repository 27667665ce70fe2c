"""The Debian 12 root filesystem, built once per machine and kept outside the repository.

``$AUX_SECRETS_HOST_CACHE`` (default ``/var/cache/aux-secrets-host``) holds:

- ``debian-12/rootfs``: what ``mmdebstrap`` made from Debian packages (systemd, sshd,
  python3, tpm2-tools, Debian's kernel), configured for the tests (hostname, root's ssh
  key, no apt timers). The mirror lines come from this machine's apt configuration
  (``apt-get indextargets``), so no package host is named here.
- ``id_ed25519``: the operator's ssh key the hosts accept for root.
- ``wheels/``: this checkout's dependencies as wheels (``pip download``), for the hosts,
  which have no network.

A lock serialises builders; a build goes to a temporary name and is renamed when complete,
so an interrupted build is never taken for a root filesystem.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

SUITE = "bookworm"
PACKAGES = (
    "systemd,systemd-sysv,udev,dbus,libpam-systemd,openssh-server,python3,python3-venv,"
    "tpm2-tools,iproute2,kmod,initramfs-tools,linux-image-amd64,procps"
)
# Bumped when the configuration below changes: the cached root is configured again.
CONFIG_VERSION = "4"
BUILD_TIMEOUT = 900.0
MASKED = (
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "fstrim.timer",
    "man-db.timer",
)


def cache_dir() -> Path:
    return Path(os.environ.get("AUX_SECRETS_HOST_CACHE", "/var/cache/aux-secrets-host"))


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def mirror_lines() -> list[str]:
    """``deb URI SUITE main`` for bookworm, -updates and -security, from apt's own config."""

    def targets() -> list[str]:
        done = subprocess.run(
            [
                "apt-get",
                "indextargets",
                "--format",
                "$(REPO_URI) $(RELEASE)",
                "Created-By: Packages",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return done.stdout.splitlines()

    lines = targets()
    if not lines:
        subprocess.run(["apt-get", "update", "-qq"], timeout=300, check=False)
        lines = targets()
    wanted = {SUITE, f"{SUITE}-updates", f"{SUITE}-security"}
    out = sorted(
        {
            f"deb {uri} {release} main"
            for uri, release in (line.split() for line in lines if " " in line)
            if release in wanted
        }
    )
    if not out:
        raise RuntimeError(f"no {SUITE} mirror in this machine's apt configuration")
    return out


def operator_key(cache: Path) -> Path:
    key = cache / "id_ed25519"
    with locked(cache / "key.lock"):
        if not key.exists():
            subprocess.run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "aux-host-tests",
                    "-f",
                    str(key),
                ],
                check=True,
                timeout=30,
            )
    return key


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def configure(root: Path, key: Path) -> None:
    """What every test host shares: a name, root's ssh key, DHCP for the VM, quiet timers."""
    _write(root / "etc/hostname", "aux-test\n")
    _write(root / "etc/hosts", "127.0.0.1 localhost\n127.0.1.1 aux-test\n::1 localhost\n")
    _write(root / "etc/fstab", "# root is given on the kernel command line (rw)\n")
    _write(root / "etc/machine-id", "")
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write(ssh_dir / "authorized_keys", key.with_suffix(".pub").read_text(), 0o600)
    _write(
        root / "etc/ssh/sshd_config.d/aux-tests.conf",
        "PasswordAuthentication no\nPermitRootLogin prohibit-password\nUseDNS no\n",
    )
    _write(
        root / "etc/systemd/network/20-wired.network", "[Match]\nName=en*\n\n[Network]\nDHCP=yes\n"
    )
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    link = wants / "systemd-networkd.service"
    if not link.is_symlink():
        link.symlink_to("/lib/systemd/system/systemd-networkd.service")
    for unit in MASKED:
        masked = root / "etc/systemd/system" / unit
        if not masked.is_symlink():
            masked.unlink(missing_ok=True)
            masked.symlink_to("/dev/null")
    # sshd's host keys are made per host at its first boot: the cached root carries none,
    # so two hosts never share one.
    _write(
        root / "etc/systemd/system/aux-test-ssh-keys.service",
        "[Unit]\nDescription=Make this host's ssh host keys\nBefore=ssh.service\n"
        "ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key\n\n"
        "[Service]\nType=oneshot\nExecStart=/usr/bin/ssh-keygen -A\n\n"
        "[Install]\nWantedBy=ssh.service\n",
    )
    keys_wants = root / "etc/systemd/system/ssh.service.wants"
    keys_wants.mkdir(exist_ok=True)
    keys_link = keys_wants / "aux-test-ssh-keys.service"
    if not keys_link.is_symlink():
        keys_link.symlink_to("/etc/systemd/system/aux-test-ssh-keys.service")
    for old in (root / "etc/ssh").glob("ssh_host_*"):
        old.unlink()
    (root / "aux-config-version").write_text(CONFIG_VERSION + "\n")


def rootfs(log: object = None) -> Path:
    """The configured root filesystem, built first when this machine has none."""
    cache = cache_dir()
    base = cache / "debian-12"
    root = base / "rootfs"
    key = operator_key(cache)
    with locked(cache / "rootfs.lock"):
        if not (root / "etc/os-release").exists():
            building = base / "rootfs.tmp"
            shutil.rmtree(building, ignore_errors=True)
            base.mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            subprocess.run(
                [
                    "mmdebstrap",
                    "--quiet",
                    "--variant=apt",
                    "--mode=root",
                    f"--include={PACKAGES}",
                    SUITE,
                    str(building),
                    *mirror_lines(),
                ],
                check=True,
                timeout=BUILD_TIMEOUT,
            )
            building.rename(root)
            (base / "build-seconds").write_text(f"{time.monotonic() - started:.1f}\n")
        stamp = root / "aux-config-version"
        if not stamp.exists() or stamp.read_text().strip() != CONFIG_VERSION:
            configure(root, key)
    return root


def wheels(project: Path, out: Path) -> Path:
    """This checkout as a wheel plus its dependencies' wheels, in ``out`` (for pip --no-index).

    Dependencies are downloaded once into the cache; the project wheel is built fresh."""
    cache = cache_dir() / "wheels"
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(project)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (built,) = out.glob("aux_secrets-*.whl")
    with locked(cache_dir() / "wheels.lock"):
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--only-binary=:all:",
                "-d",
                str(cache),
                str(built),
            ],
            check=True,
            timeout=600,
            capture_output=True,
        )
    for wheel in cache.glob("*.whl"):
        if not wheel.name.startswith("aux_secrets-"):
            shutil.copy2(wheel, out / wheel.name)
    return built


if __name__ == "__main__":
    started = time.monotonic()
    print(rootfs(), f"{time.monotonic() - started:.1f}s")
