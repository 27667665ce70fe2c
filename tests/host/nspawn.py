"""A booted Debian host in systemd-nspawn: systemd as PID 1, sshd on its own 127.0.0.1.

Each host is an overlay: the cached root filesystem (and the session's layer with this
checkout installed) read-only below, the host's own changes above, so a fresh host costs
a mount, not a copy. nspawn starts from a cgroup of its own (removed at the end), with
``--private-network``: the host has only its loopback, and the operator's commands reach
it by running in its network namespace (``nsenter --net``), where 127.0.0.1:22 is its sshd.

Every wait is bounded; every process is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

BOOT_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0
CGROUP = Path("/sys/fs/cgroup")


def ordering_cycles(journal: str) -> list[str]:
    return [line for line in journal.splitlines() if "ordering cycle" in line]


class HostError(AssertionError):
    """The host did not do what the harness needs (boot, stop, answer)."""


def cgroup_roots() -> list[Path]:
    """Where nspawn's own cgroup goes: the unified hierarchy, and systemd's v1 one if any."""
    if (CGROUP / "cgroup.controllers").exists():  # cgroup2 only
        return [CGROUP]
    return [p for p in (CGROUP / "unified", CGROUP / "systemd") if p.is_dir()]


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class NspawnHost:
    def __init__(self, layers: Sequence[Path], workdir: Path, name: str) -> None:
        self.layers = list(layers)  # lowest last, as overlayfs lists them
        self.workdir = workdir
        self.name = name
        self.merged = workdir / "merged"
        self.log = workdir / "nspawn.log"
        self.cgroups = [root / name for root in cgroup_roots()]
        self.process: subprocess.Popen[bytes] | None = None
        self.leader = 0
        self.boots: list[float] = []
        self.cycles: list[str] = []  # "ordering cycle" lines of the boots rebooted from
        self._mount()

    # ------------------------------------------------------------------ filesystem
    def _mount(self) -> None:
        for sub in ("upper", "work", "merged"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
            # the overlay's root is the host's /: not the test suite's umask 077
            (self.workdir / sub).chmod(0o755)
        lower = ":".join(str(p) for p in self.layers)
        options = (
            f"lowerdir={lower},upperdir={self.workdir / 'upper'},workdir={self.workdir / 'work'}"
        )
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, str(self.merged)],
            check=True,
            timeout=30,
        )

    def path(self, inside: str) -> Path:
        """A path of the host's filesystem, from outside (for reading what the host wrote)."""
        return self.merged / inside.lstrip("/")

    # ------------------------------------------------------------------ lifecycle
    def boot(self) -> float:
        """Start the host and wait for ``is-system-running`` to settle; seconds it took."""
        if self.process is not None:
            raise HostError("host is already running")
        started = time.monotonic()
        for group in self.cgroups:
            group.mkdir(exist_ok=True)
        join = "; ".join(f"echo $$ > {g}/cgroup.procs" for g in self.cgroups)
        argv = [
            "systemd-nspawn",
            "-q",
            "-D",
            str(self.merged),
            "-M",
            self.name,
            "-b",
            "--register=no",
            "--keep-unit",
            "--private-network",
            "--console=read-only",
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["sh", "-c", f'{join}; exec "$@"', "nspawn", *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env={**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"},
            )
        deadline = started + BOOT_TIMEOUT
        self.leader = 0
        while not self.leader:
            if self.process.poll() is not None:
                raise HostError(f"nspawn exited {self.process.returncode}: {self.tail()}")
            self.leader = next((c for c in _children(self.process.pid) if _comm(c) == "systemd"), 0)
            self._check(deadline, "systemd to start")
        state = ""
        while state not in ("running", "degraded"):
            state = self.run(
                ["systemctl", "is-system-running"], check=False, timeout=10
            ).stdout.strip()
            self._check(deadline, f"boot (state {state!r})")
        self.boots.append(time.monotonic() - started)
        return self.boots[-1]

    def _check(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            if self.leader:
                jobs = self.run(
                    [
                        "sh",
                        "-c",
                        "systemctl list-jobs --no-pager; systemctl status --no-pager -n 8 "
                        "$(systemctl list-jobs --no-legend | awk '$4==\"running\"{print $2}')",
                    ],
                    check=False,
                    timeout=20,
                )
                what += f"; jobs: {jobs.stdout.strip()}"
            self.kill()
            raise HostError(f"host {self.name}: no {what} within {BOOT_TIMEOUT:g}s: {self.tail()}")
        time.sleep(0.1)

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def leader_alive(self) -> bool:
        return self.process is not None and self.process.poll() is None and bool(self.leader)

    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int | None:
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def reboot(self) -> float:
        """``systemctl reboot`` inside: nspawn exits 133, and the same root boots again."""
        self.cycles += ordering_cycles(self.journal())
        self.run(["systemctl", "reboot"], check=False, timeout=30)
        code = self.wait_exit()
        if code != 133:
            self.kill()
            raise HostError(f"reboot: nspawn exited {code}, not 133: {self.tail()}")
        self.process = None
        return self.boot()

    def kill(self) -> None:
        """Power loss: SIGKILL every process of the host (nspawn and all in its cgroup)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
        for _ in range(50):
            pids = self._cgroup_pids()
            if not pids:
                break
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        self.process = None
        self.leader = 0

    def _cgroup_pids(self) -> set[int]:
        pids: set[int] = set()
        for group in self.cgroups:
            if not group.is_dir():
                continue
            for procs in group.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    pids.update(int(x) for x in procs.read_text().split())
        return pids

    def stop_for_bench(self) -> None:
        """Power off and wait, keeping the overlay mounted for the next boot."""
        if self.process is not None and self.process.poll() is None and self.leader:
            self.run(["systemctl", "poweroff"], check=False, timeout=15)
            if self.wait_exit() is None:
                self.kill()
        self.process = None
        self.leader = 0

    def stop(self) -> None:
        """Power off (bounded), then kill what is left, remove the cgroups, unmount."""
        if self.process is not None and self.process.poll() is None and self.leader:
            self.run(["systemctl", "poweroff"], check=False, timeout=15)
            if self.wait_exit() is None:
                self.process.terminate()
                self.wait_exit(10)
        self.kill()
        for group in self.cgroups:
            if group.is_dir():
                for sub in sorted(group.rglob("*"), key=lambda p: -len(p.parts)):
                    if sub.is_dir():
                        with contextlib.suppress(OSError):
                            sub.rmdir()
                with contextlib.suppress(OSError):
                    group.rmdir()
        with contextlib.suppress(FileNotFoundError):
            subprocess.run(["rm", "-rf", f"/run/systemd/nspawn/propagate/{self.name}"], timeout=30)
        if os.path.ismount(self.merged):
            subprocess.run(["umount", str(self.merged)], check=False, timeout=30)

    # ------------------------------------------------------------------ commands
    def run(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        check: bool = True,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the host as root (its namespaces, its PID 1's view)."""
        if not self.leader:
            raise HostError("host is not running")
        done = subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a", "--", *argv],
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env={
                "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LANG": "C.UTF-8",
            },
        )
        if check and done.returncode != 0:
            raise HostError(
                f"{' '.join(argv)} on {self.name}: exit {done.returncode}: {done.stderr.strip()}"
            )
        return done

    def operator_argv(self, argv: Sequence[str]) -> list[str]:
        """A command of the operator's machine that reaches the host at 127.0.0.1."""
        return ["nsenter", f"--net=/proc/{self.leader}/ns/net", "--", *argv]

    def journal(self) -> str:
        return self.run(["journalctl", "-b", "--no-pager", "-q"], check=False, timeout=60).stdout
