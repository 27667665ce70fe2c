"""``aux-secrets render`` (preview a host's files, values masked) and ``aux-secrets lint``."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aux_secrets.cli import output
from aux_secrets.cli.common import PasswordCommandOpt, PasswordFileOpt, VaultOpt

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

    from aux_secrets.adapters.vault import Vault
    from aux_secrets.core.keystream import Scheme
    from aux_secrets.core.lint import LintSecret
    from aux_secrets.core.manifest import Manifest, SecretSpec
    from aux_secrets.core.render import SecretValues

MAX_MANIFEST_BYTES = 16 * 1024 * 1024
MAX_CONSTRAINTS_BYTES = 1024 * 1024
# Masks have a fixed length: a preview never tells how long a value is.
MASKS = (b"********", b"xxxxxxxx")

RENDER_HELP = """Preview the files a host's manifest makes, with secret values masked.

Derives what the manifest asks for (unlocking the vault) and reads fixed secrets from the
store, as provisioning would, then prints each secret file and template as the host will
get it. Values show as ******** unless --reveal is given; public halves are shown.
Exits non-zero when any file cannot be rendered (each such file gets an error line).

Example: aux-secrets render --manifest hosts/web1.json --at 2026-12-01T00:00:00Z
"""

LINT_HELP = """Check a host manifest's secrets for reuse, length and charset problems.

Two secrets with the same realm and type under different names share one value: a
warning (an error with --strict). With --constraints FILE (docs/spec/lint.md), a secret
shorter than a declared minimum, or in a charset a declared consumer rejects, is an error.

Example: aux-secrets lint --manifest hosts/web1.json --constraints talos.toml --strict
"""


def _read_manifest(path: Path) -> Manifest:
    from aux_secrets.adapters.fs import read_bounded
    from aux_secrets.core.manifest import parse_manifest
    from aux_secrets.errors import InputError

    if str(path) == "-":
        data = sys.stdin.buffer.read(MAX_MANIFEST_BYTES + 1)
        if len(data) > MAX_MANIFEST_BYTES:
            raise InputError(f"manifest on stdin is larger than {MAX_MANIFEST_BYTES} bytes")
        return parse_manifest(data, filename="<stdin>")
    return parse_manifest(
        read_bounded(path, MAX_MANIFEST_BYTES, what="manifest"), filename=str(path)
    )


# --------------------------------------------------------------------------- render


def _masked(values: SecretValues, mask: bytes) -> SecretValues:
    from aux_secrets.core.render import SecretValues

    return SecretValues(mask, tuple(mask for _ in values.retired), values.public)


def _is_public_file(spec: SecretSpec) -> bool:
    from aux_secrets.core.manifest import DeriveSource

    return isinstance(spec.source, DeriveSource) and spec.source.public


def _header(kind: str, name: str, path: str, owner: str, group: str, mode: str, fmt: str) -> str:
    return f"== {kind} {name} -> {path} ({owner}:{group} {mode}, {fmt})"


def _show(data: bytes) -> None:
    output.write_stdout_bytes(data if data.endswith(b"\n") or not data else data + b"\n")


def _manifest_for(manifest: Path | None, host: str | None, vault_root: Path) -> Manifest:
    from aux_secrets.errors import UsageError

    if manifest is not None:
        loaded = _read_manifest(manifest)
        if host is not None and loaded.host != host:
            raise UsageError(
                f"manifest {manifest} is for host {loaded.host!r}, not {host!r}",
                hint="drop --host, or pass that host's manifest",
            )
        return loaded
    if host is None:
        raise UsageError("render needs --manifest FILE or --host NAME")
    from aux_secrets.adapters.hosts import HostDir
    from aux_secrets.workflows import manifest_source

    entry = HostDir(vault_root / "hosts").read(host)  # the vault's hosts_dir
    source = manifest_source.manifest_for_host(entry, vault_root)
    return manifest_source.load_manifest(source)


def render_command(
    manifest: Annotated[
        Path | None,
        typer.Option(
            "--manifest", "-m", metavar="FILE", help="Host manifest (.json or .toml); '-' is stdin."
        ),
    ] = None,
    host: Annotated[
        str | None,
        typer.Option(
            "--host",
            metavar="NAME",
            help="Host name: checks the manifest is for it, or finds its manifest in the vault.",
        ),
    ] = None,
    reveal: Annotated[
        bool, typer.Option("--reveal", help="Print the real values instead of masks.")
    ] = False,
    at: Annotated[
        str | None,
        typer.Option(
            "--at", metavar="INSTANT", help="Render as of this UTC instant (default: now)."
        ),
    ] = None,
    vault: VaultOpt = None,
    password_file: PasswordFileOpt = None,
    password_command: PasswordCommandOpt = None,
) -> None:
    from datetime import UTC, datetime

    from aux_secrets.cli.common import open_vault, unlock_vault
    from aux_secrets.core.rotation import parse_instant
    from aux_secrets.errors import AuxError

    instant = parse_instant(at) if at is not None else datetime.now(UTC)
    if manifest is not None:
        loaded = _manifest_for(manifest, host, Path("."))
        found, scheme = unlock_vault(vault, password_file, password_command)
    else:
        found = open_vault(vault)
        loaded = _manifest_for(None, host, found.root)
        found, scheme = unlock_vault(found.root, password_file, password_command)
    failures = _render_all(loaded, found, scheme, instant, reveal)
    if failures:
        raise AuxError(
            f"{failures} of {len(loaded.secrets) + len(loaded.templates)} files of host "
            f"{loaded.host!r} could not be rendered (see the lines above)"
        )


def _render_all(
    manifest: Manifest, vault: Vault, scheme: Scheme, at: datetime, reveal: bool
) -> int:
    from aux_secrets.core.render import render_secret
    from aux_secrets.core.rotation import format_instant
    from aux_secrets.core.template import referenced, render_template
    from aux_secrets.errors import AuxError
    from aux_secrets.workflows import resolve

    print(f"# host {manifest.host} at {format_instant(at)}" + ("" if reveal else " (masked)"))
    try:
        read_store: resolve.StoreReader | None = resolve.store_reader(vault, scheme)
    except (ImportError, AttributeError) as exc:
        missing = f"the fixed-secret store is not available ({exc.__class__.__name__})"
        read_store = None
    except AuxError as exc:
        missing = exc.message
        read_store = None
    failures = 0
    values: dict[str, SecretValues] = {}
    broken: set[str] = set()
    for name, spec in sorted(manifest.secrets.items()):
        print(_header("secret", name, spec.path, spec.owner, spec.group, spec.mode, spec.format))
        try:
            if read_store is None and not isinstance(spec.source, _derive_source()):
                raise AuxError(f"secret {name!r}: {missing}")
            resolved = resolve.resolve_secret(spec, scheme, read_store, at)
            values[name] = resolved.values()
            data = render_secret(values[name], spec.format, spec.env_name, name=name)
            if not reveal and not _is_public_file(spec):
                data = _first_ok(partial(_secret_masked, values[name], spec))
            _show(data)
        except AuxError as exc:
            failures += 1
            broken.add(name)
            output.error(exc.message, exc.hint)
    for name, tspec in sorted(manifest.templates.items()):
        print(
            _header(
                "template", name, tspec.path, tspec.owner, tspec.group, tspec.mode, tspec.format
            )
        )
        try:
            failed = [ref for ref, _ in referenced(tspec.content) if ref in broken]
            if failed:
                raise AuxError(f"uses secret {failed[0]!r}, which could not be resolved")
            data = render_template(tspec.content, tspec.format, values)
            if not reveal:
                data = _first_ok(partial(_template_masked, tspec.content, tspec.format, values))
            _show(data)
        except AuxError as exc:
            failures += 1
            output.error(f"template {name!r}: {exc.message}", exc.hint)
    return failures


def _secret_masked(values: SecretValues, spec: SecretSpec, mask: bytes) -> bytes:
    from aux_secrets.core.render import render_secret

    return render_secret(_masked(values, mask), spec.format, spec.env_name, name=spec.name)


def _template_masked(
    content: str, fmt: str, values: Mapping[str, SecretValues], mask: bytes
) -> bytes:
    from aux_secrets.core.template import render_template

    return render_template(content, fmt, {k: _masked(v, mask) for k, v in values.items()})


def _derive_source() -> type:
    from aux_secrets.core.manifest import DeriveSource

    return DeriveSource


def _first_ok(make: Callable[[bytes], bytes]) -> bytes:
    """Render with the first mask the format can hold (``*`` needs quoting in env values)."""
    from aux_secrets.errors import InputError

    for mask in MASKS[:-1]:
        try:
            return make(mask)
        except InputError:
            continue
    return make(MASKS[-1])


# --------------------------------------------------------------------------- lint


def lint_secrets(manifest: Manifest) -> list[LintSecret]:
    """The lint view of a manifest's secrets."""
    from aux_secrets.core.lint import LintSecret, output_charset, output_length
    from aux_secrets.core.manifest import DeriveSource

    result: list[LintSecret] = []
    for name, spec in sorted(manifest.secrets.items()):
        source = spec.source
        if isinstance(source, DeriveSource):
            result.append(
                LintSecret(
                    name=name,
                    source="derive",
                    realm=source.realm,
                    type=source.type,
                    period=source.rotation.period if source.rotation else None,
                    ahead=source.rotation.ahead if source.rotation else None,
                    public=source.public,
                    length=output_length(
                        source.type, source.length, source.charset, source.encoding
                    ),
                    charset=output_charset(source.type, source.charset, source.encoding),
                )
            )
        else:
            result.append(LintSecret(name=name, source="store", realm=source.name, type="store"))
    return result


