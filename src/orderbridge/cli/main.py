"""``orderbridge`` — the operator's command line.

Every command: parse arguments → build the hub once (:func:`_hub`) → call one service function →
render with Rich (or JSON with ``--json``). Typed errors (:class:`OrderBridgeError`) print their
message and fix hint and exit with code 2; nothing is printed as a bare traceback for them.

Rendering follows one rule (:mod:`orderbridge.cli.render`): the consoles never parse markup, and
every value that did not come from this file — order names, SKUs, hold values, messages from a
channel or a destination, connection names — is printed through ``line``/``plain``/``cells``,
which show control characters as visible escapes. Styles come only from literals here.
"""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from orderbridge.cli.render import cells, clean, line, plain
from orderbridge.cli.render import console as make_console
from orderbridge.errors import InvalidInput, OrderBridgeError
from orderbridge.logging import configure
from orderbridge.settings import Settings

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="OrderBridge: every order posted once, or visibly held."
)
connections_app = typer.Typer(no_args_is_help=True, help="Configured links to channels and destinations.")
orders_app = typer.Typer(no_args_is_help=True, help="The order ledger.")
mappings_app = typer.Typer(no_args_is_help=True, help="SKU and shipping-method mappings per destination.")
sandbox_app = typer.Typer(no_args_is_help=True, help="Run a local emulator of an external API.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (print figures; not tests).")
webhooks_app = typer.Typer(no_args_is_help=True, help="Channel webhook subscriptions to this hub.")
app.add_typer(connections_app, name="connections")
app.add_typer(orders_app, name="orders")
app.add_typer(mappings_app, name="mappings")
app.add_typer(sandbox_app, name="sandbox")
app.add_typer(bench_app, name="bench")
app.add_typer(webhooks_app, name="webhooks")

console = make_console()
err = make_console(stderr=True)
T = TypeVar("T")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")]


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log at DEBUG level.")] = False,
    log_json: Annotated[bool, typer.Option("--log-json", help="Logs as JSON lines on stderr.")] = False,
) -> None:
    settings = Settings()
    configure(
        "DEBUG" if verbose else settings.log_level if settings.log_level != "INFO" else "WARNING",
        json=log_json or settings.log_json,
    )


def _json_default(value: object) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}
    raise TypeError(type(value).__name__)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_json_default, indent=2) + "\n")
    sys.stdout.flush()


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except OrderBridgeError as exc:
        err.print(line(("error", "bold red"), f" [{exc.code}] ", exc.message))
        if exc.hint:
            err.print(line(("fix:", "bold"), " ", exc.hint))
        raise typer.Exit(2) from exc


def _hub() -> Any:
    from orderbridge.services.hub import Hub

    return Hub.from_settings(Settings())


def _run(fn: Callable[[Any], T]) -> T:
    with _errors():
        hub = _hub()
        try:
            return fn(hub)
        finally:
            hub.close()


# --- setup -----------------------------------------------------------------------------------------


@app.command()
def keygen() -> None:
    """Print a new secret key for ORDERBRIDGE_SECRET_KEY."""
    from orderbridge.crypto import generate_key

    console.print(generate_key())


@app.command()
def init() -> None:
    """Create the data directory (0700), a secret key file and the database schema (0600 each)."""
    from orderbridge.crypto import generate_key
    from orderbridge.storage import files
    from orderbridge.storage.db import Database

    settings = Settings()
    with _errors():
        files.private_dir(settings.data_dir)
        if files.tighten_dir(settings.data_dir):
            console.print(line("made ", str(settings.data_dir), " readable by its owner only (it was open to others)"))
        if settings.secret_key is None and not settings.key_file.exists():
            files.write_private(settings.key_file, generate_key() + "\n")
            console.print(line("wrote a new secret key to ", str(settings.key_file), " (keep it; credentials need it)"))
        settings.resolved_secret_key()
        db = Database(settings.resolved_database_url)
        db.migrate()
        db.dispose()
    console.print(line("database ready: ", settings.resolved_database_url))


# --- connections -----------------------------------------------------------------------------------


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{what} {item!r} must look like NAME=VALUE")
        out[key.strip()] = value
    return out


