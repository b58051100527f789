"""The chaos run (issue #18 item 6): a fleet under faults, kills and a database restart, judged
afterwards from the sandboxes' own ledgers.

What it does, all on 127.0.0.1 (``bench/fleet.py``): a private PostgreSQL cluster; ``tenants``
tenants, each with its own Shopify store (``backfill`` orders already there, ``live`` more created
during the storm) and ShipStation account (each second of the storm the warehouses ship
``ship_share`` of the orders they received since, each shipment then to be pushed back to the
store as a fulfilment); one web process and ``workers`` worker
processes. Then, for ``storm_s`` seconds:

- every API request of every sandbox meets an injected fault with probability ``fault_rate``
  (429 with ``Retry-After``, 500, 503, a response delayed past the hub's HTTP timeout, a body
  truncated mid-JSON), drawn per request from the sandbox's seeded generator and counted there;
- a share ``webhook_drop_rate`` of the stores' webhook deliveries is silently dropped;
- every ``kill_every_s`` (± half) a random job process is killed with SIGKILL and replaced;
- at ``db_restart_at`` × the storm the PostgreSQL server is stopped as in a crash (immediate
  mode: every connection cut, no checkpoint) and started again;
- from ``outage_at`` × the storm the first tenant's ShipStation is unreachable for ``outage_s``
  (its process is stopped with SIGSTOP: connections hang, as behind a black-holed route).

Then the faults stop, the processes stay up, and the run waits (at most ``settle_s``) until the
ledgers show everything done. It checks, from the sandboxes' ledgers (never the hub's word):

- *lost*: downloadable orders (every generated one is: clean stores) with no ShipStation order;
- *posted twice*: a second ShipStation document for one order (``order_created`` more than once
  for its key). A resend after an unknown outcome lands on the same document (``orderKey``
  upserts: docs/architecture.md, posting) and is counted apart as *re-sent* — nothing is edited
  here, so every ``order_updated`` is such a resend;
- *pushed twice*: a tracking number fulfilled more than once in Shopify; *not pushed*: a shipment
  whose tracking number no fulfilment carries;
- *missing*: an audit (``services/reconcile.py``) of each tenant's store over the whole run;
- *stalled / failed without alert*: work the hub left unfinished (postings still pending,
  fulfilment pushes not settled, jobs of the job engine still ``doing`` or ``failed``), each of
  which must at least have an open alert.
"""

from __future__ import annotations

import json
import random
import signal
import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, inspect, select, text

from orderbridge.bench.fleet import (
    Fleet,
    PrivatePostgres,
    SandboxProc,
    TenantWorld,
    configure_tenants,
    hub_env,
    private_postgres,
    scope_of,
    start_tenants,
    stop_tenants,
)
from orderbridge.crypto import generate_key
from orderbridge.services.hub import Hub
from orderbridge.services.reconcile import reconcile
from orderbridge.settings import Settings
from orderbridge.storage.tables import alerts, fulfilment_pushes, postings

API = "/admin/api/2025-01"
FAULT_KINDS = ("429", "500", "503", "timeout", "truncate")


@dataclass
class ChaosConfig:
    tenants: int = 3
    backfill: int = 500
    live: int = 300
    workers: int = 2
    storm_s: float = 40.0
    fault_rate: float = 0.10
    webhook_drop_rate: float = 0.2
    kill_every_s: float = 6.0
    db_restart_at: float = 0.5
    outage_at: float = 0.2
    outage_s: float = 15.0
    #: the share of posted orders the warehouses ship during the storm (each then pushed back)
    ship_share: float = 0.15
    settle_s: float = 180.0
    http_timeout_s: float = 3.0
    seed: int = 18
    #: ``procrastinate`` (``orderbridge worker`` processes) or ``embedded`` (``serve`` processes)
    engine: str = "procrastinate"

    @classmethod
    def ci(cls) -> ChaosConfig:
        return cls()

    @classmethod
    def soak(cls) -> ChaosConfig:
        return cls(
            tenants=5, backfill=2000, live=1500, workers=3, storm_s=240.0, outage_s=60.0, settle_s=900.0, ship_share=0.4
        )


