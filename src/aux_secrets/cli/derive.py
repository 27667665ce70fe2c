"""`aux-secrets derive`: one realm, a rotation's slots, or a batch of JSON lines."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aux_secrets.cli import common, output
from aux_secrets.cli.derive_emit import emit as _emit
from aux_secrets.cli.derive_emit import json_line as _json_line
from aux_secrets.cli.derive_emit import json_value as _json_value
from aux_secrets.cli.derive_emit import warn_unknown_placeholders as _warn_unknown_placeholders
from aux_secrets.errors import AuxError, InputError, UsageError

if TYPE_CHECKING:
    from aux_secrets.core.derive import DeriveRequest
    from aux_secrets.core.keystream import Scheme

HELP = """Derive the secret for REALM from the vault (or ad hoc with gokey).

The value goes to stdout exactly as a service would read it (a password has no
trailing newline; PEM ends with one), or to --output FILE (mode 0600, atomic).

Examples:

  aux-secrets derive db/web1

  aux-secrets derive db/web1 --charset urlsafe --length 64

  aux-secrets derive ssh/web1 --type ed25519 --public

  aux-secrets derive 'talos/hmac/{period}' --rotation monthly --retired 2 --json

  aux-secrets derive --batch requests.jsonl

  aux-secrets derive example.com --scheme gokey --password-file pw --no-seed --type ed25519

Batch lines are JSON objects with "realm" and optionally "type", "length",
"charset", "encoding", "public"; each output line is {"realm", "type", "value"}
(binary values as base64 with "encoding": "base64"). The vault is unlocked once;
every line is checked before the first is derived, and output is written as it is made.
"""

BATCH_FIELDS = ("realm", "type", "length", "charset", "encoding", "public")
MAX_BATCH_BYTES = 64 * 1024 * 1024
MAX_GOKEY_SEED = 1024 * 1024


class _Validated(Exception):
    """Raised by the probe scheme: the request passed derive()'s validation."""


class _Probe:
    """A scheme that stops derive() right after validation (no password needed yet)."""

    name = "probe"

    def stream(self, realm: str, purpose: str) -> Any:
        raise _Validated


def _validate(request: DeriveRequest) -> None:
    from aux_secrets.core.derive import check_user_realm, derive

    check_user_realm(request.realm)
    try:
        derive(_Probe(), request)
    except _Validated:
        return


@dataclass
class _Gokey:
    """Ad-hoc gokey settings (no vault)."""

    seed: Path | None
    seed_mode: str
    seed_skip: int
    no_seed: bool


def _check_gokey_request(request: DeriveRequest, gokey: _Gokey | None) -> None:
    if gokey is not None and gokey.seed is None and not gokey.no_seed and request.type != "pass":
        raise UsageError(
            f"type {request.type} without a seed needs --no-seed (as gokey's -u)",
            hint="give --seed FILE, or --no-seed to derive from the password alone",
        )


def _open_scheme(
    gokey: _Gokey | None,
    vault: Path | None,
    password_file: Path | None,
    password_command: str | None,
) -> Scheme:
    if gokey is None:
        return common.unlock_vault(vault, password_file, password_command)[1]
    from aux_secrets.adapters.fs import read_bounded
    from aux_secrets.adapters.password import get_password
    from aux_secrets.core import gokey as gk

    seed_bytes = None
    if gokey.seed is not None:
        seed_bytes = read_bounded(gokey.seed, MAX_GOKEY_SEED, what="seed file")
        if gokey.seed_mode == "legacy":
            common.legacy_warning()
    password = get_password(password_file, password_command)
    if seed_bytes is None:
        return gk.GokeyUnseeded(password)
    if gokey.seed_mode == "legacy":
        return gk.GokeySeeded(password, seed_bytes, "legacy", gokey.seed_skip)
    return gk.GokeySeeded(password, seed_bytes, "v2", gokey.seed_skip)


