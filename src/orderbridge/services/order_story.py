"""One order's whole story, as its page tells it: the problem first, then everything else.

:func:`order_story` reads, in one read transaction and in the tenant's scope, everything the order
page and ``GET /api/v1/orders/{order_id}`` show, as frozen dataclasses (no row leaves this module):

1. **what is wrong now** — the order's open reasons and those of its held fulfilment pushes, each
   with its :class:`~orderbridge.fixes.Fix` — and which destinations still wait for the current
   version (seed 002: "check the error message that displays at the top of the order page");
2. the order: lines, totals (``Money``: Decimal and currency), addresses, customer, tags, note;
3. the **timeline**: every ledger event of the order merged with the user actions recorded on it
   (``services/audit_trail``), oldest first; an action that wrote its own ledger event (the order
   actions of :mod:`.order_actions`) is that event, told with who did it, not a second line;
4. the **postings** per destination — each version sent, its idempotency key, document id, status
   and every attempt with the document sent (decision 108);
5. the shipments the destinations reported, each with its fulfilment push and the push's state;
6. the **raw payloads**: the channel's, as stored;
7. which actions are possible now, and why not when not (the page greys them out with the reason).

An order of another tenant is :class:`~orderbridge.errors.NotFound`, exactly like a missing one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from orderbridge.connectors.base import Capability, Role
from orderbridge.domain.canonical import order_from_json
from orderbridge.domain.money import Money
from orderbridge.domain.order import Address, Order
from orderbridge.domain.pipeline import RELEASABLE
from orderbridge.domain.reasons import HoldCode
from orderbridge.domain.states import OrderState, PostingState
from orderbridge.errors import NotFound
from orderbridge.fixes import Fix, FixAction
from orderbridge.services import preflight
from orderbridge.services.audit_trail import actions_on
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.order_retry import RETRYABLE
from orderbridge.services.scope import Scope
from orderbridge.storage.tables import (
    connections,
    events,
    fulfilment_pushes,
    order_reasons,
    orders,
    posting_attempts,
    postings,
    shipments,
)

#: the user actions on an order that write a ledger event of their own (:mod:`.order_actions`):
#: the timeline shows that event, with who did it, instead of a second line
ACTIONS_WITH_EVENTS = frozenset({"order.retry", "order.reset", "order.refresh", "order.release"})

#: order states a person may reset to pending: not yet shipped, cancelled or closed
RESETTABLE = RETRYABLE | {OrderState.POSTED}


@dataclass(frozen=True)
class Problem:
    """One open reason: of the order (``kind`` hold or skip) or of one of its fulfilment pushes
    (``push``; ``shipment`` names the shipment)."""

    reason_id: int
    kind: str
    code: str
    value: str
    message: str
    fix: Fix
    since: datetime
    push_id: int | None = None
    shipment: str | None = None
    #: an admin may release it (a hold of the order whose code allows it: decision 107)
    releasable: bool = False


@dataclass(frozen=True)
class Line:
    external_id: str
    sku: str | None
    title: str
    quantity: int
    #: what is left to fulfil (what a destination is sent)
    open_quantity: int
    unit_price: Money
    discount: Money | None
    tax: Money | None
    #: quantity × unit price − discount
    total: Money
    properties: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Totals:
    subtotal: Money
    shipping: Money
    tax: Money
    discounts: Money
    total: Money


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    #: the event kind (``received``, ``posted`` …), or ``user_action`` for an audit-trail row
    kind: str
    message: str
    #: who: for a user action (from the audit trail, or named by the action's own event)
    who: str | None = None
    address: str | None = None
    #: the action's name (``order.reset``) for user actions, else None
    action: str | None = None
    data: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Attempt:
    at: datetime
    outcome: str
    message: str
    #: the document sent in this attempt, as JSON data (None: not recorded; decision 108)
    sent: Mapping[str, Any] | None


@dataclass(frozen=True)
class Posting:
    id: int
    version: int
    status: str
    idempotency_key: str
    order_key: str
    document_id: str | None
    attempts_count: int
    last_error: str | None
    created_at: datetime
    posted_at: datetime | None
    attempts: tuple[Attempt, ...]


@dataclass(frozen=True)
class DestinationPostings:
    destination_id: int
    destination: str
    kind: str
    #: the destination accepted the order's current version (a posting of it is ``posted``)
    has_current: bool
    #: the current version is sent or about to be (pending), or refused (rejected); None: not yet
    current_status: str | None
    postings: tuple[Posting, ...]
    #: a POS destination's document as last read (issue #17): ``document_id, state, stock_moved,
    #: number, total, currency, read_at`` — whether the sale is complete and stock moved there
    pos_document: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Push:
    id: int
    status: str
    channel: str
    fulfilment_id: str | None
    message: str
    attempts: int
    updated_at: datetime


@dataclass(frozen=True)
class ShipmentInfo:
    id: int
    destination: str
    external_id: str
    tracking_number: str | None
    carrier: str | None
    service: str | None
    tracking_url: str | None
    ship_date: datetime | None
    voided: bool
    lines: Any
    push: Push | None


@dataclass(frozen=True)
class ActionOffer:
    """One action of the order page: whether it can be done now, and why not when not."""

    name: str
    possible: bool
    why_not: str = ""


@dataclass(frozen=True)
class OrderStory:
    id: int
    number: str
    external_id: str
    connection_id: int
    connection: str
    connection_kind: str
    state: str
    version: int
    received_at: datetime
    updated_at: datetime
    channel_created_at: datetime | None
    channel_updated_at: datetime | None
    #: the problem(s) first: open reasons of the order, then of its held pushes
    problems: tuple[Problem, ...]
    #: destinations that have not accepted the current version (names), in creation order
    waiting_for: tuple[str, ...]
    #: the canonical order could be read (an unreadable one has only its raw payload)
    readable: bool
    customer_name: str
    email: str
    payment_status: str
    fulfilment_status: str
    shipping_method: str | None
    shipping_address: Address | None
    billing_address: Address | None
    tags: tuple[str, ...]
    note: str
    currency: str | None
    lines: tuple[Line, ...]
    totals: Totals | None
    timeline: tuple[TimelineEntry, ...]
    destinations: tuple[DestinationPostings, ...]
    shipments: tuple[ShipmentInfo, ...]
    raw: Any
    actions: tuple[ActionOffer, ...]

    def action(self, name: str) -> ActionOffer:
        return next(a for a in self.actions if a.name == name)

    @property
    def postings_count(self) -> int:
        return sum(len(d.postings) for d in self.destinations)


def order_row(conn: Connection, scope: Scope, order_id: int) -> Any:
    """The tenant's order ``order_id`` (its row), or :class:`NotFound` — for another tenant's too."""
    row = conn.execute(
        select(orders).where(orders.c.id == order_id, orders.c.tenant_id == scope.tenant_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no order {order_id}", hint="Find the order in the orders list, by its number.")
    return row


def order_story(scope: Scope, order_id: int) -> OrderStory:
    """Everything about the tenant's order ``order_id`` (see the module docstring)."""
    with scope.read() as conn:
        o = order_row(conn, scope, order_id)
        channel = scope.connection(conn, int(o.connection_id))
        destinations = scope.connections(conn, Role.DESTINATION)
        problems = _problems(conn, o)
        posts = _postings(conn, o, destinations)
        shipped = _shipments(conn, o)
        events_ = _events(conn, o.id)
    actions = actions_on(scope, "order", o.id, limit=200)
    order = order_from_json(o.canonical) if o.canonical is not None else None
    state = OrderState(o.state)
    waiting = tuple(d.destination for d in posts if not d.has_current)
    return OrderStory(
        id=int(o.id),
        number=str(o.number),
        external_id=str(o.external_id),
        connection_id=channel.id,
        connection=channel.name,
        connection_kind=channel.kind,
        state=state.value,
        version=int(o.version),
        received_at=o.received_at,
        updated_at=o.updated_at,
        channel_created_at=o.channel_created_at,
        channel_updated_at=o.channel_updated_at,
        problems=problems,
        waiting_for=waiting,
        readable=order is not None,
        customer_name=order.customer_name if order else "",
        email=order.email if order else "",
        payment_status=order.payment_status.value if order else "",
        fulfilment_status=order.fulfilment_status.value if order else "",
        shipping_method=order.shipping_method if order else None,
        shipping_address=order.shipping_address if order else None,
        billing_address=order.billing_address if order else None,
        tags=order.tags if order else (),
        note=order.note if order else "",
        currency=o.currency,
        lines=_lines(order) if order else (),
        totals=_totals(order) if order else None,
        timeline=_timeline(events_, actions),
        destinations=posts,
        shipments=shipped,
        raw=o.raw,
        actions=_offers(state, channel, problems, waiting),
    )


