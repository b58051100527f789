"""Placing an order by hand, for programs: ``POST /api/v1/orders``, its preview, and suggestions.

- ``POST /api/v1/orders`` (operator): the body is a draft order as JSON (``docs/manual-orders.md``);
  201 with the order's id, number, state and outcome; 422 naming *every* problem (``problems`` in
  the error shape, decision 132). With an ``Idempotency-Key`` header, a repeat of the same body is
  answered 200 with the first answer and makes no second order; the key with another body is 409
  ``idempotency_key_reused`` (decision 131).
- ``POST /api/v1/orders/preview`` (operator): the same body, validated; the totals and what
  placing it would do (new / updated / unchanged, and held because SKU X is unmapped …), writing
  nothing. Always 200 when the body is JSON: ``valid`` says whether it could be placed.
- ``GET /api/v1/order-suggestions`` (viewer): values for the SKU and shipping-method fields that
  the tenant's mappings and past orders know. Not under ``/orders/…``: ``/orders/{order_id}``
  would take the word for an id.

The body is read as bytes and parsed here, not by a declared pydantic model: amounts must reach the
domain exactly (JSON numbers are read as ``Decimal``, never ``float``), and a malformed draft is
answered with every problem at once rather than the first type error. Its schema is still
published (``openapi_extra``), built from :class:`DraftIn`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from orderbridge.domain import manual
from orderbridge.domain.manual import Draft, InvalidDraft, Problem, Source
from orderbridge.services import manual_orders
from orderbridge.web.api.common import ErrorBody, api_router
from orderbridge.web.deps import ApiOperator, ApiViewer

router = api_router("orders")


# --- the draft's published schema -------------------------------------------------------------------
Scalar = str | int | None
TEXT = "text; empty or absent: none"


class DraftLineIn(BaseModel):
    sku: Scalar = Field(default=None, description="required: the product's SKU")
    title: Scalar = Field(default=None, description="the line's title (default: the SKU)")
    quantity: Scalar = Field(default=None, description="required: a whole number of units, 1 to 1,000,000")
    unit_price: Scalar = Field(default=None, description='required: a decimal amount, e.g. "12.50" or 12.50')


class DraftAddressIn(BaseModel):
    name: Scalar = None
    company: Scalar = None
    address1: Scalar = None
    address2: Scalar = None
    city: Scalar = None
    province_code: Scalar = None
    postal_code: Scalar = None
    country_code: Scalar = Field(default=None, description="ISO 3166 alpha-2, e.g. FR")
    phone: Scalar = None


class DraftIn(BaseModel):
    number: Scalar = Field(default=None, description="the order's number (its identity); absent: M-<n> is given")
    currency: Scalar = Field(default=None, description="required: ISO 4217, e.g. EUR")
    email: Scalar = Field(default=None, description=TEXT)
    customer_name: Scalar = Field(default=None, description=TEXT)
    shipping_address: DraftAddressIn | None = None
    shipping_method: Scalar = Field(default=None, description="mapped to a destination's service")
    shipping_price: Scalar = Field(default=None, description="a decimal amount (default 0)")
    tax: Scalar = Field(default=None, description="the order's total tax (default 0)")
    discount: Scalar = Field(default=None, description="the order's total discount (default 0)")
    discount_code: Scalar = None
    payment_status: Scalar = Field(default=None, description="paid (default), pending, authorized …")
    note: Scalar = None
    tags: list[str] | None = None
    custom_fields: dict[str, str] | None = None
    placed_at: Scalar = Field(default=None, description="ISO 8601 with a timezone, or a date (default: now)")
    lines: list[DraftLineIn] = Field(default_factory=list, description="required: at least one line")


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with its ``$defs`` references replaced by the definitions (the OpenAPI document
    does not carry this model's ``$defs``)."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(dict(defs[ref.removeprefix("#/$defs/")]))
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined


_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": _inline(DraftIn.model_json_schema())}},
    }
}


# --- answers -----------------------------------------------------------------------------------------
class ReasonOut(BaseModel):
    code: str
    value: str
    message: str


class PlacedOut(BaseModel):
    id: int = Field(description="the order's id in the ledger (`GET /api/v1/orders/{order_id}`)")
    number: str
    state: str = Field(description="`ready`, `held` (see `reasons`), `skipped` …")
    outcome: str = Field(description="`new`, or `updated` / `unchanged` for a number the channel already had")
    reasons: list[ReasonOut]


class TotalsOut(BaseModel):
    currency: str
    subtotal: str = Field(description="a decimal string")
    shipping: str
    tax: str
    discount: str
    total: str
    units: int
    lines: list[str] = Field(description="each line's quantity × unit price")


class ProblemOut(BaseModel):
    field: str
    value: str
    code: str
    message: str
    fix: str


class PreviewOut(BaseModel):
    valid: bool = Field(description="whether it can be placed as it is")
    problems: list[ProblemOut]
    totals: TotalsOut | None = Field(description="null while the draft has problems")
    outcome: str | None = Field(description="`new`, `updated` or `unchanged`; null while it has problems")
    state: str | None = Field(description="the state placing it would give: `ready`, `held` …")
    reasons: list[ReasonOut] = Field(description="why it would be held or skipped")


class SuggestionOut(BaseModel):
    value: str
    mapped: list[str] = Field(description="`destination: value` of each mapping of it; empty: unmapped")


class SuggestionsOut(BaseModel):
    kind: str
    suggestions: list[SuggestionOut]


# --- reading the body --------------------------------------------------------------------------------
async def read_draft(request: Request) -> Draft:
    """The request's JSON body as a draft (:func:`orderbridge.domain.manual.parse_json_draft`); a
    declared length over the limit is refused before the body is read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > manual.MAX_JSON_BYTES:
        raise manual.UnreadableDraft(
            f"the body has {int(declared):,} bytes; one order may have at most {manual.MAX_JSON_BYTES:,}",
            hint="Send one order of at most 1,000 lines; import larger batches from a CSV file.",
        )
    return manual.parse_json_draft(await request.body())


