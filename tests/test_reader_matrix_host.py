"""Every host-side reader fails safely on damaged input (operator side: test_reader_matrix.py).

One row per (reader, damage), through the real CLI: a bundle (activate --bundle), the
local store's store.json and its sealed blob (install, status), the audit log and its
head (audit verify, audit show), and the pull unit's inputs pull.env and delivery.env
(pull, with the environment systemd's EnvironmentFile= would give it). Same contract as
the operator side: one error line (and at most one hint), a non-zero exit, no secret
value, no byte or mode changed anywhere (the audit log gains nothing either).
Store.json, bundle payloads and audit entries may carry unknown optional fields from a
newer writer, so no row adds one: values, versions and lengths are damaged instead.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from aux_secrets.core.delivery_units import delivery_env
from tests.bundles import OTHER_SIGNER_SEED
from tests.helpers import cli
from tests.test_reader_matrix_support import (
    Damage,
    World,
    assert_failed_safely,
    build_world,
    copy_world,
    empty,
    flip,
    half,
    json_edit,
    payload_field,
    random_bytes,
    rehashed,
    replace,
    resealed,
    set_byte,
    signature_kept,
    snapshot,
    text,
)

Command = Callable[[World], list[str | Path]]
Env = Callable[[World], dict[str, str]]
BLOB = "root-web1/var/lib/aux-secrets/BLOB"  # the blob store.json names
STORE_JSON = "root-web1/var/lib/aux-secrets/store.json"
AUDIT_LOG = "root-web1/var/lib/aux-secrets/audit.jsonl"
AUDIT_HEAD = "root-web1/var/lib/aux-secrets/audit.head"
PULL_ENV = "root-web1/etc/aux-secrets/pull.env"
DELIVERY_ENV = "root-web1/etc/aux-secrets/delivery.env"


def activate(w: World) -> list[str | Path]:
    return ["activate", "--bundle", w.top / "next.age", "--root", w.root]


def install(w: World) -> list[str | Path]:
    return ["install", "--root", w.root]


def status(w: World) -> list[str | Path]:
    return ["status", "--root", w.root]


def audit_verify(w: World) -> list[str | Path]:
    return ["audit", "verify", "--root", w.root]


def audit_show(w: World) -> list[str | Path]:
    return ["audit", "show", "--root", w.root]


def pull(w: World) -> list[str | Path]:
    return ["pull", "--root", w.root]


def install_creds(w: World) -> list[str | Path]:
    return ["install", "--root", w.creds_root]


def install_creds_other_machine(w: World) -> list[str | Path]:
    return ["install", "--root", w.creds_root]


def env_for(world: World, command: Command) -> dict[str, str] | None:
    """The environment a command runs with on the host: the pull unit's env files, or
    systemd-creds' host key (this machine's, or another one's)."""
    if command is pull:
        return world.pull_env()
    if command is install_creds:
        return world.creds_env()
    if command is install_creds_other_machine:
        return world.creds_env("other-credential.secret")
    return None


def unchanged(_: World, path: Path) -> None:
    """No change to the file: the command opens it with another key."""


def row(file: str, damage: Damage, command: Command, name: str) -> object:
    label = f"{file.rsplit('/', 1)[-1]}:{name}:{command.__name__}"
    return pytest.param(file, damage, command, id=label)


def flip_text(old: str, new: str) -> Damage:
    """One value byte changed in a JSON document's text (``old`` -> ``new``, same length)."""
    assert len(old) == len(new)
    return replace(old, new)


def cut_value(name: str) -> Damage:
    """``name``'s value in an env file cut in half (a cut before it drops the line)."""

    def edit(_: World, path: Path) -> None:
        head, sep, value = path.read_text().partition(f"{name}=")
        assert sep, (name, path)
        line, _newline, rest = value.partition("\n")
        path.write_text(f"{head}{sep}{line[: len(line) // 2]}\n{rest}")

    return edit


def flip_signer(_: World, path: Path) -> None:
    """One base64 character of the pinned signer changed: another, valid, key."""
    head, sep, value = path.read_text().partition("AUX_SECRETS_PULL_SIGNER=")
    assert sep, path
    path.write_text(f"{head}{sep}{'B' if value[0] == 'A' else 'A'}{value[1:]}")


def other_signer(world: World, path: Path) -> None:
    """delivery.env pinning the other vault's signer (a wrong key), as units install writes it."""
    line = cli("signer", "--ssh", *world.other.args()).stdout.decode().strip()
    path.write_bytes(delivery_env("web1", line))


