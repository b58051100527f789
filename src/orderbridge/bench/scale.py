"""``orderbridge bench scale``: end-to-end throughput and latency of a hub fleet on PostgreSQL, for
1, 2 and 4 worker processes, with the database and CPU cost per order.

Each phase starts afresh (a new database from a migrated template, new sandboxes): T tenants, each
with its own Shopify store and ShipStation account (separate sandbox processes, credentials of
their own), one web process receiving webhooks and W worker processes (``bench/fleet.py``), on a
private PostgreSQL cluster with ``pg_stat_statements``. Then:

1. *idle*: 3 s with no orders — the statements and CPU the fleet spends doing nothing (its polling
   of every tenant), per second;
2. *load*: ``orders`` orders per tenant created in the Shopify sandboxes as fast as their control
   API takes them (one thread per tenant); each one's creation time is taken just before its
   request. The store sends its ``orders/create`` webhook; the hub ingests and posts it. The
   posted time is the ShipStation sandbox's own ledger timestamp of the ``createorder(s)`` that
   carried it.

Figures per phase: orders/s (all orders over first creation → last posting), p50/p99 latency
(creation → posting), statements per order (``pg_stat_statements`` calls in the phase's database,
idle included — what the fleet really cost — and net of the idle rate), CPU ms per order of the
hub's processes, of PostgreSQL, and of the sandboxes. Scaling efficiency of W workers is
``throughput_W / (W × throughput_1)`` against the W=1 phase of the same run.

The phases with rate limits off measure the hub; one phase with the sandboxes' real limits
(ShipStation's 40 requests/minute per account, Shopify's query cost bucket) shows what a real
account allows, which no number of workers changes.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from orderbridge.bench.fleet import (
    Fleet,
    PrivatePostgres,
    TenantWorld,
    configure_tenants,
    hub_env,
    private_postgres,
    start_tenants,
    stop_tenants,
)
from orderbridge.crypto import generate_key
from orderbridge.services.hub import Hub
from orderbridge.settings import Settings

IDLE_S = 3.0


def run(
    *,
    tenants: int = 4,
    orders: int = 150,
    workers: tuple[int, ...] = (1, 2, 4),
    limits_run: bool = True,
    limited_orders: int = 40,
    timeout_s: float = 120.0,
    engine: str = "procrastinate",
    quiet: bool = False,
) -> dict[str, Any]:
    def say(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    result: dict[str, Any] = {"tenants": tenants, "orders_per_tenant": orders, "engine": engine, "phases": []}
    started = time.monotonic()
    with private_postgres() as pg:
        template = "ob_template"
        pg.create_database(template)
        key = generate_key()
        with tempfile.TemporaryDirectory(prefix="ob-scale-") as tmp:
            hub = Hub.from_settings(Settings(data_dir=Path(tmp), database_url=pg.url(template), secret_key=key))
            hub.close()
            plan = [(w, False, orders) for w in workers] + ([(1, True, limited_orders)] if limits_run else [])
            for i, (w, limits, n) in enumerate(plan):
                say(f"phase {i + 1}/{len(plan)}: W={w}, limits {'on' if limits else 'off'}, {tenants}×{n} orders …")
                phase = _phase(pg, template, key, Path(tmp) / f"p{i}", w, limits, tenants, n, timeout_s, engine)
                result["phases"].append(phase)
                say(
                    f"  {phase['orders_per_s']} orders/s, p50 {phase['p50_ms']} ms, p99 {phase['p99_ms']} ms, "
                    f"{phase['statements_per_order']} statements/order"
                )
    base = next((p for p in result["phases"] if p["workers"] == 1 and not p["limits"]), None)
    for p in result["phases"]:
        if base and not p["limits"] and base["orders_per_s"]:
            p["efficiency"] = round(p["orders_per_s"] / (p["workers"] * base["orders_per_s"]), 2)
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def _phase(
    pg: PrivatePostgres,
    template: str,
    key: str,
    data_dir: Path,
    w: int,
    limits: bool,
    tenants: int,
    n: int,
    timeout_s: float,
    engine: str,
) -> dict[str, Any]:
    data_dir.mkdir(parents=True)
    t_setup = time.monotonic()
    name = f"ob_phase_{data_dir.name}"
    settings = Settings(data_dir=data_dir, database_url=pg.create_database(name, template), secret_key=key)
    worlds = start_tenants(tenants, limits=limits)
    fleet: Fleet | None = None
    try:
        hub = Hub.from_settings(settings, migrate=False)
        configure_tenants(hub, worlds)
        hub.close()
        env = hub_env(
            settings,
            ORDERBRIDGE_POLL_INTERVAL_S="60",
            ORDERBRIDGE_SHIPMENT_POLL_INTERVAL_S="3600",
            ORDERBRIDGE_WEBHOOKS="true",
            ORDERBRIDGE_LOG_LEVEL="WARNING",
            ORDERBRIDGE_WORKER_TICK_S="1",
        )
        fleet = Fleet(env, data_dir, workers=w, engine=engine)
        fleet.start()
        _wait_subscribed(worlds)
        time.sleep(1.5)  # the first (empty) syncs
        setup_s = time.monotonic() - t_setup
        # idle
        pg.reset_statements()
        cpu0_hub, cpu0_pg = fleet.cpu_seconds(), pg.cpu_seconds()
        time.sleep(IDLE_S)
        idle_statements = pg.statements(name) / IDLE_S
        idle_hub_cpu = (fleet.cpu_seconds() - cpu0_hub) / IDLE_S
        idle_pg_cpu = (pg.cpu_seconds() - cpu0_pg) / IDLE_S
        # load
        pg.reset_statements()
        cpu1_hub, cpu1_pg = fleet.cpu_seconds(), pg.cpu_seconds()
        cpu1_web = fleet.web_cpu_seconds()
        cpu1_sb = sum(x.shop.cpu_seconds() + x.warehouse.cpu_seconds() for x in worlds)
        load_started = time.monotonic()
        created = _create(worlds, n)
        creation_s = time.monotonic() - load_started
        posted = _wait_posted(worlds, created, timeout_s)
        elapsed_load = time.monotonic() - load_started
        statements = pg.statements(name)
        hub_cpu = fleet.cpu_seconds() - cpu1_hub
        web_cpu = fleet.web_cpu_seconds() - cpu1_web
        pg_cpu = pg.cpu_seconds() - cpu1_pg
        sb_cpu = sum(x.shop.cpu_seconds() + x.warehouse.cpu_seconds() for x in worlds) - cpu1_sb
    finally:
        t_stop = time.monotonic()
        if fleet is not None:
            fleet.stop()
        stop_tenants(worlds)
        stop_s = time.monotonic() - t_stop
    total = len(created)
    done = [k for k in created if k in posted]
    lat = sorted((posted[k] - created[k]).total_seconds() * 1000 for k in done)
    first = min(created.values())
    span = (max(posted[k] for k in done) - first).total_seconds() if done else float("nan")
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) >= 2 else [float("nan")] * 99
    per = max(len(done), 1)
    return {
        "workers": w,
        "limits": limits,
        "orders": total,
        "posted": len(done),
        "not_posted": total - len(done),
        "orders_per_s": round(len(done) / span, 1) if done and span > 0 else None,
        "created_per_s": round(total / creation_s, 1),
        "p50_ms": round(statistics.median(lat), 1) if lat else None,
        "p99_ms": round(q[98], 1) if lat else None,
        "max_ms": round(lat[-1], 1) if lat else None,
        "statements_per_order": round(statements / per, 1),
        "statements_per_order_net_of_idle": round((statements - idle_statements * elapsed_load) / per, 1),
        "idle_statements_per_s": round(idle_statements, 1),
        "hub_cpu_ms_per_order": round(hub_cpu * 1000 / per, 2),
        "web_cpu_ms_per_order": round(web_cpu * 1000 / per, 2),
        "postgres_cpu_ms_per_order": round(pg_cpu * 1000 / per, 2),
        "sandbox_cpu_ms_per_order": round(sb_cpu * 1000 / per, 2),
        "idle_hub_cpu_per_s": round(idle_hub_cpu, 3),
        "idle_postgres_cpu_per_s": round(idle_pg_cpu, 3),
        "setup_s": round(setup_s, 1),
        "load_s": round(elapsed_load, 1),
        "stop_s": round(stop_s, 1),
    }


def _wait_subscribed(worlds: list[TenantWorld], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    pending = list(worlds)
    while pending:
        pending = [w for w in pending if not w.shop.control("GET", "/_sandbox/webhooks")["subscriptions"]]
        if time.monotonic() > deadline:
            raise RuntimeError(f"webhooks were not subscribed for {[w.slug for w in pending]}")
        time.sleep(0.2)


def _create(worlds: list[TenantWorld], n: int) -> dict[str, datetime]:
    created: dict[str, datetime] = {}
    lock = threading.Lock()

    def one_tenant(world: TenantWorld) -> None:
        with httpx.Client(base_url=world.shop.url, timeout=30) as client:
            for _ in range(n):
                at = datetime.now(UTC)
                order = client.post("/_sandbox/orders", json={}).json()
                with lock:
                    created[world.key(order["id"])] = at

    with ThreadPoolExecutor(max_workers=len(worlds)) as pool:
        list(pool.map(one_tenant, worlds))
    return created


def _wait_posted(worlds: list[TenantWorld], created: dict[str, datetime], timeout_s: float) -> dict[str, datetime]:
    posted: dict[str, datetime] = {}
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=30) as client:
        while time.monotonic() < deadline:
            for world in worlds:
                entries = client.get(f"{world.warehouse.url}/_sandbox/ledger", params={"kind": "order_created"})
                for e in entries.json():
                    if e["key"] in created and e["key"] not in posted:
                        posted[e["key"]] = datetime.fromisoformat(e["at"])
            if len(posted) == len(created):
                break
            time.sleep(0.25)
    return posted


def render(result: dict[str, Any], console: Console) -> None:
    table = Table(
        "W", "limits", "posted", "orders/s", "efficiency", "p50 ms", "p99 ms", "stmts/order", "net of idle",
        "hub CPU ms/order", "PG CPU ms/order",
    )  # fmt: skip
    for p in result["phases"]:
        table.add_row(
            str(p["workers"]),
            "on" if p["limits"] else "off",
            f"{p['posted']}/{p['orders']}",
            str(p["orders_per_s"]),
            str(p.get("efficiency", "—")),
            str(p["p50_ms"]),
            str(p["p99_ms"]),
            str(p["statements_per_order"]),
            str(p["statements_per_order_net_of_idle"]),
            str(p["hub_cpu_ms_per_order"]),
            str(p["postgres_cpu_ms_per_order"]),
        )
    console.print(
        f"{result['tenants']} tenants × {result['orders_per_tenant']} orders per phase (limits-on phase: fewer), "
        f"webhooks on, PostgreSQL, {result['engine']} engine; {result['wall_s']} s in all"
    )
    console.print(table)
