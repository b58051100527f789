"""Place order (``/orders/new``): an order typed in by hand, previewed, then placed once.

- ``GET /orders/new`` (operator): the form. It works without JavaScript: a plain ``POST /orders``
  places the order; "Add a line" and "Preview" are submit buttons that post the form back to
  ``/orders/new/preview`` and get the whole page again (with one more line row, or the totals),
  writing nothing. With htmx the totals and "what will happen" update in place as the form changes
  (the same route answers the ``_place_order_preview.html`` partial), and the SKU and
  shipping-method inputs refresh their ``<datalist>`` from ``/orders/new/suggestions`` as they are
  typed in; the page already carries the tenant's best-known values, so suggestions work without
  JavaScript too.
- ``POST /orders`` (operator, CSRF): the form parsed into a :class:`~orderbridge.domain.manual.Draft`
  and given to :func:`orderbridge.services.manual_orders.place`. Problems come back next to their
  fields (422), each with the fix, in the reader's language. The form carries a hidden idempotency
  token made when it was rendered (decision 133): a double click, a browser retry or a re-post of
  the same form places one order and lands on it; the same token with other content (the form
  sent back after it placed an order) is refused with a fresh form.

Parameters arrive as form fields read from the request (``line-<n>-sku`` …: the number of line rows
varies), so the route declares no ``Form`` parameters; the CSRF check reads the same form.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from orderbridge.domain import manual
from orderbridge.domain.manual import Draft, DraftAddress, DraftLine, InvalidDraft, Problem, Source
from orderbridge.errors import InvalidInput
from orderbridge.services import manual_orders
from orderbridge.web.deps import Operator
from orderbridge.web.i18n import N_, gettext
from orderbridge.web.templating import templates_of

router = APIRouter(include_in_schema=False)

#: line rows a new form shows; "Add a line" adds one, up to :data:`MAX_ROWS`
ROWS = 3
MAX_ROWS = 100
ADDRESS = ("name", "company", "address1", "address2", "city", "province_code", "postal_code", "country_code", "phone")
LINE = ("sku", "title", "quantity", "unit_price")
TOP = (
    "number",
    "currency",
    "email",
    "customer_name",
    "shipping_method",
    "shipping_price",
    "tax",
    "discount",
    "discount_code",
    "payment_status",
    "note",
    "tags",
    "placed_at",
)
#: the longest value a form field takes (a note is the longest a draft has)
MAX_FIELD = 10_000

#: what the page says of each kind of problem (the domain's English sentence names the value too;
#: the page shows the value next to the field it is about)
PROBLEMS: dict[str, tuple[str, str]] = {
    "required": (N_("This is required."), N_("Fill it in.")),
    "too_long": (N_("This is too long."), N_("Shorten it.")),
    "too_many": (N_("There are too many."), N_("Remove some.")),
    "bad_characters": (
        N_("This contains characters that are not allowed."),
        N_("Use letters, digits, spaces and - _ . / # only."),
    ),
    "not_an_amount": (
        N_("This is not an amount."),
        N_("Write digits and a decimal point, e.g. 19.90, without a currency sign."),
    ),
    "negative": (N_("This cannot be negative."), N_("Give 0 or more.")),
    "out_of_range": (
        N_("This is out of range."),
        N_("Give a quantity from 1 to 1,000,000, or an amount with at most 6 decimals."),
    ),
    "not_a_whole_number": (N_("This is not a whole number."), N_("Give a whole number of units, e.g. 2.")),
    "not_a_currency": (N_("This is not a currency code."), N_("Give a three-letter ISO 4217 code, e.g. EUR or USD.")),
    "not_an_email": (
        N_("This is not an e-mail address."),
        N_("Give an address like name@example.com, or leave it empty."),
    ),
    "not_a_country": (N_("This is not a country code."), N_("Give the two-letter ISO 3166 code, e.g. FR, DE or US.")),
    "unknown_status": (N_("This is not a payment status."), N_("Pick one from the list.")),
    "not_a_time": (
        N_("This is not a date and time with a timezone."),
        N_("Write it as 2026-12-01 or 2026-12-01T09:30:00+01:00."),
    ),
    "too_large": (
        N_("The discount is larger than the order."),
        N_("Give a discount no larger than the lines, shipping and tax together."),
    ),
    "duplicate_number": (N_("This order number is given twice."), N_("Give each order its own number.")),
}
PAYMENT_STATUSES: dict[str, str] = {
    "paid": N_("Paid"),
    "pending": N_("Pending (not paid yet)"),
    "authorized": N_("Authorized"),
    "partially_paid": N_("Partially paid"),
}
OUTCOMES: dict[str, str] = {
    "new": N_("A new order."),
    "updated": N_("An update of the order with this number."),
    "unchanged": N_("The order with this number already has exactly this content: nothing will change."),
}
STATES: dict[str, str] = {
    "ready": N_("It will be posted to the destinations at once."),
    "held": N_("It will be held until the reasons below are fixed:"),
    "skipped": N_("It will be skipped by the channel's download rules:"),
}


@dataclass
class Form:
    """The form as typed: every value as text, the line rows, and the problems by field id."""

    values: dict[str, str] = field(default_factory=dict)
    rows: list[dict[str, str]] = field(default_factory=list)
    token: str = ""
    #: field id (``currency``, ``ship-city``, ``line-0-sku``, ``form``) → (message, fix, value)
    errors: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)

    def value(self, name: str) -> str:
        return self.values.get(name, "")


def blank(rows: int = ROWS) -> Form:
    return Form(
        values={"currency": "", "payment_status": "paid"},
        rows=[dict.fromkeys(LINE, "") for _ in range(rows)],
        token=secrets.token_urlsafe(24),
    )


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:MAX_FIELD] if isinstance(value, str) else ""


def read_form(data: FormData) -> tuple[Form, Draft, list[int]]:
    """The posted form, the draft it makes (blank rows are no lines) and, per draft line, its row."""
    values = {name: _text(data, name) for name in TOP}
    values.update({f"ship_{name}": _text(data, f"ship_{name}") for name in ADDRESS})
    count = _text(data, "rows")
    n = min(int(count), MAX_ROWS) if count.isdigit() else ROWS
    rows = [{k: _text(data, f"line-{i}-{k}") for k in LINE} for i in range(max(n, 1))]
    used = [i for i, row in enumerate(rows) if any(v.strip() for v in row.values())]
    address = DraftAddress(**{name: values[f"ship_{name}"] for name in ADDRESS})
    draft = Draft(
        lines=tuple(DraftLine(**rows[i]) for i in used),
        number=values["number"],
        currency=values["currency"].strip().upper(),
        email=values["email"],
        customer_name=values["customer_name"],
        shipping_address=address,
        shipping_method=values["shipping_method"],
        shipping_price=values["shipping_price"],
        tax=values["tax"],
        discount=values["discount"],
        discount_code=values["discount_code"],
        payment_status=values["payment_status"],
        note=values["note"],
        tags=tuple(t.strip() for t in values["tags"].split(",") if t.strip()),
        placed_at=values["placed_at"],
    )
    token = _text(data, "idempotency_token")[: manual_orders.MAX_KEY]
    return Form(values, rows, token or secrets.token_urlsafe(24)), draft, used


def field_id(path: str, used: list[int]) -> str:
    """The form field a problem's path names: ``lines[1].sku`` → ``line-<its row>-sku``."""
    if path.startswith("lines[") and "]." in path:
        index, _, name = path[len("lines[") :].partition("].")
        row = used[int(index)] if index.isdigit() and int(index) < len(used) else 0
        return f"line-{row}-{name}"
    if path.startswith("shipping_address."):
        return "ship_" + path.removeprefix("shipping_address.")
    if path.startswith("tags"):
        return "tags"
    if path in TOP:
        return path
    return "lines" if path == "lines" else "form"


