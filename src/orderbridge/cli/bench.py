"""``orderbridge bench …`` and ``orderbridge demo``: benchmarks (figures, not tests) and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from orderbridge.cli.common import JsonOpt, console, err, errors, print_json
from orderbridge.cli.render import line, plain

app = typer.Typer(no_args_is_help=True, help="Benchmarks (print figures; not tests).")


def demo(
    orders: Annotated[int, typer.Option(help="Orders in the demo store")] = 300,
    seed: int = 7,
    as_json: JsonOpt = False,
    data_dir: Annotated[Path | None, typer.Option(help="Keep the demo database here")] = None,
    serve: Annotated[
        bool, typer.Option(help="Then serve the portal over the demo's data until Ctrl-C (--json never serves)")
    ] = True,
    port: Annotated[int, typer.Option(help="The portal's port when serving")] = 8000,
    screenshots: Annotated[
        Path | None,
        typer.Option(help="Save a screenshot of each main screen in this folder (needs the dev tools), then stop"),
    ] = None,
) -> None:
    """Run the whole flow against local sandboxes, print the accounting, then serve the portal over it."""
    from orderbridge.demo import demo_world, serve_portal

    with errors(), demo_world(orders=orders, seed=seed, data_dir=data_dir, quiet=as_json, console=err) as run:
        result = run.result
        if as_json:
            print_json(result)
        else:
            _render_demo(result, console)
        if result["unaccounted"] != 0:
            raise typer.Exit(1)
        if screenshots is not None:
            from orderbridge.demo.screenshots import take_screenshots

            for path in take_screenshots(run, screenshots, say=console.print):
                console.print(f"saved {path}")
        elif serve and not as_json:
            serve_portal(run, port=port, say=console.print)


def _render_demo(result: dict[str, Any], console: Console) -> None:
    """The demo's accounting: where every channel order is."""
    table = Table(title="OrderBridge demo — where every channel order is", show_header=False)
    table.add_row("orders in the channel (Shopify sandbox)", str(result["channel_orders"]))
    table.add_row("posted to the 3PL exactly once", str(result["posted"]))
    table.add_row("  of which fulfilled back on Shopify", str(result["fulfilled"]))
    table.add_row("held, with reason and fix", str(result["held"]))
    for code, n in result["held_by_reason"].items():
        table.add_row(line("  ", code), str(n))
    table.add_row("skipped by a download rule, with reason", str(result["skipped"]))
    for code, n in result["skipped_by_reason"].items():
        table.add_row(line("  ", code), str(n))
    table.add_row(
        "unaccounted", plain(result["unaccounted"], f"bold {'green' if result['unaccounted'] == 0 else 'red'}")
    )
    table.add_row(
        "3PL documents (its own ledger) / posted twice",
        f"{result['destination_documents']} / {result['destination_posted_twice']}",
    )
    table.add_row("shipments read / fulfilments pushed", f"{result['shipments_read']} / {result['fulfilments_pushed']}")
    audit = result["audit"]
    table.add_row(
        "reconciliation audit",
        line(
            plain(audit["summary"], "green" if audit["missing"] == 0 else "red"),
            f" ({audit['api_requests']} API requests)",
        ),
    )
    console.print(table)
    console.print("Next: `orderbridge holds` lists each cause with its fix; a mapping releases its orders at once.")


