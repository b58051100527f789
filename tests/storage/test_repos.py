"""The ledger's writers on both databases: every state written is a move its machine allows, judged
from the state the row is really in, and told by its event."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from orderbridge.domain import reasons as R
from orderbridge.domain.events import EventKind
from orderbridge.domain.states import InvalidTransition, OrderState, PushState
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.storage.repos import fulfilment_pushes as push_repo
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.repos import postings as posting_repo
from orderbridge.storage.repos.events import event_row
from orderbridge.storage.tables import events, order_reasons, orders, shipments
from tests.conftest import at
from tests.scoped import tenant

NOW = at("2026-12-02T09:00:00")


@pytest.fixture
def ids(hub: Hub) -> dict[str, int]:
    scope = tenant(hub)
    shop = add_connection(scope, "shop", "shopify", "http://shop.local", {"access_token": "t"})
    wh = add_connection(scope, "wh", "shipstation", "http://ss.local", {"api_key": "k", "api_secret": "s"})
    return {"tenant": scope.tenant_id, "shop": shop.id, "wh": wh.id}


def _order(hub: Hub, ids: dict[str, int], state: OrderState, ext: str = "1001") -> int:
    with hub.db.transaction() as conn:
        oid = order_repo.insert_one(
            conn,
            {
                "tenant_id": ids["tenant"],
                "connection_id": ids["shop"],
                "external_id": ext,
                "number": f"#{ext}",
                "state": OrderState.READY.value,
                "version": 1,
                "content_hash": "h",
                "raw": {},
                "received_at": NOW,
                "updated_at": NOW,
            },
        )
        assert oid is not None
        if state is not OrderState.READY:  # how it got there is not this test's business
            conn.execute(orders.update().where(orders.c.id == oid).values(state=state.value))
    return oid


def _state(hub: Hub, oid: int) -> str:
    with hub.db.read() as conn:
        return str(conn.execute(select(orders.c.state).where(orders.c.id == oid)).scalar_one())


def _kinds(hub: Hub, oid: int) -> list[str]:
    with hub.db.read() as conn:
        return list(conn.execute(select(events.c.kind).where(events.c.order_id == oid).order_by(events.c.id)).scalars())


def _event(ids: dict[str, int], oid: int, kind: EventKind = EventKind.READY) -> dict[str, Any]:
    return event_row(ids["tenant"], oid, kind, NOW, "told")


def test_a_move_read_from_a_stale_state_is_judged_from_the_state_the_order_is_in(hub: Hub, ids: dict[str, int]) -> None:
    oid = _order(hub, ids, OrderState.POSTED)  # posted meanwhile, by another transaction
    with pytest.raises(InvalidTransition, match="from posted to skipped"), hub.db.transaction() as conn:
        order_repo.transition(
            conn, [order_repo.Move(oid, OrderState.READY, OrderState.SKIPPED, (_event(ids, oid),))], NOW
        )
    assert _state(hub, oid) == "posted" and _kinds(hub, oid) == []  # nothing half-written


def test_a_move_the_actual_state_allows_is_written_from_it_with_its_event(hub: Hub, ids: dict[str, int]) -> None:
    oid = _order(hub, ids, OrderState.SKIPPED)  # the caller read held
    with hub.db.transaction() as conn:
        moved = order_repo.transition(
            conn, [order_repo.Move(oid, OrderState.HELD, OrderState.READY, (_event(ids, oid),))], NOW
        )
    assert moved == {oid} and _state(hub, oid) == "ready" and _kinds(hub, oid) == ["ready"]


def test_a_conditional_move_leaves_an_order_in_another_state_without_an_event(hub: Hub, ids: dict[str, int]) -> None:
    oid = _order(hub, ids, OrderState.READY)  # not posted everywhere yet: cannot be fulfilled
    event = _event(ids, oid, EventKind.FULFILLED)
    with hub.db.transaction() as conn:
        moved = order_repo.transition(
            conn, [order_repo.Move(oid, OrderState.POSTED, OrderState.FULFILLED, (event,))], NOW, leave_others=True
        )
    assert moved == set() and _state(hub, oid) == "ready" and _kinds(hub, oid) == []


def test_a_move_the_machine_forbids_is_refused_before_anything_is_written(hub: Hub, ids: dict[str, int]) -> None:
    oid = _order(hub, ids, OrderState.POSTED)
    with pytest.raises(InvalidTransition, match="from posted to skipped"), hub.db.transaction() as conn:
        order_repo.transition(conn, [order_repo.Move(oid, OrderState.POSTED, OrderState.SKIPPED)], NOW)
    with pytest.raises(InvalidTransition, match="cannot be created posted"), hub.db.transaction() as conn:
        order_repo.insert_new(
            conn,
            [
                (
                    ids["tenant"],
                    ids["shop"],
                    "2002",
                    "posted",
                    1,
                    NOW,
                    NOW,
                    "#2002",
                    "h",
                    None,
                    None,
                    None,
                    None,
                    None,
                    {},
                )
            ],
        )
    assert _state(hub, oid) == "posted"


def test_a_posting_is_recorded_once_and_a_recorded_one_is_never_reserved_again(hub: Hub, ids: dict[str, int]) -> None:
    oid = _order(hub, ids, OrderState.READY)
    key = f"{oid}:{ids['wh']}:v1"
    with hub.db.transaction() as conn:
        (pid,) = posting_repo.reserve(conn, ids["tenant"], ids["wh"], [(oid, 1, key, "ob-1-1001")], NOW).values()
        again = posting_repo.reserve(conn, ids["tenant"], ids["wh"], [(oid, 1, key, "ob-1-1001")], NOW)
        assert again == {key: pid}  # the same row, one more attempt
        posting_repo.record(conn, ids["tenant"], [(pid, "D-1")], [], [(pid, "posted", "document D-1", None)], NOW)
    with (
        pytest.raises(InvalidTransition, match="a posting cannot move from posted to posted"),
        hub.db.transaction() as conn,
    ):
        posting_repo.record(conn, ids["tenant"], [(pid, "D-2")], [], [], NOW)
    with pytest.raises(InvalidTransition, match="from posted to pending"), hub.db.transaction() as conn:
        posting_repo.reserve(conn, ids["tenant"], ids["wh"], [(oid, 1, key, "ob-1-1001")], NOW)


def test_a_held_push_keeps_its_reasons_until_it_goes_and_is_checked_again_first(hub: Hub, ids: dict[str, int]) -> None:
    oid = _order(hub, ids, OrderState.POSTED)
    with hub.db.transaction() as conn:
        conn.execute(
            shipments.insert().values(
                tenant_id=ids["tenant"],
                destination_id=ids["wh"],
                order_id=oid,
                external_id="S1",
                order_key="ob-1-1001",
                voided=False,
                lines=[],
                received_at=NOW,
                updated_at=NOW,
            )
        )
        sid = conn.execute(select(shipments.c.id)).scalar_one()
    push = {"shipment_id": sid, "order_id": oid, "channel_id": ids["shop"], "now": NOW}

    def open_reasons() -> list[tuple[str, str]]:
        with hub.db.read() as conn:
            return [
                (r.kind, r.code)
                for r in conn.execute(
                    select(order_reasons).where(order_reasons.c.order_id == oid, order_reasons.c.released_at.is_(None))
                )
            ]

    reason = R.tracking_number_missing("S1")
    with hub.db.transaction() as conn:
        push_repo.write(conn, ids["tenant"], target=PushState.HELD, message=reason.message, reasons=[reason], **push)
    assert open_reasons() == [("push", "tracking_number_missing")]
    with pytest.raises(InvalidTransition, match="from held to pending"), hub.db.transaction() as conn:
        push_repo.write(conn, ids["tenant"], target=PushState.PENDING, attempt=True, **push)
    with hub.db.transaction() as conn:
        assert push_repo.recheck_held(conn, sid, NOW) == 1
    assert open_reasons() == [("push", "tracking_number_missing")]  # until it is checked again
    with hub.db.transaction() as conn:
        push_repo.write(conn, ids["tenant"], target=PushState.PENDING, attempt=True, **push)
        push_repo.write(conn, ids["tenant"], target=PushState.PUSHED, fulfilment_id="F1", **push)
    assert open_reasons() == []
    with pytest.raises(InvalidTransition, match="from pushed to voided"), hub.db.transaction() as conn:
        push_repo.write(conn, ids["tenant"], target=PushState.VOIDED, **push)
