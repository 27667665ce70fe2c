"""``aux-secrets install``: the local store and the manifest become a generation.

Reads the store once, renders what the manifest asks for at an instant, resolves owners,
and hands the files to ``tree.install_tree``; after the swap it asks for the units of
what changed and appends the audit entry (which names the units the host does not have).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from aux_secrets.adapters.installer import restarts
from aux_secrets.adapters.installer.layout import FileToWrite, Tree, lookup_ids
from aux_secrets.adapters.installer.restarts import UnitRequester
from aux_secrets.adapters.installer.tree import TreeResult, install_tree
from aux_secrets.core.audit import AuditEvent
from aux_secrets.core.bundle import BundlePayload
from aux_secrets.core.fingerprint import fingerprint
from aux_secrets.core.manifest import Manifest, Settings
from aux_secrets.core.plan import Desired, Missing, Plan, StaleValue, desired_files
from aux_secrets.core.template import render_template
from aux_secrets.errors import ConflictError


@dataclass(frozen=True)
class InstallReport:
    """What ``aux-secrets install`` did (or, with dry_run, would do)."""

    host: str
    for_users: bool
    tree: Tree
    result: TreeResult
    missing: tuple[Missing, ...]
    next_rotation: datetime | None
    requested: tuple[tuple[str, tuple[str, ...]], ...]  # (verb, units) actually asked for
    not_found: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (verb, units) the host lacks
    warnings: tuple[str, ...] = ()  # the tree's, and an audit entry that was not written
    stale: tuple[StaleValue, ...] = ()  # installed with a value outside its windows
    running_out: tuple[tuple[str, datetime], ...] = ()  # (secret, when its values end)
    clock_behind: datetime | None = None  # the bundle's creation, when the clock is before it


class PayloadSource(Protocol):
    def load(self) -> BundlePayload: ...


class AuditSink(Protocol):
    def append_or_warn(self, event: AuditEvent, *, done: str) -> tuple[str, ...]: ...


class CredentialSink(Protocol):
    def refresh_credentials(
        self, manifest: Manifest, payload: BundlePayload, at: datetime
    ) -> tuple[Path, ...]: ...


def trees(settings: Settings) -> tuple[Tree, Tree]:
    """The normal tree and the ``--for-users`` tree (``usersDir`` + ``usersDir.d``)."""
    users_gens = settings.users_dir + ".d"
    normal = Tree(
        link_dir=settings.runtime_dir,
        generations_dir=settings.generations_dir,
        keep=settings.keep_generations,
        group=settings.group,
        forbidden=(settings.store_dir, settings.users_dir, users_gens),
    )
    users = Tree(
        link_dir=settings.users_dir,
        generations_dir=users_gens,
        keep=settings.keep_generations,
        group="root",  # runs before users and groups exist
        forbidden=(settings.store_dir, settings.runtime_dir, settings.generations_dir),
    )
    return normal, users


def files_to_write(desired: Desired) -> tuple[list[FileToWrite], list[Missing]]:
    """The rendered files with their owners resolved (each account looked up once).

    A file whose owner or group does not exist on this host is missing (with the reason);
    the others are installed all the same.
    """
    files = []
    missing = []
    ids: dict[tuple[str, str], tuple[int, int] | tuple[str, str]] = {}
    for d in desired.files:
        if (d.owner, d.group) not in ids:
            ids[d.owner, d.group] = lookup_ids(d.owner, d.group)
        uid, gid = ids[d.owner, d.group]
        if isinstance(uid, str):
            missing.append(Missing(d.key, uid, provision=False))
            continue
        assert isinstance(gid, int)
        files.append(
            FileToWrite(
                key=d.key,
                path=d.path,
                content=d.content,
                uid=uid,
                gid=gid,
                mode=d.mode,
                restart_units=d.restart_units,
                reload_units=d.reload_units,
            )
        )
    return files, missing


def audit_event(
    manifest: Manifest,
    payload: BundlePayload,
    desired: Desired,
    plan: Plan,
    generation: int,
    at: datetime,
    not_found: Sequence[str] = (),
) -> AuditEvent:
    """The ``install`` entry: changed secret names, their keyed fingerprints, the units."""
    changed = tuple(k.split(":", 1)[1] for k in plan.touched if k.startswith("secret:"))
    return AuditEvent(
        event="install",
        time=at.astimezone(UTC).replace(microsecond=0),
        host=manifest.host,
        bundle_id=payload.bundle_id,
        serial=payload.serial,
        generation=generation,
        changed=changed,
        fingerprints={
            name: fingerprint(payload.fingerprint_key, name, desired.values[name].current)
            for name in changed
        },
        restart_units=plan.try_restart,
        reload_units=plan.try_reload,
        units_not_found=tuple(sorted(set(not_found))),
    )


def install(
    manifest: Manifest,
    store: PayloadSource,
    *,
    root: Path,
    at: datetime,
    requester: UnitRequester | None,
    audit: AuditSink | None = None,
    credentials: CredentialSink | None = None,
    dry_run: bool = False,
    for_users: bool = False,
) -> InstallReport:
    """Read the store once, render what the manifest asks for at ``at``, install it.

    Units are asked for (one call per verb, all units, sorted) only when files changed or
    appeared; the audit entry is appended for every real install. Missing secrets do not
    stop the others: they are in the report, and the caller exits non-zero.
    """
    payload = store.load()
    if payload.host != manifest.host:
        raise ConflictError(
            f"the local store holds a bundle for host {payload.host!r}, "
            f"but the manifest is for {manifest.host!r}",
            hint=f"aux-secrets provision --host {manifest.host}",
        )
    desired = desired_files(
        manifest,
        payload.secrets,
        at,
        for_users=for_users,
        render_template=render_template,
        made=payload.created,
    )
    files, no_owner = files_to_write(desired)
    tree = trees(manifest.settings)[1 if for_users else 0]
    requested: restarts.Requests = []
    not_found: restarts.Requests = []
    warnings: list[str] = []

    def after_swap(plan: Plan, generation: int) -> None:
        # The generation is live. The units come first so that the entry can name those
        # the host lacks; a failing request still gets its entry, and a problem with the
        # log never stops the restarts.
        try:
            if requester is not None:
                asked, lacking = restarts.request_units(requester, plan, generation)
                requested.extend(asked)
                not_found.extend(lacking)
        finally:
            if audit is not None:
                skipped = [u for _, units in not_found for u in units]
                event = audit_event(manifest, payload, desired, plan, generation, at, skipped)
                done = f"generation {generation} is live"
                warnings.extend(audit.append_or_warn(event, done=done))

    if credentials is not None and not dry_run and not for_users:
        # Before the swap: a unit restarted for a rotated value must find its new
        # LoadCredentialEncrypted= file. Only values that changed are sealed again.
        credentials.refresh_credentials(manifest, payload, desired.instant or at)
    result = install_tree(tree, files, root=root, dry_run=dry_run, after_swap=after_swap)
    return InstallReport(
        host=manifest.host,
        for_users=for_users,
        tree=tree,
        result=result,
        missing=(*desired.missing, *no_owner, *result.refused),
        next_rotation=desired.next_rotation,
        requested=tuple(requested),
        not_found=tuple(not_found),
        warnings=(*result.warnings, *warnings),
        stale=desired.stale,
        running_out=desired.running_out,
        clock_behind=desired.clock_behind,
    )
