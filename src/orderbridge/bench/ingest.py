"""``orderbridge bench ingest``: how close the hub gets to the bare "fetch pages + parse JSON" floor.

All phases run in one process against sandboxes in other processes over real HTTP on localhost.
First the sandboxes are warmed — one untimed ingest (whose requests are recorded at the transport
for the floor), one more bulk export and one pass over the REST pages, all untimed — so every timed
phase — the hub's and the peer's alike — meets an emulator that serves from its
caches, as a real store serves from its own: what is measured is the client side. Each timed phase
then runs ``repeats`` times (3 by default) and the median is reported, with every run's time in
``runs`` (this machine is a noisy 2-core VM: read ratios of medians, not single runs).

1. ``ingest``: a fresh SQLite ledger syncs N orders from the Shopify sandbox (limits off). A first
   sync of a large store is a backfill, so the connector runs a bulk operation and streams its
   JSONL, as it would against Shopify.
2. ``floor``: the requests of the warm-up ingest (the connector's own) are replayed with a bare
   ``httpx.Client`` and each body (each line of the JSONL) is only ``json.loads``-ed.
3. ``e2e``: a fresh ledger runs the worker cycle (what ``orderbridge serve`` runs): the same
   sync, with posting to the ShipStation sandbox (rate limit off, ``createorders`` batches)
   running alongside it and finishing after it.
4. ``write_floor``: the rows the first timed ingest wrote (orders and their events, JSON as
   stored text) are read back and inserted into a fresh ledger the way ingest inserts them — one
   transaction per bulk batch, ``ON CONFLICT DO NOTHING … RETURNING`` — with no fetching, parsing
   or mapping: what storing those bytes costs this machine. ``floor + write`` is what an ingest
   that did no work of its own between fetching and storing would take, one step after the other.
5. ``peer_dlt``: dlt's generic ``rest_api`` source extracts the same orders from the sandbox's REST
   ``orders.json`` (Link-header pagination) — iterated bare, no pipeline/destination.
6. ``paged``: for reference, the incremental path (GraphQL pages sized to the 1,000-point query cost
   cap) on N/10 orders, with its own floor.
7. ``backfill``: with Shopify's Standard-plan limits on, a fresh ledger backfills through a bulk
   operation; the time is reported next to the cost-limited paging estimate.

Peak RSS is the process high-water mark after the hub phases (before the peer runs).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import Text, select, type_coerce

from orderbridge import heap
from orderbridge.bench.procs import sandbox_process
from orderbridge.connectors.shopify.connector import BULK_POLL, BULK_QUERY, BULK_RUN, DEFAULT_SETTINGS
from orderbridge.crypto import generate_key
from orderbridge.runtime.worker import run_cycle
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import import_mappings, set_mapping
from orderbridge.services.scope import Scope
from orderbridge.services.sync import sync_channel
from orderbridge.settings import Settings
from orderbridge.storage.db import Database, JsonText
from orderbridge.storage.repos import events as event_log
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.repos.events import EVENT_COLUMNS
from orderbridge.storage.repos.orders import ORDER_COLUMNS
from orderbridge.storage.tables import events, orders

TOKEN = "shpat_sandbox"
BULK_BATCH = int(DEFAULT_SETTINGS["bulk_batch_size"])


class RecordingTransport(httpx.HTTPTransport):
    """A real HTTP transport that remembers each request (method, URL, headers, body)."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        self.requests.append((request.method, str(request.url), dict(request.headers), body))
        return super().handle_request(request)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _hub_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, secret_key=generate_key(), cursor_overlap_s=0)


def _hub(data_dir: Path) -> Hub:
    return Hub.from_settings(_hub_settings(data_dir))


def _map_everything(scope: Scope) -> None:
    from orderbridge.sandboxes.shopify import generator

    warehouse = scope.connection_id("warehouse")
    csv = "\n".join(f"{sku},{sku}" for sku, _t, _p in generator.CATALOG)
    import_mappings(scope, "sku", csv, warehouse)
    for method in [*generator.SHIPPING_METHODS, *generator.UNKNOWN_SHIPPING_METHODS]:
        set_mapping(scope, "shipping", method, "ups:ups_ground", warehouse)


