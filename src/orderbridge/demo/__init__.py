"""``orderbridge demo``: the whole flow against local sandboxes, ending in an accounting.

Starts the Shopify sandbox (a realistic store: unmapped SKUs, unknown shipping methods, statuses
that are not downloaded, test, multi-line and multi-currency orders) and the ShipStation sandbox
(ships what it receives, some partially, some with a voided label and a reshipment) on real
localhost ports; configures the hub on a fresh SQLite file with the demo key; maps the SKUs the
3PL stocks and the usual shipping methods; runs sync → post → shipments → fulfilment pushes; and
accounts for every order the channel has: posted, held (by reason) or skipped (by reason). The
numbers are cross-checked against the sandboxes' own ledgers (documents received, duplicates).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from orderbridge.connectors import registry
from orderbridge.domain.mappings import MappingKind
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import ConnectionRow, Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.queries import accounting
from orderbridge.services.reconcile import reconcile
from orderbridge.services.scope import Scope
from orderbridge.settings import Settings

#: the demo store's orders span the last 50 days: the daily audit's 60-day window covers them all
AUDIT_DAYS = 60

#: what each sandbox the demo starts accepts, by the credential names its kind declares
SANDBOX_CREDENTIALS: dict[str, dict[str, str]] = {
    "shopify": {"access_token": "shpat_sandbox"},
    "shipstation": {"api_key": "ss_key", "api_secret": "ss_secret"},
}


def connect(scope: Scope, name: str, kind: str, base_url: str) -> ConnectionRow:
    """Add a connection to a sandbox with the declared credentials it accepts (a declared credential
    the demo has no value for is an error here, not a connection that cannot sync)."""
    decl = registry.declaration(kind)
    given = SANDBOX_CREDENTIALS[kind]
    missing = [f.name for f in decl.credentials if f.required and f.name not in given]
    if missing:
        raise AssertionError(f"the demo has no sandbox value for {kind}'s {', '.join(missing)}")
    return add_connection(
        scope, name, kind, base_url, {f.name: given[f.name] for f in decl.credentials if f.name in given}
    )


@dataclass
class DemoRun:
    """A finished demo run whose sandboxes and hub are still up: its accounting (``result``), the hub
    over the demo's database, and the settings it was made with — what ``orderbridge demo`` serves
    the portal over, and what ``--screenshots`` photographs."""

    result: dict[str, Any]
    hub: Hub
    settings: Settings
    data_dir: Path


def run_demo(
    *,
    orders: int = 300,
    seed: int = 7,
    data_dir: Path | None = None,
    quiet: bool = False,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run the demo and return its accounting; everything it started is stopped again."""
    with demo_world(orders=orders, seed=seed, data_dir=data_dir, quiet=quiet, console=console) as run:
        return run.result