BUNDLE = [
    row("next.age", half, activate, "half"),
    row("next.age", empty, activate, "empty"),
    row("next.age", random_bytes, activate, "random"),
    row("next.age", resealed(lambda _: b'{"format": 1}'), activate, "wrong-shape"),
    row("next.age", flip(-20), activate, "tampered-age"),
    row("next.age", signature_kept, activate, "tampered-signed"),
    row("next.age", resealed(payload_field("version", lambda v: v + 1)), activate, "version"),
    row("next.age", resealed(lambda p: p, to="web2"), activate, "wrong-host-key"),
    row("next.age", resealed(lambda p: p, seed=OTHER_SIGNER_SEED), activate, "wrong-signer"),
    row("next.age", resealed(payload_field("host", "web2")), activate, "other-host"),
    row("next.age", resealed(payload_field("serial", lambda s: s - 10**6)), activate, "older"),
]


def other_host_key(world: World, path: Path) -> None:
    shutil.copyfile(world.top / "web2_host_key", path)


HOST_KEY = "root-web1/etc/ssh/ssh_host_ed25519_key"
IDENTITY = [
    row(HOST_KEY, half, activate, "half"),
    row(HOST_KEY, empty, activate, "empty"),
    row(HOST_KEY, random_bytes, activate, "random"),
    row(HOST_KEY, other_host_key, activate, "wrong-key"),
    # wrong version: an OpenSSH key file has no version of ours; tampered: see BUNDLE.
]

CREDS_BLOB = "root-creds/var/lib/aux-secrets/BLOB"
CREDS = [
    row(CREDS_BLOB, unchanged, install_creds_other_machine, "wrong-key"),
    row(CREDS_BLOB, rehashed(flip(20)), install_creds, "tampered-sealed-key"),
    row(CREDS_BLOB, rehashed(flip(-1)), install_creds, "tampered-rehashed"),
    row(CREDS_BLOB, rehashed(half), install_creds, "half-rehashed"),
    # credentials/index.json is a cache: a damaged one only seals every credential again.
]


def store_json_rows(command: Command) -> list[object]:
    return [
        row(STORE_JSON, half, command, "half"),
        row(STORE_JSON, empty, command, "empty"),
        row(STORE_JSON, random_bytes, command, "random"),
        row(STORE_JSON, text("[]"), command, "wrong-shape"),
        row(STORE_JSON, json_edit(lambda d: d.update(version=2)), command, "version"),
    ]


def flip_fingerprint(_: World, path: Path) -> None:
    """The first slot fingerprint's first hex digit changed (another valid fingerprint)."""
    data = path.read_text()
    at = data.index('"fingerprint":"fp1:') + len('"fingerprint":"fp1:')
    path.write_text(data[:at] + ("1" if data[at] == "0" else "0") + data[at + 1 :])


def store_json_value_rows(command: Command) -> list[object]:
    """Values that only the blob (its hash, its MAC, its payload) proves wrong; status
    reads only store.json and never the blob, so these rows are install's."""
    return [
        row(STORE_JSON, json_edit(lambda d: d.update(blobSha256="0" * 64)), command, "hash"),
        row(STORE_JSON, json_edit(lambda d: d.update(serial=d["serial"] + 1)), command, "serial"),  # type: ignore[operator]
        row(STORE_JSON, json_edit(lambda d: d.update(host="web2")), command, "host"),
        row(STORE_JSON, json_edit(lambda d: d.update(backend="age")), command, "backend"),
        row(STORE_JSON, flip_fingerprint, command, "fingerprint"),
    ]


def blob_rows(command: Command) -> list[object]:
    return [
        row(BLOB, half, command, "half"),
        row(BLOB, empty, command, "empty"),
        row(BLOB, random_bytes, command, "random"),
        row(BLOB, flip(-1), command, "tampered"),
        row(BLOB, rehashed(flip(-1)), command, "tampered-rehashed"),
        row(BLOB, rehashed(half), command, "half-rehashed"),
        row(BLOB, rehashed(set_byte(8, 2)), command, "version"),
        # wrong key: the plain backend keeps its key in the blob; a systemd-creds host
        # key of another machine is refused by systemd-creds (tests/test_localstore.py).
    ]