def _connect(hub: Hub, shop_url: str, ss_url: str | None, *, bulk: bool) -> tuple[Scope, int]:
    """The connections, in the fresh ledger's one tenant: its scope and the shop's id."""
    scope = Scope.named(hub, "default")
    shop = add_connection(scope, "shop", "shopify", shop_url, {"access_token": TOKEN}, {"bulk_backfill": bulk})
    if ss_url is not None:
        add_connection(scope, "warehouse", "shipstation", ss_url, {"api_key": "ss_key", "api_secret": "ss_secret"})
    return scope, shop.id


def _floor(requests: list[tuple[str, str, dict[str, str], bytes]]) -> tuple[float, int]:
    started = time.perf_counter()
    parsed_bytes = 0
    with httpx.Client(timeout=600) as client:  # a replayed bulk export of 100k orders takes a while
        for method, url, headers, body in requests:
            if url.endswith(".jsonl"):  # streamed line by line, as the connector reads it
                with client.stream(method, url, headers=headers, content=body) as response:
                    for line in response.iter_lines():
                        if line:
                            json.loads(line)
                            parsed_bytes += len(line)
                continue
            response = client.request(method, url, headers=headers, content=body)
            json.loads(response.content)
            parsed_bytes += len(response.content)
    return time.perf_counter() - started, parsed_bytes


def _dlt_peer(shop_url: str) -> tuple[float, int]:
    import os

    os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source(
        {
            "client": {
                "base_url": f"{shop_url}/admin/api/2025-01/",
                "headers": {"X-Shopify-Access-Token": TOKEN},
                "paginator": {"type": "header_link"},
            },
            "resources": [
                {
                    "name": "orders",
                    "endpoint": {
                        "path": "orders.json",
                        "params": {"limit": 250, "status": "any"},
                        "data_selector": "orders",
                    },
                }
            ],
        }
    )
    started = time.perf_counter()
    count = sum(1 for _ in source.resources["orders"])
    return time.perf_counter() - started, count


def _ledger_rows(data_dir: Path) -> list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """What an ingest wrote: each order's row (in :data:`ORDER_COLUMNS` order, JSON as stored text)
    with its events' rows (``order_id`` left to be filled in), read back from that ledger."""
    db = Database(_hub_settings(data_dir).resolved_database_url)
    json_columns = {"canonical", "raw"}
    order_cols = [
        type_coerce(orders.c[c], Text()).label(c) if c in json_columns else orders.c[c] for c in ORDER_COLUMNS
    ]
    event_cols = [type_coerce(events.c[c], Text()).label(c) if c == "data" else events.c[c] for c in EVENT_COLUMNS]
    by_order: dict[int, list[tuple[Any, ...]]] = {}
    with db.read() as conn:
        for row in conn.execute(select(events.c.order_id, *event_cols).where(events.c.order_id.is_not(None))):
            by_order.setdefault(row[0], []).append(tuple(_stored(v) for v in row[1:]))
        found = [
            (
                tuple(_stored(v, c in json_columns) for c, v in zip(ORDER_COLUMNS, row[1:], strict=True)),
                by_order.get(row[0], []),
            )
            for row in conn.execute(select(orders.c.id, *order_cols).order_by(orders.c.id))
        ]
    db.dispose()
    return found


def _stored(value: Any, json_text: bool = False) -> Any:
    return JsonText(value) if json_text and value is not None else value


