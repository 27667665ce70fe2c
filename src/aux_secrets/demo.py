"""The README demo: the whole flow on a throwaway vault, a generated host key and a temp root.

Every step runs the real ``aux-secrets`` command line as a user would type it, and prints
the command and what it answered. Nothing outside the demo directory is touched.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aux_secrets.errors import ExternalError

# A throwaway vault's password. Real vaults read theirs from a prompt, a file or a
# password manager; the demo embeds one so it runs without questions.
DEMO_PASSWORD = "correct horse battery staple"
DEMO_TOKEN = b"ghp_demo0123456789abcdefDEMOTOKEN"
ROTATED_TOKEN = b"ghp_rotated9876543210fedcbaROTATED"

TALOS_TEMPLATE = """\
secrets:
  hmac:
    current: {{aux:talos-hmac:current}}
    retired: {{aux:talos-hmac:retired}}
  pagination:
    current: {{aux:talos-pagination:current}}
    retired: {{aux:talos-pagination:retired}}
"""


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.vault = workdir / "vault"
        self.root = workdir / "host-root"
        self.manifest = workdir / "web1.manifest.json"
        self.systemctl_log = workdir / "systemctl.log"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
        password_file = workdir / "master-password"
        password_file.write_text(DEMO_PASSWORD + "\n")
        self.env["AUX_SECRETS_VAULT"] = str(self.vault)
        self.env["AUX_SECRETS_PASSWORD_FILE"] = str(password_file)

    def step(self, title: str) -> None:
        print(f"\n== {title}")

    def run(self, *args: str, stdin: bytes = b"", show: bool = True, ok: bool = True) -> str:
        print("$ aux-secrets " + " ".join(shlex.quote(a) for a in args))
        result = subprocess.run(
            [sys.executable, "-m", "aux_secrets", *args],
            input=stdin,
            capture_output=True,
            env=self.env,
            check=False,
        )
        out = result.stdout.decode(errors="replace")
        err = result.stderr.decode(errors="replace")
        if show:
            for line in (out + err).rstrip("\n").splitlines():
                print(f"    {line}")
        if ok and result.returncode != 0:
            raise ExternalError(f"demo step 'aux-secrets {args[0]}' failed: {err.strip()}")
        return out

    def make_host_key(self) -> str:
        """The host's ssh-ed25519 key, made here as a NixOS host makes it at first boot."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        key = Ed25519PrivateKey.generate()
        ssh_dir = self.root / "etc" / "ssh"
        ssh_dir.mkdir(parents=True)
        private = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        (ssh_dir / "ssh_host_ed25519_key").write_bytes(private)
        (ssh_dir / "ssh_host_ed25519_key.pub").write_bytes(public + b" root@web1\n")
        return public.decode()

    def write_manifest(self) -> None:
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        recorder = self.workdir / "systemctl"
        recorder.write_text(
            f'#!/bin/sh\necho "systemctl $*" >> {shlex.quote(str(self.systemctl_log))}\n'
        )
        recorder.chmod(0o700)
        backend = "systemd-creds" if shutil.which("systemd-creds") else "age"
        owned = {"owner": user, "group": group}
        urlsafe64 = {"type": "pass", "charset": "urlsafe", "length": 64}
        manifest: dict[str, Any] = {
            "version": 1,
            "host": "web1",
            "settings": {"backend": backend, "group": group, "systemctl": [str(recorder)]},
            "secrets": {
                "db-password": {
                    "source": {"derive": {"realm": "db/web1", "type": "pass", "length": 24}},
                    **owned,
                    "restartUnits": ["postgresql.service"],
                },
                "github-token": {
                    # One retired value too, so the runner can roll over without downtime.
                    "source": {"store": "github/deploy-token", "retired": 1},
                    **owned,
                    "format": "env",
                    "envName": "GITHUB_TOKEN",
                    "restartUnits": ["github-runner.service"],
                },
                "talos-hmac": {
                    "source": {
                        "derive": {
                            "realm": "talos/hmac/{period}",
                            **urlsafe64,
                            "rotation": {"period": "monthly", "retired": 1, "ahead": 1},
                        }
                    },
                    **owned,
                },
                "talos-pagination": {
                    "source": {
                        "derive": {
                            "realm": "talos/pagination/{period}",
                            **urlsafe64,
                            "rotation": {"period": "quarterly", "retired": 1, "ahead": 0},
                        }
                    },
                    **owned,
                },
                "ssh-deploy-key": {
                    "source": {"derive": {"realm": "ssh/web1/deploy", "type": "ed25519"}},
                    **owned,
                    "mode": "0400",
                },
            },
            "templates": {
                "talos.yaml": {
                    "content": TALOS_TEMPLATE,
                    "format": "yaml",
                    "path": "/etc/talos/config.yaml",
                    **owned,
                    "mode": "0440",
                    "restartUnits": ["talos.service"],
                }
            },
        }
        self.manifest.write_text(json.dumps(manifest, indent=2) + "\n")
        print(
            f"wrote {self.manifest.name}: {len(manifest['secrets'])} secrets, 1 template, "
            f"backend {backend}"
        )

    def show_tree(self) -> None:
        print(f"$ ls -lR {self.root.name}/run (owner, group, mode)")
        for path in sorted((self.root / "run").rglob("*")):
            info = path.lstat()
            kind = "l" if stat.S_ISLNK(info.st_mode) else "d" if path.is_dir() else "-"
            owner = _name(pwd.getpwuid, info.st_uid)
            group = _name(grp.getgrgid, info.st_gid)
            rel = path.relative_to(self.root)
            target = f" -> {os.readlink(path)}" if kind == "l" else ""
            print(
                f"    {kind}{stat.S_IMODE(info.st_mode):04o} {owner:>8} {group:>8}  /{rel}{target}"
            )

    def local_host(self) -> tuple[str, ...]:
        """The options that provision or verify web1 on this machine, into the temp root."""
        return (
            "--host",
            "web1",
            "--manifest",
            str(self.manifest),
            "--local",
            "--root",
            str(self.root),
        )

    def show_masked(self, relative: str, separator: str) -> None:
        """Print an installed file with every value after ``separator`` masked."""
        print(f"$ cat {self.root.name}/{relative}  (values masked here)")
        for line in (self.root / relative).read_text().splitlines():
            key, sep, _ = line.partition(separator)
            print(f"    {key}{sep}{'********' if sep else ''}")

    def show_systemctl(self) -> None:
        calls = self.systemctl_log.read_text() if self.systemctl_log.exists() else ""
        print("    systemctl calls: " + ("; ".join(calls.splitlines()) or "none"))
        self.systemctl_log.unlink(missing_ok=True)

    def main(self) -> None:
        self.step("1. A vault: aux-v1 scheme, a random seed wrapped with Argon2id(password)")
        self.run("init", str(self.vault))

        self.step("2. Derived secrets: nothing stored, the realm names them")
        self.run("derive", "db/web1", "--length", "24")
        self.run("derive", "api/web1", "--charset", "urlsafe", "--length", "64")
        self.run("derive", "ssh/web1/deploy", "--type", "ed25519", "--public")
        self.run("derive", "wireguard/web1", "--type", "x25519", "--encoding", "wireguard")
        self.run("derive", "wireguard/web1", "--type", "x25519", "--public")
        self.run("derive", "hmac/web1", "--type", "raw", "--encoding", "hex")
        self.run(
            "derive",
            "talos/hmac/{period}",
            "--charset",
            "urlsafe",
            "--length",
            "64",
            "--rotation",
            "monthly",
            "--retired",
            "1",
            "--ahead",
            "1",
            "--json",
        )

        self.step("3. An imported token in the fixed-secret store (value read from stdin)")
        self.run("store", "add", "github/deploy-token", "--expires", "2027-06-30", stdin=DEMO_TOKEN)
        self.run("store", "list")

        self.step("4. A host: its ssh host key is the bundle recipient")
        self.run("host", "add", "web1", "--ssh-host-key", self.make_host_key())
        self.run("host", "list")

        self.step("5. The host's manifest (what the NixOS module writes): no values in it")
        self.write_manifest()
        self.run("manifest", "check", str(self.manifest))
        self.run("render", "--manifest", str(self.manifest))

        self.step("6. Provision: bundle to the host key, activate, install (into a temp root)")
        self.run("provision", *self.local_host())
        self.show_systemctl()
        self.show_tree()
        self.show_masked("etc/talos/config.yaml", ": ")

        self.step("7. Drift check: the host proves what it holds by keyed fingerprints")
        self.run("verify", *self.local_host())

        self.step("8. Rotate the token: the old value stays as 'retired'; only its unit restarts")
        self.run("store", "set", "github/deploy-token", stdin=ROTATED_TOKEN)
        self.run("provision", *self.local_host())
        self.show_systemctl()
        self.show_masked("run/aux-secrets/github-token", "=")

        self.step("9. The host's side: status and the hash-chained audit log")
        self.run("status", "--root", str(self.root), "--manifest", str(self.manifest))
        self.run("audit", "verify", "--root", str(self.root))


def _name(lookup: Callable[[int], Sequence[Any]], ident: int) -> str:
    try:
        return str(lookup(ident)[0])
    except KeyError:
        return str(ident)


def run_demo(workdir: Path | None = None, *, keep: bool = False) -> Path:
    """Run the demo in ``workdir`` (a new temp dir by default); returns the directory."""
    base = workdir or Path(tempfile.mkdtemp(prefix="aux-secrets-demo-"))
    base.mkdir(parents=True, exist_ok=True)
    if any(base.iterdir()):
        from aux_secrets.errors import ConflictError

        raise ConflictError(f"demo directory {base} is not empty")
    try:
        Demo(base).main()
    finally:
        if not keep:
            shutil.rmtree(base, ignore_errors=True)
    return base


__all__: Sequence[str] = ("DEMO_PASSWORD", "run_demo")
