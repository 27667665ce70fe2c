"""install() with an in-memory store: host checks, instants, audit entries, golden manifests."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from aux_secrets.adapters.installer import (
    install,
    layout,
    report_json,
    report_lines,
    report_warnings,
    trees,
)
from aux_secrets.core.audit import AuditEvent
from aux_secrets.core.bundle import (
    OPEN_NOT_AFTER,
    OPEN_NOT_BEFORE,
    BundlePayload,
    BundleSecret,
    BundleSlot,
)
from aux_secrets.core.fingerprint import fingerprint
from aux_secrets.core.manifest import DeriveSource, Manifest, parse_manifest
from aux_secrets.core.plan import desired_files
from aux_secrets.core.template import render_template
from aux_secrets.errors import ConflictError

FIXTURES = Path(__file__).parent / "fixtures" / "manifests"
NOV = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
KEY = b"f" * 32


def month(y: int, m: int) -> datetime:
    return datetime(y, m, 1, tzinfo=UTC)


def manifest(secrets: dict[str, object], templates: dict[str, object] | None = None) -> Manifest:
    doc = {
        "version": 1,
        "host": "h1",
        "settings": {"group": "root", "keepGenerations": 1},
        "secrets": secrets,
        "templates": templates or {},
    }
    return parse_manifest(json.dumps(doc).encode(), filename="m.json")


class Store:
    def __init__(self, secrets: dict[str, BundleSecret], host: str = "h1") -> None:
        self.payload = BundlePayload(
            host=host,
            serial=7,
            created=NOV,
            bundle_id="ab" * 16,
            fingerprint_key=KEY,
            secrets=secrets,
        )

    def load(self) -> BundlePayload:
        return self.payload


class Audit:
    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def append_or_warn(self, event: AuditEvent, *, done: str) -> tuple[str, ...]:
        self.events.append(event)
        return ()


class Units:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def request(self, verb: str, units: object) -> tuple[str, ...]:
        self.calls.append((verb, tuple(units)))  # type: ignore[arg-type]
        return ()


def fixed(value: bytes) -> BundleSecret:
    return BundleSecret((BundleSlot("current", "x", OPEN_NOT_BEFORE, OPEN_NOT_AFTER, value),))


ROTATING = BundleSecret(
    (
        BundleSlot("current", "2026-11", month(2026, 11), month(2026, 12), b"nov"),
        BundleSlot("ahead", "2026-12", month(2026, 12), month(2027, 1), b"dec"),
    )
)
ROT_SPEC = {
    "source": {"derive": {"realm": "r/{period}", "rotation": {"period": "monthly", "ahead": 1}}},
    "restartUnits": ["r.service"],
}


def test_bundle_for_another_host_refused(tmp_path: Path) -> None:
    m = manifest({"a": {"source": {"store": "a"}}})
    with pytest.raises(ConflictError, match="'other'"):
        install(m, Store({"a": fixed(b"1")}, host="other"), root=tmp_path, at=NOV, requester=None)
    assert list(tmp_path.iterdir()) == []


def test_clock_beyond_delivered_slots_keeps_the_last_value_stale(tmp_path: Path) -> None:
    """The host was not provisioned in time: the last value stays installed, marked stale."""
    m = manifest({"r": ROT_SPEC, "a": {"source": {"store": "a"}}})
    store = Store({"r": ROTATING, "a": fixed(b"1")})
    first = install(m, store, root=tmp_path, at=month(2026, 12), requester=None)
    assert (tmp_path / "run/aux-secrets/r").read_bytes() == b"dec"
    assert [n for n, _ in first.running_out] == []  # a month left: not yet
    soon = install(m, store, root=tmp_path, at=datetime(2026, 12, 28, tzinfo=UTC), requester=None)
    assert soon.running_out == (("r", month(2027, 1)),)
    units = Units()
    report = install(m, store, root=tmp_path, at=month(2027, 2), requester=units)
    assert report.missing == ()
    assert (tmp_path / "run/aux-secrets/r").read_bytes() == b"dec"  # never taken away
    assert (tmp_path / "run/aux-secrets/a").read_bytes() == b"1"
    assert report.result.plan.removed == () and units.calls == []
    assert [(v.name, v.label, v.outside, v.until) for v in report.stale] == [
        ("r", "2026-12", "after", month(2027, 1))
    ]
    assert report_json(report)["stale"] == [
        {
            "name": "r",
            "label": "2026-12",
            "reason": "values-ran-out",
            "valuesEnd": "2027-01-01T00:00:00Z",
        }
    ]
    assert report.next_rotation is None
    lines = report_warnings(report, month(2027, 2))
    assert len(lines) == 1
    assert "ran out at 2027-01-01T00:00:00Z" in lines[0] and "STALE" in lines[0]
    assert "aux-secrets provision --host h1" in lines[0]


def test_a_clock_before_the_bundle_is_named_and_the_bundles_values_served(
    tmp_path: Path,
) -> None:
    m = manifest({"r": ROT_SPEC})
    report = install(
        m,
        Store({"r": ROTATING}),
        root=tmp_path,
        at=datetime(1970, 1, 1, tzinfo=UTC),
        requester=None,
    )
    assert (tmp_path / "run/aux-secrets/r").read_bytes() == b"nov"  # live at NOV
    assert report.stale == ()
    assert report.clock_behind == NOV
    assert report.next_rotation == month(2026, 12)  # from the bundle's time, not 1970
    lines = report_warnings(report, datetime(1970, 1, 1, tzinfo=UTC))
    assert "the clock is wrong" in lines[0] and "2026-11-22T12:00:00Z" in lines[0]
    assert report_json(report)["clockBehind"] == {"bundleCreated": "2026-11-22T12:00:00Z"}


def test_audit_entry_and_unit_calls(tmp_path: Path) -> None:
    m = manifest(
        {"r": ROT_SPEC, "a": {"source": {"store": "a"}, "reloadUnits": ["a.service"]}},
        {"t": {"content": "{{aux:r}}", "restartUnits": ["t.service"]}},
    )
    store, audit, units = Store({"r": ROTATING, "a": fixed(b"1")}), Audit(), Units()
    install(m, store, root=tmp_path, at=NOV, requester=units, audit=audit)
    assert units.calls == [
        ("try-restart", ("r.service", "t.service")),
        ("try-reload-or-restart", ("a.service",)),
    ]
    report = install(m, store, root=tmp_path, at=month(2026, 12), requester=units, audit=audit)
    assert units.calls[2:] == [("try-restart", ("r.service", "t.service"))]
    first, second = audit.events
    assert first.event == "install" and first.generation == 1 and first.serial == 7
    assert first.changed == ("a", "r")
    assert second.changed == ("r",)  # templates are not secrets; their units are listed
    assert second.fingerprints == {"r": fingerprint(KEY, "r", b"dec")}
    assert second.restart_units == ("r.service", "t.service")
    assert report.next_rotation == month(2027, 1)
    assert report_lines(report)[-1] == "next rotation: 2027-01-01T00:00:00Z"
    assert report.result.pruned == ()  # keepGenerations 1: the live one and one older
    third = install(m, store, root=tmp_path, at=month(2026, 12), requester=units, audit=audit)
    # Nothing changed: generation 2 stays live (nothing to prune), nothing is asked for,
    # and the audit log records the run.
    assert third.result.kept and third.result.generation == 2 and third.result.pruned == ()
    assert units.calls[3:] == []
    assert audit.events[2].generation == 2 and audit.events[2].changed == ()
    assert audit.events[2].restart_units == () and audit.events[2].reload_units == ()


def test_dry_run_asks_nothing_and_audits_nothing(tmp_path: Path) -> None:
    m = manifest({"a": {"source": {"store": "a"}, "restartUnits": ["a.service"]}})
    audit, units = Audit(), Units()
    report = install(
        m,
        Store({"a": fixed(b"1")}),
        root=tmp_path,
        at=NOV,
        requester=units,
        audit=audit,
        dry_run=True,
    )
    assert report.result.plan.try_restart == ("a.service",)
    assert audit.events == [] and units.calls == [] and list(tmp_path.iterdir()) == []
    assert report_lines(report)[0].startswith("dry run: generation 1 would be")


def test_no_rotation_means_next_rotation_none(tmp_path: Path) -> None:
    m = manifest({"a": {"source": {"store": "a"}}})
    report = install(m, Store({"a": fixed(b"1")}), root=tmp_path, at=NOV, requester=None)
    assert report.next_rotation is None
    assert report_lines(report)[-1] == "next rotation: none"
    assert report_json(report)["nextRotation"] is None


def test_for_users_paths_outside_users_dir_become_links(tmp_path: Path) -> None:
    m = manifest(
        {
            "pw": {"source": {"store": "pw"}, "neededForUsers": True, "path": "/etc/pw-hash"},
            "a": {"source": {"store": "a"}},
        }
    )
    store = Store({"pw": fixed(b"$6$x"), "a": fixed(b"1")})
    report = install(m, store, root=tmp_path, at=NOV, requester=None, for_users=True)
    assert report.tree.link_dir == "/run/aux-secrets-for-users"
    assert (tmp_path / "etc/pw-hash").read_bytes() == b"$6$x"
    assert not (tmp_path / "run/aux-secrets").exists()


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_golden_manifests_render_and_place(name: str) -> None:
    """Every golden manifest shared with the Nix tests renders and maps to generation paths."""
    m = parse_manifest((FIXTURES / name).read_bytes(), filename=name)
    secrets = {}
    for sname, spec in m.secrets.items():
        public = b"ssh-ed25519 AAAA" if isinstance(spec.source, DeriveSource) else None
        secrets[sname] = replace(fixed(f"value-of-{sname}".encode()), public=public)
    for for_users in (False, True):
        desired = desired_files(
            m, secrets, NOV, for_users=for_users, render_template=render_template
        )
        assert desired.missing == ()
        tree = trees(m.settings)[1 if for_users else 0]
        locations = set()
        for f in desired.files:
            layout.check_path(tree, f.key, f.path)
            locations.add(layout.location_of(tree, f.key, f.path)[0])
        assert len(locations) == len(desired.files)
