"""``orderbridge channels ask / intents / deadlines`` and ``orders fill-shipping`` in-process over
the test hub with the test-only marketplace kind (issue #16)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from orderbridge.cli import common, main
from orderbridge.connectors import registry
from orderbridge.domain.shipments import Shipment, ShipmentLine
from orderbridge.services.audit_trail import actions_on
from orderbridge.services.backsync import poll_shipments, push_fulfilments
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import show_order
from orderbridge.services.sync import sync_channel
from tests.builders import T0, order
from tests.fakes import FakeDestination
from tests.scoped import cid, tenant
from tests.services.market_kind import FakeMarket


@pytest.fixture
def world(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeMarket]:
    monkeypatch.setattr(common, "make_hub", lambda: hub)
    monkeypatch.setattr(hub, "close", lambda: None)
    main.console.width = main.err.width = 2000
    registry.register("fake_market", FakeMarket)
    registry.register("fake_destination", FakeDestination)
    m, wh = FakeMarket(), FakeDestination()
    m.put(order(1))
    add_connection(tenant(hub), "mp", "fake_market", "http://fake", {"token": "t"})
    hub.connectors[cid(hub, "mp")] = m
    add_connection(tenant(hub), "wh", "fake_destination", "http://fake", {"key": "k"})
    hub.connectors[cid(hub, "wh")] = wh
    set_mapping(tenant(hub), "sku", "SKU-1", "W-1", cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    sync_channel(tenant(hub), cid(hub, "mp"))
    push_fulfilments(tenant(hub), cid(hub, "mp"))
    m.debit("1001")
    post_ready(tenant(hub), cid(hub, "wh"))
    (key,) = wh.documents
    wh.shipments[:] = [Shipment("S-1", key, "1Z9", "colis-prive", None, T0, False, (ShipmentLine("L1", "SKU-1", 1),))]
    poll_shipments(tenant(hub), cid(hub, "wh"))
    push_fulfilments(tenant(hub), cid(hub, "mp"))
    yield m
    registry.unregister("fake_market")


def test_the_fix_command_of_a_held_push_fills_it_in_and_sends_it(hub: Hub, world: FakeMarket) -> None:
    holds = CliRunner().invoke(main.app, ["holds"])
    assert "orderbridge orders fill-shipping <order> --tracking-url <tracking_url>" in holds.stdout, holds.stdout
    done = CliRunner().invoke(
        main.app, ["orders", "fill-shipping", "#1001", "--tracking-url", "https://cp.example/1Z9"]
    )
    assert done.exit_code == 0, done.stdout + done.stderr
    assert "tracking_url filled in; pushed" in done.stdout
    assert world.market["1001"].state == "SHIPPED"
    (action,) = actions_on(tenant(hub), "order", int(show_order(tenant(hub), "#1001").id))
    assert action.action == "order.fill_shipping_data" and action.who.startswith("cli:")


def test_ask_then_list_a_held_request(hub: Hub, world: FakeMarket) -> None:
    asked = CliRunner().invoke(main.app, ["channels", "ask", "#1001", "cancel", "--note", "customer", "--json"])
    assert asked.exit_code == 0, asked.stdout + asked.stderr
    assert json.loads(asked.stdout)["created"] is True
    push_fulfilments(tenant(hub), cid(hub, "mp"))
    listed = CliRunner().invoke(main.app, ["channels", "intents", "--json"])
    (held,) = json.loads(listed.stdout)["intents"]
    assert held["reason"]["code"] == "action_not_supported" and held["requested_by"].startswith("cli:")
    asked_by = [a for a in actions_on(tenant(hub), "order", held["order_id"]) if a.action == "order.channel_request"]
    assert len(asked_by) == 1 and asked_by[0].who.startswith("cli:"), asked_by
    bad = CliRunner().invoke(main.app, ["channels", "ask", "#1001", "ship"])
    assert bad.exit_code != 0
