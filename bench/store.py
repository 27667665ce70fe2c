"""Fixed-secret store benchmark: a store of N secrets, side by side with pass's model.

Run from the repository root:  .venv/bin/python bench/store.py [--count 10000] [--sample 200]

pass (zx2c4 password-store) is not packaged here, but it is a shell script around
gpg: one .gpg file per secret, `pass ls` walks the tree, `pass show` runs one
`gpg -d`, and `pass init NEWKEY` re-encrypts every file (gpg -d | gpg -e). The
reference column runs exactly that gpg work (public-key encryption, key cached by
gpg-agent, as pass uses it) on a sample of the secrets and scales it to N.
Plain baselines for the ratios: `ls -R | wc -l` for listing, and an in-process
sequential decrypt of every file (read, base64, key from the scheme, AEAD) for verify.

Measured end to end (process start included) on the aux-secrets side:
- `store list` and `store list --json` (no password; headers only);
- `store get` of one secret (master password unlock + one decrypt);
- `store verify` (unlock + decrypt all N);
- `store rekey --copy-store` into a second vault (two unlocks + N decrypt/encrypt/writes);
every result is checked (count, value) and a mismatch aborts the run.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PASSWORD = "benchmark master password"


CPU: dict[float, float] = {}  # wall time -> CPU time (user + system) spent meanwhile


def _cpu() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    before = _cpu()
    start = time.perf_counter()
    result = fn()
    wall = time.perf_counter() - start
    CPU[wall] = _cpu() - before
    return wall, result


def best_of(runs: int, fn: Callable[[], object]) -> tuple[float, object]:
    results = [timed(fn) for _ in range(runs)]
    return min(t for t, _ in results), results[-1][1]


def cli(vault: Path, password_file: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    env.update(AUX_SECRETS_VAULT=str(vault), AUX_SECRETS_PASSWORD_FILE=str(password_file))
    result = subprocess.run(
        [sys.executable, "-m", "aux_secrets", *args], capture_output=True, env=env, check=False
    )
    if result.returncode != 0:
        sys.exit(f"aux-secrets {' '.join(args)} failed: {result.stderr.decode()}")
    return result


def make_vault(root: Path, password_file: Path) -> Path:
    from aux_secrets.adapters.vault import create_vault

    create_vault(root, PASSWORD.encode())
    return root


def gpg_setup(home: Path) -> list[str]:
    home.mkdir(mode=0o700)
    base = ["gpg", "--homedir", str(home), "--batch", "--quiet", "--yes"]
    subprocess.run(
        [
            *base,
            "--passphrase",
            "",
            "--quick-gen-key",
            "bench <bench@example.invalid>",
            "future-default",
            "default",
            "never",
        ],
        check=True,
        capture_output=True,
    )
    return base


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=200)
    args = parser.parse_args()
    n, sample = args.count, min(args.sample, args.count)

    from aux_secrets.adapters.store import StoreDir, store_key
    from aux_secrets.adapters.vault import Vault
    from aux_secrets.core import storefile as sf

    work = Path(tempfile.mkdtemp(prefix="aux-store-bench-"))
    try:
        password_file = work / "pw"
        password_file.write_text(PASSWORD + "\n")
        old_root = make_vault(work / "old", password_file)
        new_root = make_vault(work / "new", password_file)
        scheme = Vault.load(old_root).unlock(PASSWORD.encode())
        store = StoreDir(old_root / "store")
        names = [f"group{i // 100:03d}/secret-{i:05d}" for i in range(n)]
        values = {name: f"token-{name}-{'x' * 24}".encode() for name in names}

        t_add, _ = timed(lambda: [store.add(scheme, name, values[name]) for name in names])

        rows: list[tuple[str, float, str, float | None]] = []

        t_list, listed = best_of(3, lambda: cli(old_root, password_file, "store", "list"))
        assert isinstance(listed, subprocess.CompletedProcess)
        assert len(listed.stdout.splitlines()) == n + 1, "list line count"
        t_list_json, _ = best_of(3, lambda: cli(old_root, password_file, "store", "list", "--json"))
        t_help, _ = best_of(3, lambda: cli(old_root, password_file, "--help"))
        t_ls, _ = best_of(
            3,
            lambda: subprocess.run(
                f"ls -R {old_root / 'store'} | wc -l", shell=True, capture_output=True, check=True
            ),
        )
        t_entries, listed_api = best_of(3, store.entries)
        assert isinstance(listed_api, list) and len(listed_api) == n, "entries"
        rows.append(("aux-secrets --help", t_help, "ls -R | wc -l", t_ls))
        rows.append(("StoreDir.entries() (API)", t_entries, "ls -R | wc -l", t_ls))
        rows.append(("store list", t_list, "ls -R | wc -l", t_ls))
        rows.append(("store list --json", t_list_json, "ls -R | wc -l", t_ls))

        def sequential_decrypt() -> int:
            count = 0
            for name in names:
                data = store.path_for(name).read_bytes()
                key = store_key(scheme, name)
                _, payload = sf.decrypt_file(key, data, name)
                count += payload.value == values[name]
            return count

        t_seq, ok = timed(sequential_decrypt)
        assert ok == n, "sequential decrypt"

        t_get, got = timed(lambda: cli(old_root, password_file, "store", "get", names[0]))
        assert isinstance(got, subprocess.CompletedProcess) and got.stdout == values[names[0]]
        t_verify, verified = timed(lambda: cli(old_root, password_file, "store", "verify"))
        assert isinstance(verified, subprocess.CompletedProcess)
        assert verified.stdout == f"verified {n} store secrets\n".encode()
        t_rekey, _ = timed(
            lambda: cli(
                new_root,
                password_file,
                "store",
                "rekey",
                "--from-vault",
                str(old_root),
                "--old-password-file",
                str(password_file),
                "--copy-store",
                "--no-commit",
            )
        )
        last = cli(new_root, password_file, "store", "get", names[-1])
        assert last.stdout == values[names[-1]], "rekeyed value"

        # pass's model: gpg per secret, on a sample, scaled to N.
        gpg_per_show = gpg_per_reencrypt = None
        if shutil.which("gpg"):
            base = gpg_setup(work / "gnupg")
            gdir = work / "pass-store"
            gdir.mkdir()
            files = []
            for name in names[:sample]:
                target = gdir / (name.replace("/", "_") + ".gpg")
                subprocess.run(
                    [*base, "-e", "-r", "bench@example.invalid", "-o", str(target)],
                    input=values[name],
                    check=True,
                )
                files.append((name, target))
            subprocess.run([*base, "-d", str(files[0][1])], capture_output=True, check=True)

            def gpg_show_all() -> None:
                for name, target in files:
                    out = subprocess.run(
                        [*base, "-d", str(target)], capture_output=True, check=True
                    )
                    assert out.stdout == values[name]

            def gpg_reencrypt_all() -> None:
                for _, target in files:
                    plain = subprocess.run(
                        [*base, "-d", str(target)], capture_output=True, check=True
                    ).stdout
                    subprocess.run(
                        [*base, "-e", "-r", "bench@example.invalid", "-o", str(target)],
                        input=plain,
                        check=True,
                    )

            t_show, _ = timed(gpg_show_all)
            t_reenc, _ = timed(gpg_reencrypt_all)
            gpg_per_show = t_show / sample
            gpg_per_reencrypt = t_reenc / sample
            subprocess.run(
                ["gpgconf", "--homedir", str(work / "gnupg"), "--kill", "gpg-agent"],
                check=False,
            )
        rows.append(("store get (one)", t_get, "gpg -d one file (pass show)", gpg_per_show))
        rows.append(
            (
                "store verify",
                t_verify,
                f"gpg -d x {n} (scaled from {sample})",
                None if gpg_per_show is None else gpg_per_show * n,
            )
        )
        rows.append(("store verify", t_verify, "in-process sequential decrypt", t_seq))
        rows.append(
            (
                "store rekey --copy-store",
                t_rekey,
                f"gpg -d | gpg -e x {n} (pass init; scaled from {sample})",
                None if gpg_per_reencrypt is None else gpg_per_reencrypt * n,
            )
        )

        print(
            f"# store benchmark: {n} secrets  ({platform.python_version()}, {os.cpu_count()} cpus)"
        )
        print(
            f"populate through the API (StoreDir.add x {n}): {t_add:.2f} s "
            f"({t_add / n * 1000:.2f} ms per secret)"
        )
        print(f"{'aux-secrets':<25} {'wall':>8} {'cpu':>8}   {'reference':<48} {'wall':>8}  ratio")
        for ours, t_ours, ref, t_ref in rows:
            ref_text = "-" if t_ref is None else f"{t_ref:7.3f}s"
            ratio = "-" if t_ref is None else f"{t_ref / t_ours:.2f}x"
            cpu = f"{CPU[t_ours]:7.3f}s" if t_ours in CPU else "-"
            print(f"{ours:<25} {t_ours:7.3f}s {cpu:>8}   {ref:<48} {ref_text:>8}  {ratio}")
        print(
            "ratio = reference wall time / aux-secrets wall time (above 1: aux-secrets is faster)"
        )
        print(
            "cpu = user + system time of the aux-secrets process (less sensitive to machine load)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