@dataclass
class ChaosResult:
    orders: int = 0
    tenants: int = 0
    faults_injected: int = 0
    faults_by_kind: dict[str, int] = field(default_factory=dict)
    api_requests: int = 0
    resent: int = 0
    kills: int = 0
    database_restarts: int = 0
    webhooks_dropped: int = 0
    outage_s: float = 0.0
    lost: int = 0
    posted_twice: int = 0
    pushed_twice: int = 0
    not_pushed: int = 0
    shipments: int = 0
    missing: int = 0
    recovered_by_audit: int = 0
    stalled: int = 0
    failed_without_alert: int = 0
    settle_s: float = 0.0
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems

    def line(self) -> str:
        return (
            f"chaos: {self.orders} orders, {self.tenants} tenants, {self.faults_injected} faults injected "
            f"(of {self.api_requests} API requests), "
            f"{self.kills} kills, {self.database_restarts} database restarts, {self.webhooks_dropped} webhooks "
            f"dropped, {self.outage_s:g} s outage — lost {self.lost}, posted twice {self.posted_twice}, "
            f"pushed twice {self.pushed_twice}, missing {self.missing} (re-sent onto the same document "
            f"{self.resent}, not pushed {self.not_pushed}, "
            f"stalled {self.stalled}, failed without alert {self.failed_without_alert}; "
            f"settled in {self.settle_s:.0f} s, {self.wall_s:.0f} s in all)"
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "line": self.line()}


def run(config: ChaosConfig, *, say: Any = None, keep_logs: Path | None = None) -> ChaosResult:
    say = say or (lambda _msg: None)
    result = ChaosResult(tenants=config.tenants)
    started = time.monotonic()
    rng = random.Random(config.seed)
    with (
        private_postgres(fsync=False, stat_statements=False) as pg,
        tempfile.TemporaryDirectory(prefix="ob-chaos-") as tmp,
    ):
        data_dir = keep_logs or Path(tmp)
        data_dir.mkdir(parents=True, exist_ok=True)
        settings = Settings(data_dir=data_dir, database_url=pg.create_database("chaos"), secret_key=generate_key())
        hub = Hub.from_settings(settings)
        worlds = start_tenants(
            config.tenants,
            orders=config.backfill,
            limits=False,
            ship_after=86400.0,  # the storm ships a share of the orders itself (_ship_some)
            webhook_drop_rate=config.webhook_drop_rate,
            seed=config.seed,
        )
        fleet: Fleet | None = None
        try:
            configure_tenants(hub, worlds)
            run_started = datetime.now(UTC) - timedelta(days=400)  # the generated stores' history
            env = hub_env(
                settings,
                ORDERBRIDGE_POLL_INTERVAL_S="3",
                ORDERBRIDGE_SHIPMENT_POLL_INTERVAL_S="2",
                ORDERBRIDGE_LEASE_TTL_S="4",
                ORDERBRIDGE_UNKNOWN_OUTCOME_SETTLE_S="2",
                ORDERBRIDGE_HTTP_TIMEOUT_S=str(config.http_timeout_s),
                ORDERBRIDGE_CURSOR_OVERLAP_S="5",
                ORDERBRIDGE_LOG_LEVEL="INFO",
                ORDERBRIDGE_WORKER_HEARTBEAT_S="0.5",
                ORDERBRIDGE_WORKER_STALLED_AFTER_S="2",
                ORDERBRIDGE_WORKER_TICK_S="1",
                ORDERBRIDGE_WEBHOOK_SYNC_DELAY_S="1",
            )
            fleet = Fleet(env, data_dir, workers=config.workers, engine=config.engine)
            fleet.start()
            say(
                f"fleet up ({config.engine}): {config.tenants} tenants × {config.backfill} orders, "
                f"{config.workers} workers"
            )
            _storm(config, pg, fleet, worlds, rng, result, say)
            say("storm over: faults cleared, waiting for the hub to settle …")
            settle_started = time.monotonic()
            _settle(config, worlds, say)
            result.settle_s = time.monotonic() - settle_started
            fleet.stop()
            _judge(hub, worlds, result, run_started)
        finally:
            if fleet is not None:
                fleet.stop()
            stop_tenants(worlds)
            hub.close()
        result.database_restarts = pg.restarts
    result.wall_s = time.monotonic() - started
    return result


