"""The scheduler runs a job only for the connections whose kind declares its capability
(decision 71): with the fakes' declarations narrowed, the same world gets no pushes and no
shipment polls, and a job called by hand on such a connection is refused with the reason."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import ClassVar

import pytest

from orderbridge.connectors import registry
from orderbridge.connectors.base import Capability, Declaration, Role
from orderbridge.domain.shipments import Shipment, ShipmentLine
from orderbridge.errors import InvalidInput
from orderbridge.runtime.worker import run_cycle, scheduled
from orderbridge.services.backsync import poll_shipments, push_fulfilments
from orderbridge.services.hub import Hub
from orderbridge.services.reconcile import due_audits
from tests.builders import T0
from tests.fakes import CHANNEL_DECL, DESTINATION_DECL, FakeChannel, FakeDestination, standard_world
from tests.scoped import cid, tenant


@dataclass
class PollOnlyChannel(FakeChannel):
    """A channel that is polled but accepts no fulfilments and cannot be audited."""

    declaration: ClassVar[Declaration] = replace(CHANNEL_DECL, capabilities=frozenset({Capability.LIST_CHANGED}))


@dataclass
class PostOnlyDestination(FakeDestination):
    """A destination that takes orders but lists no shipments."""

    declaration: ClassVar[Declaration] = replace(DESTINATION_DECL, capabilities=frozenset({Capability.POST_ORDERS}))


def _shipment_for_every_posted(destination: FakeDestination) -> None:
    for key in destination.documents:
        destination.shipments.append(
            Shipment(
                f"S-{key}",
                key,
                "1Z999",
                "ups",
                "ground",
                T0 + timedelta(days=1),
                False,
                (ShipmentLine(None, "SKU-1", 1),),
            )
        )


def test_a_world_whose_kinds_declare_everything_polls_shipments_and_pushes(hub: Hub) -> None:
    channel = standard_world(hub, 2)
    first = run_cycle(tenant(hub))
    assert [p["posted"] for p in first.posts] == [2]
    _shipment_for_every_posted(hub.connectors[cid(hub, "wh")])
    second = run_cycle(tenant(hub), sync=False)
    assert [s["connection"] for s in second.shipments] == ["wh"]
    assert [p["connection"] for p in second.pushes] == ["shop"] and len(channel.pushed) == 2


def test_jobs_a_kind_does_not_declare_are_never_scheduled_and_refused_by_hand(
    hub: Hub, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = standard_world(hub, 2)
    monkeypatch.setattr(FakeChannel, "declaration", PollOnlyChannel.declaration)
    monkeypatch.setattr(FakeDestination, "declaration", PostOnlyDestination.declaration)
    registry.register("fake_channel", FakeChannel)  # reloaded with the narrowed declaration
    registry.register("fake_destination", FakeDestination)

    first = run_cycle(tenant(hub))
    assert [p["posted"] for p in first.posts] == [2] and first.crashed == []
    _shipment_for_every_posted(hub.connectors[cid(hub, "wh")])
    second = run_cycle(tenant(hub), sync=False)
    assert second.shipments == [] and second.pushes == [] and channel.pushed == []
    assert scheduled(tenant(hub), Role.DESTINATION, Capability.LIST_SHIPMENTS) == {}
    assert scheduled(tenant(hub), Role.CHANNEL, Capability.PUSH_FULFILMENT) == {}
    assert due_audits(tenant(hub)) == []  # no order stamps declared: no audit is ever due
    with pytest.raises(InvalidInput, match="does not list shipments"):
        poll_shipments(tenant(hub), cid(hub, "wh"))
    with pytest.raises(InvalidInput, match="does not accept fulfilments"):
        push_fulfilments(tenant(hub), cid(hub, "shop"))


def test_a_connection_of_a_kind_no_longer_registered_is_reported_not_skipped_silently(hub: Hub) -> None:
    standard_world(hub, 1)
    registry.unregister("fake_destination")
    try:
        report = run_cycle(tenant(hub), sync=False)
    finally:
        registry.register("fake_destination", FakeDestination)
    assert "post_orders:wh" in report.crashed and report.posts == []
