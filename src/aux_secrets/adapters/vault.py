"""The vault directory: ``vault.toml``, the wrapped seed, and the tables other parts keep.

Format: docs/spec/vault.md. Everything that reads the master password verifies it
before anything is derived or written.
"""

from __future__ import annotations

import hmac
import os
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aux_secrets.adapters.fs import atomic_write, file_lock, read_bounded, remove_stale_temps
from aux_secrets.adapters.vault_locate import ENV_VAULT as ENV_VAULT
from aux_secrets.adapters.vault_locate import VAULT_FILE as VAULT_FILE
from aux_secrets.adapters.vault_locate import locate_vault
from aux_secrets.core.auxv1 import Argon2Params
from aux_secrets.core.nesting import loads_toml
from aux_secrets.errors import (
    ConflictError,
    FormatVersionError,
    InputError,
    NotFoundError,
    PolicyError,
    UsageError,
    WrongPasswordError,
)

if TYPE_CHECKING:
    from aux_secrets.core.keystream import Scheme

LOCK_FILE = ".vault.lock"
VAULT_VERSION = 1
SCHEMES = ("aux-v1", "gokey")
SEED_MODES = ("v2", "legacy")
AUXV1_SEED_FILE = "seed.aux-v1"
GOKEY_SEED_FILE = "seed.gokey"
# Tables of vault.toml that this module owns; other parts use any other table name.
RESERVED_KEYS = frozenset({"version", "scheme", "seed", "verifier"})
MAX_VAULT_TOML = 1024 * 1024
MAX_SEED_FILE = 1024 * 1024
LEGACY_WARNING = (
    "gokey legacy seed mode is affected by CVE-2025-13353: anyone holding the seed file "
    "can derive every seeded secret without the password; use it only to migrate"
)
_SECTION_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_SEED_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")

Random = Callable[[int], bytes]


@dataclass(frozen=True)
class Verifier:
    """Argon2id(password, salt) kept for unseeded gokey vaults, so a typo is caught."""

    params: Argon2Params
    salt: bytes
    digest: bytes

    def to_toml(self) -> dict[str, object]:
        return {
            "kdf": "argon2id",
            "memory_kib": self.params.memory_kib,
            "time_cost": self.params.time_cost,
            "parallelism": self.params.parallelism,
            "salt": self.salt.hex(),
            "hash": self.digest.hex(),
        }

    def check(self, password: bytes, *, what: str) -> None:
        from aux_secrets.core.auxv1 import argon2id

        if not hmac.compare_digest(argon2id(password, self.salt, self.params), self.digest):
            raise WrongPasswordError(f"the master password does not match {what}")


def make_verifier(password: bytes, salt: bytes, params: Argon2Params) -> Verifier:
    from aux_secrets.core.auxv1 import argon2id

    return Verifier(params, salt, argon2id(password, salt, params))


