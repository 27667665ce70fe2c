"""The world the reader matrix damages, and its contract (no tests here).

One pristine world is built per module: a vault and a second vault ("other", same
password, its own seed), a gokey seed file, a host root that has activated and installed
a bundle (local store, sealed blob, audit log, a generation), a newer bundle for it, a
publish directory, and the pull unit's pull.env and delivery.env. Each row copies it,
damages one file, runs one real command, and checks that the command failed safely.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import stat
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aux_secrets.adapters.bundle_age import open_bundle, seal_bundle
from aux_secrets.core.bundle import canonical_json
from aux_secrets.core.bundle_sign import Envelope, canonical_envelope, open_envelope, sign_payload
from aux_secrets.core.delivery_units import delivery_env, pull_env
from tests.bundles import TEST_SIGNER_LINE, TEST_SIGNER_SEED
from tests.helpers import assert_one_line_error, cli, require_program
from tests.provision_helpers import PASSWORD, Vault, make_host_root, make_vault
from tests.sshd import _keygen

TOKEN = b"reader-matrix-token-4b7f0c2e"
GOKEY_PASSWORD = b"reader matrix gokey password"
Snapshot = dict[str, tuple[int, bytes | str | None]]


@dataclass(frozen=True)
class World:
    top: Path

    @property
    def vault(self) -> Vault:
        return Vault(self.top / "vault", self.top / "vault.pw")

    @property
    def other(self) -> Vault:
        return Vault(self.top / "other", self.top / "other.pw")

    @property
    def root(self) -> Path:
        return self.top / "root-web1"

    @property
    def store_dir(self) -> Path:
        return self.root / "var/lib/aux-secrets"

    @property
    def manifest(self) -> Path:
        return self.root / "etc/aux-secrets/manifest.json"

    @property
    def host_key(self) -> Path:
        return self.root / "etc/ssh/ssh_host_ed25519_key"

    @property
    def creds_root(self) -> Path:
        return self.top / "root-creds"

    def creds_env(self, secret: str = "credential.secret") -> dict[str, str]:
        """systemd-creds' host key of this machine (or another one's)."""
        return {"SYSTEMD_CREDENTIAL_SECRET": str(self.top / secret), "SYSTEMD_LOG_LEVEL": "err"}

    def blob(self) -> Path:
        return self.store_dir / str(
            json.loads((self.store_dir / "store.json").read_bytes())["blob"]
        )

    def secrets(self) -> list[bytes]:
        """Values no output may hold: passwords, the stored token, an installed value."""
        installed = (self.root / "run/aux-secrets/db/password").read_bytes()
        return [PASSWORD.strip(), GOKEY_PASSWORD, TOKEN, installed]

    def pull_env(self) -> dict[str, str]:
        """pull.env and delivery.env as the pull unit's EnvironmentFile= lines give them."""
        env: dict[str, str] = {}
        for name in ("pull.env", "delivery.env"):
            for line in (self.root / "etc/aux-secrets" / name).read_bytes().splitlines():
                env.update(_assignment(line))
        return env


