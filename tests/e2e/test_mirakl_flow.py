"""End to end over real HTTP: Mirakl sandbox → OrderBridge → ShipStation sandbox (issue #16 item 3).

Orders waiting for acceptance and paid ones are read from Mirakl, posted to the 3PL once each
(an unmapped SKU held), and a reconciliation audit of the Mirakl connection recovers an order the
polls could not see. The pushes back to Mirakl (seed 004's three failures) are in
``test_mirakl_pushes.py``, which needs the hub's planner.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orderbridge.runtime.worker import run_cycle
from orderbridge.sandboxes.base import RunningSandbox, run_in_thread
from orderbridge.sandboxes.mirakl import MiraklState
from orderbridge.sandboxes.mirakl import create_sandbox as mirakl_sandbox
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.queries import accounting, show_order
from orderbridge.services.reconcile import reconcile
from tests.scoped import cid, tenant

KEY = "mirakl-shop-key"
MAPPED = ("MUG-1", "TEE-1")


@dataclass
class World:
    hub: Hub
    mk: MiraklState
    mk_http: RunningSandbox
    ss: Any
    ss_http: RunningSandbox


@pytest.fixture
def world(hub: Hub) -> Iterator[World]:
    mk, mk_app = mirakl_sandbox()
    ss, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=3600.0)
    with run_in_thread(mk_app) as mk_http, run_in_thread(ss_app) as ss_http:
        add_connection(tenant(hub), "market", "mirakl", mk_http.base_url, {"shop_key": KEY}, {"page_size": 5})
        add_connection(
            tenant(hub), "warehouse", "shipstation", ss_http.base_url, {"api_key": "ss_key", "api_secret": "ss_secret"}
        )
        for sku in MAPPED:
            set_mapping(tenant(hub), "sku", sku, sku, cid(hub, "warehouse"))
        set_mapping(tenant(hub), "shipping", "STD", "ups:ups_ground", cid(hub, "warehouse"))
        yield World(hub, mk, mk_http, ss, ss_http)


def line(sku: str, quantity: int = 1) -> dict[str, Any]:
    return {"offer_sku": sku, "quantity": quantity, "price_unit": "12.50"}


def test_mirakl_orders_are_read_and_posted_to_the_3pl_once_each_an_unmapped_sku_held(world: World) -> None:
    waiting = [world.mk.create_order(lines=[line("MUG-1", 2)])["order_id"] for _ in range(6)]
    paid = world.mk.create_order(state="SHIPPING", lines=[line("TEE-1")])["order_id"]
    unmapped = world.mk.create_order(lines=[line("NOT-STOCKED")])["order_id"]
    shipped = world.mk.create_order(state="SHIPPED", lines=[line("MUG-1")])["order_id"]
    run_cycle(tenant(world.hub), shipments=False, push=False)
    acct = accounting(tenant(world.hub))
    assert acct["ledger_orders"] == 9
    assert (acct["posted"], acct["held"], acct["skipped"]) == (7, 1, 1)
    created = Counter(e.key for e in world.ss.entries("order_created"))
    assert len(created) == 7 and max(created.values()) == 1
    assert {r["code"] for r in show_order(tenant(world.hub), world.mk.orders[unmapped]["commercial_id"]).reasons} == {
        "sku_unmapped"
    }
    channel = cid(world.hub, "market")
    assert {f"ob-{channel}-{o}" for o in [*waiting, paid]} == set(created)
    skipped = show_order(tenant(world.hub), world.mk.orders[shipped]["commercial_id"])
    assert "fulfillment_status_not_downloaded" in {r["code"] for r in skipped.reasons}
    run_cycle(tenant(world.hub), shipments=False, push=False)
    assert max(Counter(e.key for e in world.ss.entries("order_created")).values()) == 1, "nothing posted twice"
    polls = [c for c in world.mk.calls() if c["path"] == "/api/orders"]
    assert all(c["query"].get("sort") == "dateUpdated" for c in polls)


def test_a_reconciliation_audit_of_a_mirakl_connection_recovers_what_the_polls_missed(world: World) -> None:
    for _ in range(4):
        world.mk.create_order(lines=[line("MUG-1")])
    run_cycle(tenant(world.hub), shipments=False, push=False)
    now = datetime.now(UTC)
    # an order Mirakl shows with an update time older than the hub's cursor: the polls never see it
    late = world.mk.create_order(lines=[line("TEE-1")], created=now - timedelta(minutes=30))["order_id"]
    run_cycle(tenant(world.hub), shipments=False, push=False)
    assert accounting(tenant(world.hub))["ledger_orders"] == 4
    report = reconcile(tenant(world.hub), cid(world.hub, "market"), since=now - timedelta(hours=2), until=now)
    assert report.ok, report.error
    assert (report.channel_count, report.recovered, report.missing) == (5, 1, 0)
    assert [f["external_id"] for f in report.findings] == [late]
    assert report.api_requests >= 1
    assert accounting(tenant(world.hub))["ledger_orders"] == 5
