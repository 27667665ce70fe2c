"""The age layer of bundles, checked against the real `age` binary in both directions."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from aux_secrets.adapters.bundle_age import open_bundle, seal_bundle
from aux_secrets.errors import DecryptError, InputError, NotFoundError, PolicyError
from tests.helpers import VECTORS, require_program

VEC = VECTORS / "bundle"
PAYLOAD = (VEC / "payload.json").read_bytes()


def private_copy(tmp_path: Path, name: str) -> Path:
    target = tmp_path / name
    target.write_bytes((VEC / name).read_bytes())
    target.chmod(0o600)
    return target


def ssh_key(tmp_path: Path, name: str = "key") -> Path:
    keygen = require_program("ssh-keygen", "openssh-client")
    path = tmp_path / name
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def test_opens_vector_made_by_age_for_ssh_key(tmp_path: Path) -> None:
    key = private_copy(tmp_path, "host_ed25519_key")
    assert open_bundle((VEC / "payload.ssh.age").read_bytes(), [key]) == PAYLOAD


def test_opens_vector_made_by_age_for_x25519(tmp_path: Path) -> None:
    ident = private_copy(tmp_path, "age_identity.txt")
    assert open_bundle((VEC / "payload.x25519.age").read_bytes(), [ident]) == PAYLOAD


def test_missing_identity_files_are_skipped(tmp_path: Path) -> None:
    key = private_copy(tmp_path, "host_ed25519_key")
    data = (VEC / "payload.ssh.age").read_bytes()
    assert open_bundle(data, [tmp_path / "absent", key]) == PAYLOAD
    with pytest.raises(NotFoundError, match="no host key"):
        open_bundle(data, [tmp_path / "absent"])


def test_age_cli_opens_our_bundle_to_ssh_key(tmp_path: Path) -> None:
    age = require_program("age", "age")
    key = ssh_key(tmp_path)
    sealed = seal_bundle(PAYLOAD, [key.with_suffix(".pub").read_text()])
    (tmp_path / "b.age").write_bytes(sealed)
    out = subprocess.run(
        [age, "-d", "-i", str(key), str(tmp_path / "b.age")], capture_output=True, check=True
    )
    assert out.stdout == PAYLOAD


def test_age_cli_opens_our_bundle_to_age_recipient(tmp_path: Path) -> None:
    age = require_program("age", "age")
    ident = private_copy(tmp_path, "age_identity.txt")
    recipient = next(
        line.split(": ")[1]
        for line in ident.read_text().splitlines()
        if line.startswith("# public key: ")
    )
    (tmp_path / "b.age").write_bytes(seal_bundle(PAYLOAD, [recipient]))
    out = subprocess.run(
        [age, "-d", "-i", str(ident), str(tmp_path / "b.age")], capture_output=True, check=True
    )
    assert out.stdout == PAYLOAD


def test_wrong_key_is_one_opaque_error(tmp_path: Path) -> None:
    other = ssh_key(tmp_path, "other")
    with pytest.raises(DecryptError) as info:
        open_bundle((VEC / "payload.ssh.age").read_bytes(), [other])
    assert "could not be opened" in info.value.message


@pytest.mark.parametrize("where", ["header", "body", "tail"])
def test_tampered_bundle_is_one_opaque_error(tmp_path: Path, where: str) -> None:
    key = private_copy(tmp_path, "host_ed25519_key")
    data = bytearray((VEC / "payload.ssh.age").read_bytes())
    index = {"header": 60, "body": len(data) // 2 + 100, "tail": len(data) - 1}[where]
    data[index] ^= 0x01
    with pytest.raises((DecryptError, InputError)) as info:
        open_bundle(bytes(data), [key])
    assert "correct horse" not in str(info.value)


@pytest.mark.parametrize("cut", [0, 22, 30, 200, -17, -1])
def test_truncated_bundle_refused(tmp_path: Path, cut: int) -> None:
    key = private_copy(tmp_path, "host_ed25519_key")
    data = (VEC / "payload.ssh.age").read_bytes()[:cut]
    with pytest.raises((DecryptError, InputError)):
        open_bundle(data, [key])


@pytest.mark.parametrize(
    "data", [b"garbage", b"age-encryption.org/v1\n", b"age-encryption.org/v2\n-> x\n", b"\x00" * 64]
)
def test_garbage_bundle_refused(tmp_path: Path, data: bytes) -> None:
    key = private_copy(tmp_path, "host_ed25519_key")
    with pytest.raises((DecryptError, InputError)):
        open_bundle(data, [key])


def test_bad_identity_and_recipient(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.write_bytes(b"-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n")
    with pytest.raises(InputError, match="identity file"):
        open_bundle((VEC / "payload.ssh.age").read_bytes(), [bad])
    with pytest.raises(PolicyError):
        seal_bundle(PAYLOAD, ["ssh-rsa AAAAB3NzaC1yc2E"])
    with pytest.raises(InputError):
        seal_bundle(PAYLOAD, ["age1notvalid"])
    with pytest.raises(InputError):
        seal_bundle(PAYLOAD, [])
