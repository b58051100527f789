"""Two tenants, each with a Shopify channel ``shop`` and a ShipStation destination ``wh`` of its own
(decision 80): whatever runs in one tenant's scope never reads or writes the other's rows, and never
speaks to the other's systems.

The two shops are separate sandboxes that hand out the *same* order ids and numbers (#1001, …), the
connections have the same names, the SKUs are the same: only the tenant tells them apart. Every
table with a ``tenant_id`` is counted per tenant before and after; each sandbox counts the requests
it was sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from orderbridge.connectors.base import Role
from orderbridge.errors import InvalidInput, NotFound
from orderbridge.runtime.worker import run_cycle
from orderbridge.sandboxes.base import in_process_client
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shipstation.state import ShipStationState
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.sandboxes.shopify.state import ShopifyState
from orderbridge.services import notify
from orderbridge.services.backsync import poll_shipments, push_fulfilments
from orderbridge.services.connections import add_connection, list_connections, update_connection
from orderbridge.services.health import health_report
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping, unmapped
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import accounting, holds, list_orders, retry_order, show_order
from orderbridge.services.reconcile import due_audits, list_reports, reconcile
from orderbridge.services.scope import Scope
from orderbridge.services.sync import sync_channel
from orderbridge.services.tenants import add_tenant, list_tenants
from orderbridge.storage.tables import metadata

TOKEN = "shpat_sandbox"
LINES = [{"sku": "TEE-BLK-S", "quantity": 1, "price": "24.00"}, {"sku": "MUG-12OZ", "quantity": 2, "price": "16.00"}]


@dataclass
class Tenant:
    scope: Scope
    shop: ShopifyState
    ss: ShipStationState
    host: str
    requests: list[str] = field(default_factory=list)

    @property
    def shop_id(self) -> int:
        return self.scope.connection_id("shop")

    @property
    def wh_id(self) -> int:
        return self.scope.connection_id("wh")

    def key(self, external_id: str) -> str:
        return f"ob-{self.shop_id}-{external_id}"


def rows_per_tenant(hub: Hub) -> dict[str, dict[int, int]]:
    """For every table carrying ``tenant_id``: how many rows each tenant has."""
    counts: dict[str, dict[int, int]] = {}
    with hub.db.read() as conn:
        for table in metadata.sorted_tables:
            if "tenant_id" not in table.c:
                continue
            counts[table.name] = {
                int(t): int(n)
                for t, n in conn.execute(select(table.c.tenant_id, func.count()).group_by(table.c.tenant_id))
            }
    return counts


def of(counts: dict[str, dict[int, int]], tenant_id: int) -> dict[str, int]:
    return {name: per.get(tenant_id, 0) for name, per in counts.items()}


@pytest.fixture
def tenants(hub: Hub) -> Iterator[tuple[Tenant, Tenant]]:
    made: list[Tenant] = []
    apps: dict[str, Any] = {}
    for slug in ("acme", "globex"):
        scope = add_tenant(hub, slug, slug.title())
        shop, shop_app = shopify_sandbox(orders=0, limits=False)
        ss, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=3600.0)
        tenant = Tenant(scope, shop, ss, f"{slug}.local")
        apps[f"http://shop.{tenant.host}"] = shop_app
        apps[f"http://ss.{tenant.host}"] = ss_app
        made.append(tenant)
        add_connection(scope, "shop", "shopify", f"http://shop.{tenant.host}", {"access_token": TOKEN})
        add_connection(
            scope, "wh", "shipstation", f"http://ss.{tenant.host}", {"api_key": "ss_key", "api_secret": "ss_secret"}
        )
    by_host = {t.host: t for t in made}

    def client(row: Any) -> httpx.Client:
        http = in_process_client(apps[row.base_url], row.base_url)
        tenant = by_host[row.base_url.split(".", 1)[1]]
        http.event_hooks["request"].append(lambda request: tenant.requests.append(str(request.url)))
        return http

    hub.http_factory = client
    hub.sleep = lambda _seconds: None
    a, b = made
    for sku in ("TEE-BLK-S", "MUG-12OZ"):
        set_mapping(a.scope, "sku", sku, sku, a.wh_id)
    set_mapping(a.scope, "shipping", "Standard", "ups:ups_ground", a.wh_id)
    set_mapping(b.scope, "shipping", "Standard", "ups:ups_ground", b.wh_id)  # B's SKUs stay unmapped
    yield a, b
    for t in made:
        t.shop.close()


def test_two_tenants_with_same_named_connections_never_touch_each_others_rows(
    hub: Hub, tenants: tuple[Tenant, Tenant]
) -> None:
    a, b = tenants
    assert a.shop_id != b.shop_id and a.wh_id != b.wh_id
    a_orders = [str(a.shop.add_order(line_items=LINES)["id"]) for _ in range(3)]
    b_orders = [str(b.shop.add_order(line_items=LINES)["id"]) for _ in range(2)]
    assert a_orders[:2] == b_orders  # the same channel ids in both shops
    sync_channel(b.scope, b.shop_id)  # B's orders are in the ledger (held: SKUs unmapped) before A runs
    before = rows_per_tenant(hub)
    b.requests.clear()

    # --- sync, post, shipments, pushes of A ---
    assert sync_channel(a.scope, a.shop_id).counts.inserted == 3
    report = post_ready(a.scope, a.wh_id)
    assert (report.posted, report.error) == (3, None)
    audit = reconcile(a.scope, a.shop_id, since=a.scope.now() - timedelta(hours=1), until=a.scope.now())
    assert (audit.channel_count, audit.ledger_count, audit.recovered, audit.missing) == (3, 3, 0, 0)
    for ext in a_orders:
        a.ss.ship_now(a.key(ext))
    assert poll_shipments(a.scope, a.wh_id).shipments_new == 3
    assert push_fulfilments(a.scope, a.shop_id).pushed == 3
    assert all(len(a.shop.fulfillments(int(ext))) == 1 for ext in a_orders)

    # --- read models of A ---
    assert accounting(a.scope)["posted"] == 3 and accounting(a.scope)["held"] == 0
    assert holds(a.scope) == [] and unmapped(a.scope) == []
    assert [o.external_id for o in list_orders(a.scope)] == list(reversed(a_orders))
    assert show_order(a.scope, "#1001").state == "fulfilled"  # not "matches 2 orders"
    assert {c["name"]: c["health"] for c in health_report(a.scope)["connections"]} == {
        "shop": "healthy",
        "wh": "healthy",
    }
    assert [c.name for c in list_connections(a.scope)] == ["shop", "wh"]
    assert [r["connection_id"] for r in list_reports(a.scope)] == [a.shop_id]
    notify.sync_hold_alerts(a.scope)
    assert notify.list_alerts(a.scope) == []

    # B was neither read nor written, and its systems were never asked anything
    after = rows_per_tenant(hub)
    assert of(after, b.scope.tenant_id) == of(before, b.scope.tenant_id)
    assert b.requests == []
    assert b.shop.fulfillments() == [] and b.ss.orders_by_key() == {}
    assert of(after, a.scope.tenant_id)["orders"] == 3

    # --- B's own view: its holds, its alerts, none of A's ---
    groups = holds(b.scope)
    assert {(g.code, g.value, g.orders) for g in groups} == {
        ("sku_unmapped", "TEE-BLK-S", 2),
        ("sku_unmapped", "MUG-12OZ", 2),
    }
    assert accounting(b.scope)["held"] == 2 and accounting(b.scope)["posted"] == 0
    assert show_order(b.scope, "#1001").state == "held"
    notify.sync_hold_alerts(b.scope)
    assert {al.kind for al in notify.list_alerts(b.scope)} == {"new_hold_reason"}
    assert notify.list_alerts(a.scope) == []
    assert list_reports(b.scope) == []
    a_count = of(rows_per_tenant(hub), a.scope.tenant_id)
    # a mapping in B releases B's orders only; A's ledger does not move
    set_mapping(b.scope, "sku", "TEE-BLK-S", "TEE-BLK-S", b.wh_id)
    set_mapping(b.scope, "sku", "MUG-12OZ", "MUG-12OZ", b.wh_id)
    assert post_ready(b.scope, b.wh_id).posted == 2
    assert set(b.ss.orders_by_key()) == {b.key(ext) for ext in b_orders}
    assert set(a.ss.orders_by_key()) == {a.key(ext) for ext in a_orders}
    assert of(rows_per_tenant(hub), a.scope.tenant_id) == a_count


def test_a_scope_refuses_another_tenants_connection_ids(tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    b.shop.add_order(line_items=LINES)
    for call in (
        lambda: sync_channel(a.scope, b.shop_id),
        lambda: post_ready(a.scope, b.wh_id),
        lambda: poll_shipments(a.scope, b.wh_id),
        lambda: push_fulfilments(a.scope, b.shop_id),
        lambda: reconcile(a.scope, b.shop_id, since=a.scope.now() - timedelta(hours=1)),
        lambda: update_connection(a.scope, b.shop_id, settings={"bulk_backfill": False}),
        lambda: set_mapping(a.scope, "sku", "TEE-BLK-S", "X", b.wh_id),
        lambda: list_orders(a.scope, connection_id=b.shop_id),
    ):
        with pytest.raises(NotFound):
            call()
    assert b.requests == []
    with a.scope.read() as conn:
        assert [r.id for r in a.scope.connections(conn, Role.CHANNEL)] == [a.shop_id]
    with pytest.raises(NotFound):
        show_order(a.scope, "#1001")  # B's order, not A's
    with pytest.raises(NotFound):
        retry_order(a.scope, "#1001")
    with pytest.raises(InvalidInput):  # names are unique per tenant
        add_connection(a.scope, "shop", "shopify", "http://x", {"access_token": "t"})
    add_connection(a.scope, "shop2", "shopify", "http://shop.acme.local", {"access_token": TOKEN})


def test_the_runtime_serves_every_tenant_each_in_its_own_scope(hub: Hub, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    set_mapping(b.scope, "sku", "TEE-BLK-S", "TEE-BLK-S", b.wh_id)
    set_mapping(b.scope, "sku", "MUG-12OZ", "MUG-12OZ", b.wh_id)
    a_orders = [str(a.shop.add_order(line_items=LINES)["id"]) for _ in range(2)]
    b_orders = [str(b.shop.add_order(line_items=LINES)["id"]) for _ in range(3)]
    assert [t.slug for t in list_tenants(hub)] == ["default", "acme", "globex"]
    for scope in Scope.every(hub):
        report = run_cycle(scope)
        assert report.crashed == []
    assert set(a.ss.orders_by_key()) == {a.key(ext) for ext in a_orders}
    assert set(b.ss.orders_by_key()) == {b.key(ext) for ext in b_orders}
    assert {d[0] for d in due_audits(a.scope)} == {a.shop_id}
