"""``orderbridge bench ingest``: how close the hub gets to the bare "fetch pages + parse JSON" floor.

All phases run in one process against sandboxes in other processes over real HTTP on localhost:

1. ``ingest``: a fresh SQLite ledger syncs N orders from the Shopify sandbox (limits off). A first
   sync of a large store is a backfill, so the connector runs a bulk operation and streams its
   JSONL, as it would against Shopify. The exact requests it sends are recorded at the transport.
2. ``floor``: the same recorded requests are replayed with a bare ``httpx.Client`` and each body
   (each line of the JSONL) is only ``json.loads``-ed (run twice; the median is used).
6. ``paged``: for reference, the incremental path (GraphQL pages sized to the 1,000-point query cost
   cap) on N/10 orders, with its own floor.
3. ``e2e``: a fresh ledger runs the worker cycle (what ``orderbridge serve`` runs): the same
   sync, with posting to the ShipStation sandbox (rate limit off, ``createorders`` batches)
   running alongside it and finishing after it.
4. ``peer_dlt``: dlt's generic ``rest_api`` source extracts the same orders from the sandbox's REST
   ``orders.json`` (Link-header pagination) — iterated bare, no pipeline/destination.
5. ``backfill``: with Shopify's Standard-plan limits on, a fresh ledger backfills through a bulk
   operation; the time is reported next to the cost-limited paging estimate.

Peak RSS is the process high-water mark after the hub phases (before the peer runs).
"""

from __future__ import annotations

import json
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from orderbridge.bench.procs import sandbox_process
from orderbridge.crypto import generate_key
from orderbridge.runtime.worker import run_cycle
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import import_mappings, set_mapping
from orderbridge.services.sync import sync_channel
from orderbridge.settings import Settings

TOKEN = "shpat_sandbox"


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


def _hub(data_dir: Path) -> Hub:
    settings = Settings(data_dir=data_dir, secret_key=generate_key(), cursor_overlap_s=0)
    return Hub.from_settings(settings)


def _map_everything(hub: Hub) -> None:
    from orderbridge.sandboxes.shopify import generator

    csv = "\n".join(f"{sku},{sku}" for sku, _t, _p in generator.CATALOG)
    import_mappings(hub, "sku", csv, "warehouse")
    for method in [*generator.SHIPPING_METHODS, *generator.UNKNOWN_SHIPPING_METHODS]:
        set_mapping(hub, "shipping", method, "ups:ups_ground", "warehouse")


def _connect(hub: Hub, shop_url: str, ss_url: str | None, *, bulk: bool) -> None:
    add_connection(hub, "shop", "shopify", shop_url, {"access_token": TOKEN}, {"bulk_backfill": bulk})
    if ss_url is not None:
        add_connection(hub, "warehouse", "shipstation", ss_url, {"api_key": "ss_key", "api_secret": "ss_secret"})


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


def run(
    *, orders: int = 20_000, lines: int = 3, peer: bool = True, backfill: bool = True, quiet: bool = False
) -> dict[str, Any]:
    out = Console(stderr=True)

    def say(message: str) -> None:
        if not quiet:
            out.print(message)

    result: dict[str, Any] = {"orders": orders, "lines_per_order": lines}
    shop_args = ["--orders", str(orders), "--no-limits", "--no-realistic", "--lines", str(lines)]
    with (
        sandbox_process("shopify", *shop_args) as shop_url,
        sandbox_process("shipstation", "--no-limits", "--ship-after", "3600") as ss_url,
    ):
        with tempfile.TemporaryDirectory(prefix="ob-bench-") as tmp:
            # 1. ingest, recording the requests
            say(f"ingest: {orders} orders (first sync: bulk export)…")
            hub = _hub(Path(tmp) / "ingest")
            recorder = RecordingTransport()
            hub.http_factory = lambda row: (
                httpx.Client(transport=recorder, timeout=60) if row.kind == "shopify" else None
            )
            _connect(hub, shop_url, None, bulk=True)
            t0 = time.perf_counter()
            report = sync_channel(hub, "shop")
            t_ingest = time.perf_counter() - t0
            hub.close()
            if report.error or report.counts.inserted != orders:
                raise RuntimeError(f"ingest did not store every order: {report.as_dict()}")
            # 3. end to end
            say("e2e: ingest + post to ShipStation…")
            hub = _hub(Path(tmp) / "e2e")
            _connect(hub, shop_url, ss_url, bulk=True)
            _map_everything(hub)
            t0 = time.perf_counter()
            cycle = run_cycle(hub, shipments=False, push=False)  # what `orderbridge serve` runs
            t_e2e = time.perf_counter() - t0
            hub.close()
            posted = sum(p["posted"] for p in cycle.posts)
            if posted != orders or cycle.crashed or any(p["error"] for p in cycle.posts):
                raise RuntimeError(f"e2e did not post every order: {cycle}")
            result["peak_rss_mb"] = round(_peak_rss_mb(), 1)
            # 2. floor: the same requests, JSON parse only (after the hub phases: not in the hub's peak)
            say(f"floor: replaying {len(recorder.requests)} requests…")
            floors = [_floor(recorder.requests)[0] for _ in range(2)]
            t_floor = statistics.median(floors)
        received = httpx.get(f"{ss_url}/_sandbox/state", timeout=30).json()
        result["destination_state"] = {k: v for k, v in received.items() if k != "requests_seen"}
        result.update(
            floor_orders_per_s=round(orders / t_floor, 1),
            ingest_orders_per_s=round(orders / t_ingest, 1),
            e2e_orders_per_s=round(orders / t_e2e, 1),
            ingest_to_floor=round(t_floor / t_ingest, 3),
            e2e_to_floor=round(t_floor / t_e2e, 3),
            requests=len(recorder.requests),
            graphql_cost_points=report.cost,
        )
        if peer:
            say("peer: dlt rest_api over REST orders.json…")
            t_dlt, n = _dlt_peer(shop_url)
            if n != orders:
                raise RuntimeError(f"dlt extracted {n} orders, expected {orders}")
            result["peer_dlt_orders_per_s"] = round(orders / t_dlt, 1)
            result["ingest_to_dlt"] = round(t_dlt / t_ingest, 3)
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
        _connect(hub, shop_url, None, bulk=False)
        t0 = time.perf_counter()
        report = sync_channel(hub, "shop")
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
        _connect(hub, shop_url, None, bulk=True)
        t0 = time.perf_counter()
        report = sync_channel(hub, "shop")
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
        "end to end (→ ShipStation sandbox)", str(result["e2e_orders_per_s"]), f"{result['e2e_to_floor']:.2f} of floor"
    )
    if "peer_dlt_orders_per_s" in result:
        table.add_row(
            "peer: dlt rest_api extraction",
            str(result["peer_dlt_orders_per_s"]),
            f"ingest is {result['ingest_to_dlt']:.2f}× dlt",
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
