"""Fulfilment pushes as a state machine, with fake connectors on both databases: what a held push
becomes when its shipment changes."""

from __future__ import annotations

from dataclasses import replace

from orderbridge.domain.shipments import Shipment, ShipmentLine
from orderbridge.services.backsync import poll_shipments, push_fulfilments
from orderbridge.services.hub import Hub
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import holds, show_order
from orderbridge.services.sync import sync_channel
from tests.builders import T0
from tests.fakes import FakeDestination, standard_world
from tests.scoped import cid, tenant


def _held_push(hub: Hub) -> tuple[FakeDestination, Shipment]:
    """One posted order (#1000) shipped without a carrier: its push held."""
    standard_world(hub, 1)
    sync_channel(tenant(hub), cid(hub, "shop"))
    post_ready(tenant(hub), cid(hub, "wh"))
    destination = hub.connectors[cid(hub, "wh")]
    assert isinstance(destination, FakeDestination)
    (key,) = destination.documents
    shipment = Shipment("S-1", key, "1Z999", None, None, T0, False, (ShipmentLine("L1", "SKU-1", 1),))
    destination.shipments[:] = [shipment]
    poll_shipments(tenant(hub), cid(hub, "wh"))
    assert push_fulfilments(tenant(hub), cid(hub, "shop")).held == 1
    return destination, shipment


def test_a_held_push_whose_label_is_voided_is_voided_and_leaves_holds(hub: Hub) -> None:
    destination, shipment = _held_push(hub)
    assert [g.code for g in holds(tenant(hub)) if g.kind == "push"] == ["carrier_missing"]
    destination.shipments[:] = [replace(shipment, voided=True)]  # the 3PL voids the label instead
    assert poll_shipments(tenant(hub), cid(hub, "wh")).voided == 1
    report = push_fulfilments(tenant(hub), cid(hub, "shop"))
    assert (report.pushed, report.held) == (0, 0)
    detail = show_order(tenant(hub), "1000")
    assert [(p["status"], p["message"]) for p in detail.pushes] == [
        ("voided", "label voided before it was pushed; not sent")
    ]
    assert detail.reasons == [] and [g for g in holds(tenant(hub)) if g.kind == "push"] == []
    assert push_fulfilments(tenant(hub), cid(hub, "shop")).pushed == 0  # and it stays so: nothing left to do


def test_a_held_push_stays_held_until_its_shipment_changes(hub: Hub) -> None:
    _held_push(hub)
    for _ in range(2):  # another run, another poll with the same shipment: nothing is sent
        poll_shipments(tenant(hub), cid(hub, "wh"))
        report = push_fulfilments(tenant(hub), cid(hub, "shop"))
        assert (report.pushed, report.held) == (0, 0)
    (group,) = [g for g in holds(tenant(hub)) if g.kind == "push"]
    assert (group.code, group.value, group.pushes) == ("carrier_missing", "shop", 1)
