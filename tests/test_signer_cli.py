"""`aux-secrets signer` and the signatures `aux-secrets bundle` puts on bundles."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from aux_secrets.core.bundle_sign import open_envelope, parse_signer, signer_fingerprint
from tests.helpers import assert_one_line_error, cli, require_program
from tests.provision_helpers import Vault, make_host_root, make_vault


def signer_line(vault: Vault) -> str:
    done = cli("signer", *vault.args())
    assert done.returncode == 0, done.stderr
    line = done.stdout.decode().strip()
    assert line.startswith("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI")
    assert line.endswith(" aux-secrets-signer")
    return line


def test_signer_forms_agree_and_differ_per_vault(tmp_path: Path) -> None:
    vault = make_vault(tmp_path)
    line = signer_line(vault)
    assert signer_line(vault) == line  # derived, stable
    key = parse_signer(line)
    done = cli("signer", "--json", *vault.args())
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["ssh"] == line
    assert parse_signer(doc["publicKey"]) == key
    assert doc["fingerprint"] == signer_fingerprint(key)
    only = cli("signer", "--ssh", *vault.args())
    assert only.stdout.decode() == line + "\n" and only.stderr == b""
    assert_one_line_error(cli("signer", "--ssh", "--json", *vault.args()), "exclude each other")
    other = make_vault(tmp_path, "other")
    assert signer_line(other) != line
    # The signer's realm is reserved: no user request can derive the signing key.
    derived = cli("derive", "aux-secrets/bundle-signer/v1", "-t", "ed25519", *vault.args())
    assert_one_line_error(derived, "reserved")


def test_bundle_is_signed_by_the_vault_and_activates_when_pinned(tmp_path: Path) -> None:
    keygen = require_program("ssh-keygen", "openssh-client")
    age = require_program("age", "age")
    vault = make_vault(tmp_path)
    key = tmp_path / "host_key"
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    line = signer_line(vault)
    host = make_host_root(tmp_path, "web1", key, None)
    doc = json.loads(host.manifest.read_bytes())
    doc["settings"]["bundleSigners"] = [line]
    host.manifest.write_text(json.dumps(doc))
    pub = key.with_suffix(".pub").read_text().strip()
    added = cli("host", "add", "web1", "--ssh-host-key", pub, "--vault", vault.root)
    assert added.returncode == 0, added.stderr
    out = tmp_path / "web1.age"
    made = cli("bundle", "--host", "web1", "--manifest", host.manifest, "-o", out, *vault.args())
    assert made.returncode == 0, made.stderr
    # The real age CLI opens it; inside is the signed envelope of the vault's signer.
    opened = subprocess.run(
        [age, "-d", "-i", str(key), str(out)], check=True, capture_output=True
    ).stdout
    assert open_envelope(opened).signer == parse_signer(line)
    args = ["--root", str(host.root), "--manifest", str(host.manifest)]
    done = cli("activate", "--bundle", out, *args)
    assert done.returncode == 0, done.stderr
    assert signer_fingerprint(parse_signer(line)).encode() in done.stderr
    # Another vault's bundle for the same host key is refused by the pin.
    other = make_vault(tmp_path, "other")
    assert cli("host", "add", "web1", "--ssh-host-key", pub, "--vault", other.root).returncode == 0
    forged = tmp_path / "forged.age"
    made = cli("bundle", "--host", "web1", "--manifest", host.manifest, "-o", forged, *other.args())
    assert made.returncode == 0, made.stderr
    before = {
        p: p.read_bytes() for p in (host.root / "var/lib/aux-secrets").rglob("*") if p.is_file()
    }
    refused = cli("activate", "--bundle", forged, *args)
    assert_one_line_error(refused, "which is not in settings.bundleSigners")
    after = {
        p: p.read_bytes() for p in (host.root / "var/lib/aux-secrets").rglob("*") if p.is_file()
    }
    assert after == before
