"""What the host suite needs from this machine, and why it skips when it cannot run.

The suite runs when selected (``-m host``, or ``AUX_SECRETS_HOST_TESTS=1``) on a machine
that can boot a host (root, systemd-nspawn, overlayfs, mmdebstrap; qemu, swtpm and OVMF
for the VM tests). Otherwise each test skips with the reason. With
``AUX_SECRETS_HOST_TESTS=require`` (CI on a machine that can) a missing piece fails.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")

NSPAWN_PROGRAMS = {
    "systemd-nspawn": "systemd-container",
    "mmdebstrap": "mmdebstrap",
    "nsenter": "util-linux",
    "ssh": "openssh-client",
    "ssh-keyscan": "openssh-client",
}
VM_PROGRAMS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "swtpm": "swtpm",
    "swtpm_setup": "swtpm-tools",
    "mkfs.ext4": "e2fsprogs",
}


def mode() -> str:
    return os.environ.get("AUX_SECRETS_HOST_TESTS", "")


def selected(config: pytest.Config) -> bool:
    return bool(mode()) or "host" in (config.getoption("markexpr") or "")


def _which(program: str) -> bool:
    return shutil.which(program) is not None or Path("/usr/sbin", program).exists()


def nspawn_missing() -> str | None:
    """Why an nspawn host cannot boot here, or None."""
    if os.geteuid() != 0:
        return "booting a host needs root (systemd-nspawn, overlay mounts)"
    for program, package in NSPAWN_PROGRAMS.items():
        if not _which(program):
            return f"{program} is not installed: apt-get install {package}"
    if "overlay" not in Path("/proc/filesystems").read_text():
        return "the kernel has no overlayfs"
    return None


def vm_missing() -> str | None:
    why = nspawn_missing()
    if why is not None:
        return why
    for program, package in VM_PROGRAMS.items():
        if not _which(program):
            return f"{program} is not installed: apt-get install {package}"
    if not OVMF_CODE.exists():
        return f"{OVMF_CODE} is missing: apt-get install ovmf"
    return None


def skip_or_fail(reason: str) -> None:
    if mode() == "require":
        pytest.fail(f"host suite required but {reason}", pytrace=False)
    pytest.skip(reason)


def report() -> int:
    """One line per part of the host suite: runs, or skipped and why (for .ci/run).

    Exit 0 when the nspawn part can run (the VM part may still be skipped), 1 otherwise.
    """
    nspawn, vm = nspawn_missing(), vm_missing()
    print(f"host suite: nspawn tests: {'run' if nspawn is None else 'skipped: ' + nspawn}")
    print(f"host suite: VM tests (qemu + swtpm): {'run' if vm is None else 'skipped: ' + vm}")
    return 0 if nspawn is None else 1


if __name__ == "__main__":
    raise SystemExit(report())
