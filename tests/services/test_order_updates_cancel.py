"""A person's cancel on the Order updates screen reaches every destination, and stays (issue #15).

The exact sequence Hypothesis found (``tests/connectors/extra_kind/test_update_machine.py``), without
Hypothesis: two orders posted to TinyBooks (``books``) and the ShipStation sandbox (``wh``); a refund
in the shop holds order 0 for review; its address is edited in the shop; a person cancels the
order's update before the next sync. The edit arrives at that sync as a newer version, which
supersedes the cancelled update — and used to drop its cancellation: ShipStation kept
``awaiting_shipment`` and TinyBooks its live invoice (updated and refunded) for an order the hub
had cancelled. Then the same order once its cancellation was performed: a later edit accepted must
not re-post it to ShipStation as ``awaiting_shipment`` nor give the books an invoice again.

Every assertion reads the sandboxes' own books (ShipStation's orders by ``orderKey`` and how many it
created, TinyBooks' live invoices and refunds) beside the posting ledger.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select

from orderbridge.runtime.worker import run_cycle
from orderbridge.services import order_updates
from orderbridge.services.hub import Hub
from orderbridge.services.order_versions import version_of
from orderbridge.services.principals import Actor
from orderbridge.storage.tables import orders
from tests.connectors.extra_kind.conftest import tiny_kinds
from tests.connectors.extra_kind.sandbox import TinyBooksState, TinyShopState
from tests.connectors.extra_kind.test_update_machine import world
from tests.scoped import cid, tenant

__all__ = ["tiny_kinds", "world"]

World = tuple[Hub, TinyShopState, TinyBooksState, int, Any]


class Run:
    """The machine's rules, by hand."""

    def __init__(self, world: World) -> None:
        self.hub, self.shop, self.books, self.shop_id, self.ss = world
        self.scope = tenant(self.hub)
        self.mine = [str(self.shop.add_order()["id"]) for _ in range(2)]
        self.cycle()

    def cycle(self) -> None:
        assert run_cycle(self.scope).crashed == []

    def oid(self, i: int) -> int:
        with self.hub.db.read() as conn:
            found = conn.execute(select(orders.c.id).where(orders.c.external_id == self.mine[i])).scalar_one()
        return int(found)

    def state(self, i: int) -> str:
        with self.hub.db.read() as conn:
            return str(conn.execute(select(orders.c.state).where(orders.c.id == self.oid(i))).scalar_one())

    def decide(self, decision: str, i: int) -> list[order_updates.UpdateResult]:
        ids = [u.id for u in order_updates.pending_reviews(self.scope) if u.order_id == self.oid(i)]
        return order_updates.decide(Actor.cli(self.scope), ids, decision)

    def refund_in_channel(self, i: int, cents: int) -> None:
        before = Decimal(str(self.shop.orders[self.mine[i]].get("refunded") or "0"))
        self.shop.update_order(self.mine[i], refunded=str(before + Decimal(cents) / 100))

    def edit_address(self, i: int, city: str) -> None:
        self.shop.update_order(self.mine[i], ship_to={**self.shop.orders[self.mine[i]]["ship_to"], "city": city})

    def teardown(self) -> None:
        self.cycle()
        for _ in range(3):  # accept what waits, let every run settle what is pending
            ids = [u.id for u in order_updates.pending_reviews(self.scope)]
            order_updates.decide(Actor.cli(self.scope), ids, "accept")
            self.cycle()

    # --- what the destinations hold -----------------------------------------------------------
    def ss_order(self, i: int) -> dict[str, Any]:
        key = f"ob-{self.shop_id}-{self.mine[i]}"
        found = self.ss.order_by_key(key)
        assert found is not None and self.ss.create_count(key) == 1
        return dict(found)

    def live_invoices(self, i: int) -> list[dict[str, Any]]:
        return list(self.books.live(f"tiny-{self.mine[i]}@{self.shop_id}"))

    def refunds(self, i: int) -> Decimal:
        key = f"tiny-{self.mine[i]}@{self.shop_id}"
        return sum((Decimal(r["amount"]) for r in self.books.refunds.values() if r["key"] == key), Decimal(0))

    def held(self, i: int) -> dict[str, Any]:
        with self.hub.db.read() as conn:
            held = order_updates.held_documents(conn, self.oid(i))
        return {name: held.get(cid(self.hub, name)) for name in ("books", "wh")}

    def assert_cancelled_everywhere(self, i: int, city: str) -> None:
        assert self.state(i) == "cancelled"
        shipped = self.ss_order(i)
        assert shipped["orderStatus"] == "cancelled", shipped["orderStatus"]
        assert shipped["shipTo"]["city"] == city
        held = self.held(i)
        assert held["wh"] is not None  # ShipStation keeps the order, cancelled: the ledger says which version
        carried = version_of(self.scope, self.oid(i), held["wh"].version)
        assert carried.shipping_address is not None and carried.shipping_address.city == city
        # the books: the invoice voided, nothing live, nothing posted against it
        assert held["books"] is None
        assert self.live_invoices(i) == []
        assert self.books.creates.get(f"tiny-{self.mine[i]}@{self.shop_id}") == 1
        assert [u for u in order_updates.updates_of_order(self.scope, self.oid(i)) if u.status == "applying"] == []

    def assert_untouched(self, i: int) -> None:
        assert self.state(i) == "posted"
        assert self.ss_order(i)["orderStatus"] == "awaiting_shipment"
        assert len(self.live_invoices(i)) == 1
        assert {name: h.version if h else None for name, h in self.held(i).items()} == {"books": 1, "wh": 1}


def test_a_cancel_decided_before_a_newer_version_arrives_still_cancels_at_every_destination(world: World) -> None:
    run = Run(world)  # start
    run.decide("accept", 0)  # nothing waits yet: no-op
    for _ in range(7):
        run.cycle()
    run.refund_in_channel(0, 140)
    run.cycle()
    assert run.state(0) == "held"  # a partial refund ShipStation cannot take: review
    run.edit_address(0, "Paris")  # in the shop; the hub hears of it at the next sync
    assert run.decide("ignore", 1) == []  # nothing waits for order 1
    [cancelled] = run.decide("cancel", 0)
    assert cancelled.changed and run.state(0) == "cancelled"
    run.cycle()  # the edit arrives as version 3, superseding the cancelled update: it stays a cancellation
    [open_update] = [u for u in order_updates.updates_of_order(run.scope, run.oid(0)) if u.status == "applied"]
    assert open_update.to_version == 3
    assert {s["destination"]: s["kind"] for s in open_update.steps} == {"books": "void", "wh": "update_in_place"}
    run.assert_cancelled_everywhere(0, "Paris")
    run.teardown()
    run.assert_cancelled_everywhere(0, "Paris")
    assert run.refunds(0) == 0
    run.assert_untouched(1)


def test_an_update_accepted_after_the_cancellation_was_sent_does_not_resurrect_the_order(world: World) -> None:
    run = Run(world)
    run.refund_in_channel(0, 140)
    run.cycle()
    [cancelled] = run.decide("cancel", 0)
    assert cancelled.changed
    run.cycle()  # the cancellation performed: books voided, ShipStation cancelled
    run.assert_cancelled_everywhere(0, "Lyon")
    run.edit_address(0, "Lille")  # the shop, unaware, corrects the address of the order the hub cancelled
    run.cycle()
    run.teardown()  # whatever waits is accepted and performed
    run.assert_cancelled_everywhere(0, "Lille")
    assert run.refunds(0) == 0
    run.assert_untouched(1)