def _storm(
    config: ChaosConfig,
    pg: PrivatePostgres,
    fleet: Fleet,
    worlds: list[TenantWorld],
    rng: random.Random,
    result: ChaosResult,
    say: Any,
) -> None:
    for each in [*(w.shop for w in worlds), *(w.warehouse for w in worlds)]:
        for kind in FAULT_KINDS:
            each.control(
                "POST",
                "/_sandbox/faults",
                json={
                    "kind": kind,
                    "count": -1,
                    "probability": config.fault_rate / len(FAULT_KINDS),
                    "delay": config.http_timeout_s + 1.0,
                    "retry_after": 1.0,
                },
            )
    stop = threading.Event()
    creator = threading.Thread(target=_create_live, args=(config, worlds, stop), name="chaos-orders", daemon=True)
    creator.start()
    t0 = time.monotonic()
    next_kill = t0 + rng.uniform(0.5, 1.5) * config.kill_every_s
    restart_at = t0 + config.db_restart_at * config.storm_s
    outage_from = t0 + config.outage_at * config.storm_s
    outage_until = outage_from + config.outage_s
    restarted = paused = resumed = False
    victim = worlds[0].warehouse
    outage = threading.Event()  # set while the victim is stopped: the shipper leaves it alone
    shipper = threading.Thread(
        target=_shipper, args=(config, worlds, rng.random(), stop, outage, victim), name="chaos-ship", daemon=True
    )
    shipper.start()
    while (now := time.monotonic()) < t0 + max(config.storm_s, config.outage_at * config.storm_s + config.outage_s):
        if now >= next_kill and now < t0 + config.storm_s:
            index = rng.randrange(len(fleet.job_processes()))
            fleet.kill_one(index)
            say(f"  {now - t0:5.1f} s: SIGKILL worker {index} ({fleet.kills} so far)")
            next_kill = now + rng.uniform(0.5, 1.5) * config.kill_every_s
        if not restarted and now >= restart_at:
            say(f"  {now - t0:5.1f} s: PostgreSQL restarted (immediate stop)")
            pg.restart(immediate=True)
            restarted = True
        if not paused and now >= outage_from:
            say(f"  {now - t0:5.1f} s: {worlds[0].slug}'s ShipStation unreachable for {config.outage_s:g} s")
            outage.set()
            victim.proc.send_signal(signal.SIGSTOP)
            paused = True
        if paused and not resumed and now >= outage_until:
            victim.proc.send_signal(signal.SIGCONT)
            outage.clear()
            resumed = True
            result.outage_s = config.outage_s
        time.sleep(0.1)
    stop.set()
    creator.join()
    shipper.join()
    if paused and not resumed:
        victim.proc.send_signal(signal.SIGCONT)
        result.outage_s = config.outage_s
    result.kills = fleet.kills
    for world in worlds:
        for sandbox in (world.shop, world.warehouse):
            state = sandbox.control("GET", "/_sandbox/state")
            result.api_requests += int(state.get("requests_seen", 0))
            for kind, n in state.get("faults_applied", {}).items():
                result.faults_by_kind[kind] = result.faults_by_kind.get(kind, 0) + n
            sandbox.control("DELETE", "/_sandbox/faults")
        hooks = world.shop.control("GET", "/_sandbox/webhooks")
        result.webhooks_dropped += int(hooks["counts"].get("dropped", 0))
        world.shop.control("POST", "/_sandbox/webhooks/drop", json={"rate": 0})
    result.faults_injected = sum(result.faults_by_kind.values())