@app.command("ingest")
def bench_ingest(
    orders: Annotated[int, typer.Option(help="Orders in the store")] = 20_000,
    lines: Annotated[int, typer.Option(help="Lines per order")] = 3,
    peer: Annotated[bool, typer.Option(help="Also time dlt's rest_api source")] = True,
    backfill: Annotated[bool, typer.Option(help="Also time a bulk backfill under Standard limits")] = True,
    repeats: Annotated[int, typer.Option(min=1, help="Timed runs per phase; medians are reported")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Throughput: fetch+parse floor, ingest, end to end, dlt peer; peak memory."""
    from orderbridge.bench.ingest import render, run

    with errors():
        result = run(orders=orders, lines=lines, peer=peer, backfill=backfill, quiet=as_json, repeats=repeats)
    if as_json:
        print_json(result)
    else:
        render(result, console)


@app.command("import")
def bench_import(
    rows: Annotated[int, typer.Option(min=1, help="Rows (line items) in the generated file")] = 50_000,
    as_json: JsonOpt = False,
) -> None:
    """A generated CSV file imported (preview + confirm) on SQLite: rows/s, wall time, peak memory."""
    from orderbridge.bench.imports import render, run

    with errors():
        result = run(rows=rows, quiet=as_json, say=err.print)
    if as_json:
        print_json(result)
    else:
        render(result, console)


@app.command("latency")
def bench_latency(
    orders: Annotated[int, typer.Option(help="Orders created at a steady rate, per mode")] = 1000,
    rate: Annotated[float, typer.Option(help="Orders per second created in the Shopify sandbox")] = 20.0,
    poll_interval: Annotated[float, typer.Option(help="Poll interval for the webhooks-off run (s)")] = 60.0,
    webhooks: Annotated[bool, typer.Option(help="Run the webhooks-on mode")] = True,
    poll: Annotated[bool, typer.Option(help="Run the webhooks-off (polling) mode")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Creation-to-posted latency (p50/p95/p99) with webhooks on, and with polling only."""
    from orderbridge.bench.latency import render, run

    with errors():
        result = run(orders=orders, rate=rate, poll_interval=poll_interval, webhooks=webhooks, poll=poll, quiet=as_json)
    if as_json:
        print_json(result)
    else:
        render(result, console)


@app.command("reconcile")
def bench_reconcile(
    orders: Annotated[int, typer.Option(help="Orders in the store (spread over 50 days)")] = 100_000,
    lost: Annotated[float, typer.Option(help="Share of orders lost before the audit")] = 0.001,
    as_json: JsonOpt = False,
) -> None:
    """A 60-day audit of a large store: time, API requests and cost, what it recovered."""
    from orderbridge.bench.reconcile import render, run

    with errors():
        result = run(orders=orders, lost=lost, quiet=as_json)
    if as_json:
        print_json(result)
    else:
        render(result, console)


@app.command("portal")
def bench_portal(
    orders: Annotated[int, typer.Option(min=1, help="Orders in the seeded ledger")] = 100_000,
    repeats: Annotated[int, typer.Option(min=1, help="Timed views of each page (p50/p95 over them)")] = 30,
    database_url: Annotated[
        str | None,
        typer.Option(help="Seed (or reuse the bench ledger already in) this database only, and keep it"),
    ] = None,
    postgres: Annotated[bool, typer.Option(help="Also on PostgreSQL (127.0.0.1:5432/test) when reachable")] = True,
    as_json: JsonOpt = False,
) -> None:
    """The portal's pages over a seeded ledger of N orders: p50/p95 per page, and the seed time."""
    from orderbridge.bench.portal import render, run

    with errors():
        result = run(orders=orders, repeats=repeats, database_url=database_url, postgres=postgres, quiet=as_json)
    if as_json:
        print_json(result)
    else:
        render(result, console)


@app.command("scale")
def bench_scale(
    tenants: Annotated[
        int, typer.Option(min=1, help="Tenants, each with its own Shopify store and ShipStation account")
    ] = 4,
    orders: Annotated[int, typer.Option(min=1, help="Orders created per tenant in each phase")] = 150,
    workers: Annotated[
        list[int] | None, typer.Option(help="Worker processes per phase (repeat the option); default 1, 2, 4")
    ] = None,
    limits: Annotated[bool, typer.Option(help="Also a W=1 phase with the sandboxes' real rate limits on")] = True,
    limited_orders: Annotated[int, typer.Option(min=1, help="Orders per tenant in the rate-limited phase")] = 40,
    engine: Annotated[str, typer.Option(help="procrastinate (orderbridge worker) | embedded (serve processes)")] = (
        "procrastinate"
    ),
    as_json: JsonOpt = False,
) -> None:
    """Throughput, p50/p99 latency and database statements per order of a fleet of W workers on PostgreSQL."""
    from orderbridge.bench.scale import render, run

    with errors():
        result = run(
            tenants=tenants,
            orders=orders,
            workers=tuple(workers or (1, 2, 4)),
            limits_run=limits,
            limited_orders=limited_orders,
            engine=engine,
            quiet=as_json,
        )
    if as_json:
        print_json(result)
    else:
        render(result, console)


@app.command("chaos")
def bench_chaos(
    soak: Annotated[
        bool, typer.Option(help="The long run (minutes, a one-minute outage) instead of the CI-sized one")
    ] = False,
    tenants: Annotated[int | None, typer.Option(min=1, help="Tenants (default: the size's)")] = None,
    storm: Annotated[
        float | None, typer.Option(min=5, help="Seconds of faults and kills (default: the size's)")
    ] = None,
    outage: Annotated[float | None, typer.Option(min=1, help="Seconds one ShipStation is unreachable")] = None,
    keep_logs: Annotated[Path | None, typer.Option(help="Keep the fleet's logs (and data) in this folder")] = None,
    engine: Annotated[str | None, typer.Option(help="procrastinate (default) | embedded")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Faults, SIGKILLed workers, a PostgreSQL restart and an outage; then the ledgers are checked.

    Prints one line: orders, tenants, faults injected, kills, database restarts, lost, posted twice,
    pushed twice, missing. Exits 1 when any promise was broken."""
    from dataclasses import replace

    from orderbridge.bench.chaos import ChaosConfig, run

    config = ChaosConfig.soak() if soak else ChaosConfig.ci()
    overrides: dict[str, Any] = {
        k: v
        for k, v in (("tenants", tenants), ("storm_s", storm), ("outage_s", outage), ("engine", engine))
        if v is not None
    }
    config = replace(config, **overrides)
    with errors():
        result = run(config, say=None if as_json else err.print, keep_logs=keep_logs)
    if as_json:
        print_json(result.as_dict())
    else:
        console.print(result.line(), markup=False)
        for problem in result.problems:
            console.print(problem, markup=False, style="red")
    if not result.clean:
        raise typer.Exit(1)
