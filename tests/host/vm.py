"""A booted Debian host in qemu (TCG) with a software TPM 2.0 (swtpm) and OVMF firmware.

Only for what nspawn cannot show: a TPM (``/dev/tpmrm0``, so ``systemd-creds has-tpm2``
says yes), a clock of its own, and a power cut. The session's disk image is made once
from the cached root and the session layer (``mkfs.ext4 -d``); each VM boots a qcow2
overlay of it, with its own TPM state and firmware variables, so a VM costs its boot
(20-60 s of emulation) and nothing else. The operator reaches it with ssh on a 127.0.0.1
port qemu forwards; the VM has no other network (``restrict=on``).

Every wait is bounded; swtpm and qemu are stopped by their PIDs.
"""

from __future__ import annotations

import contextlib
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from tests.host.nspawn import HostError, ordering_cycles
from tests.host.support import OVMF_CODE, OVMF_VARS

BOOT_TIMEOUT = 240.0
STOP_TIMEOUT = 60.0
IMAGE_SIZE = "3G"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build_image(layers: Sequence[Path], workdir: Path) -> tuple[Path, Path, Path]:
    """(raw ext4 image, kernel, initrd) of the layers merged, read-only."""
    merged = workdir / "image-root"
    merged.mkdir(parents=True)
    lower = ":".join(str(p) for p in layers)
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower}", str(merged)],
        check=True,
        timeout=30,
    )
    image = workdir / "root.img"
    try:
        subprocess.run(["truncate", "-s", IMAGE_SIZE, str(image)], check=True, timeout=30)
        subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-L", "auxroot", "-d", str(merged), str(image)],
            check=True,
            timeout=600,
        )
        kernel = workdir / "vmlinuz"
        initrd = workdir / "initrd.img"
        shutil.copy(next(merged.glob("boot/vmlinuz-*")), kernel)
        shutil.copy(next(merged.glob("boot/initrd.img-*")), initrd)
    finally:
        subprocess.run(["umount", str(merged)], check=False, timeout=30)
    return image, kernel, initrd


