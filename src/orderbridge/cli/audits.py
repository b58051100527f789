"""``orderbridge reconcile`` and ``orderbridge audits``: run an audit, and its stored reports."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from orderbridge.cli.common import JsonOpt, connection_id, console, err, print_json, run
from orderbridge.cli.render import cells, line, plain
from orderbridge.errors import InvalidInput


def _parse_since(value: str, now: datetime) -> datetime:
    """``72h``, ``60d``, ``30m`` before now, or an ISO-8601 time (UTC when it has no offset)."""
    from datetime import UTC, timedelta

    units = {"m": 60, "h": 3600, "d": 86400}
    if value and value[-1] in units and value[:-1].replace(".", "", 1).isdigit():
        return now - timedelta(seconds=float(value[:-1]) * units[value[-1]])
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"cannot read {value!r} as a time", hint="Use 72h, 60d, 30m or an ISO time like 2026-11-01T00:00:00Z."
        ) from None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def reconcile(
    connection: Annotated[str | None, typer.Argument(help="Channel to audit (default: every channel)")] = None,
    since: Annotated[str, typer.Option(help="Window start: 72h, 60d, or an ISO time")] = "72h",
    until: Annotated[str | None, typer.Option(help="Window end (default now)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Audit: list the channel's orders for the window, recover what the ledger lacks, store the report."""
    from orderbridge.connectors.base import Role
    from orderbridge.services.reconcile import reconcile as run_audit

    def work(scope: Any) -> list[dict[str, Any]]:
        now = scope.now()
        start = _parse_since(since, now)
        end = _parse_since(until, now) if until else None
        with scope.read() as conn:
            channels = (
                [connection_id(scope, connection)]
                if connection
                else [c.id for c in scope.connections(conn, Role.CHANNEL)]
            )
        out = []
        with err.status("auditing …", spinner="dots") if not as_json else nullcontext():
            for cid in channels:
                out.append(run_audit(scope, cid, since=start, until=end).as_dict())
        return out

    reports = run(work)
    if as_json:
        print_json(reports[0] if connection else reports)
    else:
        for r in reports:
            _print_audit(r)
    if any(r["error"] or r["missing"] for r in reports):
        raise typer.Exit(1)


def _print_audit(r: dict[str, Any]) -> None:
    color = "green" if not r["missing"] and not r["error"] else "red"
    console.print(
        line(
            plain(r["connection"], "bold"),
            f" audit #{r['run_id']} {r['window_start'][:16]} → {r['window_end'][:16]}: ",
            plain(r["summary"], color),
            f" ({r['api_requests']} API requests, cost {r['api_cost']}, {r['seconds']:.1f}s)",
        )
    )
    if r["error"]:
        err.print(line("  ", plain(r["error"]["message"], "red")))
    for f in r["findings"][:50]:
        console.print(
            line(
                "  ",
                f["action"],
                " ",
                f["number"] or f["external_id"],
                " — ",
                f["cause"],
                f" (updated {f['updated_at']})",
            )
        )
    if len(r["findings"]) > 50:
        console.print(f"  … and {len(r['findings']) - 50} more (--json lists all)")


def audits(
    connection: Annotated[str | None, typer.Argument(help="Only this channel")] = None,
    run_id: Annotated[int | None, typer.Option("--id", help="Show one report in full")] = None,
    limit: int = 20,
    as_json: JsonOpt = False,
) -> None:
    """Stored reconciliation reports, newest first."""
    from orderbridge.services.reconcile import list_reports

    rows = run(
        lambda scope: list_reports(
            scope, connection_id(scope, connection) if connection else None, limit=limit, run_id=run_id
        )
    )
    if run_id is not None and not rows:
        err.print(plain(f"no audit #{run_id}", "red"))
        raise typer.Exit(2)
    if as_json:
        print_json(rows)
        return
    table = Table("#", "kind", "window", "channel", "ledger", "recovered", "missing", "API", "outcome")
    for r in rows:
        table.add_row(
            *cells(
                (
                    str(r["id"]),
                    r["kind"],
                    f"{r['window_start']:%Y-%m-%d %H:%M} → {r['window_end']:%Y-%m-%d %H:%M}",
                    str(r["channel_count"]),
                    str(r["ledger_count"]),
                    str(r["recovered"] + r["refreshed"]),
                    str(r["missing"]),
                    f"{r['api_requests']} req / {r['api_cost']}",
                    r["outcome"],
                )
            )
        )
    console.print(table)
    if run_id is not None:
        for f in rows[0]["findings"]:
            console.print(line("  ", f["action"], " ", f["number"] or f["external_id"], " — ", f["cause"]))
