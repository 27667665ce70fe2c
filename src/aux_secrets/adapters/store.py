"""The store as a vault configures it: files, external sources, git commits.

:func:`vault_store` reads the ``[store]`` table of vault.toml. The parts live in their
own modules and are re-exported here: the directory of files in
:mod:`aux_secrets.adapters.store_dir`, its rekey in :mod:`aux_secrets.adapters.store_rekey`,
the external sources in :mod:`aux_secrets.adapters.store_sources`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from aux_secrets.adapters.store_dir import GITIGNORE as GITIGNORE
from aux_secrets.adapters.store_dir import GITIGNORE_TEXT as GITIGNORE_TEXT
from aux_secrets.adapters.store_dir import HEADER_READ as HEADER_READ
from aux_secrets.adapters.store_dir import LOCK as LOCK
from aux_secrets.adapters.store_dir import Committer as Committer
from aux_secrets.adapters.store_dir import ListEntry as ListEntry
from aux_secrets.adapters.store_dir import StoreDir as StoreDir
from aux_secrets.adapters.store_dir import VerifyReport as VerifyReport
from aux_secrets.adapters.store_dir import store_key as store_key
from aux_secrets.adapters.store_rekey import JOURNAL as JOURNAL
from aux_secrets.adapters.store_rekey import PENDING as PENDING
from aux_secrets.adapters.store_rekey import REKEY_SUFFIX as REKEY_SUFFIX
from aux_secrets.adapters.store_rekey import RekeyResult as RekeyResult
from aux_secrets.adapters.store_sources import match_source as match_source
from aux_secrets.adapters.store_sources import parse_sources as parse_sources
from aux_secrets.adapters.store_sources import run_source as run_source
from aux_secrets.adapters.store_sources import source_argv as source_argv
from aux_secrets.core import storefile as sf
from aux_secrets.core.keystream import Scheme
from aux_secrets.errors import AuxError, ExternalError, InputError, PolicyError


class VaultLike(Protocol):
    @property
    def root(self) -> Path: ...

    @property
    def store_dir(self) -> Path: ...

    def section(self, name: str) -> dict[str, object]: ...


@dataclass
class VaultStore:
    """The store as a vault configures it: files, external sources, git commits."""

    dir: StoreDir
    sources: dict[str, str]
    commit: bool

    def get(self, scheme: Scheme, name: str) -> sf.StoredSecret:
        """A stored secret, or an external source's output (no retired values, no metadata)."""
        sf.validate_name(name)
        matched = match_source(self.sources, name)
        if matched is not None:
            return sf.StoredSecret(name=name, current=run_source(matched[1], matched[0], name))
        return self.dir.read(scheme, name)

    def refuse_external(self, name: str, action: str) -> None:
        matched = match_source(self.sources, name)
        if matched is not None:
            raise PolicyError(
                f"store secret {name} comes from an external source ({matched[0]}*); "
                f"{action} it there",
                hint="see [store.sources] in vault.toml",
            )


def vault_store(
    vault: VaultLike,
    *,
    commit: bool | None = None,
    on_commit_error: Callable[[AuxError], None] | None = None,
) -> VaultStore:
    """The store of ``vault`` with its ``[store]`` settings (commit, sources).

    ``commit=False`` (--no-commit) overrides the setting. Commit failures go to
    ``on_commit_error`` (the change itself is already on disk) or are raised.
    """
    from aux_secrets.adapters import git

    section = vault.section("store")
    setting = section.get("commit", True)
    if not isinstance(setting, bool):
        raise InputError("vault.toml: store.commit must be true or false")
    sources = parse_sources(section.get("sources"))
    enabled = setting and commit is not False
    committer: Committer | None = None
    if enabled:
        repository: list[bool] = []  # asked once, at the first change (listing never asks)

        def committer(paths: Sequence[Path], message: str) -> None:
            if not repository:
                repository.append(git.is_repository(vault.root))
            if not repository[0]:
                return
            try:
                git.commit_paths(vault.root, paths, message)
            except ExternalError as exc:
                if on_commit_error is None:
                    raise
                on_commit_error(exc)

    return VaultStore(StoreDir(vault.store_dir, committer=committer), sources, enabled)
