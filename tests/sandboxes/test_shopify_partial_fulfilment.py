"""Partly fulfilled orders in the Shopify sandbox: the generator makes them, and every API shape
(REST and its webhooks, GraphQL pages, bulk exports) tells the same remaining quantities — and the
connector maps each shape to the same canonical order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from orderbridge.connectors.shopify import ShopifyChannel
from orderbridge.connectors.shopify.mapper import order_from_rest
from orderbridge.domain.canonical import content_hash
from orderbridge.domain.order import Order
from orderbridge.sandboxes.base import in_process_client
from orderbridge.sandboxes.shopify import create_sandbox
from orderbridge.sandboxes.shopify.nodes import fulfillment_order_lines, order_node

BASE = "http://sandbox.local"


def _channel(app: Any, **settings: Any) -> ShopifyChannel:
    return ShopifyChannel(
        BASE,
        {"access_token": "shpat_sandbox"},
        {"lines_per_order_hint": 5, **settings},
        http=in_process_client(app, BASE),
        sleep=lambda _s: None,
    )


def _records(channel: ShopifyChannel, since: datetime | None) -> dict[str, Order]:
    out: dict[str, Order] = {}
    for batch in channel.list_changed(since):
        for record in batch.records:
            assert isinstance(record, Order)
            out[record.external_id] = record
    return out


def test_generated_partly_fulfilled_orders_tell_the_same_remainder_in_every_shape() -> None:
    state, _ = create_sandbox(orders=600, seed=3, limits=False)
    partial = [s.id for s in state.orders.values() if s.fulfillment == "partial"]
    assert len(partial) >= 5
    within_a_line = 0
    for order_id in [s.id for s in state.orders.values() if s.fulfillment in ("partial", "fulfilled")]:
        rest = state.order(order_id)
        assert rest is not None
        node = order_node(rest)
        fulfilled: dict[int, int] = {}
        for f in rest["fulfillments"]:
            for item in f["line_items"]:
                fulfilled[item["id"]] = fulfilled.get(item["id"], 0) + item["quantity"]
        assert fulfilled, f"order {order_id} is {rest['fulfillment_status']} but has no fulfilment"
        graphql = {int(n["id"].rsplit("/", 1)[-1]): n for n in node["lineItems"]}
        remaining = {fo["line_item_id"]: fo["remainingQuantity"] for fo in fulfillment_order_lines(rest)}
        for li in rest["line_items"]:
            left = li["fulfillable_quantity"]
            assert left == li["quantity"] - fulfilled.get(li["id"], 0)
            assert graphql[li["id"]]["unfulfilledQuantity"] == left == remaining[li["id"]]
            assert li["fulfillment_status"] == (
                "fulfilled" if left == 0 else "partial" if left < li["quantity"] else None
            )
            within_a_line += 0 < left < li["quantity"]
        # the fulfilment is visible over GraphQL with its lines, as the connector reads it
        (f_node,) = node["fulfillments"](None)
        assert {int(i["lineItem"]["id"].rsplit("/", 1)[-1]): i["quantity"] for i in f_node["fulfillmentLineItems"]} == (
            fulfilled
        )
        # webhooks carry the REST JSON of the moment: the same remainders
        hooked = orjson.loads(state.rest_json(order_id))
        assert [li["fulfillable_quantity"] for li in hooked["line_items"]] == [
            li["fulfillable_quantity"] for li in rest["line_items"]
        ]
    assert within_a_line >= 1, "no line is partly fulfilled: the seed proves only whole lines"


def test_rest_graphql_and_bulk_map_a_partly_fulfilled_order_to_the_same_canonical_order() -> None:
    state, app = create_sandbox(orders=600, seed=3, limits=False)
    partial = {str(s.id) for s in state.orders.values() if s.fulfillment == "partial"}
    paged = _records(_channel(app, bulk_backfill=False), datetime(2000, 1, 1, tzinfo=UTC))
    bulk = _records(_channel(app, bulk_backfill=True), None)
    for external_id in sorted(partial):
        rest = order_from_rest(state.order(int(external_id)) or {})
        assert isinstance(rest, Order)
        assert content_hash(rest) == content_hash(paged[external_id]) == content_hash(bulk[external_id])
        assert rest == paged[external_id] == bulk[external_id]
        open_quantities = [line.open_quantity for line in rest.lines]
        assert open_quantities == [
            li["fulfillable_quantity"] for li in (state.order(int(external_id)) or {})["line_items"]
        ]
        assert open_quantities[0] < rest.lines[0].quantity  # the first line shipped, in part or whole
    untouched = next(o for i, o in paged.items() if i not in partial and o.fulfilment_status == "unfulfilled")
    assert all(line.fulfillable_quantity is None for line in untouched.lines)  # an open line reads as before