# --- the parts ------------------------------------------------------------------------------------


def _problems(conn: Connection, o: Any) -> tuple[Problem, ...]:
    rows = conn.execute(
        select(order_reasons, shipments.c.external_id.label("shipment"))
        .outerjoin(fulfilment_pushes, fulfilment_pushes.c.id == order_reasons.c.push_id)
        .outerjoin(shipments, shipments.c.id == fulfilment_pushes.c.shipment_id)
        .where(order_reasons.c.order_id == o.id, order_reasons.c.released_at.is_(None))
        .order_by(order_reasons.c.push_id.is_not(None), order_reasons.c.id)
    ).all()
    return tuple(
        Problem(
            reason_id=int(r.id),
            kind=str(r.kind),
            code=str(r.code),
            value=str(r.value),
            message=str(r.message),
            fix=_for_order(r.fix, str(o.number)),
            since=r.created_at,
            push_id=None if r.push_id is None else int(r.push_id),
            shipment=r.shipment,
            releasable=r.kind == "hold" and r.push_id is None and r.code in RELEASABLE,
        )
        for r in rows
    )


def _for_order(fix: Fix, number: str) -> Fix:
    """On one order's page, "retry the order" is about that order: its number fills the fix in."""
    if fix.action is FixAction.RETRY_ORDER and fix.param("order") is None:
        return fix.with_params(order=number)
    return fix