def _write_floor(hub: Hub, rows: list[tuple[tuple[Any, ...], list[tuple[Any, ...]]]], batch: int) -> float:
    """Insert an ingest's own rows into a fresh ledger as ingest does — orders (``ON CONFLICT DO
    NOTHING … RETURNING``), their events, one transaction per batch — with nothing else to do:
    what storing those bytes costs this machine, the part of ingest no Python speed-up removes."""
    order_at = EVENT_COLUMNS.index("order_id")
    ext_at = ORDER_COLUMNS.index("external_id")
    stored = 0
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        with hub.db.transaction() as conn:
            ids = dict((ext, oid) for oid, ext in order_repo.insert_new(conn, [order for order, _ in chunk]))
            stored += len(ids)
            event_rows = [
                (*ev[:order_at], ids[order[ext_at]], *ev[order_at + 1 :]) for order, evs in chunk for ev in evs
            ]
            event_log.append_tuples(conn, event_rows)
    elapsed = time.perf_counter() - started
    if stored != len(rows):
        raise RuntimeError(f"the write floor stored {stored} of {len(rows)} orders")
    return elapsed


def _warm(shop_url: str) -> None:
    """One more untimed bulk export (downloaded and discarded) and one untimed pass over the REST pages."""
    headers = {"X-Shopify-Access-Token": TOKEN}
    graphql = f"{shop_url}/admin/api/2025-01/graphql.json"
    with httpx.Client(timeout=600, headers=headers) as client:
        client.post(graphql, json={"query": BULK_RUN, "variables": {"query": BULK_QUERY}}).raise_for_status()
        while True:
            op = client.post(graphql, json={"query": BULK_POLL}).json()["data"]["currentBulkOperation"]
            if op["status"] not in ("CREATED", "RUNNING"):
                break
            time.sleep(0.05)
        if op.get("url"):
            with client.stream("GET", op["url"]) as export:  # streamed: not held in the hub's memory
                export.raise_for_status()
                for _ in export.iter_bytes(1 << 20):
                    pass
        url: str | None = f"{shop_url}/admin/api/2025-01/orders.json?limit=250&status=any"
        while url:
            response = client.get(url)
            response.raise_for_status()
            url = response.links.get("next", {}).get("url")


def _quiesce() -> None:
    """Untimed: write back what earlier phases left in the page cache (each writes ~100 MB of
    ledger), so the kernel's writeback of one phase's files is not timed in the next."""
    os.sync()


def _timed(repeats: int, once: Any) -> list[float]:
    times = []
    for _ in range(repeats):
        _quiesce()
        started = time.perf_counter()
        once()
        times.append(time.perf_counter() - started)
    return times


