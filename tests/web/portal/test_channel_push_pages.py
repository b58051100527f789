"""Issue #16 on the order page and in the API, over a real port: a push held for missing shipping
data is filled in and sent again (portal form and REST), the fix of a back-office hold is an escaped
external link, requests to the channel are asked and listed, and deadlines are listed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from orderbridge.connectors import registry
from orderbridge.domain.shipments import Shipment, ShipmentLine
from orderbridge.services.backsync import poll_shipments, push_fulfilments
from orderbridge.services.connections import add_connection
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import find_order_id
from orderbridge.services.sync import sync_channel
from tests.builders import T0, order
from tests.fakes import FakeDestination
from tests.scoped import cid
from tests.services.market_kind import FakeMarket
from tests.web.portal.conftest import Portal


@pytest.fixture
def market(portal: Portal) -> Iterator[FakeMarket]:
    registry.register("fake_market", FakeMarket)
    registry.register("fake_destination", FakeDestination)
    hub, scope = portal.hub, portal.default
    m, wh = FakeMarket(), FakeDestination()
    m.put(order(1))
    add_connection(scope, "mp", "fake_market", "http://fake", {"token": "t"})
    hub.connectors[cid(hub, "mp")] = m
    add_connection(scope, "wh", "fake_destination", "http://fake", {"key": "k"})
    hub.connectors[cid(hub, "wh")] = wh
    set_mapping(scope, "sku", "SKU-1", "W-1", cid(hub, "wh"))
    set_mapping(scope, "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    sync_channel(scope, cid(hub, "mp"))
    push_fulfilments(scope, cid(hub, "mp"))  # the policy accepts it
    m.debit("1001")
    post_ready(scope, cid(hub, "wh"))
    (key,) = wh.documents
    wh.shipments[:] = [Shipment("S-1", key, "1Z999", "colis-prive", None, T0, False, (ShipmentLine("L1", "SKU-1", 1),))]
    poll_shipments(scope, cid(hub, "wh"))
    assert push_fulfilments(scope, cid(hub, "mp")).held == 1  # no tracking URL for an unknown carrier
    yield m
    registry.unregister("fake_market")


def test_the_order_page_fills_in_the_missing_tracking_url_and_sends_it_again(
    portal: Portal, market: FakeMarket
) -> None:
    oid = find_order_id(portal.default, "#1001")
    operator = portal.signed_in("operator")
    page = operator.get(f"/orders/{oid}").text
    assert "Shipping data the channel needs is missing" in page and 'id="shipping-data"' in page
    assert "<code>tracking_url</code>" in page
    assert portal.signed_in("viewer").get(f"/orders/{oid}").text.count('id="shipping-data"') == 0
    answer = operator.post_form(
        f"/orders/{oid}/shipping-data", {"tracking_url": "https://cp.example/t/1Z999", "shipment": "S-1"}
    )
    assert answer.status_code == 303, answer.text
    assert [c for _, c in market.ledger] == ["OR21 accept", "OR23 tracking", "OR24 ship"]
    page = operator.get(f"/orders/{oid}").text
    assert "The shipping data was filled in and sent to the channel." in page
    assert 'id="shipping-data"' not in page and "filled in by" in page
    assert market.refused == []


def test_the_api_fills_in_shipping_data_and_refuses_what_is_unusable(portal: Portal, market: FakeMarket) -> None:
    oid = find_order_id(portal.default, "#1001")
    api = portal.api("operator")
    bad = api.post(f"/api/v1/orders/{oid}/shipping-data", json={"tracking_url": "javascript:alert(1)"})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_input"
    assert portal.api("viewer").post(f"/api/v1/orders/{oid}/shipping-data", json={"carrier": "x"}).status_code == 403
    done = api.post(f"/api/v1/orders/{oid}/shipping-data", json={"tracking_url": "https://cp.example/t/1Z999"})
    assert done.status_code == 200, done.text
    assert done.json() == {"shipment": "S-1", "fields": ["tracking_url"], "pushed": True}
    assert market.market["1001"].state == "SHIPPED"
    again = api.post(f"/api/v1/orders/{oid}/shipping-data", json={"tracking_url": "https://cp.example/t/1Z999"})
    assert again.status_code == 422  # nothing held any more: nothing to fill in


def test_a_request_held_for_the_back_office_links_there_escaped_and_is_listed(
    portal: Portal, market: FakeMarket
) -> None:
    oid = find_order_id(portal.default, "#1001")
    api = portal.api("operator")
    asked = api.post(f"/api/v1/orders/{oid}/channel-requests", json={"outcome": "cancelled", "note": "<b>x</b>"})
    assert asked.status_code == 202 and asked.json()["created"] is True
    push_fulfilments(portal.default, cid(portal.hub, "mp"))  # can_cancel is false: held
    (held,) = api.get("/api/v1/channel-requests/held").json()["intents"]
    assert held["reason"]["code"] == "action_not_supported"
    page = portal.signed_in("viewer").get(f"/orders/{oid}").text
    assert '<a href="https://market.example/orders/1001" rel="external noopener noreferrer" target="_blank">' in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "Requests to the channel" in page
    market.cancel_by_hand("1001")
    push_fulfilments(portal.default, cid(portal.hub, "mp"))
    (done,) = api.get(f"/api/v1/orders/{oid}/channel-requests").json()["intents"][-1:]
    assert done["status"] == "pushed"
    bad = api.post(f"/api/v1/orders/{oid}/channel-requests", json={"outcome": "shipped"})
    assert bad.status_code == 422


def test_the_portal_form_asks_the_channel(portal: Portal, market: FakeMarket) -> None:
    oid = find_order_id(portal.default, "#1001")
    operator = portal.signed_in("operator")
    page = operator.get(f"/orders/{oid}").text
    assert f'action="/orders/{oid}/channel-requests"' in page and 'value="refunded"' in page
    answer = operator.post_form(f"/orders/{oid}/channel-requests", {"outcome": "refunded", "refund_total": "5.00"})
    assert answer.status_code == 303
    (asked,) = portal.api("viewer").get(f"/api/v1/orders/{oid}/channel-requests").json()["intents"][-1:]
    assert (asked["outcome"], asked["refund_total"], asked["requested_by"]) == ("refunded", "5.00", "Operator default")


def test_deadlines_are_listed_by_the_api(portal: Portal, market: FakeMarket) -> None:
    found = portal.api("viewer").get("/api/v1/deadlines")
    assert found.status_code == 200 and isinstance(found.json()["deadlines"], list)


def test_the_dashboard_and_the_api_list_an_order_near_its_acceptance_deadline(
    portal: Portal, market: FakeMarket
) -> None:
    soon = datetime.now(UTC) + timedelta(minutes=20)
    market.put(msgspec.structs.replace(order(2), channel_state="WAITING_ACCEPTANCE", deadlines=(("acceptance", soon),)))
    sync_channel(portal.default, cid(portal.hub, "mp"))
    (near,) = [d for d in portal.api("viewer").get("/api/v1/deadlines").json()["deadlines"] if d["number"] == "#1002"]
    assert near["deadline"] == "acceptance" and 0 < near["seconds_left"] <= 1200
    page = portal.signed_in("viewer").get("/dashboard").text
    assert "Channel deadlines approaching" in page and "#1002" in page


def test_the_exceptions_screen_lists_held_requests_by_cause(portal: Portal, market: FakeMarket) -> None:
    oid = find_order_id(portal.default, "#1001")
    portal.api("operator").post(f"/api/v1/orders/{oid}/channel-requests", json={"outcome": "cancelled"})
    push_fulfilments(portal.default, cid(portal.hub, "mp"))
    page = portal.signed_in("viewer").get("/holds").text
    assert "Requests to channels held" in page and "1 request held · mp" in page
    assert f'<a href="/orders/{oid}">#1001</a>' in page