def _parse_batch_line(number: int, line: bytes) -> DeriveRequest:
    from aux_secrets.core.derive import DeriveRequest
    from aux_secrets.core.nesting import loads_json  # tomllib with it: not at start-up

    where = f"batch line {number}"
    try:
        item = loads_json(line)
    except (ValueError, UnicodeDecodeError):
        raise InputError(f"{where}: not valid JSON") from None
    if not isinstance(item, dict):
        raise InputError(f"{where}: expected a JSON object")
    unknown = sorted(set(item) - set(BATCH_FIELDS))
    if unknown:
        raise InputError(f"{where}: unknown field {unknown[0]!r}")
    if not isinstance(item.get("realm"), str):
        raise InputError(f"{where}: 'realm' must be a string")
    kinds: dict[str, tuple[type, ...]] = {
        "type": (str,),
        "charset": (str,),
        "encoding": (str, type(None)),
        "length": (int, type(None)),
        "public": (bool,),
    }
    for key, allowed in kinds.items():
        if key in item:
            value = item[key]
            bad_int = key == "length" and isinstance(value, bool)
            if bad_int or not isinstance(value, allowed):
                raise InputError(f"{where}: field {key!r} has the wrong type")
    return DeriveRequest(
        realm=item["realm"],
        type=item.get("type", "pass"),
        length=item.get("length"),
        charset=item.get("charset", "gokey"),
        encoding=item.get("encoding"),
        public=item.get("public", False),
    )


def _read_batch(source: str) -> list[tuple[int, DeriveRequest]]:
    import sys

    from aux_secrets.adapters.fs import read_bounded

    if source == "-":
        data = sys.stdin.buffer.read(MAX_BATCH_BYTES + 1)
        if len(data) > MAX_BATCH_BYTES:
            raise InputError(f"batch input is larger than {MAX_BATCH_BYTES} bytes")
    else:
        data = read_bounded(Path(source), MAX_BATCH_BYTES, what="batch file")
    requests = []
    for number, line in enumerate(data.split(b"\n"), start=1):
        if line.strip():
            requests.append((number, _parse_batch_line(number, line)))
    return requests


def _with_line(number: int, exc: AuxError) -> AuxError:
    return type(exc)(f"batch line {number}: {exc.message}", hint=exc.hint)