def _shipper(
    config: ChaosConfig,
    worlds: list[TenantWorld],
    seed: float,
    stop: threading.Event,
    outage: threading.Event,
    victim: SandboxProc,
) -> None:
    """Every second, ship ``ship_share`` of the orders each warehouse received since the last look
    (each order considered once), until the storm ends."""
    rng = random.Random(seed)
    seen: set[str] = set()
    while not stop.wait(1.0):
        for world in worlds:
            if stop.is_set():
                return
            if world.warehouse is victim and outage.is_set():
                continue  # stopped: a control call would hang like the hub's requests
            try:
                summaries = world.warehouse.control("GET", "/_sandbox/orders")["orders"]
                for summary in summaries:
                    key = summary["orderKey"]
                    if key in seen:
                        continue
                    seen.add(key)
                    if rng.random() < config.ship_share:
                        world.warehouse.control("POST", "/_sandbox/ship", json={"orderKey": key})
            except httpx.HTTPError:
                continue  # the outage began mid-look: the next look goes on


def _create_live(config: ChaosConfig, worlds: list[TenantWorld], stop: threading.Event) -> None:
    """``live`` orders per tenant, spread over the first 80 % of the storm."""
    total = config.live * len(worlds)
    gap = (config.storm_s * 0.8) / max(total, 1)
    clients = [httpx.Client(base_url=w.shop.url, timeout=10) for w in worlds]
    try:
        for i in range(total):
            if stop.is_set():
                return
            try:
                clients[i % len(worlds)].post("/_sandbox/orders", json={})
            except httpx.HTTPError:
                continue  # a store that did not answer a control call gets one order fewer
            time.sleep(gap)
    finally:
        for c in clients:
            c.close()


def _shopify_orders(world: TenantWorld) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    url: str | None = f"{world.shop.url}{API}/orders.json?status=any&limit=250"
    with httpx.Client(headers={"X-Shopify-Access-Token": world.token}, timeout=30) as client:
        while url:
            response = client.get(url)
            response.raise_for_status()
            out.extend(response.json()["orders"])
            url = response.links.get("next", {}).get("url")
    return out


def _downloadable(order: dict[str, Any]) -> bool:
    """The stores are clean (every order paid, open, live, every SKU and method mapped): every
    order is downloadable unless the store says otherwise."""
    return not (order.get("test") or order.get("cancelled_at")) and order.get("financial_status") == "paid"


