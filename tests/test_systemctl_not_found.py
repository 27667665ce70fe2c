"""A unit the host lacks is skipped, not a failure: Systemctl against a fake that answers
as systemd 252 does (tests/fake_systemd.py), and the parsing it relies on."""

from __future__ import annotations

from pathlib import Path

import pytest

from aux_secrets.adapters.systemctl import ActivationLists, Systemctl, parse_show
from aux_secrets.errors import ExternalError
from tests.fake_systemd import calls, done, fake_systemctl

SHOW = "[show][--property=Id,LoadState][--]"


def test_every_unit_known_is_one_call_and_nothing_skipped(tmp_path: Path) -> None:
    script = fake_systemctl(tmp_path, known=["a.service", "b.service"])
    skipped = Systemctl([str(script)]).request("try-restart", ["b.service", "a.service"])
    assert skipped == ()
    assert calls(tmp_path) == ["[try-restart][a.service][b.service]"]  # no show


def test_a_missing_unit_is_skipped_and_the_known_one_restarted_once(tmp_path: Path) -> None:
    script = fake_systemctl(tmp_path, known=["web.service"])
    skipped = Systemctl([str(script)]).request("try-restart", ["web.service", "gone.service"])
    assert skipped == ("gone.service",)
    # systemctl already restarted web despite the missing unit: not asked a second time.
    assert calls(tmp_path) == [
        "[try-restart][gone.service][web.service]",
        f"{SHOW}[gone.service][web.service]",
    ]
    assert done(tmp_path) == ["try-restart web.service"]


def test_only_missing_units(tmp_path: Path) -> None:
    script = fake_systemctl(tmp_path, known=[])
    skipped = Systemctl([str(script)]).request("try-reload-or-restart", ["x.service", "y.service"])
    assert skipped == ("x.service", "y.service")
    assert len(calls(tmp_path)) == 2 and done(tmp_path) == []


def test_a_name_without_suffix_is_matched_by_the_id_systemd_gives(tmp_path: Path) -> None:
    script = fake_systemctl(tmp_path, known=["web.service"])
    skipped = Systemctl([str(script)]).request("try-restart", ["typo", "web.service"])
    assert skipped == ("typo",)
    assert len(calls(tmp_path)) == 2  # "Unit typo.service not found." explains the failure


def test_a_failing_known_unit_beside_a_missing_one_is_still_an_error(tmp_path: Path) -> None:
    script = fake_systemctl(tmp_path, known=["bad.service", "web.service"], failing=["bad.service"])
    with pytest.raises(ExternalError, match=r"try-restart bad.service web.service failed \(exit 1"):
        Systemctl([str(script)]).request(
            "try-restart", ["web.service", "bad.service", "gone.service"]
        )
    # The first failure was not only about gone.service: the known units were asked again.
    assert calls(tmp_path)[2] == "[try-restart][bad.service][web.service]"


def test_a_failure_without_a_missing_unit_stays_the_error_it_was(tmp_path: Path) -> None:
    script = fake_systemctl(tmp_path, known=["bad.service"], failing=["bad.service"])
    with pytest.raises(ExternalError, match=r"try-restart bad.service failed \(exit 1\): Job for"):
        Systemctl([str(script)]).request("try-restart", ["bad.service"])
    assert calls(tmp_path) == ["[try-restart][bad.service]", f"{SHOW}[bad.service]"]


def test_a_wrapper_that_cannot_show_keeps_the_original_error(tmp_path: Path) -> None:
    script = fake_systemctl(tmp_path, known=["web.service"], no_show=True)
    with pytest.raises(ExternalError, match=r"failed \(exit 5\): Failed to try-restart gone"):
        Systemctl([str(script)]).request("try-restart", ["gone.service", "web.service"])


def test_other_stderr_means_the_known_units_are_asked_again(tmp_path: Path) -> None:
    # A wrapper's own line: the known units' outcome is unknown, so they are asked again
    # (a second restart rather than a missed or unreported one).
    script = fake_systemctl(tmp_path, known=["web.service"], noise="wrapper: remote said 5")
    skipped = Systemctl([str(script), "--no-ask-password"]).request(
        "try-restart", ["gone.service", "web.service"]
    )
    assert skipped == ("gone.service",)
    assert calls(tmp_path) == [
        "[--no-ask-password][try-restart][gone.service][web.service]",
        f"[--no-ask-password]{SHOW}[gone.service][web.service]",
        "[--no-ask-password][try-restart][web.service]",
    ]
    assert done(tmp_path) == ["try-restart web.service"] * 2


def test_a_missing_systemctl_is_still_an_error(tmp_path: Path) -> None:
    with pytest.raises(ExternalError, match=r"not found \(settings.systemctl"):
        Systemctl([str(tmp_path / "nope")]).request("try-restart", ["gone.service"])


def test_activation_lists_skip_nothing(tmp_path: Path) -> None:
    assert ActivationLists(tmp_path).request("try-restart", ["gone.service"]) == ()
    assert (tmp_path / "run/nixos/activation-restart-list").read_text() == "gone.service\n"


def test_parse_show_blocks() -> None:
    text = "Id=a.service\nLoadState=loaded\n\nId=b.service\nLoadState=not-found\n"
    assert parse_show(text) == [
        {"Id": "a.service", "LoadState": "loaded"},
        {"Id": "b.service", "LoadState": "not-found"},
    ]
    assert parse_show("LoadState=masked\nId=c.service") == [
        {"Id": "c.service", "LoadState": "masked"}
    ]
    assert parse_show("\n\n") == []
    assert parse_show("Id=x=y\n\n\nLoadState=loaded\n") == [{"Id": "x=y"}, {"LoadState": "loaded"}]


def test_show_answering_for_fewer_units_is_no_answer(tmp_path: Path) -> None:
    script = tmp_path / "systemctl"
    script.write_text(
        '#!/bin/sh\nif [ "$1" = show ]; then echo Id=a.service; echo LoadState=not-found; '
        "exit 0; fi\necho 'Unit a.service not found.' >&2\nexit 5\n"
    )
    script.chmod(0o755)
    with pytest.raises(ExternalError, match="exit 5"):
        Systemctl([str(script)]).request("try-restart", ["a.service", "b.service"])
