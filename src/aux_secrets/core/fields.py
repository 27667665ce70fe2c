"""The objects of formats that aux-secrets writes and another aux-secrets may read.

A host keeps what one aux-secrets wrote (the local store's ``store.json`` and sealed
payload, the audit log) and may run an older one after a NixOS rollback; a host also
takes bundles from an operator whose aux-secrets is newer. So these readers follow the
rule of docs/spec/evolution.md: a field a reader does not know is skipped, unless the
object's ``critical`` list names it, and then the document is refused. Files people write
(vault.toml, host files, manifests) stay strict and never come through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aux_secrets.errors import FormatVersionError, InputError

CRITICAL = "critical"
NEWER_WRITER_HINT = "it was written by a newer aux-secrets: upgrade aux-secrets on this host"


def known_fields(
    doc: object,
    where: str,
    required: Iterable[str],
    optional: Iterable[str] = (),
    *,
    skipped: list[str] | None = None,
    hint: str = NEWER_WRITER_HINT,
) -> dict[str, Any]:
    """The fields of ``doc`` this reader knows, every ``required`` one present.

    An unknown field is left out unless the object's own ``critical`` list names it;
    ``critical`` itself is always allowed. The paths of what was left out (``critical``
    included) are appended to ``skipped``.
    """
    if not isinstance(doc, dict):
        raise InputError(f"{where}: expected an object")
    known = {*required, *optional}
    critical = _critical(doc, where)
    unknown = sorted(set(doc) - known - {CRITICAL})
    refused = [name for name in unknown if name in critical]
    if refused:
        raise FormatVersionError(
            f"{where}.{refused[0]}: a field this aux-secrets does not know, and its writer "
            "marked it critical",
            hint=hint,
        )
    missing = sorted(set(required) - set(doc))
    if missing:
        raise InputError(f"{where}.{missing[0]}: missing field")
    if skipped is not None:  # what a re-encoding of the known fields lacks
        skipped.extend(f"{where}.{name}" for name in sorted(set(doc) - known))
    return {name: value for name, value in doc.items() if name in known}


def _critical(doc: dict[str, Any], where: str) -> frozenset[str]:
    value = doc.get(CRITICAL, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError(f"{where}.{CRITICAL}: expected a list of field names")
    return frozenset(value)


__all__ = ["CRITICAL", "NEWER_WRITER_HINT", "known_fields"]
