"""Decision 243 (issue #17 review): a POS document voided there is not a completed sale. The order
held ``pos_order_incomplete`` stays held — its reason now saying the document was voided and what
a person can do — and is never released to ``posted`` nor posted a second time by itself."""

from __future__ import annotations

from orderbridge.fixes import FixAction
from tests.connectors.pos_kind.world import World
from tests.connectors.pos_kind.world import world as world

__all__ = ["world"]


def _void(world: World, sale_id: str) -> None:
    with world.pos.lock:  # what a person does in the POS: the pending sale is voided
        world.pos.sales[sale_id]["state"] = "voided"


def test_a_pending_sale_voided_in_the_pos_keeps_the_order_held_with_a_voided_reason(world: World) -> None:
    world.pos.pending_sales = True
    order = world.shop.add_order()
    world.cycle()
    assert world.state(order["id"]) == "held"
    sale = world.sale(order["id"])
    assert sale is not None
    _void(world, sale["id"])

    report = world.post_report(world.cycle())
    assert report["preflight"]["completed"] == 0
    assert world.state(order["id"]) == "held"  # not posted: the sale is not in the POS
    holds = world.holds(order["id"])
    assert list(holds) == [("pos_order_incomplete", "pos")]
    hold = holds[("pos_order_incomplete", "pos")]
    assert "voided" in hold["message"] and "inventory is not adjusted" in hold["message"]
    assert hold["fix"].action is FixAction.ACT_IN_POS and hold["fix"].param("connection") == "pos"
    assert "cannot be completed" in hold["fix"].text
    told = world.timeline(order["id"], "pos_document")
    assert [e["state"] for e in told] == ["pending", "voided"]
    held = [e for e in world.timeline(order["id"], "held") if "voided" in e["message"]]
    assert len(held) == 1

    world.cycle()  # read again: still voided, still held, told once, nothing posted again
    assert world.state(order["id"]) == "held" and len(world.pos.entries("sale")) == 1
    assert len([e for e in world.timeline(order["id"], "held") if "voided" in e["message"]]) == 1
    assert len(world.timeline(order["id"], "pos_document")) == 2


def test_a_sale_voided_right_after_it_was_posted_holds_the_order(world: World) -> None:
    order = world.shop.add_order()
    original = world.pos.create_sale

    def create_voided(data: dict[str, object]) -> tuple[int, dict[str, object]]:
        status, sale = original(data)
        sale["state"], sale["stock_moved"] = "voided", False
        return status, sale

    world.pos.create_sale = create_voided  # type: ignore[method-assign]
    world.cycle()
    assert world.state(order["id"]) == "held"
    hold = world.holds(order["id"])[("pos_order_incomplete", "pos")]
    assert "voided" in hold["message"]


def test_the_hub_s_own_cancel_voids_the_document_and_the_incomplete_hold_is_simply_released(world: World) -> None:
    from sqlalchemy import update

    from orderbridge.storage.tables import orders

    world.pos.pending_sales = True
    order = world.shop.add_order()
    world.cycle()
    sale = world.sale(order["id"])
    assert sale is not None and world.state(order["id"]) == "held"
    with world.hub.db.transaction() as conn:  # as an accepted cancel leaves it (services/order_updates.py)
        conn.execute(update(orders).where(orders.c.external_id == order["id"]).values(state="cancelled"))
    _void(world, sale["id"])  # the amendment that voids the document
    world.cycle()
    assert world.state(order["id"]) == "cancelled" and world.holds(order["id"]) == {}
