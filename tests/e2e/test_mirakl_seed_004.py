"""Seed 004's three failures over real HTTP, from real 3PL shipments: Mirakl → hub → ShipStation → Mirakl.

Orders are read from the Mirakl sandbox and posted to the ShipStation sandbox by the hub; the
warehouse ships them there (its shipments read back by the ShipStation connector); each shipment
becomes an intent, planned from Mirakl's rules against what Mirakl holds now and performed by the
Mirakl connector. :func:`push` stands for the hub's planned push (the planner helper's
``services`` side) so that these tests hold on this branch alone; the hub-level versions, through
``run_cycle``, are in ``test_mirakl_pushes.py`` once the planner is merged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from orderbridge.connectors import registry
from orderbridge.connectors.mirakl import MiraklChannel
from orderbridge.domain.channel_rules import ChannelAction, Outcome
from orderbridge.domain.push_plan import Intent, Plan, PlanStatus, Tracking, plan
from orderbridge.runtime.worker import run_cycle
from orderbridge.sandboxes.base import RunningSandbox, run_in_thread
from orderbridge.sandboxes.mirakl import MiraklState
from orderbridge.sandboxes.mirakl import create_sandbox as mirakl_sandbox
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from tests.scoped import cid, tenant

KEY = "mirakl-shop-key"


@dataclass
class World:
    hub: Hub
    mk: MiraklState
    mk_http: RunningSandbox
    ss: Any
    connector: MiraklChannel

    def key(self, order_id: str) -> str:
        return f"ob-{cid(self.hub, 'market')}-{order_id}"

    def ship(self, order_id: str, **overrides: Any) -> None:
        """The warehouse ships the order (``tracking_number=None``: a label without tracking)."""
        self.ss.ship_now(self.key(order_id), **overrides)

    def illegal(self) -> list[dict[str, Any]]:
        return [c for c in self.mk.calls() if c["rejected"] or 400 <= c["status"] < 500]


@pytest.fixture
def world(hub: Hub) -> Iterator[World]:
    mk, mk_app = mirakl_sandbox(debit_delay_s=0)
    ss, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=3600.0)
    with run_in_thread(mk_app) as mk_http, run_in_thread(ss_app) as ss_http:
        add_connection(tenant(hub), "market", "mirakl", mk_http.base_url, {"shop_key": KEY}, {})
        add_connection(
            tenant(hub), "warehouse", "shipstation", ss_http.base_url, {"api_key": "ss_key", "api_secret": "ss_secret"}
        )
        set_mapping(tenant(hub), "sku", "MUG-1", "MUG-1", cid(hub, "warehouse"))
        set_mapping(tenant(hub), "shipping", "STD", "ups:ups_ground", cid(hub, "warehouse"))
        connector = registry.build("mirakl", mk_http.base_url, {"shop_key": KEY}, {}, sleep=lambda _s: None)
        assert isinstance(connector, MiraklChannel)
        yield World(hub, mk, mk_http, ss, connector)
        connector.close()


def new_order(world: World, **kw: Any) -> str:
    order_id = str(
        world.mk.create_order(lines=[{"offer_sku": "MUG-1", "quantity": 1, "price_unit": "9.00"}], **kw)["order_id"]
    )
    run_cycle(tenant(world.hub), shipments=False, push=False)
    assert world.ss.order_by_key(world.key(order_id)) is not None, "posted to the 3PL"
    return order_id


def push(world: World, order_id: str, *, may_accept: bool = True) -> Plan:
    """The hub's planned push of the order's 3PL shipment, as far as this branch goes: the shipment
    read from ShipStation, the intent it means, a plan from what Mirakl holds now, each call performed."""
    shipments = [s for s in world.ss.all_shipments() if s["orderKey"] == world.key(order_id) and not s["voided"]]
    assert shipments, "the warehouse has shipped it"
    s = shipments[-1]
    tracking = Tracking(s["trackingNumber"] or "", s["carrierCode"] or "")
    intent = Intent(Outcome.SHIPPED, (), tracking)
    prerequisites = frozenset({ChannelAction.ACCEPT}) if may_accept else frozenset()
    p = plan(
        world.connector.channel_rules,
        world.connector.remote_state(order_id),
        intent,
        channel="market",
        prerequisites=prerequisites,
    )
    for call in p.calls:
        world.connector.perform(order_id, call)
    return p


def test_a_shipment_without_tracking_is_held_then_sent_once_the_3pl_has_it(world: World) -> None:
    order_id = new_order(world, state="SHIPPING")
    world.ship(order_id, tracking_number=None)
    held = push(world, order_id)
    assert held.status is PlanStatus.HELD and held.hold is not None
    assert (held.hold.code, held.hold.value) == ("shipping_data_missing", "tracking_number")
    assert held.hold.fix.action.value == "fill_shipping_data"
    assert world.mk.writes(order_id) == [], "nothing was sent to Mirakl"
    # the tracking is added at the 3PL (ShipStation: the label's tracking number)
    for s in world.ss.all_shipments():
        if s["orderKey"] == world.key(order_id):
            s["trackingNumber"] = "1Z000TRACK"
    assert push(world, order_id).status is PlanStatus.READY
    assert [c["path"].rsplit("/", 1)[-1] for c in world.mk.writes(order_id)] == ["tracking", "ship"]
    assert world.mk.orders[order_id]["order_state"] == "SHIPPED"
    assert push(world, order_id).status is PlanStatus.DONE and len(world.mk.writes(order_id)) == 2
    assert world.illegal() == []


def test_ship_before_accept_with_auto_accept_accepts_then_after_the_debit_tracks_and_ships(world: World) -> None:
    order_id = new_order(world)
    world.ship(order_id)
    first = push(world, order_id)
    assert first.status is PlanStatus.WAIT and [c.action for c in first.calls] == [ChannelAction.ACCEPT]
    assert world.mk.orders[order_id]["order_state"] == "SHIPPING", "the operator's debit came at once"
    assert push(world, order_id).status is PlanStatus.READY
    assert push(world, order_id).status is PlanStatus.DONE
    assert [c["path"].rsplit("/", 1)[-1] for c in world.mk.writes(order_id)] == ["accept", "tracking", "ship"]
    assert world.illegal() == []


def test_ship_before_accept_without_auto_accept_is_held_until_accepted_in_the_back_office(world: World) -> None:
    order_id = new_order(world)
    world.ship(order_id)
    held = push(world, order_id, may_accept=False)
    assert held.status is PlanStatus.HELD and held.hold is not None and held.hold.code == "transition_not_allowed"
    assert held.hold.fix.param("url") == world.connector.order_url(order_id)
    assert world.mk.writes(order_id) == []
    world.mk.move(order_id, "WAITING_DEBIT")  # a person accepts it in the back office; the debit follows
    assert push(world, order_id, may_accept=False).status is PlanStatus.READY
    assert [c["path"].rsplit("/", 1)[-1] for c in world.mk.writes(order_id)] == ["tracking", "ship"]
    assert world.illegal() == []


def test_an_unsupported_cancel_is_held_with_the_link_and_done_once_the_back_office_cancels(world: World) -> None:
    order_id = new_order(world, state="SHIPPING", can_cancel=False)
    remote = world.connector.remote_state(order_id)
    intent = Intent(Outcome.CANCELLED, reason="the customer asked")
    held = plan(world.connector.channel_rules, remote, intent, channel="market")
    assert held.hold is not None and held.hold.code == "action_not_supported"
    assert held.hold.fix.param("url") == f"{world.mk_http.base_url}/mmp/shop/order/{order_id}"
    world.mk.move(order_id, "CANCELED")  # done by hand in the back office
    done = plan(world.connector.channel_rules, world.connector.remote_state(order_id), intent, channel="market")
    assert done.status is PlanStatus.DONE and world.mk.writes(order_id) == []