def _lines(order: Order) -> tuple[Line, ...]:
    out = []
    for li in order.lines:
        total = Money(li.unit_price.amount * li.quantity, li.unit_price.currency)
        if li.discount is not None and li.discount.currency == total.currency:
            total = Money(total.amount - li.discount.amount, total.currency)
        out.append(
            Line(
                li.external_id,
                li.sku,
                li.title,
                li.quantity,
                li.open_quantity,
                li.unit_price,
                li.discount,
                li.tax,
                total,
                li.properties,
            )
        )
    return tuple(out)


def _totals(order: Order) -> Totals:
    discounts = Money.zero(order.currency)
    for d in order.discounts:
        if d.amount.currency == order.currency:
            discounts = discounts + d.amount
    return Totals(order.subtotal, order.shipping_total, order.total_tax, discounts, order.total)


def _events(conn: Connection, order_id: int) -> list[Any]:
    return list(conn.execute(select(events).where(events.c.order_id == order_id).order_by(events.c.id)))


def _timeline(rows: Sequence[Any], actions: Sequence[Any]) -> tuple[TimelineEntry, ...]:
    entries = [
        TimelineEntry(
            at=e.at,
            kind=str(e.kind),
            message=str(e.message),
            who=(e.data or {}).get("by") if isinstance(e.data, dict) else None,
            address=(e.data or {}).get("address") if isinstance(e.data, dict) else None,
            action=(e.data or {}).get("action") if isinstance(e.data, dict) else None,
            data=e.data if isinstance(e.data, dict) else None,
        )
        for e in rows
    ]
    entries += [
        TimelineEntry(a.at, "user_action", a.summary, a.who, a.address, a.action)
        for a in actions
        if a.action not in ACTIONS_WITH_EVENTS
    ]
    # stable: ledger events keep their order; an action lands after the events of its instant
    return tuple(sorted(entries, key=lambda t: t.at))