class VmHost:
    def __init__(self, image: tuple[Path, Path, Path], workdir: Path, key: Path) -> None:
        self.base, self.kernel, self.initrd = image
        self.workdir = workdir
        self.key = key
        workdir.mkdir(parents=True, exist_ok=True)
        self.disk = workdir / "disk.qcow2"
        subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                "raw",
                "-b",
                str(self.base),
                str(self.disk),
            ],
            check=True,
            timeout=60,
        )
        self.tpm_state = workdir / "tpm"
        self.tpm_state.mkdir()
        subprocess.run(
            ["swtpm_setup", "--tpm2", "--tpmstate", str(self.tpm_state), "--overwrite"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.vars = workdir / "ovmf-vars.fd"
        shutil.copy(OVMF_VARS, self.vars)
        self.ssh_port = free_port()
        self.qemu: subprocess.Popen[bytes] | None = None
        self.swtpm: subprocess.Popen[bytes] | None = None
        self.boots: list[float] = []
        self.cycles: list[str] = []  # "ordering cycle" lines of the boots rebooted from
        self.name = f"vm:{self.ssh_port}"

    # ------------------------------------------------------------------ lifecycle
    def boot(self) -> float:
        """Start swtpm and qemu; wait for the VM's sshd and a settled boot. Seconds taken."""
        if self.qemu is not None:
            raise HostError("VM is already running")
        started = time.monotonic()
        sock = self.workdir / "swtpm.sock"
        sock.unlink(missing_ok=True)
        with (self.workdir / "swtpm.log").open("ab") as log:
            self.swtpm = subprocess.Popen(
                [
                    "swtpm",
                    "socket",
                    "--tpm2",
                    "--tpmstate",
                    f"dir={self.tpm_state}",
                    "--ctrl",
                    f"type=unixio,path={sock}",
                    "--terminate",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = started + BOOT_TIMEOUT
        while not sock.exists():
            self._check(deadline, "swtpm socket")
        argv = [
            "qemu-system-x86_64",
            "-accel",
            "tcg",
            "-cpu",
            "max",
            "-machine",
            "q35",
            "-smp",
            "2",
            "-m",
            "1536",
            "-nodefaults",
            "-display",
            "none",
            "-drive",
            f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
            "-drive",
            f"if=pflash,format=raw,file={self.vars}",
            "-kernel",
            str(self.kernel),
            "-initrd",
            str(self.initrd),
            "-append",
            "root=/dev/vda rw console=ttyS0 quiet mitigations=off",
            "-drive",
            f"file={self.disk},format=qcow2,if=virtio",
            "-nic",
            f"user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22",
            "-chardev",
            f"socket,id=chrtpm,path={sock}",
            "-tpmdev",
            "emulator,id=tpm0,chardev=chrtpm",
            "-device",
            "tpm-tis,tpmdev=tpm0",
            "-serial",
            f"file:{self.workdir / 'console.log'}",
        ]
        with (self.workdir / "qemu.log").open("ab") as log:
            self.qemu = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        while self.run(["true"], check=False, timeout=15).returncode != 0:
            self._check(deadline, "ssh")
        state = ""
        while state not in ("running", "degraded"):
            state = self.run(
                ["systemctl", "is-system-running"], check=False, timeout=15
            ).stdout.strip()
            self._check(deadline, f"settled boot (state {state!r})")
        self.boots.append(time.monotonic() - started)
        return self.boots[-1]

    def _check(self, deadline: float, what: str) -> None:
        if self.qemu is not None and self.qemu.poll() is not None:
            self.kill()
            raise HostError(f"qemu exited: {self.tail('qemu.log')}")
        if time.monotonic() > deadline:
            self.kill()
            raise HostError(f"VM: no {what} within {BOOT_TIMEOUT:g}s: {self.tail('console.log')}")
        time.sleep(0.5)

    def tail(self, name: str, lines: int = 15) -> str:
        try:
            text = (self.workdir / name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def leader_alive(self) -> bool:
        return self.qemu is not None and self.qemu.poll() is None

    def kill(self) -> None:
        """Power cut: SIGKILL qemu (the guest's unwritten data is lost), then swtpm."""
        for process in (self.qemu, self.swtpm):
            if process is not None and process.poll() is None:
                process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=30)
        self.qemu = self.swtpm = None

    def stop(self) -> None:
        """Power off from inside (bounded), then stop what is left by PID."""
        if self.qemu is not None and self.qemu.poll() is None:
            self.run(["systemctl", "poweroff"], check=False, timeout=15)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.qemu.wait(timeout=STOP_TIMEOUT)
        self.kill()

    def reboot(self) -> float:
        """Power off and start again on the same disk, TPM state and firmware variables."""
        self.cycles += ordering_cycles(self.journal())
        self.stop()
        return self.boot()

    # ------------------------------------------------------------------ commands
    def ssh_argv(self) -> list[str]:
        return [
            "ssh",
            "-p",
            str(self.ssh_port),
            "-i",
            str(self.key),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
            "root@127.0.0.1",
        ]

    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """A command on the VM as root (the harness's own ssh, not the operator's)."""
        try:
            done = subprocess.run(
                [*self.ssh_argv(), shlex.join(argv)],
                input=input,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            done = subprocess.CompletedProcess(list(argv), 124, "", "timed out")
        if check and done.returncode != 0:
            raise HostError(
                f"{' '.join(argv)} on the VM: exit {done.returncode}: {done.stderr.strip()}"
            )
        return done

    def operator_argv(self, argv: Sequence[str]) -> list[str]:
        return list(argv)  # the forwarded port is on this machine's 127.0.0.1

    def journal(self) -> str:
        return self.run(["journalctl", "-b", "--no-pager", "-q"], check=False, timeout=120).stdout