def _get(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in table:
        raise InputError(f"{where}: missing field '{key}'")
    value = table[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise InputError(f"{where}: field '{key}' must be an integer")
    if not isinstance(value, kind):
        raise InputError(f"{where}: field '{key}' must be a {kind.__name__}")
    return value


def _hex(table: dict[str, Any], key: str, where: str, length: int) -> bytes:
    text = _get(table, key, str, where)
    try:
        value = bytes.fromhex(text)
    except ValueError:
        raise InputError(f"{where}: field '{key}' is not hex") from None
    if len(value) != length:
        raise InputError(f"{where}: field '{key}' must be {length} bytes")
    return value


def _only(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise InputError(f"{where}: unknown field '{unknown[0]}'")


@dataclass
class Vault:
    """A loaded (not yet unlocked) vault."""

    root: Path
    scheme_name: str
    seed_file: Path | None = None
    seed_mode: str | None = None
    seed_skip: int = 0
    verifier: Verifier | None = None
    # aux-v1: the Argon2id costs vault.toml pins for the seed file (None: an older vault).
    seed_params: Argon2Params | None = None
    _data: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- locations ---------------------------------------------------------------
    @property
    def toml_path(self) -> Path:
        return self.root / VAULT_FILE

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    @property
    def hosts_dir(self) -> Path:
        return self.root / "hosts"

    @property
    def is_legacy(self) -> bool:
        return self.scheme_name == "gokey" and self.seed_mode == "legacy"

    # -- discovery and loading ---------------------------------------------------
    @classmethod
    def discover(cls, explicit: Path | None = None) -> Vault:
        """``--vault DIR``, else ``AUX_SECRETS_VAULT``, else the nearest vault.toml upward."""
        root = locate_vault(os.fspath(explicit) if explicit is not None else None)
        if root is None:
            create = "create one with 'aux-secrets init DIR'"
            raise NotFoundError(
                f"no vault found: no {VAULT_FILE} in {Path.cwd()} or any parent directory",
                hint=f"pass --vault DIR, set {ENV_VAULT}, or {create}",
            )
        return cls.load(Path(root))

    @classmethod
    def load(cls, root: Path) -> Vault:
        path = root / VAULT_FILE
        if not root.is_dir():
            raise NotFoundError(
                f"vault directory {root} does not exist",
                hint=f"create one with 'aux-secrets init {root}'",
            )
        if not path.is_file():
            raise NotFoundError(
                f"{root} is not a vault (no {VAULT_FILE})",
                hint=f"create one with 'aux-secrets init {root}'",
            )
        data = parse_vault_toml(read_bounded(path, MAX_VAULT_TOML, what="vault file"), path)
        return cls._from_data(root, data, path)

    @classmethod
    def _from_data(cls, root: Path, data: dict[str, Any], path: Path) -> Vault:
        where = str(path)
        version = _get(data, "version", int, where)
        if version != VAULT_VERSION:
            raise FormatVersionError(
                f"{where}: vault format version {version}; this aux-secrets reads "
                f"version {VAULT_VERSION}",
                hint="upgrade aux-secrets",
            )
        scheme = _get(data, "scheme", str, where)
        if scheme not in SCHEMES:
            raise InputError(f"{where}: unknown scheme '{scheme}' (known: {', '.join(SCHEMES)})")
        vault = cls(root=root, scheme_name=scheme, _data=data)
        seed = data.get("seed")
        if seed is not None:
            swhere = f"{where} [seed]"
            if not isinstance(seed, dict):
                raise InputError(f"{where}: 'seed' must be a table")
            name = _get(seed, "file", str, swhere)
            if not _SEED_NAME.match(name):
                raise InputError(f"{swhere}: field 'file' must be a plain file name")
            vault.seed_file = root / name
            if scheme == "gokey":
                _only(seed, {"file", "mode", "skip"}, swhere)
                vault.seed_mode = _get(seed, "mode", str, swhere)
                if vault.seed_mode not in SEED_MODES:
                    raise InputError(f"{swhere}: field 'mode' must be 'v2' or 'legacy'")
                vault.seed_skip = _get(seed, "skip", int, swhere)
                if vault.seed_skip < 0:
                    raise InputError(f"{swhere}: field 'skip' must not be negative")
            else:
                costs = ("memory_kib", "time_cost", "parallelism")
                _only(seed, {"file", *costs}, swhere)
                if any(k in seed for k in costs):
                    vault.seed_params = Argon2Params(*(_get(seed, k, int, swhere) for k in costs))
                    vault.seed_params.check(what=swhere)
        verifier = data.get("verifier")
        if verifier is not None:
            vwhere = f"{where} [verifier]"
            if not isinstance(verifier, dict):
                raise InputError(f"{where}: 'verifier' must be a table")
            _only(
                verifier, {"kdf", "memory_kib", "time_cost", "parallelism", "salt", "hash"}, vwhere
            )
            if _get(verifier, "kdf", str, vwhere) != "argon2id":
                raise InputError(f"{vwhere}: field 'kdf' must be 'argon2id'")
            params = Argon2Params(
                _get(verifier, "memory_kib", int, vwhere),
                _get(verifier, "time_cost", int, vwhere),
                _get(verifier, "parallelism", int, vwhere),
            )
            params.check(what=vwhere)
            vault.verifier = Verifier(
                params, _hex(verifier, "salt", vwhere, 16), _hex(verifier, "hash", vwhere, 32)
            )
        if scheme == "aux-v1" and vault.seed_file is None:
            raise InputError(f"{where}: an aux-v1 vault needs a [seed] table")
        if scheme == "aux-v1" and verifier is not None:
            raise InputError(f"{where}: [verifier] is only for unseeded gokey vaults")
        if scheme == "gokey" and (vault.seed_file is None) == (vault.verifier is None):
            raise InputError(f"{where}: a gokey vault has either a [seed] or a [verifier] table")
        return vault

    # -- unlocking ----------------------------------------------------------------
    def read_seed_file(self) -> bytes:
        if self.seed_file is None:
            raise UsageError(f"vault {self.root} has no seed file (unseeded gokey)")
        return read_bounded(self.seed_file, MAX_SEED_FILE, what="seed file")

    def unlock_seed(self, password: bytes) -> bytes:
        """The aux-v1 seed (verifies the password)."""
        from aux_secrets.core.auxv1 import parse_header, unwrap_seed

        if self.scheme_name != "aux-v1":
            raise UsageError(f"vault {self.root} uses the {self.scheme_name} scheme")
        blob = self.read_seed_file()
        what = f"seed file {self.seed_file}"
        self._check_costs(parse_header(blob, what=what).params, what)
        return unwrap_seed(blob, password, what=what)

    def _check_costs(self, asked: Argon2Params, what: str) -> None:
        """Before any Argon2id run: the seed header's costs are the ones vault.toml pins,
        or (an older vault pinning none) not far above the defaults."""
        from aux_secrets.core.auxv1 import costs_far_above_defaults, describe_costs

        if self.seed_params is not None:
            if asked != self.seed_params:
                raise InputError(
                    f"{what}: its header asks for Argon2id {describe_costs(asked)}, but "
                    f"{self.toml_path} pins {describe_costs(self.seed_params)}; the seed "
                    "file was changed",
                    hint="restore the seed file from the vault's history (git log -- "
                    f"{self.seed_file.name if self.seed_file else 'seed'})",
                )
            return
        if costs_far_above_defaults(asked):
            p = asked
            raise InputError(
                f"{what}: its header asks for Argon2id {describe_costs(asked)}, far above "
                "the defaults, and vault.toml pins no costs",
                hint=f"if you chose these costs, pin them under [seed] in {self.toml_path}: "
                f"memory_kib = {p.memory_kib}, time_cost = {p.time_cost}, "
                f"parallelism = {p.parallelism}",
            )

    def unlock(self, password: bytes) -> Scheme:
        """Verify ``password`` and return the scheme; WrongPasswordError otherwise."""
        if not password:
            raise InputError("the master password is empty")
        if self.scheme_name == "aux-v1":
            from aux_secrets.core.auxv1 import AuxV1

            return AuxV1(self.unlock_seed(password))
        from aux_secrets.core import gokey

        if self.seed_file is not None:
            if self.seed_mode == "legacy":
                return gokey.GokeySeeded(password, self.read_seed_file(), "legacy", self.seed_skip)
            return gokey.GokeySeeded(password, self.read_seed_file(), "v2", self.seed_skip)
        assert self.verifier is not None
        self.verifier.check(password, what=f"the verifier in {self.toml_path}")
        return gokey.GokeyUnseeded(password)

    # -- changing the master password -------------------------------------------
    def rewrap(
        self,
        old_password: bytes,
        new_password: bytes,
        *,
        params: Argon2Params | None = None,
        random: Random = os.urandom,
    ) -> None:
        """Same seed under ``new_password``: every derived value stays the same."""
        from aux_secrets.core.auxv1 import parse_header, wrap_seed

        if self.scheme_name != "aux-v1":
            raise PolicyError(
                f"vault {self.root} uses the gokey scheme, whose outputs depend on the "
                "password itself: a new password would change every derived secret",
                hint="create an aux-v1 vault with 'aux-secrets init' and move secrets to it",
            )
        if not new_password:
            raise InputError("the new master password is empty")
        assert self.seed_file is not None
        with file_lock(self.root / LOCK_FILE, what="vault lock"):
            self._remove_stale_temps()
            old_blob = self.read_seed_file()
            seed = self.unlock_seed(old_password)
            keep = parse_header(old_blob).params
            new_params = params or keep
            blob = wrap_seed(seed, new_password, random(16), random(12), new_params)
            atomic_write(self.seed_file, blob, mode=0o600)
            if self.seed_params != new_params:
                # Pin the costs now written (a vault from before pinning gets its pin).
                path = self.toml_path
                data = parse_vault_toml(read_bounded(path, MAX_VAULT_TOML, what="vault file"), path)
                data["seed"] = {**data.get("seed", {}), **_pin(new_params)}
                atomic_write(path, render_vault_toml(data), mode=0o600)
                self._data = data
                self.seed_params = new_params

    def _remove_stale_temps(self) -> None:
        """Temp files of a vault.toml or seed file write a kill interrupted (under the
        vault lock, which their writers hold)."""
        seed = self.seed_file.name if self.seed_file is not None else None
        remove_stale_temps(self.root, lambda target: target in (VAULT_FILE, seed))

    # -- tables other parts own ---------------------------------------------------
    def section(self, name: str) -> dict[str, object]:
        """A top-level table of vault.toml another part keeps (``store``, ``hosts``...)."""
        _check_section_name(name)
        value = self._data.get(name, {})
        if not isinstance(value, dict):
            raise InputError(f"{self.toml_path}: '{name}' must be a table")
        return dict(value)

    def update_section(self, name: str, table: dict[str, object]) -> None:
        """Replace one table of vault.toml atomically, keeping everything else."""
        _check_section_name(name)
        with file_lock(self.root / LOCK_FILE, what="vault lock"):
            self._remove_stale_temps()
            path = self.toml_path
            data = parse_vault_toml(read_bounded(path, MAX_VAULT_TOML, what="vault file"), path)
            self._from_data(self.root, data, path)
            data[name] = dict(table)
            try:
                text = render_vault_toml(data)
            except TypeError as exc:
                raise InputError(f"[{name}] cannot be written to {path}: {exc}") from None
            atomic_write(path, text, mode=0o600)
            self._data = data


def _pin(params: Argon2Params) -> dict[str, int]:
    return {
        "memory_kib": params.memory_kib,
        "time_cost": params.time_cost,
        "parallelism": params.parallelism,
    }


def _check_section_name(name: str) -> None:
    if name in RESERVED_KEYS or not _SECTION_NAME.match(name):
        raise UsageError(f"'{name}' is not a table other parts may keep in {VAULT_FILE}")


def parse_vault_toml(data: bytes, path: Path) -> dict[str, Any]:
    try:
        return loads_toml(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}") from None


def render_vault_toml(data: dict[str, Any]) -> bytes:
    import tomli_w

    header = "# aux-secrets vault (docs/spec/vault.md). Public: no secret values here.\n"
    return (header + tomli_w.dumps(data)).encode()


def create_vault(
    root: Path,
    password: bytes,
    *,
    scheme: str = "aux-v1",
    memory_kib: int | None = None,
    time_cost: int | None = None,
    parallelism: int | None = None,
    seed_mode: str | None = None,
    gokey_seed: bytes | None = None,
    seed_skip: int = 0,
    random: Random = os.urandom,
) -> Vault:
    """Create a vault in ``root`` (made if missing); refuses to touch an existing vault.

    aux-v1: a fresh 32-byte seed wrapped under ``password``. gokey with ``gokey_seed``:
    adopt that gokey seed file (the password is checked against it first). gokey
    without a seed: an unseeded vault with an Argon2id verifier.
    """
    from aux_secrets.core import auxv1

    if scheme not in SCHEMES:
        raise UsageError(f"unknown scheme '{scheme}' (known: {', '.join(SCHEMES)})")
    if not password:
        raise InputError("the master password is empty")
    default = auxv1.DEFAULT_PARAMS
    params = Argon2Params(
        memory_kib if memory_kib is not None else default.memory_kib,
        time_cost if time_cost is not None else default.time_cost,
        parallelism if parallelism is not None else default.parallelism,
    )
    try:
        params.check()
    except InputError as exc:
        raise UsageError(exc.message) from None
    toml_path = root / VAULT_FILE
    if toml_path.exists() or toml_path.is_symlink():
        raise ConflictError(f"{root} already holds a vault ({VAULT_FILE} exists)")
    data: dict[str, Any] = {"version": VAULT_VERSION, "scheme": scheme}
    seed_name: str | None = None
    seed_blob = b""
    if scheme == "aux-v1":
        if gokey_seed is not None or seed_mode is not None:
            raise UsageError("--import-gokey-seed and --seed-mode need --scheme gokey")
        seed_name = AUXV1_SEED_FILE
        seed_blob = auxv1.wrap_seed(
            random(auxv1.SEED_LEN),
            password,
            random(auxv1.SALT_LEN),
            random(auxv1.NONCE_LEN),
            params,
        )
        data["seed"] = {"file": seed_name, **_pin(params)}
    elif gokey_seed is not None:
        from aux_secrets.core import gokey

        mode = seed_mode
        if mode not in SEED_MODES:
            # Both modes open the same file but give different secrets: no default.
            raise UsageError(
                "importing a gokey seed needs --seed-mode v2 (gokey >= 0.2.0) or "
                "legacy (gokey < 0.2.0, e.g. Debian's 0.1.x)",
                hint="check 'gokey -h' output or your package version; the seed file "
                "cannot tell which gokey made it",
            )
        if seed_skip < 0:
            raise UsageError("--seed-skip must not be negative")
        gokey.GokeySeeded(password, gokey_seed, "legacy" if mode == "legacy" else "v2", seed_skip)
        seed_name = GOKEY_SEED_FILE
        seed_blob = gokey_seed
        data["seed"] = {"file": seed_name, "mode": mode, "skip": seed_skip}
    else:
        if seed_mode is not None or seed_skip:
            raise UsageError("--seed-mode and --seed-skip need a seed (--import-gokey-seed)")
        data["verifier"] = make_verifier(password, random(16), params).to_toml()

    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    seed_path = root / seed_name if seed_name else None
    if seed_path is not None:
        atomic_write(seed_path, seed_blob, mode=0o600, exclusive=True)
    try:
        atomic_write(toml_path, render_vault_toml(data), mode=0o600, exclusive=True)
    except BaseException:
        if seed_path is not None:
            seed_path.unlink(missing_ok=True)
        raise
    _ignore_lock_files(root)
    return Vault.load(root)


# Lock files are runtime state: a vault kept in git (as it should be) must not commit them.
VAULT_GITIGNORE = f"# aux-secrets: runtime lock files\n/{LOCK_FILE}\n/hosts/.lock\n"


def _ignore_lock_files(root: Path) -> None:
    gitignore = root / ".gitignore"
    if not gitignore.exists():
        atomic_write(gitignore, VAULT_GITIGNORE.encode(), mode=0o600)
