"""One order for programs, and its actions; the tenant's ledger events.

- ``GET /api/v1/orders/{order_id}``: the order's whole story (``services/order_story.py``) — the
  problems with their fixes first, lines, totals, addresses, timeline, postings per destination
  with every attempt and what was sent, shipments and pushes, the channel's raw payload;
- ``POST /api/v1/orders/{order_id}/retry|reset|refresh`` (operator) and ``…/release`` (admin, a
  JSON body naming the reason and saying why) — ``services/order_actions.py``; each answers what
  it did, ``changed: false`` when there was nothing to do (a repeat is harmless);
- ``GET /api/v1/events``: the tenant's ledger events, newest first, ``cursor`` pages, filtered by
  ``order_id`` or ``connection_id``.

Money is a decimal string with its currency (never a JSON number: no float ever carries it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from orderbridge.domain.money import Money
from orderbridge.domain.order import Address
from orderbridge.errors import InvalidInput
from orderbridge.fixes import Fix
from orderbridge.services import event_feed, order_actions, order_story
from orderbridge.web.api.common import api_router
from orderbridge.web.deps import ApiAdmin, ApiOperator, ApiViewer

router = api_router("orders")


# --- response models ------------------------------------------------------------------------------


class MoneyOut(BaseModel):
    amount: str = Field(description="a decimal string, e.g. `24.00`")
    currency: str = Field(description="ISO 4217")


class FixOut(BaseModel):
    action: str
    params: dict[str, str]
    text: str


class ProblemOut(BaseModel):
    reason_id: int
    kind: str = Field(description="`hold` or `skip` (the order's), `push` (a fulfilment push's)")
    code: str
    value: str
    message: str
    fix: FixOut
    since: datetime
    push_id: int | None
    shipment: str | None
    releasable: bool = Field(description="an admin may release it (`POST …/release`)")


class LineOut(BaseModel):
    external_id: str
    sku: str | None
    title: str
    quantity: int
    open_quantity: int = Field(description="what is left to fulfil: what a destination is sent")
    unit_price: MoneyOut
    discount: MoneyOut | None
    tax: MoneyOut | None
    total: MoneyOut


class TotalsOut(BaseModel):
    subtotal: MoneyOut
    shipping: MoneyOut
    tax: MoneyOut
    discounts: MoneyOut
    total: MoneyOut


class AddressOut(BaseModel):
    name: str
    company: str
    address1: str
    address2: str
    city: str
    province_code: str
    postal_code: str
    country_code: str
    phone: str


class TimelineOut(BaseModel):
    at: datetime
    kind: str
    message: str
    who: str | None
    address: str | None
    action: str | None


class AttemptOut(BaseModel):
    at: datetime
    outcome: str
    message: str
    sent: dict[str, Any] | None = Field(description="the document sent in this attempt (null: not recorded)")


class PostingOut(BaseModel):
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
    attempts: list[AttemptOut]


class PosDocumentOut(BaseModel):
    """A POS destination's document for the order, as last read (issue #17)."""

    document_id: str
    state: str | None = Field(description="pending, open, invoiced, completed or voided; null: no longer found")
    stock_moved: bool | None = Field(description="whether the POS adjusted inventory for it")
    number: str | None
    total: str | None
    currency: str | None
    read_at: datetime

    @classmethod
    def of(cls, d: Any) -> PosDocumentOut:
        return cls(
            document_id=str(d["document_id"]),
            state=d.get("state"),
            stock_moved=d.get("stock_moved"),
            number=d.get("number"),
            total=d.get("total"),
            currency=d.get("currency"),
            read_at=d["read_at"],
        )


class DestinationOut(BaseModel):
    destination_id: int
    destination: str
    kind: str
    has_current: bool = Field(description="the destination accepted the order's current version")
    current_status: str | None
    postings: list[PostingOut]
    pos_document: PosDocumentOut | None = Field(
        default=None, description="a POS destination's document: its state and whether stock moved"
    )


class PushOut(BaseModel):
    id: int
    status: str
    channel: str
    fulfilment_id: str | None
    message: str
    attempts: int
    updated_at: datetime


class ShipmentOut(BaseModel):
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
    push: PushOut | None


class OfferOut(BaseModel):
    name: str
    possible: bool
    why_not: str


class OrderDetailOut(BaseModel):
    id: int
    number: str
    external_id: str
    connection_id: int
    connection: str
    state: str
    version: int
    received_at: datetime
    updated_at: datetime
    channel_created_at: datetime | None
    channel_updated_at: datetime | None
    problems: list[ProblemOut]
    waiting_for: list[str] = Field(description="destinations that have not accepted the current version")
    customer_name: str
    email: str
    payment_status: str
    fulfilment_status: str
    shipping_method: str | None
    shipping_address: AddressOut | None
    billing_address: AddressOut | None
    tags: list[str]
    note: str
    currency: str | None
    lines: list[LineOut]
    totals: TotalsOut | None
    timeline: list[TimelineOut]
    destinations: list[DestinationOut]
    shipments: list[ShipmentOut]
    raw: Any = Field(description="the channel's payload, as stored")
    actions: list[OfferOut]


