"""The publish directory writer: bundles and index, atomic, never over a foreign index."""

from __future__ import annotations

import json
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aux_secrets.adapters.publish import INDEX_NAME, Publisher, read_index
from aux_secrets.errors import FormatVersionError, InputError, NotFoundError

AT = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def sealed(tag: str) -> bytes:
    return b"age-encryption.org/v1\n" + tag.encode() * 40


def test_bundles_and_index(tmp_path: Path) -> None:
    pub = tmp_path / "pub"
    publisher = Publisher(pub)
    publisher.put("web1", sealed("a"), serial=10, created=AT)
    publisher.put("web2", sealed("b"), serial=11, created=AT)
    index = publisher.close()
    assert index == pub / INDEX_NAME
    assert (pub / "web1.age").read_bytes() == sealed("a")
    doc = json.loads(index.read_text())
    assert doc["format"] == "aux-secrets-publish-index" and doc["version"] == 1
    assert doc["hosts"]["web2"]["serial"] == 11
    assert doc["hosts"]["web1"]["created"] == "2026-12-02T01:00:00Z"
    assert doc["hosts"]["web1"]["bytes"] == len(sealed("a"))
    for path in (pub / "web1.age", index):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # served: ciphertext and facts
    assert sorted(p.name for p in pub.iterdir()) == [
        ".publish.lock",
        INDEX_NAME,
        "web1.age",
        "web2.age",
    ]
    # Publishing one host later keeps the others' entries.
    again = Publisher(pub)
    again.put("web1", sealed("c"), serial=12, created=AT)
    again.close()
    hosts = read_index(pub)
    assert (hosts["web1"]["serial"], hosts["web2"]["serial"]) == (12, 11)


def test_many_threads_one_index(tmp_path: Path) -> None:
    publisher = Publisher(tmp_path / "pub")
    threads = [
        threading.Thread(
            target=publisher.put,
            args=(f"h{i}", sealed(str(i))),
            kwargs={"serial": i, "created": AT},
        )
        for i in range(40)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    publisher.close()
    assert len(read_index(tmp_path / "pub")) == 40


def test_refuses_plaintext_and_bad_names(tmp_path: Path) -> None:
    publisher = Publisher(tmp_path / "pub")
    with pytest.raises(InputError, match="not an age file"):
        publisher.put("web1", b'{"secrets": {}}', serial=1, created=AT)
    with pytest.raises(InputError, match="not a valid host name"):
        publisher.put("../etc/x", sealed("a"), serial=1, created=AT)
    assert not (tmp_path / "pub" / "web1.age").exists()


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        (b"", InputError, "is not JSON; not overwritten"),
        (b'{"format": "aux-secrets-publish-index", "ver', InputError, "is not JSON"),
        (b"\xff\xfe", InputError, "is not JSON"),
        (b"[]", InputError, "is not an aux-secrets publish index"),
        (b'{"format": "other", "version": 1, "hosts": {}}', InputError, "not an aux-secrets"),
        (
            b'{"format": "aux-secrets-publish-index", "version": 2, "hosts": {}}',
            FormatVersionError,
            "has version 2",
        ),
        (
            b'{"format": "aux-secrets-publish-index", "version": 1, "hosts": [], "x": 1}',
            InputError,
            "expected exactly",
        ),
        (
            b'{"format": "aux-secrets-publish-index", "version": 1, "hosts": {"w": {"file": 1}}}',
            InputError,
            "entry 'w' is malformed",
        ),
    ],
)
def test_a_damaged_or_foreign_index_is_never_overwritten(
    tmp_path: Path, content: bytes, error: type[Exception], message: str
) -> None:
    pub = tmp_path / "pub"
    pub.mkdir()
    (pub / INDEX_NAME).write_bytes(content)
    with pytest.raises(error, match=message):
        Publisher(pub)
    assert (pub / INDEX_NAME).read_bytes() == content
    assert sorted(p.name for p in pub.iterdir()) == [INDEX_NAME]


def test_directory_errors(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is not a directory"):
        Publisher(tmp_path / "file")
    with pytest.raises(NotFoundError, match="does not exist"):
        Publisher(tmp_path / "a" / "b")
