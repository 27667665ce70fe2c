"""How ``provision --dry-run`` shows what would change (nothing is delivered)."""

from __future__ import annotations

import json
from typing import Any

import typer

from aux_secrets.cli import fleet, output
from aux_secrets.core.escape import printable


def run_doc(run: Any) -> dict[str, object]:
    return {
        "host": run.host,
        "where": run.where,
        "secrets": run.total,
        "noChange": run.no_change,
        "changes": [
            {"secret": c.secret, "action": c.action, "verdict": c.verdict, "detail": c.detail}
            for c in run.changes
        ],
        "templates": list(run.templates),
        "restart": list(run.restart),
        "reload": list(run.reload),
    }


def print_run(run: Any) -> None:
    print(f"{run.host} ({printable(run.where)}): {run.summary()}; nothing delivered")
    for c in run.changes:
        detail = f"  ({printable(c.detail)})" if c.detail else ""
        print(f"  {c.action:<10} {printable(c.secret)}{detail}")
    for name in run.templates:
        print(f"  {'render':<10} {printable(name)}")
    for unit in run.restart:
        print(f"  {'restart':<10} {printable(unit)}")
    for unit in run.reload:
        print(f"  {'reload':<10} {printable(unit)}")


def report(outcomes: list[Any], *, all_hosts: bool, as_json: bool) -> None:
    """Print the dry runs; exit 1 if a host could not be asked."""
    failed = [o for o in outcomes if o.value is None]
    if not all_hosts and failed:
        output.error(failed[0].error or "dry run failed", failed[0].hint)
        raise typer.Exit(1)
    if as_json:
        doc = {
            o.host: run_doc(o.value) if o.value is not None else {"error": o.error}
            for o in outcomes
        }
        print(json.dumps(doc if all_hosts else doc[outcomes[0].host], indent=2, sort_keys=True))
    elif not all_hosts:
        print_run(outcomes[0].value)
    else:
        rows = []
        for o in outcomes:
            if o.value is None:
                rows.append((o.host, "FAILED", o.error or ""))
                continue
            run = o.value
            changes = ", ".join(f"{c.action} {c.secret}" for c in run.changes)
            units = ", ".join(
                [*(f"restart {u}" for u in run.restart), *(f"reload {u}" for u in run.reload)]
            )
            detail = "; ".join(x for x in (changes, units) if x) or run.summary()
            rows.append((o.host, "no change" if run.no_change else "would change", detail))
        fleet.print_table("dry run: nothing delivered", rows)
    if failed:
        output.error(f"{len(failed)} of {len(outcomes)} hosts could not be asked")
        raise typer.Exit(1)
