"""What a message prints is never the attacker's text: escapes, newlines and bidi
characters from any input come out escaped, on one line; store names cannot look alike.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from aux_secrets.adapters.bundle_age import seal_bundle
from aux_secrets.cli import output
from aux_secrets.core.escape import printable
from tests.helpers import assert_one_line_error
from tests.test_activate import activate
from tests.test_localstore_support import Host
from tests.test_store_cli import make_vault

NASTY = "x\x1b]0;owned\x07\n\raux-secrets: error: forged\u202etxt.exe\u200b\x85"


def clean(stream: bytes) -> None:
    text = stream.decode()
    for ch in ("\x1b", "\x07", "\r", "\u202e", "\u200b", "\x85"):
        assert ch not in text, repr(text)


def test_printable_escapes_only_what_acts_or_misleads() -> None:
    shown = printable(NASTY)
    assert shown.isprintable()
    assert shown == (
        "x\\x1b]0;owned\\x07\\n\\raux-secrets: error: forged\\u202etxt.exe\\u200b\\x85"
    )
    for text in ("plain", "caf\u00e9 \u65e5\u672c", "a\u3000b"):
        assert printable(text) == text


def test_every_message_kind_is_one_escaped_line(capsys: pytest.CaptureFixture[str]) -> None:
    output.error(NASTY, hint=NASTY)
    output.warning(NASTY)
    output.info(NASTY)
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 4
    clean(err.encode())


def test_unauthenticated_envelope_field_names_are_escaped(tmp_path: Path) -> None:
    """Anyone with the host's public key can make such a bundle: refused, and the
    field name it carries does not reach the log or the terminal as it is."""
    host = Host(tmp_path)
    forged = json.dumps({"version": 2, NASTY: 1}).encode()
    result = activate(host, seal_bundle(forged, [host.recipient]))
    line = assert_one_line_error(result, "unknown field")
    assert "\\x1b]0;owned" in line and "\\u202e" in line
    clean(result.stderr)


def test_provision_relays_a_hosts_output_escaped(tmp_path: Path) -> None:
    # The host's stderr reaches the operator's terminal line by line through output.info.
    script = (
        "from aux_secrets.cli import output\n"
        f"for line in {NASTY!r}.splitlines():\n"
        "    output.info('web1: ' + line)\n"
    )
    import sys

    done = subprocess.run([sys.executable, "-c", script], capture_output=True, check=True)
    clean(done.stderr)
    assert all(line.startswith("web1: ") for line in done.stderr.decode().splitlines())


@pytest.mark.parametrize(
    "name",
    [
        "github/to\u202eken",  # right-to-left override
        "github/to\u200bken",  # zero-width space
        "github/to\u2066ken",  # isolate
        "github/deploy\u2013token",  # en dash
        "github/deploy\u2212token",  # minus sign
        "github/deploy\u00a0token",  # no-break space
        "github/\uff54oken",  # fullwidth t
        "github/e\u0301",  # decomposed accent
    ],
)
def test_store_names_that_look_like_others_are_refused(tmp_path: Path, name: str) -> None:
    vault = make_vault(tmp_path, "vault", "correct horse")
    result = vault.real("add", name, input=b"value\n")
    line = assert_one_line_error(result, "store name")
    assert line.isprintable()
    clean(result.stderr)
    listed = vault.real("list")
    assert listed.returncode == 0 and name.encode() not in listed.stdout


def test_plain_unicode_store_names_still_work(tmp_path: Path) -> None:
    vault = make_vault(tmp_path, "vault", "correct horse")
    added = vault.real("add", "caf\u00e9/token", input=b"value\n")
    assert added.returncode == 0, added.stderr


def test_a_hosts_report_reaches_the_operator_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    """provision prints what the host's activate/install --json said: the host's text."""
    from aux_secrets.cli.provision import _print_report, _relay_host_output
    from aux_secrets.workflows.host_report import HostReport

    report = HostReport(
        host="web1", where="root@web1", output=NASTY, delivered=False, serial=3, secrets=1,
        bundle_id="ab", generation=2, changed=(NASTY,), restarted=(NASTY,), reloaded=(),
        not_found=(NASTY,), no_change=False,
    )  # fmt: skip
    _relay_host_output(report)
    _print_report(report)
    captured = capsys.readouterr()
    clean((captured.out + captured.err).encode())
    assert len(captured.out.splitlines()) == 4
    assert captured.err
