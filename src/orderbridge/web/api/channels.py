"""Issue #16 in the REST API: ask an order's channel to cancel, refund, accept or refuse it; fill
in the shipping data of a held push and send it again; the orders approaching a channel deadline."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from orderbridge.services import channel_intents, deadlines, shipping_fill
from orderbridge.web.api.common import api_router
from orderbridge.web.deps import ApiOperator, ApiViewer

router = api_router("channels")

OrderId = Annotated[int, Path(ge=1, le=2**62, description="the order's id in the ledger")]


class LineIn(BaseModel):
    line: str = Field(min_length=1, max_length=100, description="the order line's id at the channel")
    quantity: int = Field(ge=1, le=1_000_000)


class ChannelRequestIn(BaseModel):
    outcome: str = Field(description="cancelled | refunded | accepted | refused")
    lines: list[LineIn] = Field(default_factory=list, max_length=500, description="cancel: some lines only")
    refund_total: str | None = Field(None, max_length=40, description="refunded: the total refunded at the end")
    note: str = Field("", max_length=500, description="the reason the channel keeps with it")


class ChannelRequestOut(BaseModel):
    intent_id: int
    created: bool
    outcome: str


class IntentsOut(BaseModel):
    intents: list[dict[str, Any]]


class ShippingDataIn(BaseModel):
    tracking_number: str | None = Field(None, max_length=200)
    carrier: str | None = Field(None, max_length=200)
    tracking_url: str | None = Field(None, max_length=2000)
    shipment: str | None = Field(None, max_length=200, description="the shipment, when several are held")


class ShippingDataOut(BaseModel):
    shipment: str
    fields: list[str]
    pushed: bool


class DeadlinesOut(BaseModel):
    deadlines: list[dict[str, Any]]


@router.post(
    "/orders/{order_id}/channel-requests",
    response_model=ChannelRequestOut,
    status_code=202,
    summary="Ask the order's channel to cancel, refund, accept or refuse it (sent by the next push run)",
)
async def ask(order_id: OrderId, body: ChannelRequestIn, actor: ApiOperator) -> ChannelRequestOut:
    asked = await run_in_threadpool(
        channel_intents.ask,
        actor,
        order_id,
        body.outcome,
        lines=tuple((ln.line, ln.quantity) for ln in body.lines),
        refund_total=body.refund_total,
        note=body.note,
    )
    return ChannelRequestOut(intent_id=asked.intent_id, created=asked.created, outcome=asked.outcome)


@router.get("/orders/{order_id}/channel-requests", response_model=IntentsOut, summary="The order's requests")
async def list_requests(order_id: OrderId, actor: ApiViewer) -> IntentsOut:
    return IntentsOut(intents=await run_in_threadpool(channel_intents.intents_of, actor.scope, order_id))


@router.get("/channel-requests/held", response_model=IntentsOut, summary="Every held request, with its reason")
async def held_requests(actor: ApiViewer) -> IntentsOut:
    return IntentsOut(intents=await run_in_threadpool(channel_intents.held_intents, actor.scope))


@router.post(
    "/orders/{order_id}/shipping-data",
    response_model=ShippingDataOut,
    summary="Fill in the shipping data a held push lacks and send it again",
)
async def fill_shipping(
    request: Request, order_id: OrderId, body: ShippingDataIn, actor: ApiOperator
) -> ShippingDataOut:
    filled = await run_in_threadpool(
        shipping_fill.fill,
        actor,
        order_id,
        tracking_number=body.tracking_number,
        carrier=body.carrier,
        tracking_url=body.tracking_url,
        shipment=body.shipment,
    )
    pushed = bool(filled.report is not None and filled.report.pushed)
    return ShippingDataOut(shipment=filled.shipment, fields=list(filled.fields), pushed=pushed)


@router.get("/deadlines", response_model=DeadlinesOut, summary="Orders approaching a channel deadline, soonest first")
async def list_deadlines(actor: ApiViewer) -> DeadlinesOut:
    found = await run_in_threadpool(deadlines.approaching, actor.scope)
    return DeadlinesOut(deadlines=[a.as_dict() for a in found])