def _placed(p: manual_orders.Placed) -> dict[str, Any]:
    return PlacedOut(
        id=p.order_id,
        number=p.number,
        state=p.state,
        outcome=p.outcome,
        reasons=[ReasonOut(**r) for r in p.reasons],
    ).model_dump(mode="json")


def _problem(p: Problem) -> ProblemOut:
    return ProblemOut(field=p.field, value=p.value, code=p.code, message=p.message, fix=p.fix)


# --- routes --------------------------------------------------------------------------------------------
@router.post(
    "/orders",
    status_code=201,
    response_model=PlacedOut,
    summary="Place an order by hand (a draft as JSON), once per Idempotency-Key",
    openapi_extra=_BODY,
    responses={
        200: {"model": PlacedOut, "description": "A repeat of an earlier request with the same Idempotency-Key"},
        409: {"model": ErrorBody, "description": "The Idempotency-Key was used before with another body"},
    },
)
async def place_order(
    request: Request,
    actor: ApiOperator,
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=manual_orders.MAX_KEY,
            description="a fresh random value per order (a UUID), the same one on every retry of it",
        ),
    ] = None,
) -> JSONResponse:
    draft = await read_draft(request)
    placed = await run_in_threadpool(manual_orders.place, actor, draft, via="api", idempotency_key=idempotency_key)
    wake = getattr(request.app.state, "wake", None)
    if not placed.replayed and wake is not None:
        wake()  # the embedded poster posts it now, not at its next tick
    return JSONResponse(_placed(placed), status_code=200 if placed.replayed else 201)


@router.post(
    "/orders/preview",
    response_model=PreviewOut,
    summary="Preview a draft: its problems, totals and what placing it would do (writes nothing)",
    openapi_extra=_BODY,
)
async def preview_order(request: Request, actor: ApiOperator) -> PreviewOut:
    try:
        draft = await read_draft(request)
    except InvalidDraft as exc:
        return PreviewOut(valid=False, problems=[_problem(p) for p in exc.problems], totals=None, outcome=None,
                          state=None, reasons=[])  # fmt: skip
    return await run_in_threadpool(preview_out, actor, draft)


def preview_out(actor: Any, draft: Draft) -> PreviewOut:
    """The preview of one draft (shared with the portal's form)."""
    problems = manual.validate(draft)
    if problems:
        return PreviewOut(
            valid=False, problems=[_problem(p) for p in problems], totals=None, outcome=None, state=None, reasons=[]
        )
    scope = actor.scope
    source = Source.placed_by(actor.principal.name, via="api")
    with scope.read() as conn:
        [planned] = manual_orders.preview(conn, scope.tenant_id, [manual_orders.Submission(draft, source)], scope.now())
    t = manual.totals(draft)
    return PreviewOut(
        valid=planned.outcome != manual_orders.INVALID,
        problems=[_problem(p) for p in planned.problems],
        totals=TotalsOut(**t.as_dict()),
        outcome=planned.outcome if planned.outcome != manual_orders.INVALID else None,
        state=planned.state,
        reasons=[ReasonOut(code=r.code, value=r.value, message=r.message) for r in planned.reasons],
    )


@router.get(
    "/order-suggestions",
    response_model=SuggestionsOut,
    summary="Values the SKU and shipping-method fields can take: from the mappings and past orders",
)
async def suggestions(
    actor: ApiViewer,
    kind: Annotated[str, Query(pattern="^(sku|shipping)$", description="`sku` or `shipping`")],
    q: Annotated[str, Query(max_length=300, description="what the value starts with (any case)")] = "",
    limit: Annotated[int, Query(ge=1, le=manual_orders.MAX_SUGGESTIONS)] = 20,
) -> SuggestionsOut:
    found = await run_in_threadpool(manual_orders.suggest, actor.scope, kind, q, limit)
    return SuggestionsOut(kind=kind, suggestions=[SuggestionOut(value=s.value, mapped=list(s.mapped)) for s in found])
