"""Running transports for real: scp to the loopback sshd, a plain directory, /bin/sh."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from aux_secrets.adapters.transport import Parcel, run_command, run_copy, run_status, transport_for
from aux_secrets.adapters.vault import Vault as VaultDir
from aux_secrets.core.transport import (
    CommandTransport,
    CopyPair,
    CopyTransport,
    PublishTransport,
    SshTransport,
)
from aux_secrets.errors import ExternalError, InputError, NotFoundError, UsageError
from tests.helpers import cli
from tests.provision_helpers import make_host_root, make_vault
from tests.sshd import REMOTE_AUX, Sshd, sshd

__all__ = ["sshd"]

DATA = b"age-encryption.org/v1\n-> X25519 not a real bundle, the transports do not care\n"


def parcel(server: Sshd | None = None, *, target: str | None = "root@127.0.0.1") -> Parcel:
    options = tuple(server.ssh_options()) if server else ()
    return Parcel("web1", target, options, DATA, 1790000000)


def test_copy_to_a_directory_and_a_file(tmp_path: Path) -> None:
    drop = tmp_path / "drop"
    drop.mkdir()
    transport = CopyTransport(
        (CopyPair("bundle", f"{drop}/"), CopyPair("bundle", f"{drop}/named-{{host}}.bin"))
    )
    done = run_copy(transport, parcel())
    assert done == [f"{drop}/web1.age", f"{drop}/named-web1.bin"]
    for name in ("web1.age", "named-web1.bin"):
        assert (drop / name).read_bytes() == DATA
        assert stat.S_IMODE((drop / name).stat().st_mode) == 0o600
    with pytest.raises(NotFoundError, match="does not exist"):
        run_copy(CopyTransport((CopyPair("bundle", f"{tmp_path}/none/x.age"),)), parcel())


def test_copy_over_scp_to_the_loopback_sshd(tmp_path: Path, sshd: Sshd) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    transport = CopyTransport((CopyPair("bundle", f"{{target}}:{incoming}/{{host}}.age"),))
    done = run_copy(transport, parcel(sshd))
    assert done == [f"root@127.0.0.1:{incoming}/web1.age"]
    assert (incoming / "web1.age").read_bytes() == DATA
    # A destination directory the host does not have: one line naming the copy.
    missing = CopyTransport((CopyPair("bundle", f"{{target}}:{tmp_path}/none/x.age"),))
    with pytest.raises(ExternalError, match=r"copy to root@127.0.0.1:.*/none/x.age failed"):
        run_copy(missing, parcel(sshd))
    # {target} with no target is an error before anything runs.
    with pytest.raises(UsageError, match=r"uses \{target\}"):
        run_copy(transport, parcel(sshd, target=None))


def test_copy_with_a_given_program(tmp_path: Path, sshd: Sshd) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    options: list[str] = []
    for option in sshd.ssh_options():
        options += ["-o", option]
    transport = CopyTransport(
        (CopyPair("bundle", f"{{target}}:{incoming}/"),), program=("scp", "-q", *options)
    )
    run_copy(transport, parcel())
    assert (incoming / "web1.age").read_bytes() == DATA


def test_command_argv_with_placeholders_over_scp(tmp_path: Path, sshd: Sshd) -> None:
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    options: list[str] = []
    for option in sshd.ssh_options():
        options += ["-o", option]
    transport = CommandTransport(
        argv=("scp", "-q", *options, "{bundle}", f"{{target}}:{incoming}/{{host}}.age")
    )
    result = run_command(transport, parcel())
    assert result.returncode == 0, result.stderr
    assert (incoming / "web1.age").read_bytes() == DATA


def test_command_script_gets_stdin_environment_and_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the variables set here: the suite's own (AUX_SECRETS_NIXPKGS_LIB in the flake's
    # checks and dev shell) would pass through too.
    for name in [n for n in os.environ if n.startswith("AUX_SECRETS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AUX_SECRETS_PASSWORD_FILE", str(tmp_path / "pw"))
    monkeypatch.setenv("AUX_SECRETS_PASSWORD_COMMAND", "cat pw")
    record = tmp_path / "record"
    script = (
        f'cat > "{tmp_path}/$AUX_SECRETS_HOST.age"; '
        f'cp "$AUX_SECRETS_BUNDLE" "{tmp_path}/copy.age"; '
        f'{{ echo "$0|$1|$2|$3"; env | grep ^AUX_SECRETS_ | cut -d= -f1 | sort; }} > "{record}"'
    )
    result = run_command(CommandTransport(script=script), parcel())
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "web1.age").read_bytes() == DATA
    assert (tmp_path / "copy.age").read_bytes() == DATA
    lines = record.read_text().splitlines()
    name, host, target, bundle = lines[0].split("|")
    assert (name, host, target) == ("aux-secrets-transport", "web1", "root@127.0.0.1")
    assert bundle.endswith("/web1.age")
    assert not Path(bundle).exists()  # removed with its directory after the command
    assert not Path(bundle).parent.exists()
    assert lines[1:] == [
        "AUX_SECRETS_BUNDLE",
        "AUX_SECRETS_HOST",
        "AUX_SECRETS_SERIAL",
        "AUX_SECRETS_SSH_OPTIONS",
        "AUX_SECRETS_TARGET",
    ]


def test_a_failing_command_reports_its_status_and_a_missing_program_is_named() -> None:
    result = run_command(CommandTransport(script="echo nope >&2; exit 7"), parcel())
    assert (result.returncode, result.stderr_text) == (7, "nope")
    with pytest.raises(ExternalError, match="no-such-transport-program is not installed"):
        run_command(CommandTransport(argv=("no-such-transport-program",)), parcel())
    with pytest.raises(ExternalError, match=r"did not finish within 0\.5s"):
        run_command(CommandTransport(script="sleep 5", timeout=0.5), parcel())


def test_command_that_runs_the_host_side_and_its_status(tmp_path: Path, sshd: Sshd) -> None:
    vault = make_vault(tmp_path)
    host = make_host_root(tmp_path, "web1", sshd.host_key)
    added = cli("host", "add", "web1", "--ssh-host-key", sshd.host_pub, "--vault", vault.root)
    assert added.returncode == 0, added.stderr
    out = tmp_path / "web1.age"
    made = cli("bundle", "--host", "web1", "-m", host.manifest, "-o", out, *vault.args())
    assert made.returncode == 0, made.stderr
    ssh = ["ssh"]
    for option in sshd.ssh_options():
        ssh += ["-o", option]
    transport = CommandTransport(
        argv=(
            *ssh,
            "{target}",
            REMOTE_AUX,
            "activate",
            "--bundle",
            "-",
            "--json",
            "--root",
            str(host.root),
        ),
        status=(*ssh, "{target}", REMOTE_AUX, "status", "--json", "--root", str(host.root)),
    )
    real = Parcel("web1", sshd.target, (), out.read_bytes(), 1)
    result = run_command(transport, real)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["host"] == "web1"
    status = run_status(transport, real)
    assert status.returncode == 0, status.stderr
    assert set(json.loads(status.stdout)["secrets"]) == {"db/password", "api/hmac"}


def test_transport_for_host_then_vault_then_ssh(tmp_path: Path) -> None:
    from aux_secrets.adapters.hosts import Host

    vault = make_vault(tmp_path)
    opened = VaultDir.load(vault.root)
    plain = Host("web1", "age1" + "q" * 58)
    assert transport_for(opened, plain) == SshTransport()
    opened.update_section("transport", {"kind": "publish", "directory": "pub"})
    assert transport_for(VaultDir.load(vault.root), plain) == PublishTransport("pub")
    own = Host("web1", "age1" + "q" * 58, transport=CommandTransport(script="true"))
    assert transport_for(VaultDir.load(vault.root), own) == CommandTransport(script="true")
    opened.update_section("transport", {"kind": "copy"})
    with pytest.raises(InputError, match=r"vault.toml \[transport\]: a copy transport needs"):
        transport_for(VaultDir.load(vault.root), plain)
