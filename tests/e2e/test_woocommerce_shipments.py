"""WooCommerce → the hub → ShipStation, and the shipments back through the push planner, over real
HTTP (issue #16 item 5): a ShipStation shipment becomes a customer note with the tracking and the
status ``completed``; a voided label followed by a reshipment adds a note with the new tracking;
each call exactly once, proven from the WooCommerce sandbox's own ledger."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from orderbridge.runtime.worker import run_cycle
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shipstation.state import ShipStationState
from orderbridge.sandboxes.woocommerce import WooState, create_sandbox
from orderbridge.services.backsync import poll_shipments, push_fulfilments
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.services.sync import sync_channel
from tests.scoped import cid, tenant

SKUS = ("MUG-1", "TEE-M", "CAP-2", "POSTER-A2")


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class World:
    hub: Hub
    shop: WooState
    ss: ShipStationState
    clock: Clock

    def api_writes(self, external_id: str) -> list[str]:
        """What the hub made at the store for one order: status moves and notes, in order."""
        out = []
        for e in self.shop.ledger:
            if e.key != external_id:
                continue
            if e.kind == "status_changed" and e.data["by"] == "api":
                out.append(f"status {e.data['target']}")
            elif e.kind == "note_created":
                out.append(f"note {e.data['note']}")
        return out

    def ship(self) -> None:
        self.clock.advance(61)
        self.ss.ship_due()
        poll_shipments(tenant(self.hub), cid(self.hub, "wh"))
        push_fulfilments(tenant(self.hub), cid(self.hub, "shop"))


def _world(hub: Hub, void_rate: float) -> Iterator[World]:
    shop, shop_app = create_sandbox(orders=0, status_rules="strict")
    clock = Clock()
    ss, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=60, void_rate=void_rate, clock=clock)
    with run_in_thread(shop_app) as shop_http, run_in_thread(ss_app) as ss_http:
        credentials = {"consumer_key": "ck_sandbox", "consumer_secret": "cs_sandbox"}
        add_connection(tenant(hub), "shop", "woocommerce", shop_http.base_url, credentials)
        ss_credentials = {"api_key": "ss_key", "api_secret": "ss_secret"}
        add_connection(tenant(hub), "wh", "shipstation", ss_http.base_url, ss_credentials)
        for sku in SKUS:
            set_mapping(tenant(hub), "sku", sku, sku, cid(hub, "wh"))
        set_mapping(tenant(hub), "shipping", "*", "ups:ups_ground", cid(hub, "wh"))
        yield World(hub, shop, ss, clock)


@pytest.fixture
def world(hub: Hub) -> Iterator[World]:
    yield from _world(hub, void_rate=0.0)


@pytest.fixture
def voiding(hub: Hub) -> Iterator[World]:
    yield from _world(hub, void_rate=1.0)


def _orders(w: World, n: int) -> list[str]:
    ids = [str(w.shop.add_order(status="processing")["id"]) for _ in range(n)]
    w.shop.add_order(status="on-hold")  # not downloaded by default: never posted, never pushed
    sync_channel(tenant(w.hub), cid(w.hub, "shop"))
    post_ready(tenant(w.hub), cid(w.hub, "wh"))
    return ids


def test_a_shipstation_shipment_becomes_a_tracking_note_and_completed_once(world: World) -> None:
    ids = _orders(world, 3)
    shop_id = cid(world.hub, "shop")
    assert set(world.ss.orders_by_key()) == {f"ob-{shop_id}-{i}" for i in ids}

    world.ship()

    shipments = {s["orderKey"]: s for s in world.ss.all_shipments()}
    for external_id in ids:
        tracking = shipments[f"ob-{shop_id}-{external_id}"]["trackingNumber"]
        assert world.shop.orders[int(external_id)]["status"] == "completed"
        writes = world.api_writes(external_id)
        assert len(writes) == 2 and writes[1] == "status completed", writes
        assert writes[0].startswith("note Shipped with ") and f"tracking number {tracking}" in writes[0]
        (note,) = [n for n in world.shop.notes[int(external_id)] if n["customer_note"]]
        assert f"tracking number {tracking}" in note["note"]
    assert world.shop.entries("rejected") == []

    before = len(world.shop.ledger)
    for _ in range(2):  # later cycles (the completed orders are read back as updates) send nothing
        run_cycle(tenant(world.hub))
        push_fulfilments(tenant(world.hub), cid(world.hub, "shop"))
    assert all(len(world.api_writes(i)) == 2 for i in ids)
    keys = [f"ob-{shop_id}-{i}" for i in ids]
    assert [world.ss.create_count(k) for k in keys] == [1, 1, 1], "posted once"
    assert [world.ss.update_count(k) for k in keys] == [0, 0, 0], "the completed orders read back change nothing there"
    assert not [e for e in world.shop.ledger[before:] if e.kind in ("note_created", "status_changed")]


def test_a_voided_label_then_a_reshipment_pushes_the_new_tracking_as_a_new_note(voiding: World) -> None:
    (external_id,) = _orders(voiding, 1)
    voiding.ship()  # shipped with the first label: note + completed
    first = voiding.api_writes(external_id)
    assert len(first) == 2 and first[0].startswith("note Shipped with ") and first[1] == "status completed"

    voiding.ship()  # the label is voided and the order reshipped with a new tracking number

    shipments = voiding.ss.all_shipments()
    voided = [s["trackingNumber"] for s in shipments if s["voided"]]
    live = [s["trackingNumber"] for s in shipments if not s["voided"]]
    assert len(voided) == 1 and len(live) == 1 and voided != live
    writes = voiding.api_writes(external_id)
    assert len(writes) == 3, writes
    assert f"tracking number {voided[0]}" in writes[0] and writes[1] == "status completed"
    assert f"tracking number {live[0]}" in writes[2] and f"replaces tracking number {voided[0]}" in writes[2]
    numbers = [n["note"] for n in voiding.shop.notes[int(external_id)] if n["customer_note"]]
    assert len(numbers) == 2
    assert voiding.shop.entries("rejected") == []

    voiding.ship()
    run_cycle(tenant(voiding.hub))
    assert len(voiding.api_writes(external_id)) == 3, "nothing is sent twice"
