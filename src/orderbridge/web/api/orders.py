"""``GET /api/v1/orders``: the orders inbox for programs — the portal's filters, search and sort,
a page at a time with an opaque cursor.

The parameters are the inbox form's (``services/inbox.parse_query`` reads both, so a value the
portal refuses the API refuses with the same message, in the API's error shape with the
``field``). A page's ``next_cursor`` is passed back as ``cursor`` for the next one, with the same
filters and sort; it is ``null`` on the last page. Amounts are decimal strings with their
currency, times ISO 8601 in UTC.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field

from orderbridge.services.inbox import DEFAULT_LIMIT, MAX_LIMIT, MAX_SEARCH, InboxRow, inbox, parse_query
from orderbridge.web.api.common import api_router
from orderbridge.web.deps import ApiViewer

router = api_router("orders")


class OrderReason(BaseModel):
    kind: str = Field(description="`hold` (the order is held), `push` (a fulfilment push is held) or `skip`")
    code: str = Field(description="stable reason code, e.g. `sku_unmapped`")
    value: str = Field(description="what it is about: the SKU, the method, the field")
    message: str


class OrderSummary(BaseModel):
    id: int
    connection_id: int
    connection: str
    external_id: str = Field(description="the channel's id of the order")
    number: str
    version: int
    customer_name: str
    customer_email: str
    state: str
    total: Decimal | None = Field(description="a decimal string; null when the order could not be read")
    currency: str | None
    created_at: datetime | None = Field(description="at the channel; null when the order could not be read")
    received_at: datetime
    updated_at: datetime
    problem: bool = Field(description="held, or a fulfilment push of it is held: someone needs to act")
    reasons: list[OrderReason] = Field(description="the open reasons, oldest first")


class OrderList(BaseModel):
    orders: list[OrderSummary]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")
    prev_cursor: str | None = Field(description="pass as `cursor` for the page before; null on the first page")
    limit: int


def _summary(row: InboxRow) -> OrderSummary:
    return OrderSummary(
        id=row.id,
        connection_id=row.connection_id,
        connection=row.connection,
        external_id=row.external_id,
        number=row.number,
        version=row.version,
        customer_name=row.customer_name,
        customer_email=row.customer_email,
        state=row.state,
        total=row.total,
        currency=row.currency,
        created_at=row.created_at,
        received_at=row.received_at,
        updated_at=row.updated_at,
        problem=row.problem,
        reasons=[OrderReason(kind=r.kind, code=r.code, value=r.value, message=r.message) for r in row.reasons],
    )


@router.get("/orders", response_model=OrderList, summary="List orders (the inbox's filters, search and sort)")
def list_orders(
    actor: ApiViewer,
    state: Annotated[str | None, Query(max_length=20, description="an order state, e.g. `held`")] = None,
    connection_id: Annotated[int | None, Query(ge=1, le=2**62, description="a channel connection's id")] = None,
    reason: Annotated[
        str | None, Query(max_length=MAX_SEARCH, description="an open reason's code, or `code:value`")
    ] = None,
    reason_value: Annotated[str | None, Query(max_length=MAX_SEARCH, description="the reason's exact value")] = None,
    created_from: Annotated[
        str | None, Query(max_length=40, description="placed at or after: a date (UTC) or an ISO 8601 time")
    ] = None,
    created_to: Annotated[
        str | None, Query(max_length=40, description="placed before the end of this date, or before this time")
    ] = None,
    number: Annotated[str | None, Query(max_length=MAX_SEARCH, description="an order number or its start")] = None,
    email: Annotated[str | None, Query(max_length=MAX_SEARCH, description="the customer's e-mail, any case")] = None,
    sku: Annotated[str | None, Query(max_length=MAX_SEARCH, description="a SKU on one of the lines, exactly")] = None,
    sort: Annotated[
        str | None, Query(max_length=20, description="`newest` (default), `oldest`, `updated`, `number`, `total`")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=1000, description="a `next_cursor` or `prev_cursor`")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="orders a page")] = DEFAULT_LIMIT,
) -> OrderList:
    given = {
        "state": state,
        "connection_id": None if connection_id is None else str(connection_id),
        "reason": reason,
        "reason_value": reason_value,
        "created_from": created_from,
        "created_to": created_to,
        "number": number,
        "email": email,
        "sku": sku,
        "sort": sort,
        "cursor": cursor,
        "limit": str(limit),
    }
    page = inbox(actor.scope, parse_query(given))
    return OrderList(
        orders=[_summary(r) for r in page.rows],
        next_cursor=page.next_cursor,
        prev_cursor=page.prev_cursor,
        limit=page.query.limit,
    )