def with_problems(form: Form, problems: list[Problem], used: list[int]) -> Form:
    for p in problems:
        message, fix = PROBLEMS.get(p.code, (p.message, p.fix))
        form.errors.setdefault(field_id(p.field, used), []).append((gettext(message), gettext(fix), p.value))
    return form


@dataclass
class Preview:
    problems: bool
    totals: manual.Totals | None = None
    outcome: str = ""
    state: str = ""
    reasons: tuple[Any, ...] = ()


def preview_of(actor: Any, draft: Draft) -> Preview:
    if manual.validate(draft):
        return Preview(problems=True)
    scope = actor.scope
    with scope.read() as conn:
        [planned] = manual_orders.preview(
            conn,
            scope.tenant_id,
            [manual_orders.Submission(draft, Source.placed_by(actor.principal.name))],
            scope.now(),
        )
    return Preview(False, manual.totals(draft), planned.outcome, planned.state or "", planned.reasons)


def _suggestions(actor: Any) -> dict[str, list[manual_orders.Suggestion]]:
    return {
        kind: manual_orders.suggest(actor.scope, kind, "", manual_orders.MAX_SUGGESTIONS)
        for kind in ("sku", "shipping")
    }


def _page(
    request: Request, actor: Any, form: Form, preview: Preview | None, *, error: str = "", status: int = 200
) -> Response:
    values = {
        "form": form,
        "preview": preview,
        "suggestions": _suggestions(actor),
        "error": error,
        "address_fields": ADDRESS,
        "payment_statuses": [(k, gettext(v)) for k, v in PAYMENT_STATUSES.items()],
        "outcomes": {k: gettext(v) for k, v in OUTCOMES.items()},
        "states": {k: gettext(v) for k, v in STATES.items()},
        "max_rows": MAX_ROWS,
    }
    return templates_of(request).render(request, "place_order.html", values, status_code=status)


