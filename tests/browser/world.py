"""A running hub for the browser tests: the real HTTP server, two sandboxes, the embedded worker.

What a merchant's browser meets in production, in one process: a Shopify sandbox and a ShipStation
sandbox on real localhost ports, the hub's FastAPI app (``create_app``) under uvicorn on a free
port, and the embedded worker (``runtime.worker.serve``: syncs, the poster, shipments, pushes,
housekeeping) on its own thread — so an order that is mapped from the portal is posted by the
worker, and the browser sees it change without the test calling a service.

The store is seeded with plain orders (every SKU mapped) and a few orders holding an SKU the
warehouse has no mapping for (``HELD_SKU``), so the dashboard, the inbox and the exceptions screen
have a held group to show. One world per test module (starting one takes about a second, syncing
the store another); tests that change it leave it as the next test can use it.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from orderbridge.cli.present import PRESENTATION
from orderbridge.crypto import generate_key
from orderbridge.domain.roles import Role
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shipstation.state import ShipStationState
from orderbridge.sandboxes.shopify import generator
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.sandboxes.shopify.state import ShopifyState
from orderbridge.services.auth import create_user
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.scope import Scope
from orderbridge.settings import Settings
from orderbridge.storage.tables import orders, postings
from orderbridge.web.app import create_app
from orderbridge.web.metrics import HubMetrics

SHOP_TOKEN = "shpat_sandbox"
SHOP_SECRET = "shpss_browser"
#: the SKU the warehouse has no mapping for: the orders carrying it are held (sku_unmapped)
HELD_SKU = generator.UNSTOCKED_SKUS[0]
PASSWORD = "correct horse battery staple"
PLAIN_ORDERS = 12
HELD_ORDERS = 3


@dataclass
class World:
    hub: Hub
    url: str
    shop: ShopifyState
    ss: ShipStationState
    shop_id: int
    warehouse_id: int
    wake: threading.Event
    held_ids: list[str] = field(default_factory=list)  # the held orders' channel ids
    app: Any = None  # the FastAPI app served (its route table)

    def email(self, role: str) -> str:
        """The sign-in of the default tenant's user of ``role`` (each role has one; PASSWORD)."""
        return f"{role}@browser.example.com"

    @property
    def scope(self) -> Scope:
        return Scope.named(self.hub, "default")

    def states(self) -> dict[str, str]:
        """Channel order id → the order's state in the ledger."""
        with self.hub.db.read() as conn:
            return {r.external_id: r.state for r in conn.execute(select(orders.c.external_id, orders.c.state))}

    def order_id(self, external_id: str) -> int:
        """The ledger id (the portal's ``order_id``) of the channel order ``external_id``."""
        with self.hub.db.read() as conn:
            return int(conn.execute(select(orders.c.id).where(orders.c.external_id == external_id)).scalar_one())

    def documents(self, external_id: str) -> int:
        """How many times the ShipStation sandbox created the document of ``external_id`` (its ledger)."""
        return sum(
            1
            for e in self.ss.entries("order_created")
            if e.key.startswith("ob-") and e.key.split("-", 2)[2] == external_id
        )

    def version(self, external_id: str) -> int:
        with self.hub.db.read() as conn:
            return int(conn.execute(select(orders.c.version).where(orders.c.external_id == external_id)).scalar_one())

    def posting_versions(self, external_id: str) -> list[int]:
        """The order versions the warehouse has a posted posting of, in order."""
        with self.hub.db.read() as conn:
            rows = conn.execute(
                select(postings.c.order_version)
                .join(orders, orders.c.id == postings.c.order_id)
                .where(orders.c.external_id == external_id, postings.c.status == "posted")
                .order_by(postings.c.order_version)
            )
            return [int(v) for (v,) in rows]

    def ss_requests(self, external_id: str) -> list[str]:
        """What the ShipStation sandbox's ledger recorded for the order (creates and updates)."""
        return [e.kind for e in self.ss.entries() if e.key.endswith(f"-{external_id}")]

    def count(self) -> int:
        with self.hub.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(orders)).scalar_one())

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float = 20.0) -> None:
        """Poll ``check`` until it holds (waking the worker's poster each time), else fail naming ``what``."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
            self.wake.set()
            time.sleep(0.05)


def settings_for(data_dir: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key=generate_key(),
        poll_interval_s=0.5,
        shipment_poll_interval_s=1.0,
        cursor_overlap_s=5,
        lease_ttl_s=30,
        webhooks=False,  # the worker polls; the sandbox's webhooks are not subscribed
        password_time_cost=1,  # cheap argon2: every test signs someone in
        password_memory_kib=1024,
        password_parallelism=1,
    )


@contextmanager
def running_world(
    data_dir: Path, template: Path, *, seed: Callable[[World], None] | None = None, ship_after_s: float = 3600.0
) -> Iterator[World]:
    """Start everything on a fresh copy of the migrated SQLite ``template``; stop it all afterwards.
    ``seed`` adds to the store before the first sync; the 3PL ships ``ship_after_s`` after a post."""
    db_path = data_dir / "orderbridge.db"
    shutil.copy(template, db_path)
    settings = settings_for(data_dir, f"sqlite:///{db_path}")
    shop, shop_app = shopify_sandbox(
        orders=PLAIN_ORDERS, seed=13, realistic=False, limits=False, api_secret=SHOP_SECRET
    )
    ss, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=ship_after_s)
    stop = threading.Event()
    wake = threading.Event()
    with ExitStack() as stack:
        s = stack.enter_context(run_in_thread(shop_app))
        w = stack.enter_context(run_in_thread(ss_app))
        hub = Hub.from_settings(settings, migrate=False, present=PRESENTATION)
        stack.callback(hub.close)
        scope = Scope.named(hub, "default")
        shop_id = add_connection(
            scope,
            "shop",
            "shopify",
            s.base_url,
            {"access_token": SHOP_TOKEN, "api_secret": SHOP_SECRET},
            {"bulk_backfill": False},
        ).id
        warehouse_id = add_connection(
            scope, "warehouse", "shipstation", w.base_url, {"api_key": "ss_key", "api_secret": "ss_secret"}
        ).id
        for sku, _title, _price in generator.CATALOG:
            set_mapping(scope, "sku", sku, sku, warehouse_id)
        set_mapping(scope, "shipping", "*", "ups:ups_ground", warehouse_id)
        world = World(hub, "", shop, ss, shop_id, warehouse_id, wake)
        for role in Role:
            create_user(scope, world.email(role.value), f"{role.value.title()} Person", PASSWORD, role, by=None)
        for _ in range(HELD_ORDERS):
            placed = shop.add_order(line_items=[{"sku": HELD_SKU, "quantity": 1, "price": "45.00", "title": "Print"}])
            world.held_ids.append(str(placed["id"]))
        if seed is not None:
            seed(world)
        metrics = HubMetrics(hub)
        hub.observer = metrics
        app = world.app = create_app(hub, metrics=metrics, wake=wake.set)
        server = stack.enter_context(run_in_thread(app))  # type: ignore[arg-type]
        world.url = server.base_url

        from orderbridge.runtime.worker import serve

        worker = threading.Thread(
            target=serve,
            args=(hub, stop),
            kwargs={"tick_s": 0.2, "wake": wake, "housekeeping_every_s": 2.0},
            name="worker",
            daemon=True,
        )
        worker.start()

        def halt() -> None:
            stop.set()
            worker.join(timeout=30)

        stack.callback(halt)
        expected = len(shop.orders)
        world.wait_for(
            f"the worker to sync the store's {expected} orders and post the mapped ones",
            lambda: _settled(world, expected),
            timeout=60,
        )
        yield world


def _settled(world: World, expected: int) -> bool:
    states = world.states()
    return len(states) == expected and all(s not in ("received", "ready") for s in states.values())


def get(world: World, path: str, **kwargs: Any) -> httpx.Response:
    with httpx.Client(base_url=world.url, timeout=10) as client:
        return client.get(path, **kwargs)
