"""Run ``systemd-creds encrypt|decrypt`` with explicit keys; values only through stdin/stdout.

Every call names the key (``--with-key=host|tpm2|host+tpm2``; ``auto`` is never used: it
skips the TPM in containers and refuses a host key on tmpfs) and the credential name
(``--name=NAME``; otherwise systemd embeds the file name, and a renamed file stops
decrypting). The environment is a parameter so the installer and tests can point
``SYSTEMD_CREDENTIAL_SECRET`` and ``SYSTEMD_TPM2_DEVICE`` elsewhere.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aux_secrets.errors import DecryptError, ExternalError, InputError

KEYS = ("host", "tpm2", "host+tpm2")
_NAME_RE = re.compile(r"[A-Za-z0-9_.@:-]{1,255}")
_PCRS_RE = re.compile(r"[0-9]{1,2}([+,][0-9]{1,2})*")


def find_program() -> str:
    path = shutil.which("systemd-creds") or next(
        (p for p in ("/usr/bin/systemd-creds", "/bin/systemd-creds") if Path(p).exists()), None
    )
    if path is None:
        raise ExternalError(
            "systemd-creds is not installed",
            hint="install systemd (>= 250), or set settings.backend to 'age' or 'plain'",
        )
    return path


@dataclass(frozen=True)
class SystemdCreds:
    """One way of sealing: key kind, TPM device and PCRs, environment for the program."""

    with_key: str = "host"
    tpm2_device: str | None = None
    tpm2_pcrs: str = "7"
    env: Mapping[str, str] | None = None
    # Called after every run (tests flush TPM sessions that systemd 252 leaks on a raw swtpm).
    after_each: Callable[[], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.with_key not in KEYS:
            raise InputError(f"credential key {self.with_key!r} is not one of {', '.join(KEYS)}")
        if "tpm2" in self.with_key and not _PCRS_RE.fullmatch(self.tpm2_pcrs):
            # An empty --tpm2-pcrs= encrypts on systemd 252 but can never decrypt.
            raise InputError(
                f"tpm2 PCR list {self.tpm2_pcrs!r} is not valid",
                hint="use PCR numbers joined by '+', e.g. '7' or '0+7'",
            )

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("SYSTEMD_LOG_LEVEL", "err")
        return env

    def _tpm_args(self) -> list[str]:
        return [f"--tpm2-device={self.tpm2_device}"] if self.tpm2_device else []

    def _run(self, args: list[str], data: bytes) -> subprocess.CompletedProcess[bytes]:
        try:
            return subprocess.run(
                [find_program(), *args],
                input=data,
                capture_output=True,
                env=self._environment(),
                check=False,
                timeout=120,
            )
        except subprocess.TimeoutExpired:
            raise ExternalError("systemd-creds did not finish within 120 s") from None
        finally:
            if self.after_each is not None:
                self.after_each()

    def encrypt(self, name: str, plaintext: bytes) -> bytes:
        """Seal ``plaintext`` as credential ``name``; returns the credential text."""
        _check_name(name)
        args = ["encrypt", f"--with-key={self.with_key}", f"--name={name}"]
        if "tpm2" in self.with_key:
            args += [*self._tpm_args(), f"--tpm2-pcrs={self.tpm2_pcrs}"]
        result = self._run([*args, "-", "-"], plaintext)
        if result.returncode != 0 or not result.stdout:
            raise ExternalError(
                f"systemd-creds could not seal credential {name!r} with key {self.with_key}: "
                f"{_last_line(result.stderr)}",
                hint=_hint(result.stderr, self.with_key),
            )
        return result.stdout

    def decrypt(self, name: str, sealed: bytes, *, what: str) -> bytes:
        """Unseal credential ``name``; ``what`` names the file in messages."""
        _check_name(name)
        args = ["decrypt", f"--name={name}", *self._tpm_args(), "-", "-"]
        result = self._run(args, sealed)
        if result.returncode == 0:
            return result.stdout
        stderr = result.stderr.decode("utf-8", "replace")
        if "policy digest does not match" in stderr or ("PCR" in stderr and "mismatch" in stderr):
            raise DecryptError(
                f"the TPM refused to unseal {what} (PCR policy changed?)",
                hint="PCR values differ from when it was sealed (firmware, Secure Boot or boot "
                "chain changed): deliver the bundle again with aux-secrets provision",
            )
        if "TPM" in stderr or "tpm2" in stderr.lower():
            raise ExternalError(
                f"the TPM could not unseal {what}: {_last_line(result.stderr)}",
                hint="check settings.tpm2.device and that the TPM is reachable",
            )
        if "credential.secret" in stderr or "host key" in stderr.lower():
            raise ExternalError(
                f"the host credential key could not unseal {what}: {_last_line(result.stderr)}",
                hint="the credential was sealed on another machine or its host key was replaced",
            )
        raise DecryptError(
            f"systemd-creds could not unseal {what} (wrong key, renamed or tampered)"
        )


def _check_name(name: str) -> None:
    if not _NAME_RE.fullmatch(name):
        raise InputError(f"credential name {name!r} is not valid (letters, digits, _ . @ : -)")


def _last_line(stderr: bytes) -> str:
    lines = [ln.strip() for ln in stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "no message"


def _hint(stderr: bytes, with_key: str) -> str | None:
    text = stderr.decode("utf-8", "replace")
    if "tpm2" in with_key and ("TPM" in text or "tpm" in text):
        return "check settings.tpm2.device (or SYSTEMD_TPM2_DEVICE) and that a TPM2 is present"
    if "too long" in text.lower():
        return "the credential is larger than systemd-creds accepts (1 MiB)"
    return None


__all__ = ["KEYS", "SystemdCreds", "find_program"]