def derive_command(
    realm: Annotated[str | None, typer.Argument(metavar="REALM", show_default=False)] = None,
    type_: Annotated[
        str,
        typer.Option(
            "--type",
            "-t",
            metavar="TYPE",
            help="pass, raw, ed25519, x25519, ec256, ec384, ec521, rsa2048 or rsa4096.",
        ),
    ] = "pass",
    length: Annotated[
        int | None,
        typer.Option(
            "--length",
            "-l",
            metavar="N",
            help="Length (pass: characters, raw: bytes).",
            show_default=False,
        ),
    ] = None,
    charset: Annotated[
        str,
        typer.Option(
            "--charset",
            metavar="C",
            help="Password charset: gokey, alnum, urlsafe, hex, base64, digits.",
        ),
    ] = "gokey",
    encoding: Annotated[
        str | None,
        typer.Option(
            "--encoding",
            "-e",
            metavar="E",
            help="raw: binary|hex|base64; keys: pem|openssh|wireguard|public|public-pem|...",
            show_default=False,
        ),
    ] = None,
    public: Annotated[
        bool, typer.Option("--public", help="Print only the public half of a key.")
    ] = False,
    output_file: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to FILE (mode 0600, atomic); '-' is standard output.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON (realm, type, value; rotation windows).")
    ] = False,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch",
            metavar="FILE|-",
            help="Derive JSON lines from FILE or stdin.",
            show_default=False,
        ),
    ] = None,
    rotation: Annotated[
        str | None,
        typer.Option(
            "--rotation",
            metavar="PERIOD",
            help="Fill {period} in REALM: daily, weekly, monthly, quarterly, yearly.",
            show_default=False,
        ),
    ] = None,
    retired: Annotated[
        int, typer.Option("--retired", metavar="N", help="Earlier periods to include (--json).")
    ] = 0,
    ahead: Annotated[
        int, typer.Option("--ahead", metavar="N", help="Later periods to include (--json).")
    ] = 0,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="INSTANT",
            help="Derive as of this ISO 8601 instant (default: now).",
            show_default=False,
        ),
    ] = None,
    vault: common.VaultOpt = None,
    password_file: common.PasswordFileOpt = None,
    password_command: common.PasswordCommandOpt = None,
    scheme: Annotated[
        str | None,
        typer.Option(
            "--scheme",
            metavar="gokey",
            help="Ad-hoc gokey derivation without a vault.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        Path | None,
        typer.Option(
            "--seed", metavar="FILE", help="gokey seed file (--scheme gokey).", show_default=False
        ),
    ] = None,
    seed_skip: Annotated[
        int, typer.Option("--seed-skip", metavar="N", help="Skip N bytes of the seed file.")
    ] = 0,
    seed_mode: Annotated[
        str | None,
        typer.Option(
            "--seed-mode",
            metavar="v2|legacy",
            help="gokey seed mode (default v2; legacy: gokey < 0.2.0, CVE-2025-13353).",
            show_default=False,
        ),
    ] = None,
    no_seed: Annotated[
        bool, typer.Option("--no-seed", help="gokey without a seed file (gokey -u).")
    ] = False,
) -> None:
    from aux_secrets.core.derive import DeriveRequest

    # -- usage checks, all before any password is read ---------------------------
    gokey: _Gokey | None = None
    if scheme is not None:
        if scheme != "gokey":
            raise UsageError(
                f"--scheme {scheme}: only gokey derives without a vault",
                hint="drop --scheme to use the vault's own scheme",
            )
        if vault is not None:
            raise UsageError("--scheme gokey derives without a vault; drop --vault")
        if seed_mode not in (None, "v2", "legacy"):
            raise UsageError(f"unknown seed mode {seed_mode!r}: use v2 or legacy")
        if seed is not None and no_seed:
            raise UsageError("give --seed FILE or --no-seed, not both")
        if seed is None and (seed_skip or seed_mode is not None):
            raise UsageError("--seed-skip and --seed-mode need --seed FILE")
        if seed is not None and seed_mode is None:
            output.warning(
                "no --seed-mode: using v2 (gokey >= 0.2.0); a seed made by gokey < 0.2.0 "
                "gives other values with --seed-mode legacy"
            )
        gokey = _Gokey(seed, seed_mode or "v2", seed_skip, no_seed)
    elif seed is not None or no_seed or seed_skip or seed_mode is not None:
        raise UsageError("--seed, --seed-skip, --seed-mode and --no-seed need --scheme gokey")
    if output_file is not None and not output_file.parent.is_dir():
        raise UsageError(f"directory {output_file.parent} does not exist (for --output)")

    if batch is not None:
        single = (realm, rotation, length, encoding, at) != (None,) * 5
        if single or public or type_ != "pass" or charset != "gokey" or retired or ahead:
            raise UsageError(
                "--batch takes every request from its input; drop REALM and the per-secret options"
            )
        _run_batch(batch, gokey, vault, password_file, password_command, output_file)
        return

    if realm is None:
        raise UsageError("missing REALM", hint="aux-secrets derive db/web1")
    _warn_unknown_placeholders(realm)
    request = DeriveRequest(
        realm=realm, type=type_, length=length, charset=charset, encoding=encoding, public=public
    )
    if rotation is None:
        if retired or ahead or at is not None:
            raise UsageError("--retired, --ahead and --at need --rotation PERIOD")
        if gokey is None and "{period}" in realm:
            from datetime import UTC, datetime

            from aux_secrets.core.rotation import expand

            expand(realm, None, datetime.now(UTC))  # refuses {period} without a rotation
        _validate(request)
        _check_gokey_request(request, gokey)
        scheme_obj = _open_scheme(gokey, vault, password_file, password_command)
        value = _derive(scheme_obj, request)
        data = value if not as_json else _json_line(_json_value(request, value))
        _emit(data, output_file, terminal_newline=True)
        return
    _run_rotation(
        request,
        rotation,
        retired,
        ahead,
        at,
        as_json,
        gokey,
        vault,
        password_file,
        password_command,
        output_file,
    )