def _settings_pairs(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in _pairs(items, "setting").items():
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


@connections_app.command("add")
def connections_add(
    name: str,
    kind: Annotated[str, typer.Option(help="shopify | shipstation")],
    url: Annotated[str, typer.Option(help="Base URL, e.g. https://shop.myshopify.com or a sandbox URL")],
    credential: Annotated[list[str], typer.Option(help="NAME=VALUE, repeatable")] = [],  # noqa: B006
    setting: Annotated[list[str], typer.Option(help="NAME=JSON, repeatable")] = [],  # noqa: B006
) -> None:
    """Add a connection; credentials are encrypted at rest."""
    from orderbridge.services.connections import add_connection

    with _errors():
        creds, sets = _pairs(credential, "credential"), _settings_pairs(setting)
    row = _run(lambda hub: add_connection(hub, name, kind, url, creds, sets))
    console.print(line(f"added {row.role} connection ", (row.name, "bold"), f" ({row.kind}) → ", row.base_url))


@connections_app.command("update")
def connections_update(
    name: str,
    credential: Annotated[list[str], typer.Option(help="NAME=VALUE, repeatable")] = [],  # noqa: B006
    setting: Annotated[list[str], typer.Option(help="NAME=JSON, repeatable")] = [],  # noqa: B006
    url: Annotated[str | None, typer.Option(help="New base URL")] = None,
) -> None:
    """Change credentials, settings or URL of a connection."""
    from orderbridge.services.connections import update_connection

    with _errors():
        creds, sets = _pairs(credential, "credential"), _settings_pairs(setting)
    _run(lambda hub: update_connection(hub, name, credentials=creds, settings=sets, base_url=url))
    console.print(line("updated ", name))


@connections_app.command("list")
def connections_list(as_json: JsonOpt = False) -> None:
    """Connections with their health and cursor."""
    from orderbridge.services.connections import list_connections

    rows = _run(list_connections)
    if as_json:
        print_json([r.__dict__ for r in rows])
        return
    table = Table("name", "kind", "role", "health", "last success", "cursor", "message")
    for r in rows:
        color = {"healthy": "green", "failing": "red", "degraded": "yellow"}.get(r.health, "white")
        table.add_row(
            *cells(
                (
                    r.name,
                    r.kind,
                    r.role,
                    plain(r.health, color),
                    r.last_success_at.isoformat(timespec="seconds") if r.last_success_at else "-",
                    r.cursor.isoformat(timespec="seconds") if r.cursor else "-",
                    r.health_message,
                )
            )
        )
    console.print(table)


@connections_app.command("test")
def connections_test(name: str) -> None:
    """Make one authenticated call to the connection."""
    from orderbridge.services.connections import test_connection

    description = _run(lambda hub: test_connection(hub, name))
    console.print(line(("ok", "green"), " ", name, ": ", description))


# --- sync / serve ----------------------------------------------------------------------------------


@app.command()
def sync(
    connection: Annotated[str | None, typer.Argument(help="Channel to pull (default: every channel)")] = None,
    full: Annotated[bool, typer.Option(help="Ignore the cursor and re-read everything")] = False,
    as_json: JsonOpt = False,
) -> None:
    """One full pass: pull orders, post ready ones, read shipments, push fulfilments."""
    from orderbridge.connectors.base import Role
    from orderbridge.runtime.worker import run_cycle
    from orderbridge.services.sync import SyncReport, sync_channel

    def work(hub: Any) -> dict[str, Any]:
        from orderbridge import heap

        heap.settle()
        with hub.db.read() as conn:
            channels = [connection] if connection else hub.connection_names(conn, Role.CHANNEL)
        reports = []
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            TimeElapsedColumn(),
            console=err,
            transient=True,
            disable=as_json,
        ) as progress:
            for name in channels:
                task = progress.add_task(f"{clean(name)}: fetching")

                def show(r: SyncReport, task: Any = task, name: str = name) -> None:
                    progress.update(
                        task,
                        description=f"{clean(name)}: {r.counts.fetched} fetched, "
                        f"{r.counts.inserted} new, {r.counts.changed} changed",
                    )

                reports.append(sync_channel(hub, name, progress=show, full=full).as_dict())
            cycle = run_cycle(hub, sync=False)
        return {
            "syncs": reports,
            "posts": cycle.posts,
            "shipments": cycle.shipments,
            "pushes": cycle.pushes,
            "busy": cycle.busy,
            "crashed": cycle.crashed,
        }

    result = _run(work)
    if as_json:
        print_json(result)
    else:
        for s in result["syncs"]:
            console.print(
                line(
                    s["connection"],
                    f": {s['fetched']} fetched, {s['inserted']} new, {s['changed']} changed, "
                    f"{s['unchanged']} unchanged"
                    + (
                        f", {s['refused']} refused (no usable id: see `orderbridge health`)" if s.get("refused") else ""
                    ),
                    *((" — ", plain(s["error"]["message"], "red")) if s["error"] else ()),
                )
            )
            if s.get("refused") or s.get("quarantined"):  # the rest of their batches are stored
                console.print(
                    f"{s['connection']}: {s['refused']} order(s) the database refused are held storage_refused, "
                    f"{s['quarantined']} quarantined — see orderbridge holds"
                )
        for p in result["posts"]:
            console.print(
                line(
                    p["destination"],
                    f": {p['posted']} posted, {p['rejected']} rejected",
                    *((" — ", plain(p["error"]["message"], "red")) if p["error"] else ()),
                )
            )
        for p in result["pushes"]:
            console.print(line(p["connection"], f": {p['pushed']} fulfilments pushed, {p['held']} held"))
    if result["crashed"] or any(s["error"] for s in result["syncs"]) or any(p["error"] for p in result["posts"]):
        raise typer.Exit(1)


