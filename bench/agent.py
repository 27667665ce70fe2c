"""The unlock agent: `store get`, `derive` and `provision --local` with and without it.

Side by side in the same run with `pass show` (gpg with a passphrase-less key, so
no agent prompt) and `age -d` of one small file. The vault uses the default Argon2id
parameters (64 MiB, t=6), as a real one does. Each figure is the median wall time of
--repeat whole processes. "via typer" is the agent case with the fast path
(cli/fastpath.py) turned off: what the typer command costs.

The package's bytecode is compiled first, as an installed package has it. Commands run
as the installed ``aux-secrets`` script beside the interpreter (else ``python -m``).

Run: .venv/bin/python -m bench.agent [--repeat 15]   (needs pass, gpg, age, ssh-keygen)
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aux_secrets

# The installed command, as users run it (`python -m` adds runpy's imports to every run).
_SCRIPT = Path(sys.executable).parent / "aux-secrets"
AUX = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "aux_secrets"]
PASSWORD = b"agent bench master password\n"
KEY = ("default", "default", "never")
VALUE = b"tok-0123456789abcdef0123456789abcdef"


def median_wall(argv: list[str], env: dict[str, str], repeat: int, stdin: bytes = b"") -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(argv, input=stdin, capture_output=True, env=env, check=False)
        samples.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"failed: {' '.join(argv)}\n{done.stderr.decode()}")
    return statistics.median(samples)


def must(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> bytes:
    done = subprocess.run(argv, input=stdin, capture_output=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{done.stderr.decode()}")
    return done.stdout


def setup_pass(work: Path, env: dict[str, str]) -> dict[str, str]:
    gnupg = work / "gnupg"
    gnupg.mkdir(mode=0o700)
    penv = env | {"GNUPGHOME": str(gnupg), "PASSWORD_STORE_DIR": str(work / "pass")}
    must(
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "bench@example.invalid", *KEY],
        penv,
    )
    must(["pass", "init", "bench@example.invalid"], penv)
    must(["pass", "insert", "-m", "bench/token"], penv, VALUE + b"\n")
    return penv


def setup_age(work: Path, env: dict[str, str]) -> tuple[Path, Path]:
    key = work / "age.key"
    must(["age-keygen", "-o", str(key)], env)
    recipient = must(["age-keygen", "-y", str(key)], env).decode().strip()
    sealed = work / "token.age"
    must(["age", "-r", recipient, "-o", str(sealed)], env, VALUE)
    return key, sealed


def setup_vault(work: Path, env: dict[str, str]) -> tuple[list[str], list[str]]:
    """The vault, a local host root; (store/derive args, provision args) without password."""
    pw = work / "pw"
    pw.write_bytes(PASSWORD)
    vault = work / "vault"
    must([*AUX, "init", str(vault), "--password-file", str(pw)], env)
    base = ["--vault", str(vault)]
    must(
        [*AUX, "store", "add", "bench/token", "--no-commit", *base, "--password-file", str(pw)],
        env,
        VALUE,
    )
    root = work / "host"
    (root / "etc/ssh").mkdir(parents=True)
    key = root / "etc/ssh/ssh_host_ed25519_key"
    must(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], env)
    pub = key.with_suffix(".pub").read_text().strip()
    manifest = work / "manifest.json"
    secrets = {
        f"s/{i:02d}": {"source": {"derive": {"realm": f"bench/{i}", "type": "pass"}}}
        for i in range(10)
    }
    secrets["token"] = {"source": {"store": "bench/token"}}
    doc = {
        "version": 1,
        "host": "bench",
        "settings": {"backend": "plain", "systemctl": ["/bin/true"]},
        "secrets": secrets,
    }
    manifest.write_text(json.dumps(doc))
    must([*AUX, "host", "add", "bench", "--ssh-host-key", pub, *base], env)
    provision = ["provision", "--host", "bench", "--local", "--manifest", str(manifest)]
    return base, [*provision, "--root", str(root), *base]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    for program in ("pass", "gpg", "age", "age-keygen", "ssh-keygen"):
        if shutil.which(program) is None:
            raise SystemExit(f"{program} is not installed: apt-get install pass gnupg age")
    # An installed package (pip, Nix) ships bytecode; a checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would compile every module in every measured process.
    compileall.compile_dir(Path(aux_secrets.__file__).parent, quiet=1)
    work = Path(tempfile.mkdtemp(prefix="aux-agent-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    env["AUX_SECRETS_AGENT_DIR"] = str(work / "agent")
    try:
        penv = setup_pass(work, env)
        key, sealed = setup_age(work, env)
        base, provision = setup_vault(work, env)
        pw = ["--password-file", str(work / "pw")]
        n = args.repeat
        t_pass = median_wall(["pass", "show", "bench/token"], penv, n)
        t_age = median_wall(["age", "-d", "-i", str(key), str(sealed)], env, n)
        cases = {
            "store get": ["store", "get", "bench/token", *base],
            "derive": ["derive", "web/db", *base],
            "provision --local (11 secrets)": provision,
        }
        without = {name: median_wall([*AUX, *argv, *pw], env, n) for name, argv in cases.items()}
        must([*AUX, "agent", "unlock", "--timeout", "600", *base, *pw], env)
        try:
            with_agent = {name: median_wall([*AUX, *argv], env, n) for name, argv in cases.items()}
            typer_env = env | {"_AUX_SECRETS_NO_FASTPATH": "1"}  # what the fast path saves
            through_typer = {
                name: median_wall([*AUX, *argv], typer_env, n) for name, argv in cases.items()
            }
        finally:
            must([*AUX, "agent", "lock"], env)
        load = os.getloadavg()
        print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, median of {n} runs")
        widths = (9, 9, 9, 13, 10)
        heads = ("no agent", "agent", "via typer", "vs pass show", "vs age -d")
        print(
            f"{'command':<32} " + " ".join(f"{h:>{w}}" for h, w in zip(heads, widths, strict=True))
        )
        for name in cases:
            a, b, c = without[name], with_agent[name], through_typer[name]
            ratios = f"{b / t_pass:12.2f}x {b / t_age:9.1f}x"
            print(f"{name:<32} {a * 1000:7.0f}ms {b * 1000:7.0f}ms {c * 1000:7.0f}ms {ratios}")
        print(f"{'pass show':<32} {t_pass * 1000:7.0f}ms")
        print(f"{'age -d':<32} {t_age * 1000:7.0f}ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
