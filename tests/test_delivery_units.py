"""The pull timer and the incoming path unit: rendering, `units install`, the real
`systemd-analyze verify`, and the incoming service's own command taking in a dropped bundle."""

from __future__ import annotations

import base64
import json
import shlex
import shutil
import stat
from pathlib import Path

import pytest

from aux_secrets.core.bundle_sign import parse_signer
from tests.helpers import assert_one_line_error, cli
from tests.provision_helpers import make_host_root, make_vault
from tests.sshd import _keygen
from tests.test_units import PROGRAM, UNIT_DIR, install, installed_units, verify

URL = "https://reader:pw@secrets.example.org/fleet/"


def test_pull_and_incoming_units_install_and_verify_clean(tmp_path: Path) -> None:
    result = install(tmp_path, "--pull-source", URL, "--incoming")
    assert result.returncode == 0, result.stderr
    units = installed_units(tmp_path)
    for name in (
        "aux-secrets-pull.service",
        "aux-secrets-pull.timer",
        "aux-secrets-incoming.path",
        "aux-secrets-incoming.service",
    ):
        assert name in units
    checked = verify(tmp_path, *units)
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.strip() == "" and checked.stdout.strip() == ""
    env = tmp_path / "etc/aux-secrets/pull.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert env.read_text().splitlines()[-1] == f"AUX_SECRETS_PULL_SOURCE={URL}"
    wants = tmp_path / "etc/systemd/system"
    assert (wants / "timers.target.wants/aux-secrets-pull.timer").is_symlink()
    assert (wants / "paths.target.wants/aux-secrets-incoming.path").is_symlink()
    # Nothing at boot waits for the network: the pull service is only the timer's.
    service = (wants / "aux-secrets-pull.service").read_text()
    assert "[Install]" not in service and "Before=" not in service
    assert "EnvironmentFile=/etc/aux-secrets/pull.env" in service
    assert URL not in service
    assert not (wants / "sysinit.target.wants/aux-secrets-pull.service").exists()


def test_without_the_options_nothing_extra_is_written(tmp_path: Path) -> None:
    assert install(tmp_path).returncode == 0
    assert not any("pull" in u or "incoming" in u for u in installed_units(tmp_path))
    assert not (tmp_path / "etc/aux-secrets/pull.env").exists()


def test_a_pull_source_that_cannot_go_into_pull_env(tmp_path: Path) -> None:
    result = install(tmp_path, "--pull-source", "https://x/a b")
    assert_one_line_error(result, "cannot be written into pull.env")
    assert not (tmp_path / "etc/aux-secrets/pull.env").exists()


def test_the_units_run_on_a_host_without_a_manifest(tmp_path: Path) -> None:
    """A host whose manifest comes with its first bundle: nothing in the units waits for one;
    its name and signer are in delivery.env, which both services read."""
    vault = make_vault(tmp_path)
    line = cli("signer", "--ssh", *vault.args()).stdout.decode().strip()
    root = tmp_path / "root"
    root.mkdir()
    result = install(
        root, "--pull-source", "/srv/pub", "--incoming", "--host", "web1", "--signer", line
    )
    assert result.returncode == 0, result.stderr
    checked = verify(root, *installed_units(root))
    assert checked.returncode == 0, checked.stderr
    assert checked.stderr.strip() == "" and checked.stdout.strip() == ""
    env = root / "etc/aux-secrets/delivery.env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    key = base64.b64encode(parse_signer(line)).decode()
    assert env.read_text().splitlines()[1:] == [
        "AUX_SECRETS_PULL_HOST=web1",
        f"AUX_SECRETS_PULL_SIGNER={key}",
    ]
    for name in ("aux-secrets-pull.service", "aux-secrets-incoming.service"):
        text = (root / UNIT_DIR / name).read_text()
        assert "manifest.json" not in text
        assert "EnvironmentFile=-/etc/aux-secrets/delivery.env" in text
    pull = (root / UNIT_DIR / "aux-secrets-pull.service").read_text()
    assert "ConditionPathExists=/etc/aux-secrets/pull.env" in pull
    incoming = (root / UNIT_DIR / "aux-secrets-incoming.service").read_text()
    assert "ConditionDirectoryNotEmpty=/var/lib/aux-secrets/incoming" in incoming


