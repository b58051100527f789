"""A ledger with held orders behind the portal: the default tenant's fake shop and 3PL with two
orders that post, three held for SKU ``ABC-1``, two for shipping method ``Drone``, and one whose
SKU is HTML; the other tenant's own shop with one order held for SKU ``THEIRS-1``."""

from __future__ import annotations

from dataclasses import dataclass

from orderbridge.runtime.worker import run_cycle
from orderbridge.services.connections import add_connection
from orderbridge.services.mappings import set_mapping
from tests.builders import order
from tests.fakes import FakeChannel, FakeDestination, install
from tests.scoped import cid, tenant
from tests.web.portal.conftest import Portal

HOSTILE_SKU = '<script>alert("sku")</script><img src=x onerror=alert(1)>'


@dataclass
class Held:
    channel: FakeChannel
    dest: FakeDestination
    theirs: FakeChannel
    their_dest: FakeDestination
    wh: int
    their_wh: int


def held(portal: Portal) -> Held:
    hub = portal.hub
    channel, dest = FakeChannel(), FakeDestination()
    for i in range(1, 3):
        channel.put(order(i, updated_minutes=i))
    for i in range(3, 6):
        channel.put(order(i, skus=("ABC-1",), updated_minutes=i))
    for i in range(6, 8):
        channel.put(order(i, shipping="Drone", updated_minutes=i))
    channel.put(order(8, skus=(HOSTILE_SKU,), updated_minutes=8))
    install(hub, channel, dest)
    set_mapping(tenant(hub), "sku", "SKU-1", "W-1", cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    run_cycle(tenant(hub))
    other = portal.other
    theirs, their_dest = FakeChannel(), FakeDestination()
    theirs.put(order(1, skus=("THEIRS-1",)))
    add_connection(other, "their-shop", "fake_channel", "http://fake", {"token": "t"})
    add_connection(other, "their-wh", "fake_destination", "http://fake", {"key": "k"})
    hub.connectors[other.connection_id("their-shop")] = theirs
    hub.connectors[other.connection_id("their-wh")] = their_dest
    set_mapping(other, "shipping", "Standard", "ups:ups_ground", other.connection_id("their-wh"))
    run_cycle(other)
    return Held(channel, dest, theirs, their_dest, cid(hub, "wh"), other.connection_id("their-wh"))