@app.command()
def serve(
    tick: Annotated[float, typer.Option(help="Seconds between scheduler ticks")] = 1.0,
    port: Annotated[int, typer.Option(help="HTTP port for webhooks, /healthz and /metrics")] = 8000,
    host: Annotated[str, typer.Option(help="HTTP interface to listen on")] = "127.0.0.1",
    http: Annotated[bool, typer.Option(help="Serve HTTP (--no-http: scheduler and workers only)")] = True,
    register: Annotated[bool, typer.Option(help="Subscribe channels' webhooks to this server at start")] = True,
) -> None:
    """Run the scheduler, workers and the hub's HTTP server in this process until interrupted."""
    import signal

    from orderbridge.runtime.worker import serve as serve_loop

    stop = threading.Event()
    wake = threading.Event()
    settings = Settings()
    if "public_url" not in settings.model_fields_set:
        reachable = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        settings = settings.model_copy(update={"public_url": f"http://{reachable}:{port}"})
        if http and register and reachable != host:
            err.print(
                plain(
                    f"ORDERBRIDGE_PUBLIC_URL is not set: webhooks will be subscribed to {settings.public_url}, "
                    "which only this machine can reach — set it to the address channels can reach.",
                    "yellow",
                )
            )
    with _errors():
        from orderbridge.services.hub import Hub

        hub = Hub.from_settings(settings)
    from orderbridge import heap

    heap.settle()
    try:
        if not http:
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
            console.print(f"serving; polling channels every {hub.settings.poll_interval_s:g}s (Ctrl-C stops)")
            try:
                serve_loop(hub, stop, tick_s=tick, wake=wake)
            except KeyboardInterrupt:
                stop.set()
            return
        import uvicorn

        from orderbridge.web.app import create_app
        from orderbridge.web.metrics import HubMetrics

        metrics = HubMetrics(hub)
        hub.observer = metrics
        if register and hub.settings.webhooks:
            _register_all(hub)
        worker = threading.Thread(
            target=serve_loop, args=(hub, stop), kwargs={"tick_s": tick, "wake": wake}, name="worker", daemon=True
        )
        worker.start()
        config = uvicorn.Config(
            create_app(hub, metrics=metrics, wake=wake.set), host=host, port=port, log_level="warning"
        )
        console.print(
            f"serving on http://{host}:{port} (webhooks, /healthz, /metrics); polling channels every "
            f"{hub.settings.poll_interval_s:g}s (Ctrl-C stops)"
        )
        # uvicorn handles SIGINT/SIGTERM while it runs and re-raises the signal afterwards to the
        # handlers found before: these, so the process then stops the worker and exits 0.
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        uvicorn.Server(config).run()  # returns on SIGINT/SIGTERM
        stop.set()
        worker.join(timeout=60)
    finally:
        hub.close()


