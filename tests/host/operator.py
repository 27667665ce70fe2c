"""The operator's side of a booted host: ssh to it on 127.0.0.1, and this checkout's CLI.

The operator's commands (``ssh``, ``aux-secrets provision``) run on this machine in the
host's network namespace, where 127.0.0.1:22 is the host's sshd; the vault and every
other file stay on the operator's side. ``inside`` runs a command on the host as root
without ssh (for the test's own observations: journal, files, unit states).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.host.nspawn import HostError, NspawnHost, ordering_cycles
from tests.host.vm import VmHost

TARGET = "root@127.0.0.1"
SSH_WAIT = 30.0


class Host:
    def __init__(self, machine: NspawnHost | VmHost, key: Path, workdir: Path) -> None:
        self.machine = machine
        self.port = getattr(machine, "ssh_port", 22)
        self.key = key
        self.workdir = workdir
        self.known_hosts = workdir / "known_hosts"
        self.host_pub = ""

    # ------------------------------------------------------------------ inside the host
    def inside(self, script: str, *, check: bool = True, timeout: float = 120) -> str:
        """``sh -c SCRIPT`` on the host as root (not over ssh); its stdout."""
        return self.machine.run(["sh", "-c", script], check=check, timeout=timeout).stdout

    def file(self, path: str) -> bytes | None:
        """A file's bytes as the host sees it (its /run included); None when absent."""
        out = self.inside(f"if [ -e {path} ]; then base64 -w0 < {path}; echo; else echo ABSENT; fi")
        return None if out.strip() == "ABSENT" else base64.b64decode(out.strip())

    def exists(self, path: str) -> bool:
        return self.inside(f"test -e {path} && echo yes || echo no").strip() == "yes"

    def active(self, unit: str) -> str:
        return self.inside(f"systemctl is-active {unit} || true").strip()

    def main_pid(self, unit: str) -> str:
        return self.inside(f"systemctl show -P MainPID {unit}").strip()

    def ordering_cycles(self) -> list[str]:
        """Every "ordering cycle" line of this boot and of the boots rebooted from."""
        return [*self.machine.cycles, *ordering_cycles(self.machine.journal())]

    # ------------------------------------------------------------------ the operator
    def operator(
        self,
        argv: list[str],
        *,
        input: bytes = b"",
        timeout: float = 300,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[bytes]:
        full_env = {
            k: v for k, v in __import__("os").environ.items() if not k.startswith("AUX_SECRETS_")
        }
        full_env.update(env or {})
        return subprocess.run(
            self.machine.operator_argv(argv),
            input=input,
            capture_output=True,
            timeout=timeout,
            env=full_env,
            check=False,
        )

    def ssh_options(self) -> list[str]:
        return [
            f"Port={self.port}",
            f"IdentityFile={self.key}",
            "IdentitiesOnly=yes",
            f"UserKnownHostsFile={self.known_hosts}",
            "GlobalKnownHostsFile=/dev/null",
            "StrictHostKeyChecking=yes",
            "ConnectTimeout=10",
            "LogLevel=ERROR",
        ]

    def keyscan(self) -> str:
        """Wait for the host's sshd, record its ed25519 key in known_hosts; the key line."""
        deadline = time.monotonic() + SSH_WAIT
        while True:
            done = self.operator(
                ["ssh-keyscan", "-p", str(self.port), "-t", "ed25519", "-T", "5", "127.0.0.1"],
                timeout=30,
            )
            lines = [x for x in done.stdout.decode().splitlines() if x and not x.startswith("#")]
            if lines:
                break
            if time.monotonic() > deadline:
                raise HostError(f"no sshd on the host within {SSH_WAIT:g}s: {done.stderr.decode()}")
            time.sleep(0.3)
        self.known_hosts.write_text(lines[0] + "\n")
        self.host_pub = " ".join(lines[0].split()[1:3])
        return self.host_pub

    def ssh(
        self, command: str, *, input: bytes = b"", timeout: float = 300
    ) -> subprocess.CompletedProcess[bytes]:
        argv = ["ssh"]
        for option in self.ssh_options():
            argv += ["-o", option]
        return self.operator(
            [*argv, "-o", "BatchMode=yes", "-T", TARGET, command], input=input, timeout=timeout
        )

    def ssh_ok(self, command: str, *, input: bytes = b"") -> str:
        done = self.ssh(command, input=input)
        if done.returncode != 0:
            raise HostError(
                f"ssh {command!r}: exit {done.returncode}: {done.stderr.decode().strip()}"
            )
        return done.stdout.decode()

    def aux(self, *args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[bytes]:
        """This checkout's aux-secrets on the operator's side, able to reach the host."""
        return self.operator(
            [sys.executable, "-m", "aux_secrets", *map(str, args)], timeout=timeout
        )

    # ------------------------------------------------------------------ common steps
    def put(self, path: str, data: bytes | str, mode: str = "0644") -> None:
        """Deliver a file over ssh, as configuration management would."""
        payload = data.encode() if isinstance(data, str) else data
        self.ssh_ok(
            f"mkdir -p $(dirname {path}) && cat > {path}.tmp && chmod {mode} {path}.tmp"
            f" && mv {path}.tmp {path}",
            input=payload,
        )

    def put_manifest(self, doc: dict[str, Any]) -> None:
        self.put("/etc/aux-secrets/manifest.json", json.dumps(doc, indent=2))
