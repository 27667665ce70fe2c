"""Provisioning benchmarks, each side by side with a baseline measured in the same run.

1. A host with 1,000 secrets: bundle creation (resolve + seal, in-process) and
   activation (``aux-secrets activate`` as the host runs it), against plain ``age``
   encrypting and decrypting the same payload bytes.
2. ``provision --all`` for 20 hosts over loopback ssh (one sshd, 20 host entries with
   their own roots), against 20 sequential ``ssh HOST true`` round trips.
3. ``provision --local`` of a host with 1,000 secrets (a rerun: a new serial, nothing
   changes; run/ on a tmpfs), against ``age`` encrypting and decrypting the same payload, and with
   ``--compare-src OTHER/src`` against another checkout in the same run (each with its
   own vault and host, made by its own code; interleaved).

Run: .venv/bin/python -m bench.provision [--secrets 1000] [--hosts 20]
     .venv/bin/python -m bench.provision --only local [--compare-src OTHER/src]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.provision_helpers import PASSWORD, add_host, make_host_root, make_vault
from tests.sshd import start_sshd, stop_sshd

AUX = [sys.executable, "-m", "aux_secrets"]


def timed(fn: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def run(argv: list[str | Path], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([str(a) for a in argv], input=stdin, capture_output=True, check=False)
    if done.returncode not in (0,):
        raise SystemExit(f"failed: {' '.join(map(str, argv))}\n{done.stderr.decode()}")
    return done


def big_manifest(host: str, count: int, systemctl: str) -> bytes:
    secrets: dict[str, object] = {}
    for i in range(count):
        source: dict[str, object] = {"realm": f"bench/{host}/{i}", "type": "pass"}
        if i % 10 == 0:  # every tenth rotates monthly with a retired and an ahead slot
            source = {
                "realm": f"bench/{host}/{i}/{{period}}",
                "type": "raw",
                "length": 32,
                "encoding": "hex",
                "rotation": {"period": "monthly", "retired": 1, "ahead": 1},
            }
        secrets[f"s/{i:04d}"] = {"source": {"derive": source}}
    doc = {
        "version": 1,
        "host": host,
        "settings": {"backend": "plain", "systemctl": [systemctl]},
        "secrets": secrets,
    }
    return json.dumps(doc).encode()


def bench_bundle(work: Path, server_key: Path, host_pub: str, count: int) -> dict[str, float]:
    from aux_secrets.adapters.hosts import HostDir
    from aux_secrets.adapters.vault import Vault as VaultDir
    from aux_secrets.workflows import provision

    vault = make_vault(work)
    host = make_host_root(work, "big", server_key)
    host.manifest.write_bytes(big_manifest("big", count, "/bin/true"))
    run([*AUX, "host", "add", "big", "--ssh-host-key", host_pub, "--vault", vault.root])
    opened = VaultDir.load(vault.root)
    scheme = opened.unlock(PASSWORD.strip())
    entry = HostDir(opened.hosts_dir).read("big")
    manifest = provision.load_manifest(provision.manifest_from_file(host.manifest))

    made: list[provision.Bundle] = []
    t_bundle = timed(lambda: made.append(provision.make_bundle(opened, scheme, entry, manifest)), 3)
    bundle_file = work / "big.age"
    bundle_file.write_bytes(made[-1].data)
    payload = run(["age", "-d", "-i", server_key, bundle_file]).stdout

    def activate() -> None:
        # A fresh bundle each time (serials only grow), activation is what is timed.
        data = provision.make_bundle(opened, scheme, entry, manifest).data
        start = time.perf_counter()
        run([*AUX, "activate", "--bundle", "-", "--root", host.root], stdin=data)
        activations.append(time.perf_counter() - start)

    activations: list[float] = []
    for _ in range(3):
        activate()
    t_activate = statistics.median(activations)
    t_install = timed(lambda: run([*AUX, "install", "--root", host.root]), 3)

    recipient_file = work / "recipient.txt"
    recipient_file.write_text(host_pub + "\n")
    plain = work / "payload.json"
    plain.write_bytes(payload)
    enc = work / "plain.age"
    t_age_enc = timed(lambda: run(["age", "-R", recipient_file, "-o", enc, plain]), 3)
    t_age_dec = timed(lambda: run(["age", "-d", "-i", server_key, "-o", work / "out", enc]), 3)
    return {
        "secrets": count,
        "payload_bytes": len(payload),
        "bundle_s": t_bundle,
        "activate_s": t_activate,
        "install_s": t_install,
        "age_encrypt_s": t_age_enc,
        "age_decrypt_s": t_age_dec,
    }


def bench_fleet(work: Path, hosts: int, jobs: list[int]) -> dict[str, float]:
    server, proc = start_sshd(work / "sshd")
    try:
        vault = make_vault(work)
        for i in range(hosts):
            add_host(vault, make_host_root(work, f"h{i:02d}", server.host_key), server)
        ssh = ["ssh"]
        for option in server.ssh_options():
            ssh += ["-o", option]
        t_ssh = timed(lambda: [run([*ssh, "-T", server.target, "true"]) for _ in range(hosts)], 1)
        out: dict[str, float] = {"hosts": hosts, "ssh_sequential_s": t_ssh}
        first = True
        for j in jobs:
            argv = [*AUX, "provision", "--all", "-j", str(j), *vault.args()]
            if first:  # the first run installs everything; time the idempotent reruns
                out[f"first_run_j{j}_s"] = timed(lambda argv=argv: run(argv), 1)
                first = False
            out[f"provision_all_j{j}_s"] = timed(lambda argv=argv: run(argv), 2)
        return out
    finally:
        stop_sshd(proc)


def _env(src: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUX_SECRETS_")}
    if src is not None:
        env["PYTHONPATH"] = src
    return env


def _run_env(argv: list[str | Path], env: dict[str, str]) -> bytes:
    done = subprocess.run([str(a) for a in argv], capture_output=True, check=False, env=env)
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, argv))}\n{done.stderr.decode()}")
    return done.stdout


def bench_local(
    work: Path, count: int, tools: list[tuple[str, dict[str, str]]], repeat: int
) -> tuple[dict[str, list[float]], list[float], int]:
    """``provision --local`` reruns per tool, and age on the same payload."""
    argvs: dict[str, list[str | Path]] = {}
    key = work / "hostkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    pub = " ".join(key.with_suffix(".pub").read_text().split()[:2])
    for label, env in tools:
        here = work / label
        (here / "root/etc/ssh").mkdir(parents=True)
        (here / "root/etc/aux-secrets").mkdir()
        (here / "root/run").mkdir()
        # run/ on a tmpfs, as /run is on a host (left on the disk if it cannot be mounted)
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256m,mode=0755", "tmpfs", here / "root/run"],
            capture_output=True,
            check=False,
        )
        shutil.copy(key, here / "root/etc/ssh/ssh_host_ed25519_key")
        manifest = here / "root/etc/aux-secrets/manifest.json"
        manifest.write_bytes(big_manifest("big", count, "/bin/true"))
        pw = here / "pw"
        pw.write_bytes(PASSWORD)
        vault = here / "vault"
        _run_env(
            [*AUX, "init", vault, "--password-file", pw, "--argon2-memory", "8",
             "--argon2-time", "1"],
            env,
        )  # fmt: skip
        _run_env([*AUX, "host", "add", "big", "--ssh-host-key", pub, "--manifest", manifest,
                  "--vault", vault], env)  # fmt: skip
        argvs[label] = [*AUX, "provision", "--host", "big", "--local", "--root", here / "root",
                        "--vault", vault, "--password-file", pw]  # fmt: skip
        _run_env(argvs[label], env)  # the first run: everything new
    first_env = tools[0][1]
    vault0 = work / tools[0][0] / "vault"
    bundle = work / "big.age"
    _run_env([*AUX, "bundle", "--host", "big", "-o", bundle, "--vault", vault0,
              "--password-file", work / tools[0][0] / "pw"], first_env)  # fmt: skip
    payload = work / "payload"
    payload.write_bytes(_run_env(["age", "-d", "-i", key, bundle], first_env))
    times: dict[str, list[float]] = {label: [] for label, _ in tools}
    age_times: list[float] = []
    recipient = work / "recipient"
    recipient.write_text(pub + "\n")
    enc = work / "enc.age"
    for _ in range(repeat):
        for label, env in tools:
            start = time.perf_counter()
            out = _run_env(argvs[label], env)
            times[label].append(time.perf_counter() - start)
            assert b"no change" in out, out
        start = time.perf_counter()
        run(["age", "-R", recipient, "-o", enc, payload])
        run(["age", "-d", "-i", key, "-o", work / "out", enc])
        age_times.append(time.perf_counter() - start)
    for label, _ in tools:
        subprocess.run(
            ["umount", "-l", work / label / "root/run"], capture_output=True, check=False
        )
    return times, age_times, payload.stat().st_size


def main_local(args: argparse.Namespace) -> None:
    tools = [("aux-secrets", _env(None))]
    if args.compare_src:
        tools.append(("compared", _env(args.compare_src)))
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="aux-bench-local-") as tmp:
        times, age, size = bench_local(Path(tmp), args.secrets, tools, args.repeat)
    loads.append(os.getloadavg()[0])
    age_best = min(age)
    print(f"# provision --local rerun, {args.secrets} secrets (payload {size} bytes)")
    print(f"# {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"# best of {args.repeat}, interleaved; load {min(loads):.1f} to {max(loads):.1f}")
    print(f"# reference: age -R encrypt + age -d decrypt of the payload = {age_best:.3f} s")
    print("| tool | provision --local (best, range) | ratio to age |")
    print("| --- | --- | --- |")
    for label, runs in times.items():
        print(
            f"| {label} | {min(runs):.3f} s ({min(runs):.2f}-{max(runs):.2f}) "
            f"| {min(runs) / age_best:.0f}x |"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secrets", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--only", choices=["local"], help="run only this part")
    parser.add_argument("--compare-src", help="another checkout's src/ (with --only local)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per tool (--only local)")
    args = parser.parse_args()
    if args.only == "local":
        main_local(args)
        return
    for program in ("age", "ssh", "ssh-keygen"):
        if shutil.which(program) is None:
            raise SystemExit(f"{program} is not installed")
    with tempfile.TemporaryDirectory(prefix="aux-bench-") as tmp:
        work = Path(tmp)
        key = work / "hostkey"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        pub = " ".join(key.with_suffix(".pub").read_text().split()[:2])
        (work / "b").mkdir()
        b = bench_bundle(work / "b", key, pub, args.secrets)
        (work / "f").mkdir()
        f = bench_fleet(work / "f", args.hosts, [1, 4, 8])
    print(f"python {sys.version.split()[0]}")
    print(f"-- bundle + activate, {b['secrets']} secrets, payload {b['payload_bytes']} bytes")
    print(f"bundle (resolve+seal, in-process) {b['bundle_s']:.3f} s")
    print(f"age encrypt same payload (CLI)    {b['age_encrypt_s']:.3f} s")
    print(f"  ratio bundle / age encrypt      {b['bundle_s'] / b['age_encrypt_s']:.1f}x")
    print(f"activate (CLI, plain backend)     {b['activate_s']:.3f} s")
    print(f"age decrypt same payload (CLI)    {b['age_decrypt_s']:.3f} s")
    print(f"  ratio activate / age decrypt    {b['activate_s'] / b['age_decrypt_s']:.1f}x")
    print(f"install, no change (CLI)          {b['install_s']:.3f} s")
    print(f"-- provision --all, {f['hosts']} hosts over loopback ssh")
    print(f"{f['hosts']} sequential ssh round trips     {f['ssh_sequential_s']:.3f} s")
    for key_name, value in f.items():
        if key_name.startswith(("provision_all", "first_run")):
            ratio = value / f["ssh_sequential_s"]
            print(f"{key_name:<33} {value:.3f} s  ({ratio:.2f}x the ssh baseline)")


if __name__ == "__main__":
    main()