def _assignment(line: bytes) -> dict[str, str]:
    """One EnvironmentFile= line as systemd takes it: NAME=VALUE in UTF-8, else nothing."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or "\0" in value or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        return {}
    return {key: value}


def _ok(result: subprocess.CompletedProcess[bytes]) -> None:
    assert result.returncode == 0, result.stderr


def _signer_line(vault: Vault) -> str:
    result = cli("signer", "--ssh", *vault.args())
    _ok(result)
    return result.stdout.decode().strip()


def _add_store_and_host(top: Path, vault: Vault, host_pub: str) -> None:
    _ok(cli("host", "add", "web1", "--ssh-host-key", host_pub, "--vault", vault.root))
    value = top / "token.value"
    value.write_bytes(TOKEN)
    _ok(cli("store", "add", "api-token", "--from-file", value, *vault.args()))
    value.unlink()


def _gokey_seed(top: Path) -> None:
    gokey = require_program("gokey", "gokey")
    (top / "gokey.pw").write_bytes(GOKEY_PASSWORD + b"\n")
    seed = top / "gokey.seed"
    argv = [gokey, "-p", GOKEY_PASSWORD.decode(), "-t", "seed", "-o", str(seed)]
    subprocess.run(argv, check=True)


def _activate_and_install(vault: Vault, manifest: Path, root: Path, env: dict[str, str]) -> None:
    first = root.parent / "first.age"
    _ok(cli("bundle", "--host", "web1", "--manifest", manifest, "-o", first, *vault.args()))
    _ok(cli("activate", "--bundle", first, "--root", root, env=env))
    _ok(cli("install", "--root", root, env=env))
    first.unlink()


def _creds_host(world: World) -> None:
    """A second root for web1 whose store is sealed with systemd-creds' host key, and
    another machine's credential host key (the wrong key for it)."""
    (world.creds_root / "etc").mkdir(parents=True)
    shutil.copytree(world.root / "etc/ssh", world.creds_root / "etc/ssh")
    doc = json.loads(world.manifest.read_bytes())
    doc["settings"]["backend"] = "systemd-creds"
    doc["secrets"]["db/password"]["credential"] = {"name": "db", "units": []}
    manifest = world.creds_root / "etc/aux-secrets/manifest.json"
    manifest.parent.mkdir()
    manifest.write_text(json.dumps(doc))
    _activate_and_install(world.vault, manifest, world.creds_root, world.creds_env())
    creds = require_program("systemd-creds", "systemd")
    argv = [creds, "encrypt", "--with-key=host", "--name=x", "-", "-"]
    env = {**os.environ, **world.creds_env("other-credential.secret")}
    subprocess.run(argv, input=b"x", env=env, check=True, capture_output=True)


def build_world(top: Path) -> World:
    top.mkdir()
    world = World(top)
    vault, other = make_vault(top), make_vault(top, "other")
    host_pub = _keygen(top / "web1_host_key")
    _keygen(top / "web2_host_key")
    for each in (vault, other):
        _add_store_and_host(top, each, host_pub)
    store_secret: dict[str, object] = {"api/token": {"source": {"store": "api-token"}}}
    host = make_host_root(top, "web1", top / "web1_host_key", store_secret)
    doc = json.loads(host.manifest.read_bytes())
    doc["settings"]["bundleSigners"] = [_signer_line(vault), TEST_SIGNER_LINE]
    host.manifest.write_text(json.dumps(doc))
    _activate_and_install(vault, host.manifest, host.root, {})
    _creds_host(world)
    bundle: list[str | Path] = [
        "bundle",
        "--host",
        "web1",
        "--manifest",
        host.manifest,
        "-o",
        top / "next.age",
    ]
    _ok(cli(*bundle, *vault.args()))
    publish: list[str | Path] = [
        "provision",
        "--host",
        "web1",
        "--manifest",
        host.manifest,
        "--publish",
        top / "pub",
    ]
    _ok(cli(*publish, *vault.args()))
    etc = host.root / "etc/aux-secrets"
    (etc / "pull.env").write_bytes(pull_env(str(top / "pub")))
    (etc / "delivery.env").write_bytes(delivery_env("web1", _signer_line(vault)))
    _gokey_seed(top)
    return world


def copy_world(pristine: World, dest: Path) -> World:
    shutil.copytree(pristine.top, dest, symlinks=True)
    return World(dest)


def snapshot(top: Path) -> Snapshot:
    """Every path under ``top``: its mode and bytes (or link target); empty lock files left
    out, since taking a lock may create one."""
    state: Snapshot = {}
    for path in sorted(top.rglob("*")):
        info = path.lstat()
        if stat.S_ISREG(info.st_mode) and path.name.endswith(".lock") and info.st_size == 0:
            continue
        content: bytes | str | None = None
        if stat.S_ISLNK(info.st_mode):
            content = os.readlink(path)
        elif stat.S_ISREG(info.st_mode):
            content = path.read_bytes()
        state[str(path.relative_to(top))] = (info.st_mode, content)
    return state


