"""The transport model: parsing `[transport]` tables, templates, and the round trip."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from aux_secrets.adapters.hosts import Host, encode_host, parse_host
from aux_secrets.core.transport import (
    CommandTransport,
    CopyPair,
    CopyTransport,
    PublishTransport,
    SshTransport,
    describe,
    expand,
    is_remote,
    parse_transport,
    transport_table,
)
from aux_secrets.errors import InputError, UsageError

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHZqGSiW9EiEyQlm6Gt7Kyf6XPWkm3/K8bZOGPuKnCfC"

GOOD = [
    ({}, SshTransport()),
    ({"kind": "ssh"}, SshTransport()),
    (
        {"kind": "command", "command": ["scp", "{bundle}", "{target}:/in/{host}.age"]},
        CommandTransport(argv=("scp", "{bundle}", "{target}:/in/{host}.age")),
    ),
    (
        {"kind": "command", "script": 'cat > "/drop/$AUX_SECRETS_HOST.age"', "timeout": 5},
        CommandTransport(script='cat > "/drop/$AUX_SECRETS_HOST.age"', timeout=5.0),
    ),
    (
        {
            "kind": "command",
            "command": ["deliver", "{host}"],
            "status": ["ssh", "{target}", "aux-secrets", "status", "--json"],
        },
        CommandTransport(
            argv=("deliver", "{host}"),
            status=("ssh", "{target}", "aux-secrets", "status", "--json"),
        ),
    ),
    (
        {
            "kind": "copy",
            "copy": [
                {"source": "bundle", "destination": "/srv/drop/{host}.age"},
                {"destination": "{target}:/var/lib/aux-secrets/incoming/"},
            ],
            "program": ["scp", "-q"],
        },
        CopyTransport(
            (
                CopyPair("bundle", "/srv/drop/{host}.age"),
                CopyPair("bundle", "{target}:/var/lib/aux-secrets/incoming/"),
            ),
            program=("scp", "-q"),
        ),
    ),
    ({"kind": "publish", "directory": "public"}, PublishTransport("public")),
]


@pytest.mark.parametrize(("table", "model"), GOOD)
def test_good_tables_parse_and_round_trip(table: dict[str, object], model: object) -> None:
    parsed = parse_transport(table, "vault.toml [transport]")
    assert parsed == model
    assert parse_transport(transport_table(parsed), "again") == parsed
    assert describe(parsed)


BAD = [
    ("not a table", "'transport' must be a table"),
    ({"kind": "carrier-pigeon"}, "transport kind 'carrier-pigeon' is not known"),
    ({"kind": "ssh", "command": ["x"]}, "unknown key 'command' in a ssh transport"),
    ({"kind": "command"}, "exactly one of 'command' and 'script'"),
    ({"kind": "command", "command": ["a"], "script": "b"}, "exactly one of"),
    ({"kind": "command", "command": "scp {bundle}"}, "list of strings (argv, no shell)"),
    ({"kind": "command", "command": []}, "non-empty list of strings"),
    ({"kind": "command", "command": ["", "x"]}, "program name is empty"),
    ({"kind": "command", "command": ["cp", 3]}, "list of strings"),
    ({"kind": "command", "command": ["cp", "{password}"]}, "unknown placeholder {password}"),
    ({"kind": "command", "command": ["cp", "{host"]}, "unbalanced"),
    ({"kind": "command", "command": ["cp", "{host!r}"]}, "no format spec"),
    ({"kind": "command", "command": ["cp", "{host:>9}"]}, "no format spec"),
    ({"kind": "command", "command": ["cp", "a\nb"]}, "control character"),
    ({"kind": "command", "script": "  "}, "'script' must be a non-empty string"),
    ({"kind": "command", "script": "x", "timeout": 0}, "'timeout' must be more than 0"),
    ({"kind": "command", "script": "x", "timeout": True}, "number of seconds"),
    ({"kind": "command", "script": "x", "timeout": "5"}, "number of seconds"),
    ({"kind": "copy"}, "needs 'copy', a list of pairs"),
    ({"kind": "copy", "copy": []}, "needs 'copy'"),
    ({"kind": "copy", "copy": ["/x"]}, "copy[0] must be a table"),
    ({"kind": "copy", "copy": [{"destination": "/x", "mode": 1}]}, "copy[0]: unknown key 'mode'"),
    ({"kind": "copy", "copy": [{"source": "seed", "destination": "/x"}]}, "source 'seed'"),
    ({"kind": "copy", "copy": [{"source": "bundle"}]}, "'destination' must be"),
    ({"kind": "copy", "copy": [{"destination": "drop/x.age"}]}, "not an absolute path"),
    ({"kind": "copy", "copy": [{"destination": "-oProxyCommand=x:y"}]}, "must not start"),
    ({"kind": "publish"}, "needs 'directory'"),
    ({"kind": "publish", "directory": "a\tb"}, "control character"),
]


@pytest.mark.parametrize(("table", "message"), BAD)
def test_bad_tables_are_one_clear_error(table: object, message: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_transport(table, "vault.toml [transport]")
    assert message in caught.value.message
    assert caught.value.message.startswith("vault.toml [transport]")


def test_expand_fills_public_values_and_names_a_missing_target() -> None:
    values = {"host": "web1", "target": None, "bundle": "/tmp/x/web1.age"}
    assert expand("{bundle} -> {{{host}}}", values, "t") == "/tmp/x/web1.age -> {web1}"
    with pytest.raises(UsageError, match=r"uses \{target\}, but there is none"):
        expand("{target}:/in/", values, "copy[0] destination")


@pytest.mark.parametrize(
    ("text", "remote"),
    [
        ("root@web1:/in/", True),
        ("web1:/in/x.age", True),
        ("[::1]:/x", True),
        ("/srv/a:b", False),
        ("/srv/x", False),
        (":x", False),
    ],
)
def test_remote_destinations_read_as_scp_reads_them(text: str, remote: bool) -> None:
    assert is_remote(text) is remote


def test_host_file_keeps_its_transport(tmp_path: Path) -> None:
    transport = CommandTransport(argv=("deliver", "{host}", "{bundle}"), timeout=12.5)
    host = Host(name="web1", recipient=HOST_KEY, transport=transport)
    data = encode_host(host)
    assert tomllib.loads(data.decode())["transport"]["command"] == ["deliver", "{host}", "{bundle}"]
    assert parse_host("web1", data, "web1.toml").transport == transport
    assert parse_host("web1", encode_host(Host("web1", HOST_KEY)), "w").transport is None


def test_host_file_with_a_bad_transport_names_the_file() -> None:
    data = f'version = 1\nrecipient = "{HOST_KEY}"\n[transport]\nkind = "fax"\n'.encode()
    with pytest.raises(
        InputError, match=r"host file hosts/web1.toml \[transport\]: transport kind"
    ):
        parse_host("web1", data, "hosts/web1.toml")
    data = f'version = 1\nrecipient = "{HOST_KEY}"\ntransport = "scp"\n'.encode()
    with pytest.raises(InputError, match="field 'transport' has the wrong type"):
        parse_host("web1", data, "hosts/web1.toml")


def test_host_list_shows_and_host_add_replace_keeps_a_transport(tmp_path: Path) -> None:
    import json

    from tests.helpers import cli
    from tests.provision_helpers import make_vault

    vault = make_vault(tmp_path)
    added = cli("host", "add", "web1", "--ssh-host-key", HOST_KEY, "--vault", vault.root)
    assert added.returncode == 0, added.stderr
    path = vault.root / "hosts/web1.toml"
    path.write_text(path.read_text() + '\n[transport]\nkind = "publish"\ndirectory = "pub"\n')
    again = cli(
        "host",
        "add",
        "web1",
        "--ssh-host-key",
        HOST_KEY,
        "--target",
        "root@h",
        "--replace",
        "--vault",
        vault.root,
    )
    assert again.returncode == 0, again.stderr
    listed = json.loads(cli("host", "list", "--json", "--vault", vault.root).stdout)
    assert listed["web1"]["target"] == "root@h"
    assert listed["web1"]["transport"] == {"kind": "publish", "directory": "pub"}