AUDIT = [
    row(AUDIT_LOG, half, audit_verify, "half"),
    row(AUDIT_LOG, empty, audit_verify, "empty"),
    row(AUDIT_LOG, random_bytes, audit_verify, "random"),
    row(AUDIT_LOG, text("[1]\n[2]\n"), audit_verify, "wrong-shape"),
    row(AUDIT_LOG, flip_text('"seq":1', '"seq":2'), audit_verify, "tampered"),
    row(AUDIT_LOG, flip_text('"version":1', '"version":2'), audit_verify, "version"),
    row(AUDIT_LOG, half, audit_show, "half"),
    row(AUDIT_LOG, random_bytes, audit_show, "random"),
    row(AUDIT_LOG, flip_text('"seq":1', '"seq":2'), audit_show, "tampered"),
    row(AUDIT_LOG, flip_text('"version":1', '"version":2'), audit_show, "version"),
    row(AUDIT_HEAD, half, audit_verify, "half"),
    row(AUDIT_HEAD, random_bytes, audit_verify, "random"),
    row(AUDIT_HEAD, flip_text('"count":2', '"count":1'), audit_verify, "tampered"),
    row(AUDIT_HEAD, flip_text('"version":1', '"version":2'), audit_verify, "version"),
    # wrong key: the audit log is a hash chain; it has no key.
]

SOURCE, SIGNER = "AUX_SECRETS_PULL_SOURCE", "AUX_SECRETS_PULL_SIGNER"
PULL_INPUTS = [
    row(PULL_ENV, cut_value(SOURCE), pull, "half"),
    row(PULL_ENV, empty, pull, "empty"),
    row(PULL_ENV, random_bytes, pull, "random"),
    row(PULL_ENV, text(f"{SOURCE}\n"), pull, "wrong-shape"),
    row(DELIVERY_ENV, cut_value(SIGNER), pull, "half"),
    row(DELIVERY_ENV, text(f"{SIGNER}=[1, 2]\n"), pull, "wrong-shape"),
    row(DELIVERY_ENV, replace("PULL_HOST=web1", "PULL_HOST=web2"), pull, "other-host"),
    row(DELIVERY_ENV, flip_signer, pull, "tampered"),
    row(DELIVERY_ENV, other_signer, pull, "wrong-key"),
    # pull.env tampered / wrong key: the source is not trusted (the bundle is signed and
    # sealed), so another source is another place to fetch from; its rows are the bundle's.
    # delivery.env empty or random: systemd drops lines that are no assignment and the
    # file is optional (EnvironmentFile=-), so the manifest decides: no damage. Neither
    # file has a version field.
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("readers-host") / "world")


def target(world: World, file: str) -> Path:
    if file.endswith("/BLOB"):
        store = world.top / file.removesuffix("/BLOB")
        return store / str(json.loads((store / "store.json").read_bytes())["blob"])
    return world.top / file


@pytest.mark.parametrize(
    ("file", "damage", "command"),
    BUNDLE
    + store_json_rows(install)
    + store_json_value_rows(install)
    + store_json_rows(status)
    + blob_rows(install)
    + IDENTITY
    + CREDS
    + AUDIT
    + PULL_INPUTS,
)
def test_a_damaged_host_file_fails_safely(
    pristine: World, tmp_path: Path, file: str, damage: Damage, command: Command
) -> None:
    world = copy_world(pristine, tmp_path / "world")
    damage(world, target(world, file))
    before = snapshot(world.top)
    assert_failed_safely(world, cli(*command(world), env=env_for(world, command)), before)


@pytest.mark.parametrize(
    "command", [activate, install, status, audit_verify, audit_show, pull, install_creds]
)
def test_the_undamaged_host_succeeds(pristine: World, tmp_path: Path, command: Command) -> None:
    """Each command of the matrix works on the pristine host: a row fails for its damage."""
    world = copy_world(pristine, tmp_path / "world")
    result = cli(*command(world), env=env_for(world, command))
    assert result.returncode == 0, result.stderr


# Caches a damaged copy of which is only a miss, by design: credentials/index.json (every
# credential is sealed again) and a generation's .generation.json (the next generation is
# written whole). The command succeeds; nothing in its output is a value.
CACHES = [
    pytest.param(
        "root-creds/var/lib/aux-secrets/credentials/index.json", install_creds, id="creds"
    ),
    pytest.param("root-web1/run/aux-secrets.d/1/.generation.json", install, id="generation"),
]


@pytest.mark.parametrize(("file", "command"), CACHES)
@pytest.mark.parametrize("damage", [half, random_bytes], ids=["half", "random"])
def test_a_damaged_cache_is_only_a_miss(
    pristine: World, tmp_path: Path, file: str, command: Command, damage: Damage
) -> None:
    world = copy_world(pristine, tmp_path / "world")
    damage(world, world.top / file)
    result = cli(*command(world), env=env_for(world, command))
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr
    for secret in world.secrets():
        assert secret not in result.stdout + result.stderr
    installed = Path(file.split("/")[0], "run/aux-secrets/db/password")
    assert (world.top / installed).read_bytes() == (pristine.top / installed).read_bytes()
