"""Publish-and-pull for a fleet, side by side with baselines measured in the same run.

1. ``provision --all --publish DIR`` for N hosts (default 1,000; age X25519 recipients,
   3 secrets each, one manifest per host), against ``age -r`` encrypting a bundle-sized
   payload once per host (one process each, as a shell loop would).
2. N hosts pulling from one loopback server (Python's http.server), each a process with
   its own ``--root`` (``aux-secrets pull URL`` then install), -j at once; then again,
   when every host is up to date (a conditional request, no decryption). Baseline: one
   Python process per host fetching the same file with urllib (start-up + HTTP GET).

Run: .venv/bin/python -m bench.transport [--hosts 1000] [--jobs 2]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.provision_helpers import make_vault
from tests.sshd import free_port

AUX = [sys.executable, "-m", "aux_secrets"]
FETCH = "import sys, urllib.request; urllib.request.urlopen(sys.argv[1]).read()"


def check(done: subprocess.CompletedProcess[bytes], argv: Sequence[object]) -> None:
    if done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, argv))}\n{done.stderr.decode()}")


def run(argv: Sequence[object], stdin: bytes = b"") -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([str(a) for a in argv], input=stdin, capture_output=True, check=False)
    check(done, argv)
    return done


def fleet(argvs: list[list[object]], jobs: int) -> float:
    """Run every argv (-j at once); the wall time."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for argv, done in zip(argvs, pool.map(lambda a: run(a), argvs), strict=True):
            check(done, argv)
    return time.perf_counter() - start


def manifest(host: str, signer: str, key: str) -> bytes:
    secrets = {
        "db/password": {"source": {"derive": {"realm": f"db/{host}", "type": "pass"}}},
        "api/hmac": {
            "source": {"derive": {"realm": f"api/{host}", "type": "raw", "encoding": "hex"}}
        },
        "tls/key": {"source": {"derive": {"realm": f"tls/{host}", "type": "ed25519"}}},
    }
    doc = {
        "version": 1,
        "host": host,
        "settings": {
            "backend": "plain",
            "systemctl": ["/bin/true"],
            "hostKeys": [key],
            "bundleSigners": [signer],
        },
        "secrets": secrets,
    }
    return json.dumps(doc).encode()


def setup(work: Path, count: int) -> tuple[Path, list[Path], list[str]]:
    """A vault with ``count`` hosts; each host's root with its age identity and manifest."""
    import pyrage

    from aux_secrets.adapters.hosts import Host, HostDir

    vault = make_vault(work)
    signer = run([*AUX, "signer", "--ssh", *vault.args()]).stdout.decode().strip()
    hosts = HostDir(vault.root / "hosts")
    (vault.root / "manifests").mkdir()
    roots: list[Path] = []
    recipients: list[str] = []
    for index in range(count):
        name = f"h{index:04d}"
        identity = pyrage.x25519.Identity.generate()
        root = work / "roots" / name
        (root / "etc/aux-secrets").mkdir(parents=True)
        (root / "etc/aux-secrets/host.key").write_text(str(identity) + "\n")
        data = manifest(name, signer, "/etc/aux-secrets/host.key")
        (root / "etc/aux-secrets/manifest.json").write_bytes(data)
        (vault.root / "manifests" / f"{name}.json").write_bytes(data)
        recipient = str(identity.to_public())
        hosts.add(Host(name=name, recipient=recipient, manifest=f"manifests/{name}.json"))
        roots.append(root)
        recipients.append(recipient)
    return vault.root, roots, recipients


def serve(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(directory), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    import socket

    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}/"


def per_host(total: float, count: int) -> str:
    return f"{total:.1f} s total, {1000 * total / count:.1f} ms per host"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    age = shutil.which("age")
    if age is None:
        raise SystemExit("age is not installed (apt-get install age)")
    work = Path(tempfile.mkdtemp(prefix="aux-bench-transport."))
    results: dict[str, float] = {}
    try:
        started = time.perf_counter()
        vault, roots, recipients = setup(work, args.hosts)
        print(f"setup: {args.hosts} hosts in {time.perf_counter() - started:.1f} s", flush=True)
        vault_args = ["--vault", vault, "--password-file", work / "vault.pw"]
        pub = work / "pub"

        start = time.perf_counter()
        run([*AUX, "provision", "--all", "--publish", pub, "-j", args.jobs, "--json", *vault_args])
        results["publish"] = time.perf_counter() - start
        sample = (pub / "h0000.age").read_bytes()
        payload = work / "payload"
        payload.write_bytes(os.urandom(len(sample) - 200))

        def age_loop() -> None:
            for recipient in recipients:
                run([age, "-r", recipient, "-o", work / "out.age", payload])

        start = time.perf_counter()
        age_loop()
        results["age"] = time.perf_counter() - start
        print(f"publish: {per_host(results['publish'], args.hosts)}", flush=True)
        print(f"  age -r per host: {per_host(results['age'], args.hosts)}", flush=True)

        server, url = serve(pub)
        try:
            pulls: list[list[object]] = [[*AUX, "pull", url, "--root", r] for r in roots]
            results["pull"] = fleet(pulls, args.jobs)
            print(f"pull + install: {per_host(results['pull'], args.hosts)}", flush=True)
            results["again"] = fleet(pulls, args.jobs)
            print(f"pull, up to date: {per_host(results['again'], args.hosts)}", flush=True)
            fetches: list[list[object]] = [
                [sys.executable, "-c", FETCH, f"{url}h{i:04d}.age"] for i in range(args.hosts)
            ]
            results["fetch"] = fleet(fetches, args.jobs)
            print(f"  python urllib fetch: {per_host(results['fetch'], args.hosts)}", flush=True)
            version: list[list[object]] = [[*AUX, "--version"]] * min(args.hosts, 100)
            results["startup"] = fleet(version, args.jobs) * args.hosts / len(version)
            print(f"  aux-secrets --version: {per_host(results['startup'], args.hosts)}")
        finally:
            server.terminate()
            server.wait()
        status = json.loads(run([*AUX, "status", "--json", "--root", roots[-1]]).stdout)
        assert status["active"]["host"] == f"h{args.hosts - 1:04d}", status

        def ratio(a: str, b: str) -> str:
            return f"{results[a] / results[b]:.1f}x"

        print(
            f"ratios: publish/age {ratio('publish', 'age')}, pull/fetch {ratio('pull', 'fetch')}, "
            f"up-to-date/fetch {ratio('again', 'fetch')}, up-to-date/--version "
            f"{ratio('again', 'startup')}"
        )
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
