"""The systemd-creds backend sealed to a TPM2 (a per-test swtpm), incl. a PCR change."""

from __future__ import annotations

from pathlib import Path

import pytest

from aux_secrets.adapters.systemd_creds import SystemdCreds
from aux_secrets.errors import DecryptError, InputError
from tests.helpers import assert_one_line_error, cli
from tests.swtpm import Swtpm, swtpm  # noqa: F401  (fixture)
from tests.test_localstore_support import Host, payload


def tpm_host(tmp_path: Path, tpm: Swtpm, key: str) -> Host:
    return Host(
        tmp_path,
        extra_settings={"credentialKey": key, "tpm2": {"device": tpm.device, "pcrs": "7"}},
    )


@pytest.mark.parametrize("key", ["tpm2", "host+tpm2"])
def test_tpm2_seal_and_load(tmp_path: Path, swtpm: Swtpm, key: str) -> None:  # noqa: F811
    host = tpm_host(tmp_path, swtpm, key)
    p = payload(1)
    host.store(after_each=swtpm.flush).activate(host.bundle(p), "web1")
    meta = host.store().active_meta()
    assert meta is not None and meta.credential_key == key
    calls: list[int] = []

    def count_and_flush() -> None:
        calls.append(1)
        swtpm.flush()

    assert host.store(after_each=count_and_flush).load() == p
    assert len(calls) == 1


def test_pcr_change_gives_a_clear_error(tmp_path: Path, swtpm: Swtpm) -> None:  # noqa: F811
    host = tpm_host(tmp_path, swtpm, "tpm2")
    host.store(after_each=swtpm.flush).activate(host.bundle(payload(1)), "web1")
    swtpm.extend_pcr(7)
    with pytest.raises(DecryptError) as info:
        host.store(after_each=swtpm.flush).load()
    assert "the TPM refused to unseal" in info.value.message
    assert "PCR policy changed?" in info.value.message
    assert str(host.store_dir) in info.value.message


def test_activate_and_status_through_the_cli(tmp_path: Path, swtpm: Swtpm) -> None:  # noqa: F811
    """Status needs no unseal, so it keeps working after a PCR change; a newer bundle
    seals again under the new PCR values."""
    host = tpm_host(tmp_path, swtpm, "tpm2")
    args = ["activate", "--bundle", "-", *host.cli_args()]
    first = cli(*args, input=host.bundle(payload(1)), env=host.cli_env)
    swtpm.flush()
    assert first.returncode == 0, first.stderr
    swtpm.extend_pcr(7)
    status = cli("status", "--json", *host.cli_args(), env=host.cli_env)
    assert status.returncode == 0, status.stderr
    assert b'"serial": 1' in status.stdout
    again = cli(*args, input=host.bundle(payload(2)), env=host.cli_env)
    swtpm.flush()
    assert again.returncode == 0, again.stderr
    assert host.store(after_each=swtpm.flush).load().serial == 2


def test_adapter_pcr_message(tmp_path: Path, swtpm: Swtpm) -> None:  # noqa: F811
    host = Host(tmp_path)
    creds = SystemdCreds(
        with_key="tpm2", tpm2_device=swtpm.device, env=host.env, after_each=swtpm.flush
    )
    sealed = creds.encrypt("probe", b"x")
    assert creds.decrypt("probe", sealed, what="probe") == b"x"
    swtpm.extend_pcr(7)
    with pytest.raises(DecryptError, match=r"the TPM refused to unseal probe \(PCR policy"):
        creds.decrypt("probe", sealed, what="probe")


def test_tpm_unreachable(tmp_path: Path) -> None:
    creds = SystemdCreds(with_key="tpm2", tpm2_device="swtpm:host=127.0.0.1,port=1")
    from aux_secrets.errors import ExternalError

    with pytest.raises(ExternalError, match="could not seal"):
        creds.encrypt("x", b"y")


def test_empty_pcr_list_refused() -> None:
    with pytest.raises(InputError, match="PCR"):
        SystemdCreds(with_key="tpm2", tpm2_pcrs="")
    with pytest.raises(InputError):
        SystemdCreds(with_key="auto")


def test_cli_load_error_is_one_line(tmp_path: Path, swtpm: Swtpm) -> None:  # noqa: F811
    host = tpm_host(tmp_path, swtpm, "tpm2")
    host.store(after_each=swtpm.flush).activate(host.bundle(payload(1)), "web1")
    swtpm.extend_pcr(7)
    # activate of a newer bundle test-opens its own fresh seal, so it succeeds; a replay
    # is refused before any TPM access.
    replay = cli(
        "activate",
        "--bundle",
        "-",
        *host.cli_args(),
        input=host.bundle(payload(1)),
        env=host.cli_env,
    )
    assert_one_line_error(replay, "not newer")
