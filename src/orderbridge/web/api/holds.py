"""``/api/v1/holds``: held orders grouped by root cause, and the bulk retry of one cause.

``GET /api/v1/holds`` lists the causes (``?code=…&value=…`` for one; ``include_skipped``) with the
count, example orders, the fix as data and — for a cause a mapping fixes — the mapping to set
(kind, the value, the destinations that take it): set it with the mappings API, or retry the cause
with ``POST /api/v1/holds/retry`` once it was fixed elsewhere. A retry needs the operator role.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from pydantic import BaseModel, Field

from orderbridge.fixes import Fix
from orderbridge.services.exceptions import Cause, causes, retry_cause
from orderbridge.web.api.common import api_router
from orderbridge.web.deps import ApiOperator, ApiViewer

router = api_router("holds")


class FixOut(BaseModel):
    action: str = Field(description="what to do, e.g. `map_sku`, `retry_order`, `edit_order_at_channel`")
    params: dict[str, str] = Field(description="the fix's parameters (the SKU, the destination …)")
    text: str = Field(description="the fix in one sentence")

    @classmethod
    def of(cls, fix: Fix) -> FixOut:
        data: dict[str, Any] = fix.as_dict()
        return cls(action=data["action"], params=data["params"], text=data["text"])


class ExampleOut(BaseModel):
    id: int | None = Field(description="the order's id (`/api/v1/orders/{order_id}`); null for one not stored")
    label: str = Field(description="its number, as the channel shows it")


class DestinationOut(BaseModel):
    id: int
    name: str


class MappingFixOut(BaseModel):
    kind: str = Field(description="`sku` or `shipping`")
    source: str = Field(description="the channel's value to map (`*`: the default shipping service)")
    destinations: list[DestinationOut] = Field(description="the destinations that take this kind of mapping")
    destination_id: int | None = Field(description="the one the hold names")


class CauseOut(BaseModel):
    kind: str = Field(description="`hold` (held orders), `push` (held fulfilment pushes), `quarantine`, `skip`")
    code: str = Field(description="the reason's stable code, e.g. `sku_unmapped`")
    value: str = Field(description="what the reason is about (the SKU, the method, the destination …)")
    orders: int = Field(description="orders held for the cause")
    pushes: int = Field(description="held fulfilment pushes (a `push` cause's count)")
    message: str
    fix: FixOut
    examples: list[ExampleOut]
    mapping: MappingFixOut | None = Field(description="the mapping that fixes the cause, when one does")
    retryable: bool = Field(description="whether `POST /api/v1/holds/retry` takes this cause")


class HoldsOut(BaseModel):
    causes: list[CauseOut]


class RetryIn(BaseModel):
    code: str = Field(min_length=1, max_length=60, description="the cause's code, as listed")
    value: str = Field(max_length=300, description="the cause's value, as listed (may be empty)")


class RetryOut(BaseModel):
    code: str
    value: str
    orders: int = Field(description="held orders retried")
    released: int = Field(description="now ready: the next posting run sends them")
    still_held: int = Field(description="still held (the cause, or another, is not fixed)")


def cause_out(cause: Cause) -> CauseOut:
    g = cause.group
    ids: list[int | None] = list(g.example_ids)
    examples = [ExampleOut(id=ids[i] if i < len(ids) else None, label=label) for i, label in enumerate(g.examples)]
    mapping = None
    if cause.map is not None:
        mapping = MappingFixOut(
            kind=cause.map.kind,
            source=cause.map.source,
            destinations=[DestinationOut(id=d.id, name=d.name) for d in cause.map.destinations],
            destination_id=cause.map.destination_id,
        )
    return CauseOut(
        kind=g.kind,
        code=g.code,
        value=g.value,
        orders=g.orders,
        pushes=g.pushes,
        message=g.message,
        fix=FixOut.of(g.fix),
        examples=examples,
        mapping=mapping,
        retryable=cause.retryable,
    )


@router.get("/holds", response_model=HoldsOut, summary="Held orders grouped by root cause")
def list_holds(
    actor: ApiViewer,
    code: Annotated[str | None, Query(max_length=60, description="only this cause's code")] = None,
    value: Annotated[
        str | None, Query(max_length=300, description="with `code`: only this value (empty = the empty value)")
    ] = None,
    include_skipped: Annotated[bool, Query(description="also the orders download rules skipped")] = False,
) -> HoldsOut:
    found = causes(actor.scope, code=code or None, value=value if code else None, include_skipped=include_skipped)
    return HoldsOut(causes=[cause_out(c) for c in found])


@router.post("/holds/retry", response_model=RetryOut, summary="Retry every held order of one root cause")
def retry_holds(request: Request, actor: ApiOperator, body: RetryIn) -> RetryOut:
    result = retry_cause(actor.scope, body.code, body.value, by=actor)
    wake = getattr(request.app.state, "wake", None)
    if wake is not None:
        wake()
    return RetryOut(
        code=result.code,
        value=result.value,
        orders=result.orders,
        released=result.released,
        still_held=result.still_held,
    )