class ActionOut(BaseModel):
    action: str
    order_id: int
    number: str
    changed: bool = Field(description="false: there was nothing to do (nothing was written)")
    outcome: str
    state_before: str
    state: str
    version_before: int
    version: int
    message: str
    to_post: list[str] = Field(description="destinations the current version goes to next")


class ReleaseIn(BaseModel):
    reason_id: int = Field(ge=1, le=2**62, description="the `reason_id` of one of the order's `problems`")
    reason: str = Field(
        min_length=1, max_length=500, description="why the order may go as it is (recorded on its timeline)"
    )


class EventOut(BaseModel):
    id: int
    at: datetime
    kind: str
    message: str
    order_id: int | None
    order_number: str | None
    connection_id: int | None
    data: dict[str, Any] | None


class EventsOut(BaseModel):
    events: list[EventOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page; null: the last")


# --- conversions ----------------------------------------------------------------------------------


def _money(m: Money | None) -> MoneyOut | None:
    return None if m is None else MoneyOut(amount=str(m.amount), currency=m.currency)


def _must(m: Money) -> MoneyOut:
    return MoneyOut(amount=str(m.amount), currency=m.currency)


def _fix(f: Fix) -> FixOut:
    return FixOut(action=f.action.value, params=dict(f.params), text=f.text)


def _address(a: Address | None) -> AddressOut | None:
    if a is None:
        return None
    return AddressOut(
        name=a.name,
        company=a.company,
        address1=a.address1,
        address2=a.address2,
        city=a.city,
        province_code=a.province_code,
        postal_code=a.postal_code,
        country_code=a.country_code,
        phone=a.phone,
    )


def detail_out(s: order_story.OrderStory) -> OrderDetailOut:
    return OrderDetailOut(
        id=s.id,
        number=s.number,
        external_id=s.external_id,
        connection_id=s.connection_id,
        connection=s.connection,
        state=s.state,
        version=s.version,
        received_at=s.received_at,
        updated_at=s.updated_at,
        channel_created_at=s.channel_created_at,
        channel_updated_at=s.channel_updated_at,
        problems=[
            ProblemOut(
                reason_id=p.reason_id,
                kind=p.kind,
                code=p.code,
                value=p.value,
                message=p.message,
                fix=_fix(p.fix),
                since=p.since,
                push_id=p.push_id,
                shipment=p.shipment,
                releasable=p.releasable,
            )
            for p in s.problems
        ],
        waiting_for=list(s.waiting_for),
        customer_name=s.customer_name,
        email=s.email,
        payment_status=s.payment_status,
        fulfilment_status=s.fulfilment_status,
        shipping_method=s.shipping_method,
        shipping_address=_address(s.shipping_address),
        billing_address=_address(s.billing_address),
        tags=list(s.tags),
        note=s.note,
        currency=s.currency,
        lines=[
            LineOut(
                external_id=li.external_id,
                sku=li.sku,
                title=li.title,
                quantity=li.quantity,
                open_quantity=li.open_quantity,
                unit_price=_must(li.unit_price),
                discount=_money(li.discount),
                tax=_money(li.tax),
                total=_must(li.total),
            )
            for li in s.lines
        ],
        totals=None
        if s.totals is None
        else TotalsOut(
            subtotal=_must(s.totals.subtotal),
            shipping=_must(s.totals.shipping),
            tax=_must(s.totals.tax),
            discounts=_must(s.totals.discounts),
            total=_must(s.totals.total),
        ),
        timeline=[
            TimelineOut(at=t.at, kind=t.kind, message=t.message, who=t.who, address=t.address, action=t.action)
            for t in s.timeline
        ],
        destinations=[
            DestinationOut(
                destination_id=d.destination_id,
                destination=d.destination,
                kind=d.kind,
                has_current=d.has_current,
                current_status=d.current_status,
                postings=[
                    PostingOut(
                        id=p.id,
                        version=p.version,
                        status=p.status,
                        idempotency_key=p.idempotency_key,
                        order_key=p.order_key,
                        document_id=p.document_id,
                        attempts_count=p.attempts_count,
                        last_error=p.last_error,
                        created_at=p.created_at,
                        posted_at=p.posted_at,
                        attempts=[
                            AttemptOut(
                                at=a.at,
                                outcome=a.outcome,
                                message=a.message,
                                sent=dict(a.sent) if isinstance(a.sent, dict) else None,
                            )
                            for a in p.attempts
                        ],
                    )
                    for p in d.postings
                ],
                pos_document=None if d.pos_document is None else PosDocumentOut.of(d.pos_document),
            )
            for d in s.destinations
        ],
        shipments=[
            ShipmentOut(
                id=sh.id,
                destination=sh.destination,
                external_id=sh.external_id,
                tracking_number=sh.tracking_number,
                carrier=sh.carrier,
                service=sh.service,
                tracking_url=sh.tracking_url,
                ship_date=sh.ship_date,
                voided=sh.voided,
                lines=sh.lines,
                push=None
                if sh.push is None
                else PushOut(
                    id=sh.push.id,
                    status=sh.push.status,
                    channel=sh.push.channel,
                    fulfilment_id=sh.push.fulfilment_id,
                    message=sh.push.message,
                    attempts=sh.push.attempts,
                    updated_at=sh.push.updated_at,
                ),
            )
            for sh in s.shipments
        ],
        raw=s.raw,
        actions=[OfferOut(name=a.name, possible=a.possible, why_not=a.why_not) for a in s.actions],
    )


def action_out(r: order_actions.ActionResult) -> ActionOut:
    return ActionOut(
        action=r.action,
        order_id=r.order_id,
        number=r.number,
        changed=r.changed,
        outcome=r.outcome,
        state_before=r.state_before,
        state=r.state,
        version_before=r.version_before,
        version=r.version,
        message=r.message,
        to_post=list(r.to_post),
    )


def _cursor(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 18:
        exc = InvalidInput(f"cursor {value[:40]!r} is not one this API gave", hint="Pass `next_cursor` as it came.")
        exc.field = "cursor"  # type: ignore[attr-defined]
        raise exc
    return int(value)


# --- routes ---------------------------------------------------------------------------------------

OrderId = Annotated[int, Path(ge=1, le=2**62, description="the order's id in the ledger")]


@router.get("/orders/{order_id}", response_model=OrderDetailOut, summary="One order: its problem, timeline, postings")
async def get_order(order_id: OrderId, actor: ApiViewer) -> OrderDetailOut:
    story = await run_in_threadpool(order_story.order_story, actor.scope, order_id)
    return detail_out(story)


def _done(request: Request, result: order_actions.ActionResult) -> ActionOut:
    """The action's answer; an order that changed nudges the embedded poster (posted within moments)."""
    wake = getattr(request.app.state, "wake", None)
    if result.changed and wake is not None:
        wake()
    return action_out(result)


@router.post(
    "/orders/{order_id}/retry",
    response_model=ActionOut,
    summary="Retry: release the destination rejections and run the pipeline again",
    responses={409: {"description": "The order's state does not allow it"}},
)
async def retry(request: Request, order_id: OrderId, actor: ApiOperator) -> ActionOut:
    result = await run_in_threadpool(order_actions.retry_now, actor, order_id)
    return _done(request, result)


@router.post(
    "/orders/{order_id}/reset",
    response_model=ActionOut,
    summary="Reset to pending: post the current version to every destination that lacks it",
    responses={409: {"description": "The order's state does not allow it"}},
)
async def reset(request: Request, order_id: OrderId, actor: ApiOperator) -> ActionOut:
    result = await run_in_threadpool(order_actions.reset_to_pending, actor, order_id)
    return _done(request, result)


@router.post(
    "/orders/{order_id}/refresh",
    response_model=ActionOut,
    summary="Refresh from the channel: fetch the order again and store a changed copy as a new version",
    responses={409: {"description": "The channel cannot be asked for it, or no longer has it"}},
)
async def refresh(request: Request, order_id: OrderId, actor: ApiOperator) -> ActionOut:
    result = await run_in_threadpool(order_actions.refresh_from_channel, actor, order_id)
    return _done(request, result)


@router.post(
    "/orders/{order_id}/release",
    response_model=ActionOut,
    summary="Release one hold of the current version, with the reason why (admin)",
    responses={409: {"description": "That reason cannot be released"}},
)
async def release(request: Request, order_id: OrderId, body: ReleaseIn, actor: ApiAdmin) -> ActionOut:
    result = await run_in_threadpool(order_actions.release_hold, actor, order_id, body.reason_id, body.reason)
    return _done(request, result)


@router.get("/events", response_model=EventsOut, summary="The account's ledger events, newest first")
async def list_events(
    actor: ApiViewer,
    order_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    connection_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=event_feed.MAX_LIMIT)] = 50,
) -> EventsOut:
    page = await run_in_threadpool(
        event_feed.list_events,
        actor.scope,
        order_id=order_id,
        connection_id=connection_id,
        before=_cursor(cursor),
        limit=limit,
    )
    return EventsOut(
        events=[
            EventOut(
                id=e.id,
                at=e.at,
                kind=e.kind,
                message=e.message,
                order_id=e.order_id,
                order_number=e.order_number,
                connection_id=e.connection_id,
                data=e.data,
            )
            for e in page.events
        ],
        next_cursor=None if page.next_before is None else str(page.next_before),
    )
