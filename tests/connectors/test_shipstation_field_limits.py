"""ShipStation receives every field within its documented length (decision 47).

The sandbox enforces the limits as ShipStation's model validation does (400 with a ``ModelState``
for the whole request), from its own table. So a post that succeeds proves the connector sent
nothing over-long; what was too long was shortened (and the result says so), left out, or — where
cutting would change what the field means — held back with ``destination_field_too_long``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC
from typing import Any

import httpx
import pytest

from orderbridge.cli.fixes import sentence
from orderbridge.connectors.base import OutgoingOrder
from orderbridge.connectors.shipstation import mapper
from orderbridge.domain.events import EventKind
from orderbridge.domain.order import Address
from orderbridge.domain.reasons import HoldCode
from orderbridge.domain.states import OrderState
from orderbridge.sandboxes.base import in_process_client
from orderbridge.sandboxes.shipstation import create_sandbox
from orderbridge.sandboxes.shipstation.state import MAX_LENGTHS
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import holds, retry_order, show_order
from orderbridge.services.sync import sync_channel
from tests.builders import order as channel_order
from tests.builders import replace
from tests.connectors._shipstation_fixtures import CREDENTIALS, ShipStationEnv, build_env, shipstation_env
from tests.connectors.contract_destination import make_order, outgoing
from tests.fakes import FakeChannel, install
from tests.scoped import cid, tenant

__all__ = ["shipstation_env"]

EMOJI = "\U0001f4e6"  # one character, two UTF-16 units: ShipStation (.NET) counts two


def units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def long_text_order(n: int) -> OutgoingOrder:
    """Every descriptive field over its limit; everything ShipStation acts on within it."""
    base = make_order(n, lines=1)
    address = Address(
        name="N" * 150,
        company="C" * 120,
        address1="1 Analytical Way",
        city="Portland",
        province_code="OR",
        postal_code="97201",
        country_code="US",
    )
    line = replace(base.lines[0], title=EMOJI * 150, properties=(("P" * 130, "engraved: Ada"),))
    order = replace(
        base,
        lines=(line,),
        shipping_address=address,
        billing_address=replace(address, postal_code="9" * 60, phone="5" * 60),
        email="e" * 250 + "@example.com",
        note="x" * 1500,
    )
    return outgoing(order)


def with_field(n: int, **changes: Any) -> OutgoingOrder:
    """A clean order with one meaningful field made too long."""
    good = outgoing(make_order(n, lines=2))
    if "sku" in changes:
        first = replace(good.resolved.lines[0], destination_sku=changes.pop("sku"))
        return replace(good, resolved=replace(good.resolved, lines=(first, *good.resolved.lines[1:])))
    if "street1" in changes:
        order = good.resolved.order
        address = replace(order.shipping_address, address1=changes.pop("street1"))
        return replace(good, resolved=replace(good.resolved, order=replace(order, shipping_address=address)))
    return replace(good, resolved=replace(good.resolved, order=replace(good.resolved.order, **changes)))


def test_descriptive_text_over_its_limit_arrives_shortened_and_the_result_says_what(
    shipstation_env: ShipStationEnv,
) -> None:
    order = long_text_order(1)
    (result,) = shipstation_env.connector.post_orders([order])
    assert result.ok, result.error
    (doc,) = shipstation_env.received(order.order_key)
    assert doc["shipTo"]["name"] == "N" * 99 + "…" and doc["billTo"]["company"] == "C" * 99 + "…"
    item = doc["items"][0]
    assert units(item["name"]) <= 200 and item["name"] == EMOJI * 99 + "…"  # never half a character
    assert item["options"][0]["name"] == "P" * 99 + "…" and item["options"][0]["value"] == "engraved: Ada"
    assert len(doc["customerNotes"]) == 1000 and doc["customerNotes"].endswith("…")
    # a cut e-mail or postal code would be a wrong one: they are left out instead
    assert doc["customerEmail"] is None and doc["customerUsername"] is None
    assert doc["billTo"]["postalCode"] is None and doc["billTo"]["phone"] is None
    assert doc["shipTo"]["postalCode"] == "97201"
    joined = "\n".join(result.notes)
    for where in ("shipTo.name", "billTo.company", "items[0].name", "items[0].options[0].name", "customerNotes"):
        assert f"{where} shortened to" in joined
    for where in ("customerEmail", "customerUsername", "billTo.postalCode", "billTo.phone"):
        assert f"{where} left out" in joined


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"number": "#" + "9" * 50}, "orderNumber"),
        ({"sku": "S" * 101}, "items[].sku"),
        ({"sku": EMOJI * 51}, "items[].sku"),  # 51 characters, 102 units
        ({"street1": "1 " + "Long Road " * 10}, "shipTo.street1"),
    ],
    ids=["order number", "sku", "sku in utf-16 units", "ship-to street"],
)
def test_an_order_whose_meaningful_field_is_too_long_is_held_back_and_its_batch_still_goes(
    shipstation_env: ShipStationEnv, changes: dict[str, str], field: str
) -> None:
    bad = with_field(2, **changes)
    batch = [outgoing(make_order(1)), bad, outgoing(make_order(3))]
    results = shipstation_env.connector.post_orders(batch)
    assert [r.order_key for r in results] == [o.order_key for o in batch]
    assert results[0].ok and results[2].ok and not results[1].ok
    hold = results[1].hold
    assert hold is not None and (hold.code, hold.value) == (HoldCode.DESTINATION_FIELD_TOO_LONG, field)
    assert "orderbridge orders retry" in sentence(hold.fix)
    assert shipstation_env.received(bad.order_key) == []  # never sent
    assert [e.key for e in shipstation_env.state.entries("order_created")] == [batch[0].order_key, batch[2].order_key]


def sandbox_post(path: str, body: Any) -> tuple[httpx.Response, Any]:
    state, app = create_sandbox(limits=False)
    auth = base64.b64encode(f"{CREDENTIALS['api_key']}:{CREDENTIALS['api_secret']}".encode()).decode()
    with in_process_client(app, timeout=5) as http:
        response = http.post(f"http://sandbox.local{path}", json=body, headers={"Authorization": f"Basic {auth}"})
    return response, state


def plain_body(**fields: Any) -> dict[str, Any]:
    return {
        "orderNumber": "#1",
        "orderKey": "k-1",
        "orderDate": "2025-03-01T12:00:00",
        "orderStatus": "awaiting_shipment",
        "billTo": {"name": "A"},
        "shipTo": {"name": "A"},
        "items": [{"lineItemKey": "L1", "sku": "S", "name": "n", "quantity": 1}],
        **fields,
    }


def test_the_sandbox_refuses_an_over_long_field_as_shipstation_does() -> None:
    response, state = sandbox_post("/orders/createorder", plain_body(orderNumber="#" + "1" * 50))
    assert response.status_code == 400
    assert response.json() == {
        "Message": "The request is invalid.",
        "ModelState": {"apiOrder.orderNumber": ["The field orderNumber must be a string with a maximum length of 50."]},
    }
    assert mapper.error_message(response.json(), "") == (
        "apiOrder.orderNumber: The field orderNumber must be a string with a maximum length of 50."
    )
    assert state.orders == {}
    at_limit, _ = sandbox_post("/orders/createorder", plain_body(orderNumber="#" + "1" * 49))
    assert at_limit.status_code == 200


def test_the_sandbox_counts_utf16_units_and_refuses_a_whole_batch_for_one_long_field() -> None:
    bad = plain_body(orderKey="k-2", items=[{"lineItemKey": "L1", "sku": EMOJI * 51, "name": "n", "quantity": 1}])
    response, state = sandbox_post("/orders/createorders", [plain_body(), bad])
    assert response.status_code == 400
    assert list(response.json()["ModelState"]) == ["apiOrders[1].items[0].sku"]
    assert state.orders == {}  # model validation refuses the request as a whole


def test_the_connector_s_limits_are_the_ones_the_sandbox_enforces() -> None:
    assert {limit.field: limit.limit for limit in mapper.FIELD_LIMITS} == {
        field: MAX_LENGTHS[field] for field in (limit.field for limit in mapper.FIELD_LIMITS)
    }


def test_every_string_the_mapper_sends_has_a_declared_limit() -> None:
    body = mapper.order_body(long_text_order(1), tz=UTC, store_id=None)
    declared = {limit.field for limit in mapper.FIELD_LIMITS}

    def strings(node: Any, where: str) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from strings(value, f"{where}.{key}" if where else key)
        elif isinstance(node, list):
            for element in node:
                yield from strings(element, where + "[]")
        elif isinstance(node, str):
            yield where

    dates = {"orderDate", "paymentDate", "orderStatus"}  # fixed formats and values, not channel text
    assert set(strings(body, "")) - dates <= declared


def test_shortening_never_splits_a_character_and_always_fits() -> None:
    for limit in (1, 2, 3, 10, 99, 100):
        for text in ("a" * 300, EMOJI * 300, ("a" + EMOJI) * 300, "é" * 300):
            cut = mapper.shorten(text, limit)
            assert units(cut) <= limit and cut.endswith("…")
            assert cut[:-1] == text[: len(cut) - 1]  # a prefix, whole characters only
    assert mapper.shorten("short", 100) == "short"
    assert mapper.utf16_length(EMOJI + "a") == 3


# --- through the hub, on SQLite and PostgreSQL ---------------------------------------------------


@pytest.fixture
def world(hub: Hub) -> Iterator[tuple[FakeChannel, ShipStationEnv]]:
    env, http = build_env(limits=False)
    channel = FakeChannel()
    long_name = channel_order(1)
    assert long_name.shipping_address is not None
    long_name = replace(long_name, shipping_address=replace(long_name.shipping_address, name="N" * 140))
    channel.put(long_name)
    long_sku = channel_order(2, skus=("S" * 120,), updated_minutes=1)
    channel.put(long_sku)
    install(hub, channel)
    add_connection(tenant(hub), "wh", "shipstation", "http://sandbox.local", CREDENTIALS)
    hub.connectors[cid(hub, "wh")] = env.connector  # the real connector, over the sandbox in process
    set_mapping(tenant(hub), "sku", "SKU-1", "WH-1", cid(hub, "wh"))
    set_mapping(tenant(hub), "sku", "S" * 120, "T" * 120, cid(hub, "wh"))  # a destination SKU ShipStation cannot take
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    try:
        yield channel, env
    finally:
        env.connector.close()
        http.close()


def test_the_hub_records_a_shortened_field_on_the_timeline_and_holds_an_order_with_a_too_long_sku(
    hub: Hub, world: tuple[FakeChannel, ShipStationEnv]
) -> None:
    _, env = world
    sync_channel(tenant(hub), cid(hub, "shop"))
    report = post_ready(tenant(hub), cid(hub, "wh"))
    assert (report.posted, report.rejected, report.error) == (1, 1, None)
    posted = show_order(tenant(hub), "1001")
    assert posted.state == OrderState.POSTED.value
    shortened = [e for e in posted.timeline if e["kind"] == EventKind.FIELD_SHORTENED.value]
    assert [e["message"] for e in shortened] == [
        "ShipStation: shipTo.name shortened to 100 characters (it had 140)",
        "ShipStation: billTo.name shortened to 100 characters (it had 140)",
    ]
    (doc,) = env.received("ob-1-1001")
    assert doc["shipTo"]["name"] == "N" * 99 + "…"
    held = show_order(tenant(hub), "1002")
    assert held.state == OrderState.HELD.value
    (reason,) = held.reasons
    assert (reason["code"], reason["value"]) == ("destination_field_too_long", "items[].sku")
    assert "at most 100 characters in items[].sku; this order's is 120" in reason["message"]
    assert env.received("ob-1-1002") == []
    (group,) = holds(tenant(hub))
    assert (group.code, group.value, group.orders) == ("destination_field_too_long", "items[].sku", 1)


def test_a_held_too_long_sku_goes_once_a_mapping_shortens_it_and_the_order_is_retried(
    hub: Hub, world: tuple[FakeChannel, ShipStationEnv]
) -> None:
    _, env = world
    sync_channel(tenant(hub), cid(hub, "shop"))
    post_ready(tenant(hub), cid(hub, "wh"))
    set_mapping(tenant(hub), "sku", "S" * 120, "WH-SHORT", cid(hub, "wh"))  # the mapping corrected
    assert retry_order(tenant(hub), "1002") == OrderState.READY.value
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 1
    (doc,) = env.received("ob-1-1002")
    assert doc["items"][0]["sku"] == "WH-SHORT"
    assert show_order(tenant(hub), "1002").state == OrderState.POSTED.value
