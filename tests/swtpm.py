"""A software TPM per test: swtpm on a free loopback port, flushed after every call.

systemd-creds 252 leaves a TPM session (and, after a refused unseal, a transient object)
loaded per call on a raw swtpm; without a resource manager the TPM runs out of slots, so
``flush()`` runs ``tpm2_flushcontext`` for transient objects and loaded sessions. Pass it
as the systemd-creds adapter's ``after_each``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers import require_program


def _free_port_pair() -> int:
    """A port P with P and P+1 both free on 127.0.0.1 (swtpm's server and control)."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind(("127.0.0.1", 0))
            port = first.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return int(port)
    raise RuntimeError("no free loopback port pair for swtpm")


@dataclass
class Swtpm:
    port: int
    state_dir: Path
    pid: int

    @property
    def device(self) -> str:
        """The value for ``--tpm2-device=`` / ``SYSTEMD_TPM2_DEVICE``."""
        return f"swtpm:host=127.0.0.1,port={self.port}"

    def _tools_env(self) -> dict[str, str]:
        return {**os.environ, "TPM2TOOLS_TCTI": self.device}

    def flush(self) -> None:
        """Flush what systemd-creds leaves behind (transient objects, loaded sessions)."""
        for kind in ("-t", "-l"):
            subprocess.run(
                ["tpm2_flushcontext", kind],
                env=self._tools_env(),
                capture_output=True,
                check=False,
                timeout=30,
            )

    def extend_pcr(self, pcr: int = 7) -> None:
        """Change a PCR, as a firmware or boot-chain change would."""
        subprocess.run(
            ["tpm2_pcrextend", f"{pcr}:sha256=" + "ab" * 32],
            env=self._tools_env(),
            capture_output=True,
            check=True,
            timeout=30,
        )

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)


def _start(state_dir: Path) -> Swtpm:
    require_program("swtpm", "swtpm swtpm-tools")
    require_program("tpm2_flushcontext", "tpm2-tools libtss2-tcti-swtpm0")
    state_dir.mkdir(parents=True, exist_ok=True)
    last_error = ""
    for _ in range(5):
        port = _free_port_pair()
        pid_file = state_dir / "pid"
        result = subprocess.run(
            [
                "swtpm", "socket", "--tpm2",
                "--tpmstate", f"dir={state_dir}",
                "--server", f"type=tcp,port={port},bindaddr=127.0.0.1",
                "--ctrl", f"type=tcp,port={port + 1},bindaddr=127.0.0.1",
                "--flags", "not-need-init,startup-clear",
                "--daemon", "--pid", f"file={pid_file}",
            ],
            capture_output=True,
            check=False,
            timeout=30,
        )  # fmt: skip
        if result.returncode != 0:
            last_error = result.stderr.decode(errors="replace")
            continue
        for _ in range(100):
            if pid_file.exists() and pid_file.read_text().strip():
                break
            time.sleep(0.02)
        pid = int(pid_file.read_text().strip())
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    return Swtpm(port=port, state_dir=state_dir, pid=pid)
            time.sleep(0.02)
        last_error = "swtpm did not listen"
        os.kill(pid, signal.SIGTERM)
    pytest.fail(f"could not start swtpm: {last_error}", pytrace=False)


@pytest.fixture
def swtpm(tmp_path: Path) -> Iterator[Swtpm]:
    """One running software TPM for this test, stopped afterwards."""
    tpm = _start(tmp_path / "swtpm")
    try:
        yield tpm
    finally:
        tpm.stop()
