"""The refunded amount of a Shopify order (issue #15): read from GraphQL's ``totalRefundedSet`` (paged
and bulk) and from REST's refund transactions (a webhook's or REST's payload) alike, over the
sandbox's HTTP; ``None`` when nothing was refunded, so such an order's content hash is unchanged."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from orderbridge.connectors.shopify.mapper import order_from_rest
from orderbridge.domain.canonical import content_hash
from orderbridge.domain.order import Order, PaymentStatus
from orderbridge.sandboxes.shopify import create_sandbox
from tests.sandboxes.test_shopify_partial_fulfilment import _channel, _records


def test_every_shape_reads_the_refunded_amount_the_sandbox_holds() -> None:
    state, app = create_sandbox(orders=300, seed=3, limits=False)
    paged = _records(_channel(app, bulk_backfill=False), datetime(2000, 1, 1, tzinfo=UTC))
    bulk = _records(_channel(app, bulk_backfill=True), None)
    seen: dict[str, int] = {"refunded": 0, "partially_refunded": 0, "none": 0}
    for order_id in state.orders:
        payload = json.loads(state.rest_json(order_id))
        rest = order_from_rest(payload)
        assert isinstance(rest, Order)
        ext = rest.external_id
        assert content_hash(rest) == content_hash(paged[ext]) == content_hash(bulk[ext]), ext
        money_back = sum(
            (Decimal(t["amount"]) for r in payload["refunds"] for t in r["transactions"] if t["status"] == "success"),
            Decimal(0),
        )
        if money_back:
            assert rest.refunded is not None and rest.refunded.amount == money_back == paged[ext].refunded.amount  # type: ignore[union-attr]
            assert rest.payment_status in (PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED)
            seen[rest.payment_status.value] += 1
        else:
            assert rest.refunded is None and paged[ext].refunded is None and bulk[ext].refunded is None
            seen["none"] += 1
    assert all(seen.values()), seen  # the store has refunds, part refunds and orders never refunded
