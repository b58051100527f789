"""One of every kind of object, in each of the two tenants: what the generated route tests ask for.

:func:`populate` gives a tenant a Shopify channel and a ShipStation destination (real sandboxes on
real ports), syncs a few orders — one held by an unmapped SKU — posts the rest, reads the
shipments back and pushes them as fulfilments, runs an audit, raises the hold alert, and adds a
mapping, a user and an API token. :class:`Objects` then holds the id of one object of each kind
(by the path parameter that names it: ``order_id`` …) and the lookup values of the routes that
address an object by what people call it (``name`` of a connection, ``order_ref`` of an order).

The second tenant's connections are named differently from the first's, so a lookup by name in
the wrong tenant can only miss.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Table, select

from orderbridge.cli.present import PRESENTATION
from orderbridge.crypto import generate_key
from orderbridge.domain.roles import Role
from orderbridge.runtime.worker import run_cycle
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shopify import generator
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.services import auth, order_imports
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.notify.holds import sync_hold_alerts
from orderbridge.services.reconcile import reconcile
from orderbridge.services.scope import Scope
from orderbridge.services.tenants import add_tenant
from orderbridge.settings import Settings
from orderbridge.storage import tables as t
from orderbridge.web.app import create_app

HELD_SKU = generator.UNSTOCKED_SKUS[0]

#: path parameter → the table whose row it names (COMMON.md's conventions)
KINDS: dict[str, Table] = {
    "order_id": t.orders,
    "connection_id": t.connections,
    "run_id": t.reconciliation_runs,
    "alert_id": t.alerts,
    "mapping_id": t.mappings,
    "token_id": t.api_tokens,
    "user_id": t.users,
    "posting_id": t.postings,
    "push_id": t.fulfilment_pushes,
    "update_id": t.order_updates,  # issue #15: a posted order changed in the store
}
#: path parameters that address an object by what people call it → (table, column)
LOOKUPS: dict[str, tuple[Table, str]] = {
    "name": (t.connections, "name"),
    "connection_name": (t.connections, "name"),
    "order_ref": (t.orders, "number"),
    "import_token": (t.import_uploads, "token"),
}


@dataclass(frozen=True)
class Objects:
    tenant_id: int
    values: dict[str, Any]  # path parameter → the value naming this tenant's object

    def __getitem__(self, param: str) -> Any:
        return self.values[param]


@dataclass(frozen=True)
class Stores:
    shop_url: str
    ss_url: str
    shop: Any = None  # the store's sandbox state (an order is changed after it was posted)


def buyer(prefix: str) -> str:
    """The e-mail address of the marked order in the store of the tenant whose names start ``prefix``."""
    return f"{prefix}buyer@example.com"


@contextmanager
def stores(prefix: str) -> Iterator[Stores]:
    """A Shopify store with a few orders (one of them held by an unmapped SKU, and one bought by
    :func:`buyer`, which no other tenant's page may show) and a 3PL that ships at once: one pair
    per tenant (a fulfilment pushed for one tenant would change the other's orders)."""
    shop, shop_app = shopify_sandbox(orders=4, seed=5, realistic=False, limits=False)
    shop.add_order(line_items=[{"sku": HELD_SKU, "quantity": 1, "price": "45.00"}])
    shop.add_order(email=buyer(prefix), note=f"{prefix}note", name=f"#{prefix}7001")
    _ss, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=0.0)
    with run_in_thread(shop_app) as s, run_in_thread(ss_app) as w:
        yield Stores(s.base_url, w.base_url, shop)


def markers(prefix: str) -> tuple[str, ...]:
    """Text that only the tenant populated with ``prefix`` has: its connections' names, its token's
    label, its clerk's address, its marked buyer."""
    return (f"{prefix}shop", f"{prefix}warehouse", f"{prefix}token", f"{prefix}clerk@", buyer(prefix))


def populate(scope: Scope, where: Stores, prefix: str) -> Objects:
    """Give the tenant one object of every kind (see the module docstring)."""
    channel = add_connection(
        scope, f"{prefix}shop", "shopify", where.shop_url, {"access_token": "shpat_sandbox"}, {"bulk_backfill": False}
    ).id
    warehouse = add_connection(
        scope, f"{prefix}warehouse", "shipstation", where.ss_url, {"api_key": "ss_key", "api_secret": "ss_secret"}
    ).id
    for sku, _title, _price in generator.CATALOG:
        set_mapping(scope, "sku", sku, sku, warehouse)
    set_mapping(scope, "shipping", "*", "ups:ups_ground", warehouse)
    first = run_cycle(scope)  # sync, post
    second = run_cycle(scope, sync=False)  # shipments → fulfilment pushes
    assert not first.crashed and not second.crashed, (first.crashed, second.crashed)
    if where.shop is not None:  # an order update (issue #15): a posted order's note changed in the store
        where.shop.update_order(min(where.shop.orders), note=f"{prefix}changed after posting")
        assert not run_cycle(scope).crashed
    reconcile(scope, channel, since=scope.now() - timedelta(days=60))
    sync_hold_alerts(scope)
    actor = auth.Actor.cli(scope)
    auth.create_token(scope, f"{prefix}token", Role.VIEWER, by=actor)
    auth.create_user(
        scope, f"{prefix}clerk@{scope.slug}.example.com", "Clerk", "a long clerk password", "viewer", by=actor
    )
    order_imports.store_upload(  # an upload previewed, not confirmed (issue #14)
        actor,
        io.BytesIO(f"order_number,currency,sku,quantity,unit_price\n{prefix}I-1,EUR,{HELD_SKU},1,1\n".encode()),
        filename=f"{prefix}orders.csv",
    )
    values: dict[str, Any] = {}
    with scope.read() as conn:
        for param, table in KINDS.items():
            found = conn.execute(
                select(table.c.id).where(table.c.tenant_id == scope.tenant_id).order_by(table.c.id.desc()).limit(1)
            ).scalar()
            assert found is not None, f"populate made no {table.name} row for tenant {scope.slug}"
            values[param] = int(found)
        for param, (table, column) in LOOKUPS.items():  # the latest: the marked order, the warehouse
            values[param] = conn.execute(
                select(table.c[column]).where(table.c.tenant_id == scope.tenant_id).order_by(table.c.id.desc()).limit(1)
            ).scalar_one()
    return Objects(scope.tenant_id, values)


@dataclass
class TwoTenants:
    """The portal on a real port over two populated tenants: ``a`` (``default``, whose users and
    tokens ask) and ``b`` (``other``, whose objects they must never reach)."""

    portal: Any  # tests.web.portal.conftest.Portal
    app: Any  # the FastAPI app served
    a: Objects
    b: Objects
    b_markers: tuple[str, ...]


@contextmanager
def two_tenants(settings: Settings) -> Iterator[TwoTenants]:
    from tests.web.portal.conftest import Portal, add_users

    hub = Hub.from_settings(settings, migrate=False, present=PRESENTATION)
    try:
        default = Scope.named(hub, "default")
        other = add_tenant(hub, "other", "Other merchant")
        add_users(default)
        add_users(other)
        with stores("") as mine, stores("other-") as theirs:
            a = populate(default, mine, "")
            b = populate(other, theirs, "other-")
            app = create_app(hub, wake=lambda: None)
            with run_in_thread(app) as running:  # type: ignore[arg-type]
                portal = Portal(hub, running.base_url, default, other, [])
                try:
                    yield TwoTenants(portal, app, a, b, markers("other-"))
                finally:
                    portal.close()
    finally:
        hub.close()


def cheap_settings(data_dir: Path, database_url: str) -> Settings:
    """The test settings of tests/conftest.py, with cheap argon2 (users sign in often here)."""
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        secret_key=generate_key(),
        poll_interval_s=0.2,
        shipment_poll_interval_s=0.2,
        cursor_overlap_s=5,
        lease_ttl_s=30,
        password_time_cost=1,
        password_memory_kib=1024,
        password_parallelism=1,
    )
