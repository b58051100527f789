"""Re-run the pipeline for orders that are not posted yet (after a mapping or rule changes, or a
person's action on the order). Hold reasons an admin released on an order's current version stay
released (decision 107). An order held for the review of its update (``update_needs_review``,
issue #15) is left as it is: only a decision on the update (accept, ignore, cancel, a reset) ends
that hold — a retry or a new mapping cannot send a version nobody reviewed. Likewise an order held
``pos_order_incomplete`` (issue #17): it is in the POS already; only the POS completing it ends that
— unless the hold came with a *rejected* post (the POS took the order but refused its payment, say:
decision 242) and a retry has reopened that posting: then the order is evaluated again and, ready,
is posted under the same idempotency key, which finishes that same POS document."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from orderbridge.connectors.base import Role
from orderbridge.domain.canonical import order_from_json
from orderbridge.domain.pipeline import Decision, evaluate
from orderbridge.domain.reasons import HoldCode, invalid_order
from orderbridge.domain.states import OrderState, PostingState, is_evaluable
from orderbridge.domain.update_plan import Action
from orderbridge.services.ledger import Outcome, apply_decisions, destination_policy, download_rules
from orderbridge.services.scope import Scope
from orderbridge.storage.repos.events import released_holds
from orderbridge.storage.repos.order_reasons import open_for_orders
from orderbridge.storage.tables import connections, orders, postings

#: holds only another decision ends: a review of the update; the POS completing a sale it left
#: pending (issue #17: posted already — the post runs read the document again and release it)
_DECIDED_ELSEWHERE = frozenset({HoldCode.UPDATE_NEEDS_REVIEW, HoldCode.POS_ORDER_INCOMPLETE})


def reevaluate_orders(conn: Connection, scope: Scope, order_ids: Sequence[int]) -> tuple[int, int]:
    """Returns (released to ready, still held or skipped)."""
    if not order_ids:
        return 0, 0
    policies = [destination_policy(conn, d) for d in scope.connections(conn, Role.DESTINATION)]
    rules_by_channel = {c.id: download_rules(c) for c in scope.connections(conn, Role.CHANNEL)}
    outcomes: list[Outcome] = []
    now = scope.now()
    for i in range(0, len(order_ids), 500):
        rows = conn.execute(
            select(orders.c.id, orders.c.state, orders.c.canonical, orders.c.connection_id).where(
                orders.c.tenant_id == scope.tenant_id, orders.c.id.in_(order_ids[i : i + 500])
            )
        ).all()
        waived = released_holds(conn, [r.id for r in rows])
        reasons = open_for_orders(conn, [r.id for r in rows])
        reopened = _reopened(
            conn,
            [r.id for r in rows if any(code == HoldCode.POS_ORDER_INCOMPLETE for code, _ in reasons.get(r.id, {}))],
        )
        for r in rows:
            state = OrderState(r.state)
            if not is_evaluable(state):
                continue
            if any(
                code in _DECIDED_ELSEWHERE and not _retried(code, value, reopened.get(r.id, set()))
                for code, value in reasons.get(r.id, {})
            ):
                continue
            if r.canonical is None:
                decision = Decision(OrderState.HELD, (invalid_order("the order could not be read"),))
            else:
                decision = evaluate(
                    order_from_json(r.canonical),
                    rules_by_channel[r.connection_id],
                    policies,
                    waived.get(r.id, frozenset()),
                )
            outcomes.append(Outcome(r.id, state, decision))
    apply_decisions(conn, scope.tenant_id, outcomes, now)
    released = sum(1 for o in outcomes if o.decision.state is OrderState.READY)
    return released, len(outcomes) - released


def _retried(code: str, value: str, reopened: set[str]) -> bool:
    """Whether a ``pos_order_incomplete`` hold is one a retry ends: the destination it names (any,
    for a hold made before holds named theirs) has a first post of the order's current version
    waiting to be sent again — a posting a retry reopened, since the document the POS holds is
    recorded ``posted`` (never reopened) and a refused one ``rejected`` until someone retries."""
    return code == HoldCode.POS_ORDER_INCOMPLETE and (value in reopened or (not value and bool(reopened)))


def _reopened(conn: Connection, order_ids: Sequence[int]) -> dict[int, set[str]]:
    """Per order: the destinations (names) whose first post of its current version is pending."""
    found: dict[int, set[str]] = {}
    for i in range(0, len(order_ids), 500):
        for oid, name in conn.execute(
            select(postings.c.order_id, connections.c.name)
            .join(orders, orders.c.id == postings.c.order_id)
            .join(connections, connections.c.id == postings.c.destination_id)
            .where(
                postings.c.order_id.in_(order_ids[i : i + 500]),
                postings.c.order_version == orders.c.version,
                postings.c.action == Action.POST.value,
                postings.c.status == PostingState.PENDING.value,
            )
        ):
            found.setdefault(int(oid), set()).add(str(name))
    return found