def test_install_reports_the_env_files_it_wrote(tmp_path: Path) -> None:
    vault = make_vault(tmp_path)
    line = cli("signer", "--ssh", *vault.args()).stdout.decode().strip()
    root = tmp_path / "root"
    root.mkdir()
    options = ("--incoming", "--host", "web1", "--signer", line, "--json")
    env_dir = root / "etc/aux-secrets"
    pull_env, delivery_env = str(env_dir / "pull.env"), str(env_dir / "delivery.env")

    def run(source: str) -> dict[str, list[str]]:
        done = install(root, "--pull-source", source, *options)
        assert done.returncode == 0, done.stderr
        assert b"pw@" not in done.stdout + done.stderr  # the source's password
        doc: dict[str, list[str]] = json.loads(done.stdout)
        return doc

    first = run(URL)
    assert {pull_env, delivery_env} <= set(first["written"])
    again = run(URL)
    assert again["written"] == [] and {pull_env, delivery_env} <= set(again["unchanged"])
    moved = run("/srv/pub")
    assert moved["written"] == [pull_env] and delivery_env in moved["unchanged"]
    (env_dir / "delivery.env").chmod(0o644)  # as wanted again, mode included
    assert run("/srv/pub")["written"] == [delivery_env]
    text = install(root, "--pull-source", "/srv/pub", *options[:-1])
    assert f"unchanged {pull_env}" in text.stderr.decode() + text.stdout.decode()


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        (["--host", "web1"], "--host and --signer are for the pull and incoming units"),
        (["--incoming", "--host", "web 1"], "'web 1' is not a valid host name"),
        (["--pull-source", "/srv/pub", "--signer", "ssh-rsa AAAA"], "--signer"),
    ],
)
def test_a_host_or_signer_that_cannot_be_used(
    tmp_path: Path, options: list[str], needle: str
) -> None:
    result = install(tmp_path, *options)
    assert_one_line_error(result, needle)
    assert b"aux-secrets: hint: " in result.stderr
    assert not (tmp_path / "etc").exists()  # nothing written, not even pull.env


def test_units_show_lists_them() -> None:
    shown = cli("units", "show", "--pull", "--incoming", "--program", PROGRAM, "--json")
    assert shown.returncode == 0, shown.stderr
    paths = [u["path"] for u in json.loads(shown.stdout)]
    assert f"/{UNIT_DIR}/aux-secrets-incoming.path" in paths
    assert f"/{UNIT_DIR}/aux-secrets-pull.timer" in paths


def test_the_incoming_service_command_takes_in_a_dropped_bundle(tmp_path: Path) -> None:
    """What aux-secrets-incoming.service runs when the path unit fires, run as written."""
    vault = make_vault(tmp_path)
    key = tmp_path / "web1_host_key"
    added = cli("host", "add", "web1", "--ssh-host-key", _keygen(key), "--vault", vault.root)
    assert added.returncode == 0, added.stderr
    host = make_host_root(tmp_path, "web1", key)
    # Absolute settings under the test root, so the unit's own paths are usable here.
    doc = json.loads(host.manifest.read_text())
    store = host.root / "var/lib/aux-secrets"
    doc["settings"].update(
        storeDir=str(store),
        runtimeDir=str(host.root / "run/aux-secrets"),
        generationsDir=str(host.root / "run/aux-secrets.d"),
        hostKeys=[str(host.root / "etc/ssh/ssh_host_ed25519_key")],
    )
    host.manifest.write_text(json.dumps(doc))
    shown = cli("units", "show", "--incoming", "--program", PROGRAM, "-m", host.manifest, "--json")
    assert shown.returncode == 0, shown.stderr
    texts = {Path(u["path"]).name: u["text"] for u in json.loads(shown.stdout)}
    exec_line = next(
        x for x in texts["aux-secrets-incoming.service"].splitlines() if x.startswith("ExecStart=")
    )
    argv = shlex.split(exec_line.removeprefix("ExecStart="))
    watched = next(
        x for x in texts["aux-secrets-incoming.path"].splitlines() if x.startswith("PathChanged=")
    )
    incoming = Path(watched.removeprefix("PathChanged="))
    assert incoming == store / "incoming"
    incoming.mkdir(parents=True, mode=0o700)
    out = incoming / "web1.age"
    bundle = cli("bundle", "--host", "web1", "-m", host.manifest, "-o", out, *vault.args())
    assert bundle.returncode == 0, bundle.stderr

    first = cli(*argv[1:])  # argv[0] is the program: this checkout's aux-secrets
    assert first.returncode == 0, first.stderr
    assert (host.root / "run/aux-secrets/db/password").read_bytes()
    # The path unit fires again on any change: the same bundle is "nothing newer", exit 0.
    again = cli(*argv[1:])
    assert again.returncode == 0, again.stderr
    assert b"nothing newer" in again.stderr
    shutil.rmtree(incoming)
