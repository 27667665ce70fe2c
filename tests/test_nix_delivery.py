"""aux.delivery (nix/module/delivery.nix) evaluated with a real nixpkgs lib: the pull timer,
the incoming path unit, and the assertions. Skips without AUX_SECRETS_NIXPKGS_LIB."""

# ruff: noqa: E501  (Nix snippets read best one per line)

from __future__ import annotations

from pathlib import Path

from tests.helpers import FIXTURES
from tests.test_nix_module import STORE, evaluate, from_example

EXAMPLE = FIXTURES / "nix" / "web-db.nix"
SIGNER = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4 aux-secrets-signer"
PULL = f"{STORE}aux-secrets/bin/aux-secrets pull --manifest {STORE}aux-secrets-manifest.json"


def host(extra: str) -> str:
    return from_example(EXAMPLE, extra)


def test_pull_timer_from_a_source(tmp_path: Path) -> None:
    r = evaluate(
        host(
            f'aux.settings.bundleSigners = [ "{SIGNER}" ]; aux.delivery.pull = {{ enable = true; source = "https://s.example/fleet/"; interval = "1h"; }};'
        ),
        tmp_path,
        "services",
        "timers",
        "failedAssertions",
    )
    assert r["failedAssertions"] == []
    service = r["services"]["aux-secrets-pull"]
    assert service["serviceConfig"]["ExecStart"] == PULL
    assert service["environment"] == {"AUX_SECRETS_PULL_SOURCE": "https://s.example/fleet/"}
    assert "wantedBy" not in service or service["wantedBy"] == []  # only the timer starts it
    timer = r["timers"]["aux-secrets-pull"]["timerConfig"]
    assert (timer["OnBootSec"], timer["OnUnitActiveSec"]) == ("5min", "1h")
    assert r["timers"]["aux-secrets-pull"]["wantedBy"] == ["timers.target"]


def test_pull_with_an_environment_file_and_the_assertions(tmp_path: Path) -> None:
    r = evaluate(
        host(
            'aux.delivery.pull = { enable = true; environmentFile = "/etc/aux-secrets/pull.env"; trustFirstSigner = true; };'
        ),
        tmp_path,
        "services",
        "failedAssertions",
    )
    assert r["failedAssertions"] == []
    config = r["services"]["aux-secrets-pull"]["serviceConfig"]
    assert config["EnvironmentFile"] == "/etc/aux-secrets/pull.env"
    assert config["ExecStart"] == PULL + " --trust-first-signer"
    bad = evaluate(
        host(
            'aux.delivery.pull = { enable = true; source = "/srv/pub"; environmentFile = "/x"; };'
        ),
        tmp_path,
        "failedAssertions",
    )
    assert bad["failedAssertions"] == [
        "aux.delivery.pull: set exactly one of source and environmentFile",
        "aux.delivery.pull: pin aux.settings.bundleSigners (the output of `aux-secrets signer`), or set trustFirstSigner",
    ]


def test_incoming_path_unit(tmp_path: Path) -> None:
    r = evaluate(host("aux.delivery.incoming.enable = true;"), tmp_path, "services", "paths")
    path = r["paths"]["aux-secrets-incoming"]
    assert path["pathConfig"]["PathChanged"] == "/var/lib/aux-secrets/incoming"
    assert path["wantedBy"] == ["paths.target"]
    service = r["services"]["aux-secrets-incoming"]
    assert service["serviceConfig"]["ExecStart"] == (
        f"{STORE}aux-secrets/bin/aux-secrets pull --trust-first-signer --manifest "
        f"{STORE}aux-secrets-manifest.json /var/lib/aux-secrets/incoming"
    )
    assert service["unitConfig"]["ConditionDirectoryNotEmpty"] == "/var/lib/aux-secrets/incoming"


def test_off_by_default(tmp_path: Path) -> None:
    r = evaluate(host(""), tmp_path, "services", "timers", "paths")
    assert "aux-secrets-pull" not in r["services"] and r["paths"] == {}
    assert "aux-secrets-pull" not in r["timers"]
