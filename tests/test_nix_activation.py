"""The activation scripts of modules/aux-secrets.nix (without systemd-sysusers or userborn),
run the way NixOS's activation script runs them: the install failure policy.

Needs AUX_SECRETS_NIXPKGS_LIB (module evaluation).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import FIXTURES
from tests.test_nix_module import INSTALL, MOUNT, STORE, evaluate, from_example

# The new system's units: NixOS's activation script sets $systemConfig to it.
UNITS_DIR = '--units-dir "$systemConfig/etc/systemd/system"'


def test_activation_script_fallback(tmp_path: Path) -> None:
    module = from_example(FIXTURES / "nix" / "users.nix", extra="")
    r = evaluate(module, tmp_path, "services", "activationScripts", "fileSystems")
    assert "aux-secrets-install" not in r["services"]
    assert "aux-secrets-install-for-users" not in r["services"]
    scripts = r["activationScripts"]
    assert scripts["auxSecrets"]["deps"] == ["specialfs", "users", "groups"]
    assert f"{INSTALL} --activation-lists" in scripts["auxSecrets"]["text"]
    assert UNITS_DIR in scripts["auxSecrets"]["text"]
    assert f"{MOUNT} /run/aux-secrets.d" in scripts["auxSecrets"]["text"]
    assert f"{INSTALL} --for-users" in scripts["auxSecretsForUsers"]["text"]
    assert f"{MOUNT} /run/aux-secrets-for-users.d" in scripts["auxSecretsForUsers"]["text"]
    assert scripts["users"]["deps"] == ["auxSecretsForUsers"]
    assert scripts["auxSecretsDryActivate"]["supportsDryActivation"] is True
    assert r["fileSystems"] == {}


def _run_snippet(
    text: str, name: str, tmp: Path, status: int, action: str = "switch"
) -> tuple[int, str]:
    """Run an activation snippet the way NixOS's activation script wraps it (the ERR trap,
    _status and systemConfig of nixos/modules/system/activation/activation-script.nix),
    with the store paths of the CLI and the mount script replaced by recording stand-ins."""
    fake = tmp / "aux-secrets"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {tmp}/calls\nexit {status}\n')
    fake.chmod(0o755)
    text = text.replace(f"{STORE}aux-secrets/bin/aux-secrets", str(fake))
    text = text.replace(MOUNT, "true")
    script = f"""systemConfig='{tmp}/system'
_status=0
trap "_status=1 _localstatus=\\$?" ERR
NIXOS_ACTION={action}
_localstatus=0
{text}
if (( _localstatus > 0 )); then
  printf "Activation script snippet '%s' failed (%s)\\n" "{name}" "$_localstatus"
fi
exit $_status
"""
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("snippet", ["auxSecrets", "auxSecretsForUsers", "auxSecretsDryActivate"])
def test_activation_failure_policy(snippet: str, tmp_path: Path) -> None:
    """No bundle yet (75) is a loud warning and the switch succeeds; any other failure
    fails the switch (the old `|| echo` swallowed both)."""
    module = from_example(FIXTURES / "nix" / "users.nix", extra="")
    text = evaluate(module, tmp_path, "activationScripts")["activationScripts"][snippet]["text"]
    action = "dry-activate" if snippet == "auxSecretsDryActivate" else "switch"
    code, out = _run_snippet(text, snippet, tmp_path, 0, action)
    assert (code, out) == (0, "")
    code, out = _run_snippet(text, snippet, tmp_path, 75, action)
    assert code == 0
    assert "aux-secrets: warning:" in out and "aux-secrets provision --host desk1" in out
    code, out = _run_snippet(text, snippet, tmp_path, 1, action)
    assert code == 1
    assert f"Activation script snippet '{snippet}' failed (1)" in out
    calls = (tmp_path / "calls").read_text().splitlines()
    assert len(calls) == 3
    if snippet == "auxSecretsDryActivate":
        assert all(c.endswith("--dry-run") for c in calls)
        (tmp_path / "calls").unlink()
        assert _run_snippet(text, snippet, tmp_path, 1, "switch") == (0, "")
        assert not (tmp_path / "calls").exists()  # a real switch: nothing to do here


def test_units_say_no_bundle_yet_in_the_switch(tmp_path: Path) -> None:
    """With the units, "no bundle yet" is a success of the unit: the switch prints it."""
    store = tmp_path / "store"
    module = from_example(
        FIXTURES / "nix" / "users.nix",
        f'systemd.sysusers.enable = true; aux.settings.storeDir = "{store}";',
    )
    scripts = evaluate(module, tmp_path, "activationScripts")["activationScripts"]
    assert "auxSecrets" not in scripts and "auxSecretsForUsers" not in scripts
    text = scripts["auxSecretsNotice"]
    code, out = _run_snippet(text, "auxSecretsNotice", tmp_path, 0)
    assert code == 0
    assert "aux-secrets: warning: no bundle has been delivered" in out
    assert "aux-secrets provision --host desk1" in out
    store.mkdir()
    (store / "store.json").write_text("{}")
    assert _run_snippet(text, "auxSecretsNotice", tmp_path, 0) == (0, "")


def test_tpm2_activation_script_leaves_the_boot_to_the_unit(tmp_path: Path) -> None:
    module = from_example(FIXTURES / "nix" / "credentials.nix", extra="")
    text = evaluate(module, tmp_path, "activationScripts")["activationScripts"]["auxSecrets"][
        "text"
    ]
    current = tmp_path / "current-system"
    text = text.replace("/run/current-system", str(current))
    assert _run_snippet(text, "auxSecrets", tmp_path, 0) == (0, "")  # boot: nothing
    assert not (tmp_path / "calls").exists()
    current.mkdir()  # a switch
    assert _run_snippet(text, "auxSecrets", tmp_path, 0) == (0, "")
    assert (tmp_path / "calls").read_text().splitlines() == [
        f"install --manifest {STORE}aux-secrets-manifest.json --activation-lists "
        f"--units-dir {tmp_path}/system/etc/systemd/system"
    ]
