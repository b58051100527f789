"""Order updates against QuickBooks (issue #15, seed 003's trap), through the hub's order-updates
service: posted → changed in the store → accepted → refreshed → reset → another run: the same
SalesReceipt, updated in place once; then a cancellation voids it. Everything is read from the
QuickBooks sandbox's own company and ledger.

Runs once ``services/order_updates`` (the ``updates`` branch) is merged; skipped before."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

pytest.importorskip("orderbridge.services.order_updates")

from orderbridge.runtime.worker import run_cycle
from orderbridge.services import order_updates
from orderbridge.services.order_actions import refresh_from_channel, reset_to_pending
from orderbridge.services.principals import Actor
from orderbridge.services.queries import find_order_id
from tests.scoped import tenant
from tests.services.test_quickbooks_posting import KNOWN, World, world

__all__ = ["world"]


def test_seed_003_accepted_refreshed_reset_leaves_one_sales_receipt_updated_in_place_then_a_cancel_voids_it(
    world: World,
) -> None:
    hub = world.hub
    actor = Actor.cli(tenant(hub))
    placed = world.shop.add_order(line_items=KNOWN)
    assert run_cycle(tenant(hub)).crashed == []
    (receipt,) = world.receipts()

    world.shop.update_order(placed["id"], line_items=[*KNOWN, {"sku": "SKU-3", "quantity": 1, "price": "5.00"}])
    run_cycle(tenant(hub))
    (update,) = order_updates.pending_reviews(tenant(hub))
    assert [s["actions"] for s in update.steps] == [["update"]]
    assert world.qbo.entries("SalesReceipt_updated") == []  # nothing sent before a person decides
    order_updates.decide(actor, [update.id], "accept")
    run_cycle(tenant(hub))
    oid = find_order_id(tenant(hub), str(placed["id"]))
    refresh_from_channel(actor, oid)
    reset_to_pending(actor, oid)
    run_cycle(tenant(hub))

    (after,) = world.receipts()
    assert after["Id"] == receipt["Id"] and after["DocNumber"] == receipt["DocNumber"]
    items = [line for line in after["Line"] if line["DetailType"] == "SalesItemLineDetail"]
    assert len(items) == 4  # three products and shipping
    assert len(world.qbo.entries("SalesReceipt_created")) == 1
    assert len(world.qbo.entries("SalesReceipt_updated")) == 1

    world.shop.update_order(placed["id"], cancelled_at=datetime.now(UTC).isoformat(), cancel_reason="customer")
    run_cycle(tenant(hub))
    for pending in order_updates.pending_reviews(tenant(hub)):
        assert [s["actions"] for s in pending.steps] == [["void"]]
        order_updates.decide(actor, [pending.id], "accept")
    run_cycle(tenant(hub))
    (final,) = world.receipts()
    assert final["Id"] == receipt["Id"] and final["TotalAmt"] == 0 and final["PrivateNote"].startswith("Voided")
    assert len(world.qbo.entries("SalesReceipt_voided")) == 1
    assert len(world.qbo.entries("SalesReceipt_created")) == 1


def test_a_partial_refund_in_the_store_is_posted_as_one_refund_receipt_against_the_sales_receipt(
    world: World,
) -> None:
    hub = world.hub
    placed = world.shop.add_order(line_items=KNOWN)
    run_cycle(tenant(hub))
    (receipt,) = world.receipts()
    world.shop.update_order(placed["id"], financial_status="partially_refunded")
    run_cycle(tenant(hub))  # refunds are posted by the default policy, without review
    run_cycle(tenant(hub))
    (refund,) = world.qbo.documents(world.realm, "RefundReceipt")
    assert refund["TotalAmt"] == (receipt["TotalAmt"] / 2).quantize(refund["TotalAmt"])
    assert refund["CustomerRef"] == receipt["CustomerRef"]
    assert refund["DocNumber"].startswith(receipt["DocNumber"] + "-R")
    (still,) = world.receipts()
    assert still["SyncToken"] == receipt["SyncToken"]  # the sale itself is untouched
