"""``orderbridge alerts`` and ``orderbridge health``: what is wrong, and where it was sent."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from orderbridge.cli.common import JsonOpt, console, print_json, run
from orderbridge.cli.fixes import as_json as fix_json
from orderbridge.cli.fixes import command
from orderbridge.cli.render import cells, line, plain
from orderbridge.fixes import Fix


def alerts(
    open_only: Annotated[bool, typer.Option("--open", help="Only causes that are still open")] = False,
    send: Annotated[bool, typer.Option("--send", help="Raise due hold alerts and the digest, then send now")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Alerts (one per cause) and where each was delivered; --send dispatches what is pending."""
    from orderbridge.services import notify

    def work(scope: Any) -> tuple[list[Any], dict[str, Any] | None]:
        sent = None
        if send:
            notify.sync_hold_alerts(scope)
            notify.send_digest_if_due(scope)
            sent = notify.dispatch(scope).as_dict()
        return notify.list_alerts(scope, open_only=open_only), sent

    items, sent = run(work)
    if as_json:
        listed = [{**a.as_dict(), "fixes": [fix_json(f) for f in a.fixes]} for a in items]
        print_json({"alerts": listed, "dispatch": sent})
        return
    table = Table("kind", "state", "subject", "episode", "seen", "last", "delivered", "fix")
    for a in items:
        delivered = ", ".join(f"{d.target.split(':', 1)[-1]} {d.status}" for d in a.deliveries) or (
            "pending" if a.dispatched_at is None else "listed only"
        )
        table.add_row(
            *cells(
                (
                    a.kind,
                    a.state,
                    a.subject,
                    str(a.generation),
                    str(a.occurrences),
                    f"{a.last_at:%Y-%m-%d %H:%M}",
                    delivered,
                    _first_command(a.fixes),
                )
            )
        )
    console.print(table)
    if sent is not None:
        console.print(line("dispatch: ", str(sent)))


def _first_command(fixes: tuple[Fix, ...]) -> str:
    """The alert's fix on the CLI: the first that has a command, else the first's sentence."""
    for fix in fixes:
        found = command(fix)
        if found:
            return found
    return fixes[0].text if fixes else "-"


def health(as_json: JsonOpt = False) -> None:
    """Per-connection health (what /healthz serves); exits 1 when any connection is failing."""
    from orderbridge.services.health import health_report

    report = run(health_report)
    if as_json:
        print_json(report)
    else:
        table = Table("name", "health", "since", "last success", "failures", "last order", "jobs", "message")
        for c in report["connections"]:
            color = {"healthy": "green", "failing": "red", "degraded": "yellow", "silent": "magenta"}.get(
                c["health"], "white"
            )
            table.add_row(
                *cells(
                    (
                        c["name"],
                        plain(c["health"], color),
                        (c["since"] or "-")[:19],
                        (c["last_success_at"] or "-")[:19],
                        str(c["consecutive_failures"]),
                        (c["last_order_at"] or "-")[:19],
                        " ".join(f"{j['job']}:{j['health']}" for j in c["jobs"]) or "-",
                        c["message"]
                        + (f" · {n} tied order(s) awaiting a re-read" if (n := c.get("pending_rereads")) else "")
                        + (
                            f" · last sync refused {r} record(s) without a usable id"
                            if (r := c.get("unidentified_last_sync"))
                            else ""
                        )
                        + (f" · {f} order(s) refused by the database" if (f := c.get("ingest_failures")) else ""),
                    )
                )
            )
        console.print(table)
    if report["status"] == "failing":
        raise typer.Exit(1)