@contextmanager
def demo_world(
    *,
    orders: int = 300,
    seed: int = 7,
    data_dir: Path | None = None,
    quiet: bool = False,
    console: Console | None = None,
) -> Iterator[DemoRun]:
    """Run the whole flow, then yield it with the sandboxes and the hub still running; on leaving,
    stop them (and remove the temporary data directory, when none was given)."""
    from orderbridge.runtime.worker import run_cycle
    from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
    from orderbridge.sandboxes.shopify import generator
    from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox

    out = console or Console(stderr=True)

    def say(message: str) -> None:
        if not quiet:
            out.print(message)

    with ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="orderbridge-demo-")))
        settings = Settings(data_dir=data_dir, demo=True, database_url=None, secret_key=None)
        shop_state, shop_app = shopify_sandbox(orders=orders, seed=seed, realistic=True, limits=True)
        ss_state, ss_app = shipstation_sandbox(
            limits=False, ship_after_seconds=0.0, partial_rate=0.1, void_rate=0.05, seed=seed
        )
        started = time.monotonic()
        shop = stack.enter_context(run_in_thread(shop_app))
        ss = stack.enter_context(run_in_thread(ss_app))
        say(f"Shopify sandbox with {orders} orders on {shop.base_url}; ShipStation sandbox on {ss.base_url}")
        hub = Hub.from_settings(settings)
        stack.callback(hub.close)
        scope = Scope.named(hub, "default")  # the demo's own database: its one tenant
        shop_id = connect(scope, "shop", "shopify", shop.base_url).id
        warehouse = connect(scope, "warehouse", "shipstation", ss.base_url)
        needs = warehouse.declaration.mapping_kinds
        unstocked = set(generator.UNSTOCKED_SKUS)
        if MappingKind.SKU in needs:
            for sku, _title, _price in generator.CATALOG:
                if sku not in unstocked:
                    set_mapping(scope, "sku", sku, sku, warehouse.id)
        if MappingKind.SHIPPING in needs:
            for i, method in enumerate(generator.SHIPPING_METHODS):
                service = f"ups:ups_{['ground', '2nd_day_air', 'next_day_air'][i % 3]}"
                set_mapping(scope, "shipping", method, service, warehouse.id)
        say("mapped the 3PL's SKUs and the usual shipping methods; syncing…")
        first = run_cycle(scope)  # pull, post, (shipments not yet due/seen), push
        say(
            f"pulled {sum(s['fetched'] for s in first.syncs)} orders; posted "
            f"{sum(p['posted'] for p in first.posts)}; reading shipments back…"
        )
        say("pushing the warehouse's shipments to Shopify as fulfilments (within its API rate limits)…")
        second = run_cycle(scope, sync=False)  # shipments → fulfilment pushes
        third = run_cycle(scope, sync=False)  # reshipments after voided labels
        say(
            "re-reading the orders the fulfilments changed — paged GraphQL within Shopify's query-cost "
            "budget (Standard plan), about a minute…"
        )
        run_cycle(scope, post=False, shipments=False, push=False)  # fulfilments changed the orders: re-read
        acct = accounting(scope)
        say("auditing: the channel's order list against the ledger…")
        audit = reconcile(scope, shop_id, since=hub.now() - timedelta(days=AUDIT_DAYS)).as_dict()
        with httpx.Client(base_url=shop.base_url, headers={"X-Shopify-Access-Token": "shpat_sandbox"}) as client:
            channel_total = int(
                client.get("/admin/api/2025-01/orders/count.json", params={"status": "any"}).json()["count"]
            )
        docs = ss_state.orders_by_key()
        twice = sum(1 for key in docs if ss_state.create_count(key) > 1)
        fulfilments = len(shop_state.entries("fulfillment"))
        crashed = first.crashed + second.crashed + third.crashed
        posted, held, skipped = acct["posted"], acct["held"], acct["skipped"]
        result = {
            "channel_orders": channel_total,
            "posted": posted,
            "held": held,
            "skipped": skipped,
            "ready": acct["ready"],
            "unaccounted": channel_total - posted - held - skipped,
            "held_by_reason": acct["held_by_reason"],
            "skipped_by_reason": acct["skipped_by_reason"],
            "fulfilled": acct["fulfilled"],
            "destination_documents": len(docs),
            "destination_posted_twice": twice,
            "fulfilments_pushed": fulfilments,
            "shipments_read": sum(s["shipments_new"] for c in (first, second, third) for s in c.shipments),
            "crashed_jobs": crashed,
            "audit": {
                k: audit[k]
                for k in ("summary", "channel_count", "ledger_count", "recovered", "missing", "api_requests")
            },
            "seconds": round(time.monotonic() - started, 2),
        }
        yield DemoRun(result, hub, settings, data_dir)


#: the demo portal's sign-in — published here, so only ever made in a demo's own database
DEMO_EMAIL = "demo@orderbridge.example"
DEMO_PASSWORD = "orderbridge-demo"


def demo_login(run: DemoRun) -> tuple[str, str]:
    """The demo's admin user (made once; the demo's database is its own), as ``(email, password)``."""
    from orderbridge.domain.roles import Role
    from orderbridge.errors import Conflict
    from orderbridge.services.auth import create_user

    if not run.settings.demo:
        raise AssertionError("the demo login is published: it is only made in a demo's database")
    with suppress(Conflict):  # a kept --data-dir already has it
        create_user(Scope.named(run.hub, "default"), DEMO_EMAIL, "Demo admin", DEMO_PASSWORD, Role.ADMIN, by=None)
    return DEMO_EMAIL, DEMO_PASSWORD


@contextmanager
def portal_running(run: DemoRun, *, port: int | None = None) -> Iterator[str]:
    """The portal over the demo's data on a free local port (``port``: that one) with the embedded
    worker running, so Sync now and the other actions work; yields its URL."""
    import threading

    from orderbridge.runtime.worker import serve
    from orderbridge.web.app import create_app
    from orderbridge.web.metrics import HubMetrics

    stop, wake = threading.Event(), threading.Event()
    metrics = HubMetrics(run.hub)
    run.hub.observer = metrics
    worker = threading.Thread(target=serve, args=(run.hub, stop), kwargs={"wake": wake}, name="worker", daemon=True)
    worker.start()
    try:
        with run_in_thread(create_app(run.hub, metrics=metrics, wake=wake.set), port=port) as server:
            yield server.base_url
    finally:
        stop.set()
        worker.join(timeout=60)


def serve_portal(run: DemoRun, *, port: int, say: Callable[[str], None]) -> None:
    """Serve the portal over the demo's data until Ctrl-C (or SIGTERM), saying where and how to sign in."""
    import signal
    import threading

    email, password = demo_login(run)
    stopped = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stopped.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with portal_running(run, port=port) as url:
            say(f"The portal is serving the demo's data on {url}")
            say(f"Sign in as {email} with the password {password} — Ctrl-C stops.")
            stopped.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