def _postings(conn: Connection, o: Any, destinations: Sequence[ConnectionRow]) -> tuple[DestinationPostings, ...]:
    rows = conn.execute(select(postings).where(postings.c.order_id == o.id).order_by(postings.c.id)).all()
    attempts: dict[int, list[Attempt]] = {}
    if rows:
        for a in conn.execute(
            select(posting_attempts)
            .where(posting_attempts.c.posting_id.in_([r.id for r in rows]))
            .order_by(posting_attempts.c.id)
        ):
            attempts.setdefault(int(a.posting_id), []).append(Attempt(a.at, str(a.outcome), str(a.message), a.sent))
    by_dest: dict[int, list[Posting]] = {}
    for r in rows:
        by_dest.setdefault(int(r.destination_id), []).append(
            Posting(
                int(r.id),
                int(r.order_version),
                str(r.status),
                str(r.idempotency_key),
                str(r.order_key),
                r.document_id,
                int(r.attempts),
                r.last_error,
                r.created_at,
                r.posted_at,
                tuple(attempts.get(int(r.id), ())),
            )
        )
    known = {d.id: d for d in destinations}
    pos_docs = {str(d["destination"]): d for d in preflight.pos_documents(conn, int(o.id))}
    # a destination since removed still has its postings: they are the ledger's, never forgotten
    gone = sorted(set(by_dest) - set(known))
    names = dict(
        conn.execute(select(connections.c.id, connections.c.name).where(connections.c.id.in_(gone))).all()
        if gone
        else []
    )
    out = []
    for dest_id in [*known, *gone]:
        mine = by_dest.get(dest_id, [])
        current = [p for p in mine if p.version == o.version]
        status = current[-1].status if current else None
        row = known.get(dest_id)
        out.append(
            DestinationPostings(
                dest_id,
                row.name if row else str(names.get(dest_id, dest_id)),
                row.kind if row else "",
                any(p.status == PostingState.POSTED.value for p in current),
                status,
                tuple(mine),
                pos_docs.get(row.name) if row else None,
            )
        )
    return tuple(d for d in out if d.destination_id in known or d.postings)


def _shipments(conn: Connection, o: Any) -> tuple[ShipmentInfo, ...]:
    rows = conn.execute(
        select(
            shipments,
            connections.c.name.label("destination"),
            fulfilment_pushes.c.id.label("push_id"),
            fulfilment_pushes.c.status.label("push_status"),
            fulfilment_pushes.c.channel_id,
            fulfilment_pushes.c.channel_fulfilment_id,
            fulfilment_pushes.c.message.label("push_message"),
            fulfilment_pushes.c.attempts.label("push_attempts"),
            fulfilment_pushes.c.updated_at.label("push_updated_at"),
        )
        .join(connections, connections.c.id == shipments.c.destination_id)
        .outerjoin(fulfilment_pushes, fulfilment_pushes.c.shipment_id == shipments.c.id)
        .where(shipments.c.order_id == o.id)
        .order_by(shipments.c.id)
    ).all()
    channel_names = dict(
        conn.execute(
            select(connections.c.id, connections.c.name).where(
                connections.c.id.in_({r.channel_id for r in rows if r.channel_id is not None})
            )
        ).all()
    )
    return tuple(
        ShipmentInfo(
            int(r.id),
            str(r.destination),
            str(r.external_id),
            r.tracking_number,
            r.carrier,
            r.service,
            r.tracking_url,
            r.ship_date,
            bool(r.voided),
            r.lines,
            None
            if r.push_id is None
            else Push(
                int(r.push_id),
                str(r.push_status),
                str(channel_names.get(r.channel_id, "")),
                r.channel_fulfilment_id,
                str(r.push_message or ""),
                int(r.push_attempts or 0),
                r.push_updated_at,
            ),
        )
        for r in rows
    )


def _offers(
    state: OrderState, channel: ConnectionRow, problems: Sequence[Problem], waiting: Sequence[str]
) -> tuple[ActionOffer, ...]:
    holds = [p for p in problems if p.kind == "hold"]
    rejected = any(p.code == HoldCode.DESTINATION_REJECTED for p in holds)
    if state not in RETRYABLE:
        retry = ActionOffer("retry", False, f"The order is {state.value}: there is nothing to retry.")
    elif state is OrderState.READY and not rejected:
        retry = ActionOffer("retry", False, "The order is ready: it is posted on the next run.")
    else:
        retry = ActionOffer("retry", True)
    if state not in RESETTABLE:
        reset = ActionOffer("reset", False, f"The order is {state.value}: it cannot go back to pending.")
    elif state is OrderState.POSTED and not waiting:
        reset = ActionOffer("reset", False, "Every destination has accepted the current version.")
    else:
        reset = ActionOffer("reset", True)
    if Capability.FETCH_ORDER not in channel.declaration.capabilities:
        refresh = ActionOffer("refresh", False, f"{channel.name} cannot be asked for one order.")
    else:
        refresh = ActionOffer("refresh", True)
    if any(p.releasable for p in problems):
        release = ActionOffer("release", True)
    else:
        release = ActionOffer("release", False, "No hold of this order can be released.")
    return (retry, reset, refresh, release)