def run(
    *,
    orders: int = 20_000,
    lines: int = 3,
    peer: bool = True,
    backfill: bool = True,
    quiet: bool = False,
    repeats: int = 3,
) -> dict[str, Any]:
    out = Console(stderr=True)

    def say(message: str) -> None:
        if not quiet:
            out.print(message)

    result: dict[str, Any] = {"orders": orders, "lines_per_order": lines, "repeats": repeats}
    runs: dict[str, list[float]] = {}
    shop_args = ["--orders", str(orders), "--no-limits", "--no-realistic", "--lines", str(lines)]
    with (
        sandbox_process("shopify", *shop_args) as shop_url,
        sandbox_process("shipstation", "--no-limits", "--ship-after", "3600") as ss_url,
        tempfile.TemporaryDirectory(prefix="ob-bench-") as tmp,
    ):
        say("warm-up: one untimed ingest (its requests recorded for the floor) and one REST pass…")
        recorder = RecordingTransport()
        hub = _hub(Path(tmp) / "warm-up")
        hub.http_factory = lambda row: httpx.Client(transport=recorder, timeout=60)  # inline: this process
        scope, shop = _connect(hub, shop_url, None, bulk=True)
        if sync_channel(scope, shop).counts.inserted != orders:
            raise RuntimeError("the warm-up ingest did not store every order")
        hub.close()
        _warm(shop_url)
        heap.settle()
        reports: list[Any] = []

        def ingest_once() -> None:
            hub = _hub(Path(tmp) / f"ingest-{len(reports)}")
            scope, shop = _connect(hub, shop_url, None, bulk=True)
            report = sync_channel(scope, shop)
            hub.close()
            if report.error or report.counts.inserted != orders:
                raise RuntimeError(f"ingest did not store every order: {report.as_dict()}")
            reports.append(report)

        say(f"ingest: {orders} orders (first sync: bulk export) ×{repeats}…")
        runs["ingest_s"] = _timed(repeats, ingest_once)
        cycles: list[float] = []

        def e2e_once() -> None:
            hub = _hub(Path(tmp) / f"e2e-{len(cycles)}")
            scope, _shop = _connect(hub, shop_url, ss_url, bulk=True)
            _map_everything(scope)
            started = time.perf_counter()
            cycle = run_cycle(scope, shipments=False, push=False)  # what `orderbridge serve` runs
            elapsed = time.perf_counter() - started
            hub.close()
            posted = sum(p["posted"] for p in cycle.posts)
            if posted != orders or cycle.crashed or any(p["error"] for p in cycle.posts):
                raise RuntimeError(f"e2e did not post every order: {cycle}")
            cycles.append(elapsed)

        say(f"e2e: ingest + post to ShipStation ×{repeats}…")
        _timed(repeats, e2e_once)
        runs["e2e_s"] = cycles  # the cycle alone: the ledger's creation and mappings are set-up
        result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
        say(f"floor: replaying {len(recorder.requests)} requests ×{repeats}…")
        runs["floor_s"] = []
        for _ in range(repeats):
            _quiesce()
            runs["floor_s"].append(_floor(recorder.requests)[0])
        say(f"write floor: the ingest's own rows into a fresh ledger ×{repeats}…")
        stored = _ledger_rows(Path(tmp) / "ingest-0")
        runs["write_floor_s"] = []
        for k in range(repeats):
            hub = _hub(Path(tmp) / f"write-{k}")
            _connect(hub, shop_url, None, bulk=True)
            _quiesce()
            runs["write_floor_s"].append(_write_floor(hub, stored, BULK_BATCH))
            hub.close()
        del stored
        received = httpx.get(f"{ss_url}/_sandbox/state", timeout=30).json()
        result["destination_state"] = {k: v for k, v in received.items() if k != "requests_seen"}
        t_floor, t_ingest, t_e2e, t_write = (
            statistics.median(runs[k]) for k in ("floor_s", "ingest_s", "e2e_s", "write_floor_s")
        )
        result.update(
            write_floor_orders_per_s=round(orders / t_write, 1),
            ingest_to_floor_plus_write=round((t_floor + t_write) / t_ingest, 3),
            floor_orders_per_s=round(orders / t_floor, 1),
            ingest_orders_per_s=round(orders / t_ingest, 1),
            e2e_orders_per_s=round(orders / t_e2e, 1),
            ingest_to_floor=round(t_floor / t_ingest, 3),
            e2e_to_floor=round(t_floor / t_e2e, 3),
            requests=len(recorder.requests),
            graphql_cost_points=reports[0].cost,
        )
        if peer:
            say(f"peer: dlt rest_api over REST orders.json ×{repeats} (after one untimed run)…")
            counts = [_dlt_peer(shop_url)[1]]  # untimed: dlt's own imports and first-use set-up
            runs["peer_dlt_s"] = []
            for _ in range(repeats):
                elapsed, n = _dlt_peer(shop_url)
                runs["peer_dlt_s"].append(elapsed)
                counts.append(n)
            if any(n != orders for n in counts):
                raise RuntimeError(f"dlt extracted {counts} orders, expected {orders}")
            t_dlt = statistics.median(runs["peer_dlt_s"])
            result["peer_dlt_orders_per_s"] = round(orders / t_dlt, 1)
            result["ingest_to_dlt"] = round(t_dlt / t_ingest, 3)
            result["floor_plus_write_to_dlt"] = round(t_dlt / (t_floor + t_write), 3)
    result["runs"] = {k: [round(v, 3) for v in vs] for k, vs in runs.items()}
    paged_n = max(500, orders // 10)
    say(f"paged: incremental GraphQL pages on {paged_n} orders (reference)…")
    result.update(_paged(paged_n, lines))
    if backfill:
        say("backfill: bulk operation under Standard-plan limits…")
        result.update(_backfill(orders, lines))
    return result


def _paged(orders: int, lines: int) -> dict[str, Any]:
    args = ["--orders", str(orders), "--no-limits", "--no-realistic", "--lines", str(lines)]
    with sandbox_process("shopify", *args) as shop_url, tempfile.TemporaryDirectory(prefix="ob-bench-") as tmp:
        hub = _hub(Path(tmp))
        recorder = RecordingTransport()
        hub.http_factory = lambda row: httpx.Client(transport=recorder, timeout=60)
        scope, shop = _connect(hub, shop_url, None, bulk=False)
        t0 = time.perf_counter()
        report = sync_channel(scope, shop)
        elapsed = time.perf_counter() - t0
        hub.close()
        if report.error or report.counts.inserted != orders:
            raise RuntimeError(f"paged sync did not store every order: {report.as_dict()}")
        floor = statistics.median(_floor(recorder.requests)[0] for _ in range(2))
    return {
        "paged_orders": orders,
        "paged_requests": len(recorder.requests),
        "paged_floor_orders_per_s": round(orders / floor, 1),
        "paged_ingest_orders_per_s": round(orders / elapsed, 1),
        "paged_ingest_to_floor": round(floor / elapsed, 3),
    }


def _backfill(orders: int, lines: int) -> dict[str, Any]:
    args = ["--orders", str(orders), "--limits", "--plan", "standard", "--no-realistic", "--lines", str(lines)]
    with sandbox_process("shopify", *args) as shop_url, tempfile.TemporaryDirectory(prefix="ob-bench-") as tmp:
        hub = _hub(Path(tmp))
        scope, shop = _connect(hub, shop_url, None, bulk=True)
        t0 = time.perf_counter()
        report = sync_channel(scope, shop)
        elapsed = time.perf_counter() - t0
        hub.close()
        if report.error or report.counts.inserted != orders:
            raise RuntimeError(f"bulk backfill did not store every order: {report.as_dict()}")
    return {"backfill_standard_plan_s": round(elapsed, 2), "backfill_orders_per_s": round(orders / elapsed, 1)}


def render(result: dict[str, Any], console: Console) -> None:
    table = Table(title=f"ingest benchmark — {result['orders']} orders × {result['lines_per_order']} lines")
    table.add_column("phase")
    table.add_column("orders/s", justify="right")
    table.add_column("ratio", justify="right")
    table.add_row("floor: fetch same pages + json.loads", str(result["floor_orders_per_s"]), "1.00")
    table.add_row(
        "ingest into the ledger", str(result["ingest_orders_per_s"]), f"{result['ingest_to_floor']:.2f} of floor"
    )
    table.add_row(
        "write floor: the same rows into a fresh ledger",
        str(result["write_floor_orders_per_s"]),
        f"ingest is {result['ingest_to_floor_plus_write']:.2f} of floor + write",
    )
    table.add_row(
        "end to end (→ ShipStation sandbox)", str(result["e2e_orders_per_s"]), f"{result['e2e_to_floor']:.2f} of floor"
    )
    if "peer_dlt_orders_per_s" in result:
        table.add_row(
            "peer: dlt rest_api extraction",
            str(result["peer_dlt_orders_per_s"]),
            f"ingest is {result['ingest_to_dlt']:.2f}× dlt; floor + write {result['floor_plus_write_to_dlt']:.2f}×",
        )
    if "backfill_standard_plan_s" in result:
        table.add_row(
            "bulk backfill, Standard limits",
            str(result["backfill_orders_per_s"]),
            f"{result['backfill_standard_plan_s']} s total",
        )
    if "paged_ingest_orders_per_s" in result:
        table.add_row(
            f"reference: paged GraphQL sync ({result['paged_orders']} orders)",
            str(result["paged_ingest_orders_per_s"]),
            f"{result['paged_ingest_to_floor']:.2f} of its floor ({result['paged_floor_orders_per_s']}/s)",
        )
    console.print(table)
    console.print(f"peak RSS {result['peak_rss_mb']} MB; {result['requests']} requests for the backfill")