def _derive(scheme: Scheme, request: DeriveRequest) -> bytes:
    from aux_secrets.core.derive import derive

    return derive(scheme, request)


def _run_batch(
    source: str,
    gokey: _Gokey | None,
    vault: Path | None,
    password_file: Path | None,
    password_command: str | None,
    output_file: Path | None,
) -> None:
    numbered = _read_batch(source)
    for number, request in numbered:
        try:
            _validate(request)
            _check_gokey_request(request, gokey)
        except AuxError as exc:
            raise _with_line(number, exc) from None
    if not numbered:
        raise InputError("the batch has no requests")
    requests = [request for _, request in numbered]
    scheme = _open_scheme(gokey, vault, password_file, password_command)
    lines = (
        _json_line(_json_value(req, value))
        for req, value in zip(requests, _derive_many(scheme, requests), strict=True)
    )
    _emit_lines(lines, output_file)


def _emit_lines(lines: Iterator[bytes], destination: Path | None) -> None:
    """Write each line as it is made (a batch's output is never held whole in memory):
    to standard output, or to a temp file renamed over ``destination`` at the end."""
    if destination is None or str(destination) == "-":
        chunk: list[bytes] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= 256:
                output.write_stdout_bytes(b"".join(chunk))
                chunk.clear()
        output.write_stdout_bytes(b"".join(chunk))
        return
    from aux_secrets.adapters.fs import atomic_stream

    with atomic_stream(destination, mode=0o600) as write:
        for line in lines:
            write(line)


def _derive_many(scheme: Scheme, requests: list[DeriveRequest]) -> Iterator[bytes]:
    """Derive in request order, one value at a time. Unseeded gokey costs a PBKDF2 per
    realm, which releases the GIL, so it runs on every core (at most a window of
    results ahead of the writer); other schemes cost microseconds per realm, less than
    handing work to threads."""
    from aux_secrets.core.gokey import GokeyUnseeded

    workers = min(os.cpu_count() or 1, len(requests))
    if workers < 2 or not isinstance(scheme, GokeyUnseeded):
        yield from (_derive(scheme, req) for req in requests)
        return
    from collections import deque
    from concurrent.futures import Future, ThreadPoolExecutor

    window = 4 * workers
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[bytes]] = deque()
        for req in requests:
            pending.append(pool.submit(_derive, scheme, req))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _run_rotation(
    request: DeriveRequest,
    period: str,
    retired: int,
    ahead: int,
    at: str | None,
    as_json: bool,
    gokey: _Gokey | None,
    vault: Path | None,
    password_file: Path | None,
    password_command: str | None,
    output_file: Path | None,
) -> None:
    import dataclasses
    from datetime import UTC, datetime

    from aux_secrets.core.rotation import Rotation, expand, format_instant, parse_instant

    instant = parse_instant(at) if at is not None else datetime.now(UTC)
    slots = expand(request.realm, Rotation(period, retired, ahead), instant)
    requests = [dataclasses.replace(request, realm=slot.realm) for slot in slots]
    for req in requests:
        _validate(req)
        _check_gokey_request(req, gokey)
    scheme = _open_scheme(gokey, vault, password_file, password_command)
    if not as_json:
        _emit(_derive(scheme, requests[0]), output_file)
        return
    entries = []
    for slot, req in zip(slots, requests, strict=True):
        entry = _json_value(req, _derive(scheme, req))
        entry.update(
            role=slot.role,
            label=slot.label,
            not_before=format_instant(slot.not_before),
            not_after=format_instant(slot.not_after),
        )
        entries.append(entry)
    document = {
        "realm": request.realm,
        "type": request.type,
        "rotation": {"period": period, "retired": retired, "ahead": ahead},
        "at": format_instant(instant),
        "slots": entries,
    }
    _emit(_json_line(document), output_file)


def register(app: typer.Typer) -> None:
    app.command("derive", help=HELP)(derive_command)
