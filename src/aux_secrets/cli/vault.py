"""`aux-secrets init` and `aux-secrets seed rewrap`: create a vault, change its password."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from aux_secrets.cli import common, output
from aux_secrets.errors import ConflictError, UsageError

INIT_HELP = """Create a vault in DIR (default: the current directory).

The vault is vault.toml plus the wrapped seed. The default scheme, aux-v1, wraps a fresh
random seed with Argon2id(master password); --scheme gokey adopts an existing gokey
setup (--import-gokey-seed FILE) or an unseeded one (--no-seed), so its users keep
every password they have. Nothing is overwritten: an existing vault is refused.

Example:

  aux-secrets init ~/vault

  aux-secrets init ~/vault --scheme gokey --seed-mode legacy --import-gokey-seed ~/gokey.seed
"""

REWRAP_HELP = """Change the master password of an aux-v1 vault.

The same seed is wrapped under the new password, so every derived value stays the
same; the old password stops working. gokey-scheme vaults cannot do this (their
outputs depend on the password itself).

Example:

  aux-secrets seed rewrap --vault ~/vault --new-password-file new.txt
"""


Argon2Memory = Annotated[
    int | None,
    typer.Option(
        "--argon2-memory",
        metavar="KIB",
        help="Argon2id memory in KiB (default 65536 = 64 MiB).",
        show_default=False,
    ),
]
Argon2Time = Annotated[
    int | None,
    typer.Option(
        "--argon2-time", metavar="N", help="Argon2id passes (default 6).", show_default=False
    ),
]
Argon2Parallelism = Annotated[
    int | None,
    typer.Option(
        "--argon2-parallelism", metavar="N", help="Argon2id lanes (default 1).", show_default=False
    ),
]


def init(
    directory: Annotated[Path, typer.Argument(metavar="DIR", show_default=False)] = Path("."),
    scheme: Annotated[
        str, typer.Option("--scheme", metavar="aux-v1|gokey", help="Derivation scheme.")
    ] = "aux-v1",
    import_gokey_seed: Annotated[
        Path | None,
        typer.Option(
            "--import-gokey-seed",
            metavar="FILE",
            help="Adopt this gokey seed file (--scheme gokey).",
            show_default=False,
        ),
    ] = None,
    seed_mode: Annotated[
        str | None,
        typer.Option(
            "--seed-mode",
            metavar="v2|legacy",
            help="gokey seed mode: v2 (gokey >= 0.2.0, default) or legacy "
            "(< 0.2.0, CVE-2025-13353).",
            show_default=False,
        ),
    ] = None,
    seed_skip: Annotated[
        int,
        typer.Option(
            "--seed-skip", metavar="N", help="Skip N bytes at the start of the gokey seed file."
        ),
    ] = 0,
    no_seed: Annotated[
        bool,
        typer.Option(
            "--no-seed", help="Unseeded gokey vault (an Argon2id verifier catches typos)."
        ),
    ] = False,
    argon2_memory: Argon2Memory = None,
    argon2_time: Argon2Time = None,
    argon2_parallelism: Argon2Parallelism = None,
    password_file: common.PasswordFileOpt = None,
    password_command: common.PasswordCommandOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print what was created as JSON.")
    ] = False,
) -> None:
    from aux_secrets.adapters.fs import read_bounded
    from aux_secrets.adapters.password import get_password
    from aux_secrets.adapters.vault import MAX_SEED_FILE, VAULT_FILE, create_vault

    if scheme not in ("aux-v1", "gokey"):
        raise UsageError(f"unknown scheme {scheme!r}: use aux-v1 or gokey")
    if seed_mode is not None and seed_mode not in ("v2", "legacy"):
        raise UsageError(f"unknown seed mode {seed_mode!r}: use v2 or legacy")
    gokey_seed: bytes | None = None
    if scheme == "gokey":
        if (import_gokey_seed is None) == (not no_seed):
            raise UsageError(
                "--scheme gokey needs exactly one of --import-gokey-seed FILE or --no-seed"
            )
        if import_gokey_seed is not None and seed_mode is None:
            raise UsageError(
                "--import-gokey-seed needs --seed-mode v2 (gokey >= 0.2.0) or legacy "
                "(gokey < 0.2.0, e.g. Debian's 0.1.x): the seed file cannot tell"
            )
        if no_seed and (seed_mode is not None or seed_skip):
            raise UsageError("--seed-mode and --seed-skip do not apply with --no-seed")
    elif import_gokey_seed is not None or no_seed or seed_mode is not None or seed_skip:
        raise UsageError(
            "--import-gokey-seed, --no-seed, --seed-mode and --seed-skip need --scheme gokey"
        )
    if (directory / VAULT_FILE).exists():
        raise ConflictError(f"{directory} already holds a vault ({VAULT_FILE} exists)")
    if import_gokey_seed is not None:
        gokey_seed = read_bounded(import_gokey_seed, MAX_SEED_FILE, what="gokey seed file")
        if seed_mode == "legacy":
            common.legacy_warning()
    # A new password is asked twice; an imported seed checks the password itself.
    password = get_password(
        password_file,
        password_command,
        confirm=gokey_seed is None,
        prompt=(
            f"New master password for {directory}: "
            if gokey_seed is None
            else f"Master password for {directory}: "
        ),
    )
    if gokey_seed is None:
        _warn_if_weak(password)
    vault = create_vault(
        directory,
        password,
        scheme=scheme,
        memory_kib=argon2_memory,
        time_cost=argon2_time,
        parallelism=argon2_parallelism,
        seed_mode=seed_mode,
        gokey_seed=gokey_seed,
        seed_skip=seed_skip,
    )
    info = _describe(vault)
    if as_json:
        print(json.dumps(info, sort_keys=True))
    else:
        detail = ", ".join(f"{k} {v}" for k, v in info.items() if k not in ("vault",))
        output.info(f"created vault {vault.root} ({detail})")


def _describe(vault: object) -> dict[str, object]:
    from aux_secrets.adapters.vault import Vault
    from aux_secrets.core.auxv1 import parse_header

    assert isinstance(vault, Vault)
    info: dict[str, object] = {"vault": str(vault.root), "scheme": vault.scheme_name}
    if vault.scheme_name == "aux-v1":
        params = parse_header(vault.read_seed_file()).params
        info["argon2_memory_kib"] = params.memory_kib
        info["argon2_time"] = params.time_cost
        info["argon2_parallelism"] = params.parallelism
    elif vault.seed_file is not None:
        info["seed_mode"] = vault.seed_mode
        info["seed_skip"] = vault.seed_skip
    else:
        info["seed"] = "none"
    return info


def rewrap(
    vault: common.VaultOpt = None,
    password_file: common.PasswordFileOpt = None,
    password_command: common.PasswordCommandOpt = None,
    new_password_file: Annotated[
        Path | None,
        typer.Option(
            "--new-password-file",
            metavar="FILE",
            help="Read the new master password from FILE (default: ask twice on the terminal).",
            show_default=False,
        ),
    ] = None,
    argon2_memory: Argon2Memory = None,
    argon2_time: Argon2Time = None,
    argon2_parallelism: Argon2Parallelism = None,
) -> None:
    from aux_secrets.adapters.password import get_password, prompt_password, read_password_file
    from aux_secrets.core.auxv1 import Argon2Params, parse_header
    from aux_secrets.errors import InputError, PolicyError

    found = common.open_vault(vault)
    if found.scheme_name != "aux-v1":
        raise PolicyError(
            f"vault {found.root} uses the gokey scheme: its derived values depend on the "
            "password itself, so a new password would change every one of them",
            hint="create an aux-v1 vault with 'aux-secrets init' and move the secrets over",
        )
    old = get_password(password_file, password_command, prompt=common.prompt_for(found))
    found.unlock_seed(old)  # verify before asking for the new one
    new = (
        read_password_file(new_password_file)
        if new_password_file is not None
        else prompt_password(f"New master password for {found.root}: ", confirm=True)
    )
    _warn_if_weak(new)
    params = None
    if (argon2_memory, argon2_time, argon2_parallelism) != (None, None, None):
        keep = parse_header(found.read_seed_file()).params
        params = Argon2Params(
            argon2_memory if argon2_memory is not None else keep.memory_kib,
            argon2_time if argon2_time is not None else keep.time_cost,
            argon2_parallelism if argon2_parallelism is not None else keep.parallelism,
        )
        try:
            params.check()
        except InputError as exc:
            raise UsageError(exc.message) from None
    found.rewrap(old, new, params=params)
    output.info(f"rewrapped seed file {found.seed_file} under the new master password")


def _warn_if_weak(password: bytes) -> None:
    from aux_secrets.adapters.strength import weakness

    warning = weakness(password)
    if warning:
        output.warning(warning)


def register(app: typer.Typer) -> None:
    app.command("init", help=INIT_HELP)(init)
    seed_app = typer.Typer(
        help="The vault's seed: change the master password.\n\n"
        "Example: aux-secrets seed rewrap --new-password-file new-master.pw",
        no_args_is_help=True,
        rich_markup_mode=None,
    )
    seed_app.command("rewrap", help=REWRAP_HELP)(rewrap)
    app.add_typer(seed_app, name="seed")
