"""Every operator-side reader fails safely on damaged input (host side: _host.py).

One row per (reader, damage), through the real CLI: vault.toml, the aux-v1 and gokey
seed files, a store file, hosts/NAME.toml and its serial record, a manifest (file and
built-system layout) and a publish directory's index.json. Each damaged read gives one
error line (and at most one hint), a non-zero exit, no secret value, and changes no byte
or mode anywhere in the world. Damages that cannot apply to a format are said so in a
comment where its rows are, never as a row that cannot fail.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import cli
from tests.test_reader_matrix_support import (
    Damage,
    World,
    assert_failed_safely,
    build_world,
    copy_world,
    empty,
    flip,
    from_other_vault,
    half,
    json_edit,
    random_bytes,
    replace,
    snapshot,
    text,
)

Command = Callable[[World], list[str | Path]]


def derive(w: World) -> list[str | Path]:
    return ["derive", "db/web1", "--charset", "alnum", *w.vault.args()]


def derive_wrong_password(w: World) -> list[str | Path]:
    return ["derive", "db/web1", "--vault", w.vault.root, "--password-file", w.top / "gokey.pw"]


def _gokey_seed(w: World, *, option: str = "--seed") -> list[str | Path]:
    return ["--scheme", "gokey", option, w.top / "gokey.seed", "--seed-mode", "v2"]


def gokey_derive(w: World) -> list[str | Path]:
    return ["derive", "db/web1", *_gokey_seed(w), "--password-file", w.top / "gokey.pw"]


def gokey_init(w: World) -> list[str | Path]:
    seed = _gokey_seed(w, option="--import-gokey-seed")
    return ["init", w.top / "imported", *seed, "--password-file", w.top / "gokey.pw"]


def gokey_wrong_password(w: World) -> list[str | Path]:
    return ["derive", "db/web1", *_gokey_seed(w), "--password-file", w.top / "vault.pw"]


def store_get(w: World) -> list[str | Path]:
    return ["store", "get", "api-token", *w.vault.args()]


def bundle(w: World) -> list[str | Path]:
    out: list[str | Path] = ["-o", w.top / "out.age"]
    return ["bundle", "--host", "web1", "--manifest", w.manifest, *out, *w.vault.args()]


def bundle_system(w: World) -> list[str | Path]:
    return [
        "bundle",
        "--host",
        "web1",
        "--system",
        w.root,
        "-o",
        w.top / "out.age",
        *w.vault.args(),
    ]


def install(w: World) -> list[str | Path]:
    return ["install", "--root", w.root]


def publish(w: World) -> list[str | Path]:
    where: list[str | Path] = ["--manifest", w.manifest, "--publish", w.top / "pub"]
    return ["provision", "--host", "web1", *where, *w.vault.args()]


def wrong_password(_: World, path: Path) -> None:
    """No change to the file: the command opens it with another password."""


def row(file: str, damage: Damage, command: Command, name: str) -> object:
    return pytest.param(file, damage, command, id=f"{file}:{name}:{command.__name__}")


VAULT_TOML = [
    row("vault/vault.toml", half, derive, "half"),
    row("vault/vault.toml", empty, derive, "empty"),
    row("vault/vault.toml", random_bytes, derive, "random"),
    row("vault/vault.toml", text("[[seed]]\nfile = 1\n"), derive, "wrong-shape"),
    row("vault/vault.toml", replace('scheme = "aux-v1"', "scheme = 1"), derive, "wrong-type"),
    # vault.toml has no MAC; its Argon2id cost is bound by the seed's own header and MAC.
    row("vault/vault.toml", replace("memory_kib = 8", "memory_kib = 9"), derive, "tampered"),
    row("vault/vault.toml", replace("version = 1", "version = 2"), derive, "version"),
    # wrong key: vault.toml holds no key (the other vault's is the same bytes).
]

AUX_V1_SEED = [
    row("vault/seed.aux-v1", half, derive, "half"),
    row("vault/seed.aux-v1", empty, derive, "empty"),
    row("vault/seed.aux-v1", random_bytes, derive, "random"),
    row("vault/seed.aux-v1", text("AUX-SEED{}\n"), derive, "wrong-shape"),
    row("vault/seed.aux-v1", flip(-1), derive, "tampered"),
    row("vault/seed.aux-v1", flip(9), derive, "version"),  # bytes 8-9: version 1 -> 0
    row("vault/seed.aux-v1", wrong_password, derive_wrong_password, "wrong-key"),
]

PASSWORD_FILE = [
    row("vault.pw", empty, derive, "empty"),
    row("vault.pw", half, derive, "half"),  # half a password is a wrong one
    row("vault.pw", random_bytes, derive, "random"),
    # a password file has no format, version or key of its own: its rows end here.
]

GOKEY_SEED = [
    row("gokey.seed", half, gokey_derive, "half"),
    row("gokey.seed", half, gokey_init, "half"),
    row("gokey.seed", empty, gokey_derive, "empty"),
    row("gokey.seed", random_bytes, gokey_derive, "random"),
    row("gokey.seed", flip(100), gokey_derive, "tampered"),
    row("gokey.seed", flip(100), gokey_init, "tampered"),
    row("gokey.seed", wrong_password, gokey_wrong_password, "wrong-key"),
    # wrong shape and wrong version: gokey's seed is 256 raw bytes with no version field.
]

STORE_FILE = [
    row("vault/store/api-token.aux", half, store_get, "half"),
    row("vault/store/api-token.aux", empty, store_get, "empty"),
    row("vault/store/api-token.aux", random_bytes, store_get, "random"),
    row(
        "vault/store/api-token.aux",
        text("aux-secrets-store: 1\nname: x\n"),
        store_get,
        "wrong-shape",
    ),
    row(
        "vault/store/api-token.aux",
        replace("name: api-token", "name: api-tokem"),
        store_get,
        "name",
    ),
    row("vault/store/api-token.aux", flip(-3), store_get, "tampered"),
    row("vault/store/api-token.aux", replace("store: 1", "store: 2"), store_get, "version"),
    row("vault/store/api-token.aux", from_other_vault, store_get, "wrong-key"),
]

HOST_FILE = [
    row("vault/hosts/web1.toml", half, bundle, "half"),
    row("vault/hosts/web1.toml", empty, bundle, "empty"),
    row("vault/hosts/web1.toml", random_bytes, bundle, "random"),
    row("vault/hosts/web1.toml", text("host = [1]\n"), bundle, "wrong-shape"),
    row("vault/hosts/web1.toml", replace('host = "web1"', 'host = "web2"'), bundle, "other-name"),
    row(
        "vault/hosts/web1.toml", replace("ssh-ed25519 AAAA", "ssh-ed25519 AAAB"), bundle, "tampered"
    ),
    row("vault/hosts/web1.toml", replace("version = 1", "version = 2"), bundle, "version"),
    # wrong key: another valid host key is the operator's choice (host add --replace).
]

SERIAL_RECORD = [
    row("vault/hosts/.serials/web1", empty, bundle, "empty"),
    row("vault/hosts/.serials/web1", random_bytes, bundle, "random"),
    row("vault/hosts/.serials/web1", text("-5\n"), bundle, "wrong-shape"),
    # half: the first digits of a serial are a valid smaller serial, and serials only
    # grow from max(record, hosts/NAME.toml, the clock), so it is no damage; the record
    # has no version field and no key.
]

MANIFEST = [
    row("root-web1/etc/aux-secrets/manifest.json", half, install, "half"),
    row("root-web1/etc/aux-secrets/manifest.json", half, bundle_system, "half"),
    row("root-web1/etc/aux-secrets/manifest.json", empty, install, "empty"),
    row("root-web1/etc/aux-secrets/manifest.json", empty, bundle, "empty"),
    row("root-web1/etc/aux-secrets/manifest.json", random_bytes, install, "random"),
    row("root-web1/etc/aux-secrets/manifest.json", random_bytes, bundle_system, "random"),
    row("root-web1/etc/aux-secrets/manifest.json", text("[1, 2]"), install, "wrong-shape"),
    row("root-web1/etc/aux-secrets/manifest.json", text('{"version": 1}'), bundle, "wrong-shape"),
    row(
        "root-web1/etc/aux-secrets/manifest.json",
        json_edit(lambda d: d.update(version=2)),
        install,
        "version",
    ),
    row(
        "root-web1/etc/aux-secrets/manifest.json",
        json_edit(lambda d: d.update(version=2)),
        bundle_system,
        "version",
    ),
    # "wrong key": another host's manifest, for this host's store or this host's entry.
    row(
        "root-web1/etc/aux-secrets/manifest.json",
        json_edit(lambda d: d.update(host="web2")),
        install,
        "other-host",
    ),
    row(
        "root-web1/etc/aux-secrets/manifest.json",
        json_edit(lambda d: d.update(host="web2")),
        bundle,
        "other-host",
    ),
    # tampered: a manifest has no MAC (it is the host's configuration, checked by Nix).
]

PUBLISH_INDEX = [
    row("pub/index.json", half, publish, "half"),
    row("pub/index.json", empty, publish, "empty"),
    row("pub/index.json", random_bytes, publish, "random"),
    row("pub/index.json", text('{"format": "aux-secrets-publish-index"}'), publish, "wrong-shape"),
    row("pub/index.json", json_edit(lambda d: d.update(version=2)), publish, "version"),
    row(
        "pub/index.json",
        json_edit(lambda d: d["hosts"]["web1"].update(serial="x")),  # type: ignore[index]
        publish,
        "wrong-type",
    ),
    # tampered/wrong key: the index only lists what a publish wrote; pull reads the
    # signed bundle itself, never the index (so pull has no row here).
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> World:
    return build_world(tmp_path_factory.mktemp("readers") / "world")


@pytest.mark.parametrize(
    ("file", "damage", "command"),
    VAULT_TOML
    + AUX_V1_SEED
    + PASSWORD_FILE
    + GOKEY_SEED
    + STORE_FILE
    + HOST_FILE
    + SERIAL_RECORD
    + MANIFEST
    + PUBLISH_INDEX,
)
def test_a_damaged_file_fails_safely(
    pristine: World, tmp_path: Path, file: str, damage: Damage, command: Command
) -> None:
    world = copy_world(pristine, tmp_path / "world")
    damage(world, world.top / file)
    before = snapshot(world.top)
    assert_failed_safely(world, cli(*command(world)), before)


@pytest.mark.parametrize(
    "command", [derive, gokey_derive, store_get, bundle, bundle_system, install, publish]
)
def test_the_undamaged_world_succeeds(pristine: World, tmp_path: Path, command: Command) -> None:
    """Each command of the matrix works on the pristine world: a row fails for its damage."""
    world = copy_world(pristine, tmp_path / "world")
    result = cli(*command(world))
    assert result.returncode == 0, result.stderr
