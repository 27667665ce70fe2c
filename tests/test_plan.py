from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aux_secrets.core.plan import InstalledItem, make_plan


def item(
    key: str,
    content: bytes,
    restart: tuple[str, ...] = (),
    reload: tuple[str, ...] = (),
    location: str | None = None,
) -> InstalledItem:
    return InstalledItem(key, location or key.split(":", 1)[1], content, restart, reload)


def prev(*items: InstalledItem) -> dict[str, tuple[str, bytes]]:
    return {i.key: (i.location, i.content) for i in items}


def test_first_install_asks_for_every_unit_sorted() -> None:
    new = [
        item("secret:b", b"1", restart=("z.service", "a.service")),
        item("secret:a", b"2", reload=("nginx.service",)),
    ]
    plan = make_plan({}, new)
    assert plan.appeared == ("secret:a", "secret:b")
    assert plan.changed == () and plan.removed == ()
    assert plan.try_restart == ("a.service", "z.service")
    assert plan.try_reload == ("nginx.service",)


def test_no_change_asks_for_nothing() -> None:
    new = [item("secret:a", b"x", restart=("a.service",)), item("template:t", b"y", ("b",))]
    plan = make_plan(prev(*new), new)
    assert plan.is_noop
    assert plan.try_restart == () and plan.try_reload == ()
    assert plan.unchanged == ("secret:a", "template:t")


def test_only_changed_items_units() -> None:
    old = [
        item("secret:a", b"old", restart=("a.service",)),
        item("secret:b", b"same", restart=("b.service",), reload=("r.service",)),
    ]
    new = [
        item("secret:a", b"new", restart=("a.service",)),
        item("secret:b", b"same", restart=("b.service",), reload=("r.service",)),
        item("secret:c", b"fresh", reload=("c.service",)),
    ]
    plan = make_plan(prev(*old), new)
    assert plan.changed == ("secret:a",)
    assert plan.appeared == ("secret:c",)
    assert plan.try_restart == ("a.service",)
    assert plan.try_reload == ("c.service",)
    assert plan.reasons == {"a.service": ("secret:a",), "c.service": ("secret:c",)}


def test_removed_item_asks_for_nothing() -> None:
    old = [item("secret:gone", b"v", restart=("g.service",)), item("secret:a", b"x")]
    plan = make_plan(prev(*old), [item("secret:a", b"x")])
    assert plan.removed == ("secret:gone",)
    assert plan.try_restart == ()
    assert not plan.is_noop


def test_moved_file_counts_as_changed() -> None:
    old = item("secret:a", b"x", restart=("a.service",), location="a")
    new = item("secret:a", b"x", restart=("a.service",), location="elsewhere/a")
    assert make_plan(prev(old), [new]).try_restart == ("a.service",)


def test_restart_wins_over_reload_for_same_unit() -> None:
    new = [item("secret:a", b"1", restart=("u",)), item("secret:b", b"2", reload=("u", "v"))]
    plan = make_plan({}, new)
    assert plan.try_restart == ("u",)
    assert plan.try_reload == ("v",)
    assert plan.reasons["u"] == ("secret:a", "secret:b")


def test_single_byte_difference_detected() -> None:
    old = item("secret:a", b"a" * 100 + b"\n", restart=("u",))
    new = item("secret:a", b"a" * 100, restart=("u",))
    assert make_plan(prev(old), [new]).changed == ("secret:a",)


def test_duplicate_key_refused() -> None:
    with pytest.raises(ValueError):
        make_plan({}, [item("secret:a", b"1"), item("secret:a", b"2")])


contents = st.dictionaries(
    st.sampled_from([f"secret:s{i}" for i in range(8)]), st.binary(max_size=4), max_size=8
)


@given(contents, contents)
def test_units_only_for_touched(old: dict[str, bytes], new: dict[str, bytes]) -> None:
    items = [item(k, v, restart=(f"{k[7:]}.service",)) for k, v in sorted(new.items())]
    plan = make_plan({k: (k[7:], v) for k, v in old.items()}, items)
    touched = {k for k, v in new.items() if old.get(k) != v}
    assert set(plan.touched) == touched
    assert set(plan.try_restart) == {f"{k[7:]}.service" for k in touched}
    assert list(plan.try_restart) == sorted(plan.try_restart)
    assert set(plan.removed) == set(old) - set(new)


def test_pending_units_join_the_plan() -> None:
    from aux_secrets.core.plan import with_pending

    plan = make_plan({}, [item("secret:a", b"1", restart=("a",), reload=("r",))])
    merged = with_pending(plan, ["p"], ["a", "q"])
    assert merged.try_restart == ("a", "p")
    assert merged.try_reload == ("q", "r")  # "a" is restarted, so not reloaded as well
    assert merged.reasons["p"] == ("pending",) and merged.reasons["a"] == ("secret:a",)
    noop = make_plan(prev(item("secret:a", b"1")), [item("secret:a", b"1")])
    assert with_pending(noop, [], []).try_restart == ()
    assert with_pending(noop, ["x"], []).try_restart == ("x",)
