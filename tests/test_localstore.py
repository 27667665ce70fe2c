"""The local store: blob and metadata formats, the three backends, one decrypt per load."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aux_secrets.core.bundle import decode_payload, encode_payload
from aux_secrets.core.localstore import (
    KIND_PLAIN,
    KIND_SYSTEMD_CREDS,
    decode_meta,
    encode_meta,
    meta_for,
    open_blob,
    parse_blob,
    seal_blob,
)
from aux_secrets.errors import (
    ConflictError,
    DecryptError,
    ExternalError,
    FormatVersionError,
    InputError,
    NotFoundError,
)
from tests.test_localstore_support import Host, payload, rotating_payload

KEY = b"\x11" * 32
NONCE = b"\x22" * 12
CTX = {"host": "web1", "serial": 3, "bundle_id": "ab" * 16}


# --------------------------------------------------------------------------- pure formats


def envelope(kind: int = KIND_PLAIN, key_blob: bytes = KEY) -> bytes:
    return seal_blob(kind, key_blob, KEY, NONCE, b"the payload", **CTX)  # type: ignore[arg-type]


def test_envelope_roundtrip_and_layout() -> None:
    data = envelope()
    assert data.startswith(b"AUXSTORE\x01\x02\x00\x00\x00\x20")
    blob = parse_blob(data)
    assert blob.kind == KIND_PLAIN and blob.key_blob == KEY and blob.nonce == NONCE
    assert open_blob(blob, KEY, **CTX) == b"the payload"  # type: ignore[arg-type]
    sealed = parse_blob(envelope(KIND_SYSTEMD_CREDS, b"sealed-key-text"))
    assert sealed.key_blob == b"sealed-key-text"


def test_envelope_wrong_key_and_context() -> None:
    blob = parse_blob(envelope())
    with pytest.raises(DecryptError):
        open_blob(blob, b"\x12" * 32, **CTX)  # type: ignore[arg-type]
    with pytest.raises(DecryptError):
        open_blob(blob, KEY, host="web1", serial=4, bundle_id="ab" * 16)
    with pytest.raises(DecryptError):
        open_blob(blob, KEY, host="web2", serial=3, bundle_id="ab" * 16)


@pytest.mark.parametrize("index", [8, 9, 12, 20, 50, -1])
def test_envelope_tampered(index: int) -> None:
    data = bytearray(envelope())
    data[index] ^= 0x40
    with pytest.raises((InputError, DecryptError)):
        open_blob(parse_blob(bytes(data)), KEY, **CTX)  # type: ignore[arg-type]


@pytest.mark.parametrize("cut", [0, 5, 13, 30, 60])
def test_envelope_truncated(cut: int) -> None:
    data = envelope()[:cut]
    with pytest.raises((InputError, DecryptError)):
        open_blob(parse_blob(data), KEY, **CTX)  # type: ignore[arg-type]


def test_envelope_garbage_and_version() -> None:
    with pytest.raises(InputError, match="not an aux-secrets"):
        parse_blob(b"garbage-garbage-garbage-garbage-garbage")
    data = bytearray(envelope())
    data[8] = 2
    with pytest.raises(FormatVersionError):
        parse_blob(bytes(data))
    data[8] = 1
    data[9] = 7
    with pytest.raises(InputError, match="key kind"):
        parse_blob(bytes(data))


def sample_meta() -> bytes:
    p = rotating_payload(5)
    return encode_meta(
        meta_for(p, backend="plain", credential_key=None, blob="store-5.bin", blob_sha256="0" * 64)
    )


def test_meta_roundtrip() -> None:
    data = sample_meta()
    meta = decode_meta(data)
    assert meta.serial == 5 and meta.backend == "plain"
    assert encode_meta(meta) == data
    assert [s.label for s in meta.secrets["talos/hmac"].slots] == ["2026-11", "2026-10", "2026-12"]
    assert b"db-pass" not in data and b"hmac-11" not in data


def meta_with(**changes: object) -> bytes:
    doc = json.loads(sample_meta())
    for key, value in changes.items():
        if value is KeyError:
            del doc[key]
        else:
            doc[key] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"extra": 1, "critical": ["extra"]}, "extra"),
        ({"critical": "extra"}, "critical"),
        ({"serial": KeyError}, "serial"),
        ({"serial": 0}, "serial"),
        ({"backend": "floppy"}, "backend"),
        ({"credentialKey": "host"}, "credentialKey"),
        ({"blob": "../../etc/shadow"}, "blob"),
        ({"blobSha256": "xyz"}, "blobSha256"),
        ({"bundleId": "nope"}, "bundleId"),
        ({"created": "yesterday"}, "created"),
        ({"secrets": {"../x": {"hasPublic": False, "slots": []}}}, "../x"),
    ],
)
def test_meta_strict(changes: dict[str, object], needle: str) -> None:
    with pytest.raises(InputError) as info:
        decode_meta(meta_with(**changes))
    assert needle in info.value.message


@pytest.mark.parametrize("data", [b"", b"{", b"garbage", b"[]", b"\xff"])
def test_meta_garbage(data: bytes) -> None:
    with pytest.raises(InputError):
        decode_meta(data)


def test_meta_wrong_version_and_truncated() -> None:
    with pytest.raises(FormatVersionError):
        decode_meta(meta_with(version=2))
    with pytest.raises(InputError):
        decode_meta(sample_meta()[:-20])


# --------------------------------------------------------------------------- backends


@pytest.mark.parametrize("backend", ["systemd-creds", "age", "plain"])
def test_activate_then_load(tmp_path: Path, backend: str) -> None:
    host = Host(tmp_path, backend=backend)
    store = host.store()
    assert store.active_meta() is None
    p = rotating_payload(7)
    result = store.activate(host.bundle(p), "web1", manifest=host.manifest)
    assert result.previous_serial is None
    assert set(result.changed) == {"db", "api/token", "talos/hmac"}
    loaded = host.store().load()
    assert loaded == p
    meta = host.store().active_meta()
    assert meta is not None and meta.serial == 7 and meta.bundle_id == p.bundle_id
    assert meta.backend == backend
    files = {f.name for f in host.store_dir.iterdir()}
    assert {"store.json", "audit.jsonl", "audit.head"} <= files
    blob = host.store_dir / meta.blob
    assert (blob.stat().st_mode & 0o777) == 0o600
    assert (host.store_dir.stat().st_mode & 0o777) == 0o700
    raw = blob.read_bytes()
    assert b"db-pass-7" not in raw and b"aG1hYy0x" not in raw
    if backend == "age":
        assert raw == host.bundle(p)[:0] + raw and raw.startswith(b"age-encryption.org/v1\n")


def test_plain_backend_is_readable_by_format_alone(tmp_path: Path) -> None:
    """Documented as the weakest: the key sits next to the ciphertext."""
    host = Host(tmp_path, backend="plain")
    p = payload(1)
    host.store().activate(host.bundle(p), "web1")
    meta = host.store().active_meta()
    assert meta is not None
    blob = parse_blob((host.store_dir / meta.blob).read_bytes())
    opened = open_blob(blob, blob.key_blob, host="web1", serial=1, bundle_id=p.bundle_id)
    assert decode_payload(opened) == p


def test_load_is_one_decrypt_for_many_secrets(tmp_path: Path) -> None:
    host = Host(tmp_path, secrets={})
    values = {f"svc{i}/password": os.urandom(24) for i in range(300)}
    calls: list[int] = []
    p = payload(1, values=values)
    host.store().activate(host.bundle(p), "web1")
    loaded = host.store(after_each=lambda: calls.append(1)).load()
    assert loaded == p
    assert len(calls) == 1


def test_large_store_beyond_the_credential_size_limit(tmp_path: Path) -> None:
    """systemd-creds takes at most 1 MiB: the store seals a key, not the payload."""
    host = Host(tmp_path, secrets={})
    values = {f"k{i}": os.urandom(2048) for i in range(1000)}
    p = payload(1, values=values)
    assert len(encode_payload(p)) > 2 * 1024 * 1024
    host.store().activate(host.bundle(p), "web1")
    assert host.store().load() == p


def test_load_without_activation(tmp_path: Path) -> None:
    host = Host(tmp_path)
    with pytest.raises(NotFoundError, match="no bundle has been activated") as info:
        host.store().load()
    assert "aux-secrets activate" in (info.value.hint or "")


@pytest.mark.parametrize("backend", ["systemd-creds", "age", "plain"])
def test_corrupted_blob_refused(tmp_path: Path, backend: str) -> None:
    host = Host(tmp_path, backend=backend)
    host.store().activate(host.bundle(payload(1)), "web1")
    meta = host.store().active_meta()
    assert meta is not None
    blob = host.store_dir / meta.blob
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 1
    blob.write_bytes(bytes(data))
    with pytest.raises(InputError, match="does not match its metadata"):
        host.store().load()
    # Even with the checksum fixed up, authentication catches it.
    doc = json.loads((host.store_dir / "store.json").read_bytes())
    doc["blobSha256"] = hashlib.sha256(bytes(data)).hexdigest()
    (host.store_dir / "store.json").write_text(json.dumps(doc, sort_keys=True))
    with pytest.raises((DecryptError, InputError)):
        host.store().load()
    blob.write_bytes(bytes(data[:40]))
    with pytest.raises(InputError):
        host.store().load()


def test_swapped_blob_detected(tmp_path: Path) -> None:
    """An older blob put back under the current name with matching checksum is refused."""
    host = Host(tmp_path, backend="plain")
    host.store().activate(host.bundle(payload(1)), "web1")
    old_blob = (host.store_dir / "store-1.bin").read_bytes()
    host.store().activate(host.bundle(payload(2)), "web1")
    (host.store_dir / "store-2.bin").write_bytes(old_blob)
    doc = json.loads((host.store_dir / "store.json").read_bytes())
    doc["blobSha256"] = hashlib.sha256(old_blob).hexdigest()
    (host.store_dir / "store.json").write_text(json.dumps(doc, sort_keys=True))
    with pytest.raises(DecryptError):
        host.store().load()


def test_wrong_credential_host_key(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.store().activate(host.bundle(payload(1)), "web1")
    os.chmod(host.credential_secret, 0o600)
    host.credential_secret.unlink()  # a different machine: systemd-creds makes a new key
    with pytest.raises((DecryptError, ExternalError)) as info:
        host.store().load()
    assert "db-pass" not in str(info.value)


def test_age_backend_wrong_host_key(tmp_path: Path) -> None:
    host = Host(tmp_path, backend="age")
    host.store().activate(host.bundle(payload(1)), "web1")
    host.key.unlink()
    other = Host(tmp_path / "other")
    host.key.write_bytes(other.key.read_bytes())
    host.key.chmod(0o600)
    with pytest.raises(DecryptError):
        host.store().load()


def test_metadata_tampering(tmp_path: Path) -> None:
    host = Host(tmp_path, backend="plain")
    host.store().activate(host.bundle(payload(1)), "web1")
    meta_path = host.store_dir / "store.json"
    good = meta_path.read_bytes()
    meta_path.write_bytes(good[:30])
    with pytest.raises(InputError):
        host.store().load()
    meta_path.write_bytes(good.replace(b'"version":1', b'"version":3'))
    with pytest.raises(FormatVersionError):
        host.store().load()
    doc = json.loads(good)
    doc["serial"] = 99  # points at the right blob, claims another serial
    meta_path.write_text(json.dumps(doc, sort_keys=True))
    with pytest.raises((DecryptError, InputError)):
        host.store().load()


def test_replay_and_other_host_change_nothing(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.store().activate(host.bundle(payload(5)), "web1", manifest=host.manifest)
    before = host.snapshot()
    with pytest.raises(ConflictError, match="not newer"):
        host.store().activate(host.bundle(payload(5)), "web1", manifest=host.manifest)
    with pytest.raises(ConflictError):
        host.store().activate(host.bundle(payload(4)), "web1", manifest=host.manifest)
    from aux_secrets.errors import PolicyError

    with pytest.raises(PolicyError, match="web2"):
        host.store().activate(host.bundle(payload(9, host="web2")), "web1")
    assert host.snapshot() == before


def test_interrupted_activate_leaves_old_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = Host(tmp_path, backend="plain")
    p1 = payload(1)
    host.store().activate(host.bundle(p1), "web1")
    from aux_secrets.adapters import localstore as adapter

    real = adapter.atomic_write  # type: ignore[attr-defined]

    def crash_on_commit(path: Path, data: bytes, **kwargs: object) -> None:
        if path.name == "store.json":
            raise KeyboardInterrupt  # power cut just before the rename
        real(path, data, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(adapter, "atomic_write", crash_on_commit)
    with pytest.raises(KeyboardInterrupt):
        host.store().activate(host.bundle(payload(2)), "web1")
    monkeypatch.setattr(adapter, "atomic_write", real)
    assert host.store().load() == p1
    assert not any(p.name.endswith(".tmp") for p in host.store_dir.iterdir())
    # The next activate goes through and removes the stray blob.
    p3 = payload(3)
    host.store().activate(host.bundle(p3), "web1")
    assert host.store().load() == p3
    assert sorted(p.name for p in host.store_dir.glob("store-*")) == ["store-3.bin"]


def test_credentials_sealed_with_name(tmp_path: Path) -> None:
    import subprocess

    host = Host(tmp_path)
    host.store().activate(
        host.bundle(payload(1)),
        "web1",
        manifest=host.manifest,
        now=datetime(2026, 11, 22, tzinfo=UTC),
    )
    cred = host.store_dir / "credentials" / "db.cred"
    assert (cred.stat().st_mode & 0o777) == 0o600
    assert b"db-pass-1" not in cred.read_bytes()
    out = subprocess.run(
        ["systemd-creds", "decrypt", "--name=db", str(cred), "-"],
        env=host.env,
        capture_output=True,
        check=True,
    )
    assert out.stdout == b"db-pass-1"
    wrong = subprocess.run(
        ["systemd-creds", "decrypt", "--name=other", str(cred), "-"],
        env=host.env,
        capture_output=True,
        check=False,
    )
    assert wrong.returncode != 0
    path = host.store().seal_credential("db", b"new")
    assert path == cred


def decrypt_cred(host: Host, name: str) -> bytes:
    import subprocess

    path = host.store_dir / "credentials" / f"{name}.cred"
    out = subprocess.run(
        ["systemd-creds", "decrypt", f"--name={name}", str(path), "-"],
        env=host.env,
        capture_output=True,
        check=True,
    )
    return out.stdout


def test_refresh_credentials_after_a_rotation_boundary(tmp_path: Path) -> None:
    host = Host(
        tmp_path,
        secrets={
            "talos/hmac": {
                "source": {
                    "derive": {
                        "realm": "talos/hmac/{period}",
                        "rotation": {"period": "monthly", "retired": 1, "ahead": 1},
                    }
                },
                "credential": {"name": "talos-hmac", "units": ["talos.service"]},
            },
            "db": {"source": {"store": "db"}, "credential": {"name": "db", "units": []}},
        },
    )
    p = rotating_payload(1)
    nov = datetime(2026, 11, 20, tzinfo=UTC)
    result = host.store().activate(host.bundle(p), "web1", manifest=host.manifest, now=nov)
    assert len(result.credentials) == 2
    assert decrypt_cred(host, "talos-hmac") == b"hmac-11"
    calls: list[int] = []
    store = host.store(after_each=lambda: calls.append(1))
    # Same month: nothing to seal, not even a systemd-creds call, and nothing rewritten.
    credentials = host.store_dir / "credentials"

    def stamps() -> dict[str, tuple[int, int]]:
        return {c.name: (c.stat().st_ino, c.stat().st_mtime_ns) for c in credentials.iterdir()}

    before = stamps()
    assert store.refresh_credentials(host.manifest, p, nov) == ()
    assert calls == []
    assert stamps() == before
    # December: only the rotating credential is sealed again.
    dec = datetime(2026, 12, 2, tzinfo=UTC)
    written = store.refresh_credentials(host.manifest, p, dec)
    assert [w.name for w in written] == ["talos-hmac.cred"]
    assert len(calls) == 1
    assert decrypt_cred(host, "talos-hmac") == b"hmac-12"
    assert decrypt_cred(host, "db") == b"db-pass-1"
    # A damaged index is only a cache miss: everything is sealed again.
    (host.store_dir / "credentials" / "index.json").write_bytes(b"garbage")
    assert len(store.refresh_credentials(host.manifest, p, dec)) == 2
    # A credential the manifest no longer names is removed.
    host.secrets = {"db": {"source": {"store": "db"}}}
    host.write_manifest()
    store.refresh_credentials(host.manifest, p, dec)
    assert sorted(x.name for x in (host.store_dir / "credentials").iterdir()) == ["index.json"]


def test_audit_entry_per_activate(tmp_path: Path) -> None:
    host = Host(tmp_path, backend="plain")
    host.store().activate(host.bundle(payload(1)), "web1")
    host.store().activate(
        host.bundle(payload(2, values={"db": b"db-pass-2", "api/token": b"tok"})), "web1"
    )
    entries = host.store().audit.verify()
    assert [e.event.serial for e in entries] == [1, 2]
    assert entries[0].event.changed == ("api/token", "db")
    assert entries[1].event.changed == ("db",)  # the token kept its value
    assert set(entries[1].event.fingerprints) == {"db"}
    assert b"db-pass" not in host.store().audit.path.read_bytes()


def test_credential_index_codec() -> None:
    from aux_secrets.core.fingerprint import fingerprint
    from aux_secrets.core.localstore import decode_credential_index, encode_credential_index

    entries = {"db": fingerprint(KEY, "db", b"x"), "talos-hmac": fingerprint(KEY, "t", b"y")}
    data = encode_credential_index(entries)
    assert decode_credential_index(data) == entries
    for bad in (b"", b"garbage", data[:20], data.replace(b"fp1:", b"sha:")):
        with pytest.raises(InputError):
            decode_credential_index(bad)
    with pytest.raises(FormatVersionError):
        decode_credential_index(data.replace(b'"version":1', b'"version":2'))
    newer = data.replace(b'{"credentials"', b'{"extra":1,"credentials"')
    assert decode_credential_index(newer) == entries  # a newer writer's field is skipped
    with pytest.raises(FormatVersionError, match="extra"):
        decode_credential_index(newer.replace(b'{"extra"', b'{"critical":["extra"],"extra"'))
    with pytest.raises(InputError):
        encode_credential_index({"../x": entries["db"]})
