"""Issue #17 review, Square through the hub (Shopify sandbox → hub → Square sandbox, real ports):

- decision 222/242: an order Square created but whose payment it refused is held
  ``pos_order_incomplete`` *naming the destination*, and once the cause is gone a retry pays that
  same Square order — one order and one payment in the sandbox's own ledger, never a second order;
  a refusal the connection checks can see (the team member archived between the order and its
  payment) is released by the re-check itself and re-posted under the same key;
- decision 243: a Square order cancelled (voided) there does not make the online order ``posted``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select

from orderbridge.fixes import FixAction
from orderbridge.sandboxes.base import Fault
from orderbridge.sandboxes.square.app import TEAM_MEMBER_ID
from orderbridge.sandboxes.square.state import SquareError, SquareState
from orderbridge.services.order_actions import retry_now
from orderbridge.services.principals import Actor
from orderbridge.storage.tables import orders, postings
from tests.scoped import tenant
from tests.services.test_square_posting import World
from tests.services.test_square_posting import world as world

__all__ = ["world"]


class _Payments:
    """Square's payments endpoint, with a cause of refusal that can be switched on and off: while
    ``refusing``, a payment is refused as Square refuses one on its content (400, a field named);
    ``before`` runs before each payment is taken (a seller's action racing the post)."""

    def __init__(self, state: SquareState) -> None:
        self.state = state
        self.original: Callable[[Mapping[str, Any], str], dict[str, Any]] = state.create_payment
        self.refusing = False
        self.before: Callable[[], None] | None = None
        state.create_payment = self  # type: ignore[method-assign]

    def __call__(self, body: Mapping[str, Any], version: str) -> dict[str, Any]:
        if self.before is not None:
            self.before()
            self.before = None
        if self.refusing:
            raise SquareError(
                400,
                "INVALID_VALUE",
                "External payments are not accepted at this location right now.",
                "external_details.source",
            )
        return self.original(body, version)


def _order_id(world: World, external_id: str) -> int:
    with world.hub.db.read() as conn:
        return int(conn.execute(select(orders.c.id).where(orders.c.external_id == external_id)).scalar_one())


def _postings(world: World, external_id: str) -> list[tuple[str, str]]:
    with world.hub.db.read() as conn:
        rows = conn.execute(
            select(postings.c.status, postings.c.idempotency_key)
            .join(orders, orders.c.id == postings.c.order_id)
            .where(orders.c.external_id == external_id)
            .order_by(postings.c.id)
        ).all()
    return [(r.status, r.idempotency_key) for r in rows]


def test_a_refused_payment_holds_the_order_naming_square_and_a_retry_pays_that_same_order(world: World) -> None:
    payments = _Payments(world.square)
    payments.refusing = True
    ext = world.order()
    report = world.run()
    assert report.posted == 0 and report.rejected == 1 and world.state(ext) == "held"
    (placed,) = world.square_orders(world.number(ext))  # created in Square, left unpaid
    assert placed["state"] == "OPEN" and placed["net_amount_due_money"]["amount"] > 0
    assert world.square.payments == {}
    hold = world.holds(ext)[("pos_order_incomplete", "pos")]  # the destination is named
    assert placed["id"] in hold["message"] and "inventory is not yet adjusted" in hold["message"]
    assert hold["fix"].action is FixAction.RETRY_ORDER and hold["fix"].param("destination") == "pos"
    [(status, key)] = _postings(world, ext)
    assert status == "rejected"

    world.run()  # nothing is sent again by itself, nothing else is made
    assert world.state(ext) == "held" and len(world.square.entries("order_created")) == 1

    payments.refusing = False  # the cause is gone
    retry_now(Actor.cli(tenant(world.hub)), _order_id(world, ext))
    report = world.run()
    assert report.posted == 1 and world.state(ext) == "posted" and world.holds(ext) == {}
    assert _postings(world, ext) == [("posted", key)]  # the same posting, the same idempotency key
    (paid,) = world.square_orders(world.number(ext))
    assert paid["id"] == placed["id"] and paid["net_amount_due_money"]["amount"] == 0
    created = world.square.entries("order_created")
    assert [e.key for e in created] == [placed["id"]]  # one order in Square's own ledger
    assert [e.data["order_id"] for e in world.square.entries("payment_created")] == [placed["id"]]
    assert world.pos_documents(ext)[-1]["state"] == "open" and world.pos_documents(ext)[-1]["stock_moved"] is True


def test_a_retry_after_the_seller_took_the_payment_in_square_records_the_order_without_paying_twice(
    world: World,
) -> None:
    payments = _Payments(world.square)
    payments.refusing = True
    ext = world.order()
    world.run()
    (placed,) = world.square_orders(world.number(ext))
    payments.refusing = False
    # the seller takes the payment in Square by hand
    payments.original(
        {
            "idempotency_key": "by-hand",
            "source_id": "EXTERNAL",
            "external_details": {"type": "OTHER", "source": "by hand"},
            "amount_money": dict(placed["net_amount_due_money"]),
            "order_id": placed["id"],
            "location_id": placed["location_id"],
        },
        "2026-09-16",
    )
    retry_now(Actor.cli(tenant(world.hub)), _order_id(world, ext))
    assert world.run().posted == 1 and world.state(ext) == "posted"
    assert len(world.square.entries("order_created")) == 1 and len(world.square.payments) == 1


def test_a_member_archived_between_the_order_and_its_payment_is_released_by_the_recheck_and_the_order_paid_once(
    world: World,
) -> None:
    payments = _Payments(world.square)

    def archive() -> None:
        world.square.team_members[TEAM_MEMBER_ID]["status"] = "INACTIVE"

    payments.before = archive
    ext = world.order()
    world.run()
    assert world.state(ext) == "held"
    holds = world.holds(ext)
    assert [value for code, value in holds if code == "pos_employee_inactive"] == ["pos: employee 'TMonlineorders01'"]
    world.run()  # still archived: still held, nothing sent
    assert world.state(ext) == "held" and world.square.payments == {}

    world.square.team_members[TEAM_MEMBER_ID]["status"] = "ACTIVE"
    report = world.run()  # the re-check releases it and the same post goes again
    assert report.posted == 1 and world.state(ext) == "posted" and world.holds(ext) == {}
    (placed,) = world.square_orders(world.number(ext))
    assert len(world.square.entries("order_created")) == 1
    assert [p["order_id"] for p in world.square.payments.values()] == [placed["id"]]


def test_a_square_order_cancelled_there_keeps_the_online_order_held_saying_it_was_voided(world: World) -> None:
    # the order is read back unpaid at first (a read Square failed): held pos_order_incomplete
    world.square.add_fault(Fault("500", path="/v2/orders/", method="GET", count=-1, retry_after=0.01))
    ext = world.order()
    world.run()
    assert world.state(ext) == "held" and ("pos_order_incomplete", "pos") in world.holds(ext)
    (placed,) = world.square_orders(world.number(ext))
    with world.square.lock:
        world.square.orders[placed["id"]]["state"] = "CANCELED"  # the seller cancels it in Square
    world.square.clear_faults()

    world.run()
    assert world.state(ext) == "held"  # not posted: the sale is not in Square
    hold = world.holds(ext)[("pos_order_incomplete", "pos")]
    assert "voided" in hold["message"] and hold["fix"].action is FixAction.ACT_IN_POS
    assert world.pos_documents(ext)[-1]["state"] == "voided"
    world.run()  # read again: the same hold, told once
    assert world.state(ext) == "held" and len(world.holds(ext)) == 1
    assert len(world.square.entries("order_created")) == 1