def _register_all(hub: Any) -> None:
    """Subscribe every webhook-capable channel; a failure is shown on the connection, never fatal."""
    from orderbridge.connectors import registry
    from orderbridge.connectors.base import Capability, Role
    from orderbridge.services.webhooks import register_webhooks

    with hub.db.read() as conn:
        channels = hub.connections_by_role(conn, Role.CHANNEL)
    for row in channels:
        if Capability.WEBHOOKS not in registry.declaration(row.kind).capabilities:
            continue
        if not hub.box.open(row.credentials_token, what=row.name).get("api_secret"):
            err.print(
                line(
                    (clean(row.name), "yellow"), (": no api_secret, so no webhooks — polled and audited only", "yellow")
                )
            )
            continue
        try:
            subs = register_webhooks(hub, row.name)  # records the connection's webhooks job either way
            console.print(line(row.name, f": {len(subs)} webhook topics → ", subs[0].address if subs else "-"))
        except OrderBridgeError as exc:
            err.print(line(plain(row.name, "red"), (": webhooks not registered:", "red"), " ", str(exc)))


# --- webhooks / reconciliation / health ----------------------------------------------------------


@webhooks_app.command("register")
def webhooks_register(connection: str) -> None:
    """Subscribe the hub's receiver ({public_url}/webhooks/...) to the channel's order topics."""
    from orderbridge.services.webhooks import register_webhooks

    subs = _run(lambda hub: register_webhooks(hub, connection))
    for sub in subs:
        console.print(line(f"{clean(sub.topic):28} → ", sub.address))


@webhooks_app.command("list")
def webhooks_list(connection: str, as_json: JsonOpt = False) -> None:
    """The channel's webhook subscriptions, as the channel reports them."""
    from orderbridge.services.webhooks import list_webhooks

    subs = _run(lambda hub: list_webhooks(hub, connection))
    if as_json:
        print_json([{"id": s.id, "topic": s.topic, "address": s.address} for s in subs])
        return
    table = Table("id", "topic", "address")
    for sub in subs:
        table.add_row(*cells((sub.id, sub.topic, sub.address)))
    console.print(table)


@webhooks_app.command("remove")
def webhooks_remove(connection: str) -> None:
    """Delete the channel's subscriptions to this hub."""
    from orderbridge.services.webhooks import remove_webhooks

    n = _run(lambda hub: remove_webhooks(hub, connection))
    console.print(line(f"removed {n} subscription(s) from ", connection))


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