def _ledger(url: str, kind: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = httpx.get(f"{url}/_sandbox/ledger", params={"kind": kind}, timeout=30).json()
    return entries


def _outstanding(worlds: list[TenantWorld]) -> tuple[int, int]:
    """(orders not yet in ShipStation, shipments not yet fulfilled in Shopify), from the ledgers."""
    unposted = unpushed = 0
    for world in worlds:
        expected = {world.key(o["id"]) for o in _shopify_orders(world) if _downloadable(o)}
        created = {e["key"] for e in _ledger(world.warehouse.url, "order_created")}
        unposted += len(expected - created)
        shipments = world.warehouse.control("GET", "/_sandbox/shipments")["shipments"]
        tracked = {s["trackingNumber"] for s in shipments if not s.get("voided") and s.get("trackingNumber")}
        pushed = {e["data"].get("tracking_number") for e in _ledger(world.shop.url, "fulfillment")}
        unpushed += len(tracked - pushed)
    return unposted, unpushed


def _settle(config: ChaosConfig, worlds: list[TenantWorld], say: Any) -> None:
    deadline = time.monotonic() + config.settle_s
    quiet_since: float | None = None
    shown = 0.0
    while time.monotonic() < deadline:
        unposted, unpushed = _outstanding(worlds)
        if time.monotonic() - shown >= 10:
            say(f"  outstanding: {unposted} orders not posted, {unpushed} shipments not pushed")
            shown = time.monotonic()
        if unposted == 0 and unpushed == 0:
            # two clean looks, a shipment interval apart: orders posted last have shipped and been pushed
            if quiet_since is not None and time.monotonic() - quiet_since >= 3:
                return
            quiet_since = quiet_since or time.monotonic()
        else:
            quiet_since = None
        time.sleep(1.0)


def _judge(hub: Hub, worlds: list[TenantWorld], result: ChaosResult, since: datetime) -> None:
    for world in worlds:
        orders = _shopify_orders(world)
        expected = {world.key(o["id"]) for o in orders if _downloadable(o)}
        result.orders += len(orders)
        created = Counter(e["key"] for e in _ledger(world.warehouse.url, "order_created"))
        updated = Counter(e["key"] for e in _ledger(world.warehouse.url, "order_updated"))
        lost = expected - set(created)
        twice = {k for k, n in created.items() if n > 1}
        result.resent += sum(updated.values())
        result.lost += len(lost)
        result.posted_twice += len(twice)
        if lost:
            result.problems.append(f"{world.slug}: lost {sorted(lost)[:5]}")
        if twice:
            result.problems.append(f"{world.slug}: posted twice {sorted(twice)[:5]}")
        shipments = world.warehouse.control("GET", "/_sandbox/shipments")["shipments"]
        tracked = {s["trackingNumber"] for s in shipments if not s.get("voided") and s.get("trackingNumber")}
        result.shipments += len(tracked)
        pushes = Counter(e["data"].get("tracking_number") for e in _ledger(world.shop.url, "fulfillment"))
        pushed_twice = {t for t, n in pushes.items() if n > 1}
        not_pushed = tracked - set(pushes)
        result.pushed_twice += len(pushed_twice)
        result.not_pushed += len(not_pushed)
        if pushed_twice:
            result.problems.append(f"{world.slug}: fulfilled twice {sorted(pushed_twice)[:5]}")
        if not_pushed:
            result.problems.append(f"{world.slug}: shipments never pushed {sorted(not_pushed)[:5]}")
        scope = scope_of(hub, world)
        audit = reconcile(scope, world.shop_id, since=since, kind="manual")
        result.missing += audit.missing
        result.recovered_by_audit += audit.recovered + audit.refreshed
        if audit.error is not None or audit.missing:
            result.problems.append(f"{world.slug}: audit {audit.summary} {audit.error or ''}")
    stalled, unalerted, detail = _unfinished(hub)
    result.stalled, result.failed_without_alert = stalled, unalerted
    result.problems.extend(detail)


def _unfinished(hub: Hub) -> tuple[int, int, list[str]]:
    """Work left undone once the fleet stopped: (stalled, failed without an open alert, details)."""
    detail: list[str] = []
    stalled = unalerted = 0
    with hub.db.read() as conn:
        pending = conn.execute(select(func.count()).where(postings.c.status == "pending")).scalar_one()
        unsettled = conn.execute(
            select(fulfilment_pushes.c.status, func.count())
            .where(fulfilment_pushes.c.status.in_(("pending", "unknown", "retry", "recheck")))
            .group_by(fulfilment_pushes.c.status)
        ).all()
        open_alerts = conn.execute(select(func.count()).where(alerts.c.state == "open")).scalar_one()
        if pending:
            stalled += pending
            detail.append(f"{pending} postings still pending")
        for status, n in unsettled:
            stalled += n
            detail.append(f"{n} fulfilment pushes still {status}")
        if "procrastinate_jobs" in inspect(conn).get_table_names():
            counted = conn.execute(text("SELECT status, count(*) FROM procrastinate_jobs GROUP BY status")).all()
            jobs: dict[str, int] = {str(status): int(n) for status, n in counted}
            if jobs.get("doing"):
                stalled += int(jobs["doing"])
                detail.append(f"{jobs['doing']} jobs left doing")
            failed = int(jobs.get("failed", 0))
            if failed and not open_alerts:
                unalerted += failed
                detail.append(f"{failed} jobs failed with no open alert")
    return stalled, unalerted, detail


def main_json(result: ChaosResult) -> str:
    return json.dumps(result.as_dict(), indent=2)