def assert_failed_safely(
    world: World, result: subprocess.CompletedProcess[bytes], before: Snapshot
) -> None:
    """Non-zero exit, one error line (and at most one hint), no value, nothing changed."""
    assert_one_line_error(result)
    lines = [line for line in result.stderr.decode(errors="replace").splitlines() if line.strip()]
    assert lines[0].startswith("aux-secrets: error: "), lines
    assert len(lines) <= 2, lines
    assert all(line.startswith("aux-secrets: hint: ") for line in lines[1:]), lines
    for secret in world.secrets():
        assert secret not in result.stdout + result.stderr
    assert snapshot(world.top) == before


# Damages: each rewrites one file in place (its mode stays).
Damage = Callable[[World, Path], None]


def half(_: World, path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def empty(_: World, path: Path) -> None:
    path.write_bytes(b"")


def random_bytes(_: World, path: Path) -> None:
    """Random bytes of the file's own length (fixed per file name, so a row repeats)."""
    size = max(path.stat().st_size, 64)
    path.write_bytes(random.Random(path.name).randbytes(size))


def text(content: str) -> Damage:
    def write(_: World, path: Path) -> None:
        path.write_text(content)

    return write


def replace(old: str, new: str) -> Damage:
    """Replace the first ``old`` (which must be there, or the row would test nothing)."""

    def edit(_: World, path: Path) -> None:
        data = path.read_text()
        assert old in data, (old, path)
        path.write_text(data.replace(old, new, 1))

    return edit


def flip(offset: int) -> Damage:
    """Flip the low bit of the byte at ``offset`` (negative: from the end)."""

    def edit(_: World, path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[offset] ^= 0x01
        path.write_bytes(bytes(data))

    return edit


def from_other_vault(world: World, path: Path) -> None:
    """The same file of the other vault (its own seed: another key)."""
    shutil.copyfile(world.other.root / path.relative_to(world.vault.root), path)


def json_edit(change: Callable[[dict[str, object]], object]) -> Damage:
    def edit(_: World, path: Path) -> None:
        doc = json.loads(path.read_bytes())
        change(doc)
        path.write_text(json.dumps(doc))

    return edit


def resealed(
    change: Callable[[bytes], bytes], *, seed: bytes = TEST_SIGNER_SEED, to: str = "web1"
) -> Damage:
    """The bundle's own payload, changed by ``change``, signed by ``seed`` (a signer the
    manifest pins unless it is another) and sealed to host ``to``'s key."""

    def edit(world: World, path: Path) -> None:
        plain = open_bundle(path.read_bytes(), [world.host_key])
        payload = change(open_envelope(plain).payload)
        recipient = (world.top / f"{to}_host_key.pub").read_text()
        path.write_bytes(seal_bundle(sign_payload(seed, payload), [recipient]))

    return edit


def payload_field(name: str, value: object) -> Callable[[bytes], bytes]:
    def change(payload: bytes) -> bytes:
        doc = json.loads(payload)
        assert name in doc, name
        doc[name] = value(doc[name]) if callable(value) else value
        return canonical_json(doc)  # as a writer makes it: only the changed value differs

    return change


def signature_kept(world: World, path: Path) -> None:
    """One payload byte changed under the original signature (the host key reseals it)."""
    envelope = open_envelope(open_bundle(path.read_bytes(), [world.host_key]))
    payload = envelope.payload.replace(b'"host":"web1"', b'"host":"web2"', 1)
    assert payload != envelope.payload
    forged = Envelope(envelope.signer, envelope.signature, payload)
    recipient = (world.top / "web1_host_key.pub").read_text()
    path.write_bytes(seal_bundle(canonical_envelope(forged), [recipient]))


def set_byte(offset: int, value: int) -> Damage:
    def edit(_: World, path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[offset] = value
        path.write_bytes(bytes(data))

    return edit


def rehashed(damage: Damage) -> Damage:
    """``damage`` to the local store's blob, with store.json's blobSha256 made to match:
    what the blob's own MAC or header must then catch."""

    def edit(world: World, path: Path) -> None:
        damage(world, path)
        meta = path.parent / "store.json"  # the blob's own store
        doc = json.loads(meta.read_bytes())
        doc["blobSha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        meta.write_text(json.dumps(doc))

    return edit