@router.get("/orders/new")
async def new_order(request: Request, actor: Operator) -> Response:
    return await run_in_threadpool(_page, request, actor, blank(), None)


@router.post("/orders/new/preview")
async def preview_order(request: Request, actor: Operator) -> Response:
    """The totals and what placing would do (htmx: the partial), or the whole page again — with one
    more line row when "Add a line" was pressed. Writes nothing."""
    data = await request.form()
    form, draft, used = read_form(data)
    if _text(data, "add_line") and len(form.rows) < MAX_ROWS:
        form.rows.append(dict.fromkeys(LINE, ""))
    preview = await run_in_threadpool(preview_of, actor, draft)
    if request.headers.get("hx-request") == "true":
        values = {
            "preview": preview,
            "outcomes": {k: gettext(v) for k, v in OUTCOMES.items()},
            "states": {k: gettext(v) for k, v in STATES.items()},
        }
        return templates_of(request).render(request, "place_order/_preview.html", values)
    if preview.problems and not _text(data, "add_line"):
        with_problems(form, manual.validate(draft), used)
    return await run_in_threadpool(_page, request, actor, form, preview)


@router.post("/orders")
async def place_order(request: Request, actor: Operator) -> Response:
    data = await request.form()
    form, draft, used = read_form(data)
    try:
        placed = await run_in_threadpool(
            lambda: manual_orders.place(actor, draft, via="portal", idempotency_key=form.token)
        )
    except InvalidDraft as exc:
        with_problems(form, exc.problems, used)
        return await run_in_threadpool(
            lambda: _page(
                request,
                actor,
                form,
                None,
                error=gettext("The order was not placed: correct the fields marked below."),
                status=422,
            )
        )
    except manual_orders.IdempotencyKeyReused:
        fresh = Form(form.values, form.rows, secrets.token_urlsafe(24))
        message = gettext("This form already placed an order. Check the order below is a new one and place it again.")
        return await run_in_threadpool(lambda: _page(request, actor, fresh, None, error=message, status=409))
    except InvalidInput as exc:
        failure = exc
        return await run_in_threadpool(lambda: _page(request, actor, form, None, error=failure.message, status=422))
    wake = getattr(request.app.state, "wake", None)
    if not placed.replayed and wake is not None:
        wake()
    said = gettext("Order %(number)s placed.", number=placed.number)
    if placed.replayed:
        said = gettext(
            "Order %(number)s was already placed by this form: it was not placed twice.", number=placed.number
        )
    return templates_of(request).see_other(f"/orders/{placed.order_id}", flash=said)


@router.get("/orders/new/suggestions")
async def suggestions(request: Request, actor: Operator) -> Response:
    """``<option>`` elements for one datalist: ``kind`` (``sku`` or ``shipping``) and the typed
    value (htmx sends the input under its own name, so any other parameter is the prefix)."""
    kind = request.query_params.get("kind", "")
    typed = next((v for k, v in request.query_params.items() if k != "kind"), "")[:300]
    if kind not in manual_orders.SUGGESTION_KINDS:
        raise InvalidInput(f"no suggestions for {kind[:40]!r}", hint="Ask for sku or shipping.")
    found = await run_in_threadpool(manual_orders.suggest, actor.scope, kind, typed, 20)
    return templates_of(request).render(request, "place_order/_options.html", {"options": found})