def lint_command(
    manifest: Annotated[
        Path,
        typer.Option(
            "--manifest", "-m", metavar="FILE", help="Host manifest (.json or .toml); '-' is stdin."
        ),
    ],
    constraints: Annotated[
        Path | None,
        typer.Option(
            "--constraints",
            "-c",
            metavar="FILE",
            help="Consumer constraints (TOML or JSON, docs/spec/lint.md).",
            show_default=False,
        ),
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Treat warnings (reused values) as errors.")
    ] = False,
) -> None:
    from aux_secrets.adapters.fs import read_bounded
    from aux_secrets.core.lint import Constraints, lint, parse_constraints
    from aux_secrets.errors import PolicyError

    loaded = _read_manifest(manifest)
    rules = Constraints()
    if constraints is not None:
        data = read_bounded(constraints, MAX_CONSTRAINTS_BYTES, what="constraints file")
        rules = parse_constraints(data, filename=str(constraints))
    findings = lint(lint_secrets(loaded), rules, strict=strict)
    for finding in findings:
        print(finding.line())
    errors = sum(1 for f in findings if f.severity == "error")
    warnings = len(findings) - errors
    summary = f"{manifest}: {errors} errors, {warnings} warnings in {len(loaded.secrets)} secrets"
    if errors:
        raise PolicyError(summary, hint="fix the manifest, or see 'aux-secrets lint --help'")
    output.info(summary)


def register(app: typer.Typer) -> None:
    app.command("render", help=RENDER_HELP)(render_command)
    app.command("lint", help=LINT_HELP)(lint_command)