@app.command()
def reconcile(
    connection: Annotated[str | None, typer.Argument(help="Channel to audit (default: every channel)")] = None,
    since: Annotated[str, typer.Option(help="Window start: 72h, 60d, or an ISO time")] = "72h",
    until: Annotated[str | None, typer.Option(help="Window end (default now)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Audit: list the channel's orders for the window, recover what the ledger lacks, store the report."""
    from orderbridge.connectors.base import Role
    from orderbridge.services.reconcile import reconcile as run_audit

    def work(hub: Any) -> list[dict[str, Any]]:
        now = hub.now()
        start = _parse_since(since, now)
        end = _parse_since(until, now) if until else None
        with hub.db.read() as conn:
            channels = [connection] if connection else hub.connection_names(conn, Role.CHANNEL)
        out = []
        with err.status("auditing …", spinner="dots") if not as_json else _nullcontext():
            for name in channels:
                out.append(run_audit(hub, name, since=start, until=end).as_dict())
        return out

    reports = _run(work)
    if as_json:
        print_json(reports[0] if connection else reports)
    else:
        for r in reports:
            _print_audit(r)
    if any(r["error"] or r["missing"] for r in reports):
        raise typer.Exit(1)


@contextmanager
def _nullcontext() -> Iterator[None]:
    yield


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


@app.command()
def audits(
    connection: Annotated[str | None, typer.Argument(help="Only this channel")] = None,
    run_id: Annotated[int | None, typer.Option("--id", help="Show one report in full")] = None,
    limit: int = 20,
    as_json: JsonOpt = False,
) -> None:
    """Stored reconciliation reports, newest first."""
    from orderbridge.services.reconcile import list_reports

    rows = _run(lambda hub: list_reports(hub, connection, limit=limit if run_id is None else 10_000))
    if run_id is not None:
        rows = [r for r in rows if r["id"] == run_id]
        if not rows:
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


@app.command()
def alerts(
    open_only: Annotated[bool, typer.Option("--open", help="Only causes that are still open")] = False,
    send: Annotated[bool, typer.Option("--send", help="Raise due hold alerts and the digest, then send now")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Alerts (one per cause) and where each was delivered; --send dispatches what is pending."""
    from orderbridge.services import notify

    def work(hub: Any) -> tuple[list[Any], dict[str, Any] | None]:
        sent = None
        if send:
            notify.sync_hold_alerts(hub)
            notify.send_digest_if_due(hub)
            sent = notify.dispatch(hub).as_dict()
        return notify.list_alerts(hub, open_only=open_only), sent

    items, sent = _run(work)
    if as_json:
        print_json({"alerts": [a.as_dict() for a in items], "dispatch": sent})
        return
    table = Table("kind", "state", "subject", "episode", "seen", "last", "delivered")
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
                )
            )
        )
    console.print(table)
    if sent is not None:
        console.print(line("dispatch: ", str(sent)))


@app.command()
def health(as_json: JsonOpt = False) -> None:
    """Per-connection health (what /healthz serves); exits 1 when any connection is failing."""
    from orderbridge.services.health import health_report

    report = _run(health_report)
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


# --- orders / holds --------------------------------------------------------------------------------


@orders_app.command("list")
def orders_list(
    state: Annotated[str | None, typer.Option(help="received|skipped|held|ready|posted|fulfilled|…")] = None,
    connection: Annotated[str | None, typer.Option(help="Only this channel")] = None,
    search: Annotated[str | None, typer.Option(help="Order number or channel id")] = None,
    limit: int = 50,
    as_json: JsonOpt = False,
) -> None:
    """Orders, newest first, with their state and open reasons."""
    from orderbridge.services.queries import list_orders

    rows = _run(lambda hub: list_orders(hub, state=state, connection=connection, search=search, limit=limit))
    if as_json:
        print_json(rows)
        return
    table = Table("number", "channel", "id", "state", "v", "total", "reasons")
    for r in rows:
        table.add_row(
            *cells((r.number, r.connection, r.external_id, r.state, str(r.version), r.total, ", ".join(r.reasons)))
        )
    console.print(table)


@orders_app.command("show")
def orders_show(ref: str, raw: bool = False, as_json: JsonOpt = False) -> None:
    """One order: state, open reasons with fixes, postings, timeline."""
    from orderbridge.services.queries import show_order

    d = _run(lambda hub: show_order(hub, ref))
    if as_json:
        data = dict(d.__dict__)
        if not raw:
            data.pop("raw")
        print_json(data)
        return
    console.print(
        line(
            plain(d.number, "bold"),
            " (",
            d.connection,
            " id ",
            d.external_id,
            ") — ",
            plain(d.state, "bold"),
            f", version {d.version}, ",
            d.total,
        )
    )
    for r in d.reasons:
        console.print(line("  ", plain(r["kind"], "red"), " ", r["code"], ": ", r["message"]))
        console.print(line("    ", ("fix:", "bold"), " ", r["fix"]))
    for p in d.postings:
        console.print(
            line(
                "  posting → ",
                p["destination"],
                f" v{p['version']}: ",
                p["status"],
                " ",
                p["document_id"],
                f" (attempts {p['attempts']}) ",
                p["last_error"],
            )
        )
    for p in d.pushes:
        console.print(line("  fulfilment push: ", p["status"], " ", p["fulfilment_id"], " ", p["message"]))
    table = Table("at", "event", "message")
    for e in d.timeline:
        table.add_row(*cells((e["at"].isoformat(timespec="seconds"), e["kind"], e["message"])))
    console.print(table)
    if raw:
        print_json(d.raw)


@orders_app.command("retry")
def orders_retry(ref: str) -> None:
    """After fixing what a destination rejected, send the order again."""
    from orderbridge.services.queries import retry_order

    state = _run(lambda hub: retry_order(hub, ref))
    console.print(line(ref, " is now ", state))


#: how ``holds`` names each kind of group (quarantine: refused by the database even in a minimal form)
_HOLD_KIND = {"hold": "held", "skip": "skipped", "quarantine": "quarantined, not stored"}


@app.command()
def holds(
    skipped: Annotated[bool, typer.Option("--skipped", help="Also list skipped orders by rule")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Held orders grouped by root cause, with counts and the fix."""
    from orderbridge.services.queries import holds as holds_query

    groups = _run(lambda hub: holds_query(hub, include_skipped=skipped))
    if as_json:
        print_json(groups)
        return
    if not groups:
        console.print(plain("nothing held", "green"))
    for g in groups:
        console.print(
            line(
                (str(g.orders), "bold"),
                f" order(s) {_HOLD_KIND.get(g.kind, g.kind)} — ",
                g.code,
                *((" ", plain(g.value, "bold")) if g.value else ()),
                ": ",
                g.message,
            )
        )
        console.print(line("    ", ("fix:", "bold"), " ", g.fix))
        console.print(line("    e.g. ", ", ".join(clean(e) for e in g.examples)))


# --- mappings --------------------------------------------------------------------------------------


@mappings_app.command("set")
def mappings_set(
    kind: Annotated[str, typer.Argument(help="sku | shipping")],
    source: Annotated[str, typer.Argument(help="The channel's value ('*' = default shipping)")],
    target: Annotated[str, typer.Argument(help="Destination SKU, or carrier:service")],
    destination: Annotated[str | None, typer.Option(help="Destination connection")] = None,
) -> None:
    """Map one value; orders held for it are re-evaluated at once."""
    from orderbridge.services.mappings import set_mapping

    r = _run(lambda hub: set_mapping(hub, kind, source, target, destination))
    console.print(
        line(
            f"mapped {r.kind} '{clean(r.source)}' → '{clean(r.target)}'; released {r.released} order(s)",
            f", {r.still_held} still held for other reasons" if r.still_held else None,
        )
    )


@mappings_app.command("import")
def mappings_import(
    kind: Annotated[str, typer.Argument(help="sku | shipping")],
    file: Annotated[Path, typer.Argument(help="CSV with source,target columns ('-' for stdin)")],
    destination: Annotated[str | None, typer.Option(help="Destination connection")] = None,
) -> None:
    """Import mappings from CSV; bad rows are listed, good rows applied."""
    from orderbridge.services.mappings import import_mappings

    text = sys.stdin.read() if str(file) == "-" else file.read_text()
    results, errors = _run(lambda hub: import_mappings(hub, kind, text, destination))
    console.print(f"imported {len(results)} mapping(s); released {sum(r.released for r in results)} order(s)")
    for e in errors:
        err.print(line((f"line {e.line}", "red"), ": ", e.message))
    if errors:
        raise typer.Exit(1)


@mappings_app.command("unmapped")
def mappings_unmapped(as_json: JsonOpt = False) -> None:
    """Unmapped values seen on held orders, most blocking first."""
    from orderbridge.services.mappings import unmapped

    rows = _run(unmapped)
    if as_json:
        print_json(rows)
        return
    table = Table("kind", "value", "orders held")
    for r in rows:
        table.add_row(*cells((r.kind, r.value, str(r.orders))))
    console.print(table)


# --- sandboxes, demo, bench ------------------------------------------------------------------------


@sandbox_app.command("shopify")
def sandbox_shopify(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 8701,
    orders: Annotated[int, typer.Option(help="Generated orders to serve")] = 200,
    seed: int = 1,
    limits: Annotated[bool, typer.Option(help="Enforce Shopify's rate/cost limits")] = True,
    plan: Annotated[str, typer.Option(help="standard | advanced | plus")] = "standard",
    realistic: Annotated[bool, typer.Option(help="Mix of statuses and problems (else all clean)")] = True,
    lines: Annotated[int | None, typer.Option(help="Lines per order (default 1–4)")] = None,
    api_secret: Annotated[str, typer.Option(help="The app's secret: signs webhooks")] = "shpss_sandbox",
    webhook_retry_scale: Annotated[float, typer.Option(help="Multiplies Shopify's webhook retry delays")] = 1.0,
    webhook_drop_rate: Annotated[float, typer.Option(help="Share of webhook deliveries silently dropped")] = 0.0,
    bulk_seconds: Annotated[float, typer.Option(help="How long a bulk query runs before it completes")] = 0.05,
) -> None:
    """Serve the Shopify Admin API emulator (REST + GraphQL + bulk + webhooks) until stopped."""
    from orderbridge.sandboxes.base import serve_forever
    from orderbridge.sandboxes.shopify.app import create_sandbox

    _, asgi = create_sandbox(
        orders=orders,
        seed=seed,
        limits=limits,
        plan=plan,
        realistic=realistic,
        lines_per_order=lines,
        api_secret=api_secret,
        webhook_retry_scale=webhook_retry_scale,
        webhook_drop_rate=webhook_drop_rate,
        bulk_seconds=bulk_seconds,
    )
    err.print(f"Shopify sandbox: {orders} orders on http://127.0.0.1:{port} (token shpat_sandbox, secret {api_secret})")
    serve_forever(asgi, port)


@sandbox_app.command("shipstation")
def sandbox_shipstation(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1")] = 8702,
    limits: Annotated[bool, typer.Option(help="Enforce 40 requests/minute")] = True,
    ship_after: Annotated[float, typer.Option(help="Seconds until a received order ships")] = 5.0,
    partial_rate: float = 0.0,
    void_rate: float = 0.0,
    orders: Annotated[int, typer.Option(help="Accepted for symmetry; ShipStation starts empty")] = 0,
) -> None:
    """Serve the ShipStation V1 emulator until stopped."""
    from orderbridge.sandboxes.base import serve_forever
    from orderbridge.sandboxes.shipstation.app import create_sandbox

    _, asgi = create_sandbox(
        limits=limits, ship_after_seconds=ship_after, partial_rate=partial_rate, void_rate=void_rate
    )
    err.print(f"ShipStation sandbox on http://127.0.0.1:{port} (Basic ss_key:ss_secret)")
    serve_forever(asgi, port)


@app.command()
def demo(
    orders: Annotated[int, typer.Option(help="Orders in the demo store")] = 300,
    seed: int = 7,
    as_json: JsonOpt = False,
    data_dir: Annotated[Path | None, typer.Option(help="Keep the demo database here")] = None,
) -> None:
    """Run the whole flow against local sandboxes and print the accounting."""
    from orderbridge.demo import run_demo

    with _errors():
        result = run_demo(orders=orders, seed=seed, data_dir=data_dir, quiet=as_json, console=err)
    if as_json:
        print_json(result)
    else:
        from orderbridge.demo import render

        render(result, console)
    if result["unaccounted"] != 0:
        raise typer.Exit(1)


@bench_app.command("ingest")
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

    with _errors():
        result = run(orders=orders, lines=lines, peer=peer, backfill=backfill, quiet=as_json, repeats=repeats)
    if as_json:
        print_json(result)
    else:
        render(result, console)


@bench_app.command("latency")
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

    with _errors():
        result = run(orders=orders, rate=rate, poll_interval=poll_interval, webhooks=webhooks, poll=poll, quiet=as_json)
    if as_json:
        print_json(result)
    else:
        render(result, console)


@bench_app.command("reconcile")
def bench_reconcile(
    orders: Annotated[int, typer.Option(help="Orders in the store (spread over 50 days)")] = 100_000,
    lost: Annotated[float, typer.Option(help="Share of orders lost before the audit")] = 0.001,
    as_json: JsonOpt = False,
) -> None:
    """A 60-day audit of a large store: time, API requests and cost, what it recovered."""
    from orderbridge.bench.reconcile import render, run

    with _errors():
        result = run(orders=orders, lost=lost, quiet=as_json)
    if as_json:
        print_json(result)
    else:
        render(result, console)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
