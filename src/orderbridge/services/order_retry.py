"""Retrying an order: the one implementation behind the CLI's ``orders retry`` and the portal's
and the API's retry (:func:`orderbridge.services.order_actions.retry_now`).

Its own module so that the read models (``services/queries.py``, which the CLI and the notifier
import) and the order actions (which import the sync's context) share it without importing each
other.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from orderbridge.domain.events import EventKind
from orderbridge.domain.reasons import HoldCode
from orderbridge.domain.states import OrderState
from orderbridge.errors import Conflict
from orderbridge.services.ledger import event_row
from orderbridge.services.reevaluate import reevaluate_orders
from orderbridge.services.scope import Scope
from orderbridge.storage.repos import order_reasons as reason_repo
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.repos import postings as posting_repo

#: order states a person may retry (release a rejection, run the pipeline again)
RETRYABLE = frozenset({OrderState.RECEIVED, OrderState.HELD, OrderState.SKIPPED, OrderState.READY})


def retry(conn: Connection, scope: Scope, o: Any, by: str, address: str | None = None) -> None:
    """Release the order's ``destination_rejected`` reasons, send its rejected postings of the
    current version back to ``pending`` and run the pipeline again — in the caller's transaction
    (``o``: the order's row, read in it). A ``pos_order_incomplete`` hold that came with a rejected
    post (a POS that created the document but refused its payment) ends with it: the re-evaluation
    sees that post pending again (decision 242), and the next run finishes the same document."""
    state = OrderState(o.state)
    if state not in RETRYABLE:
        raise Conflict(
            f"order {o.number} is {state.value}; only held, skipped or ready orders can be retried",
            hint="A posted order is reset to pending instead, when a destination lacks it.",
        )
    now = scope.now()
    reason_repo.release_code(conn, o.id, HoldCode.DESTINATION_REJECTED.value, now)
    posting_repo.reopen_rejected(conn, o.id, version=int(o.version))
    requested = user_event(scope, o.id, "order.retry", by, address, "retry requested")
    # held first, so the re-evaluation below always records its decision on the timeline
    order_repo.transition(conn, [order_repo.Move(o.id, state, OrderState.HELD, (requested,))], now)
    reevaluate_orders(conn, scope, [o.id])


def user_event(scope: Scope, order_id: int, action: str, by: str, address: str | None, message: str) -> dict[str, Any]:
    """The ledger event of a person's action on an order: the message names who; the data says
    which action (``order.retry`` …), who and from where (the timeline shows it as the action)."""
    return event_row(
        scope.tenant_id,
        order_id,
        EventKind.USER_ACTION,
        scope.now(),
        f"{message} by {by}",
        action=action,
        by=by,
        address=address,
    )
