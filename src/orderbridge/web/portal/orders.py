"""The Orders inbox (``GET /orders``): every order of the account, filtered, searched and sorted.

The route reads the filters from the query string (a plain ``<form method="get">``: the screen
works without JavaScript, and every view of it is a link), parses them with
:func:`~orderbridge.services.inbox.parse_query`, asks :func:`~orderbridge.services.inbox.inbox`
for the page and renders it. With htmx the form swaps only the results as a filter changes, and
the results refresh themselves every 5 seconds (``_orders_results.html``: an order that posts
turns green without a reload); the page links carry the cursor, so "older" is a link too.

A filter the service refuses (a state that does not exist, a damaged page link) is shown above
the results with its hint — status 422 for the page, 200 for an htmx swap (htmx swaps only
successful answers), so the message is seen either way.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orderbridge.domain.states import OrderState
from orderbridge.errors import InvalidInput, NotFound
from orderbridge.services.inbox import REASON_CODES, InboxPage, Search, Sort, inbox, parse_query
from orderbridge.web.deps import Viewer
from orderbridge.web.i18n import N_, gettext
from orderbridge.web.templating import templates_of

router = APIRouter(include_in_schema=False)

#: the query string's names the form fills in (``cursor`` is the pager's)
FIELDS = (
    "q",
    "search",
    "state",
    "connection_id",
    "reason",
    "reason_value",
    "created_from",
    "created_to",
    "sort",
    "number",
    "email",
    "sku",
    "limit",
)

SORTS: dict[str, str] = {
    Sort.NEWEST: N_("Newest first"),
    Sort.OLDEST: N_("Oldest first"),
    Sort.UPDATED: N_("Recently updated"),
    Sort.NUMBER: N_("Order number"),
    Sort.TOTAL: N_("Largest total"),
}
SEARCHES: dict[str, str] = {
    Search.AUTO: N_("Number or e-mail"),
    Search.NUMBER: N_("Order number"),
    Search.EMAIL: N_("Customer e-mail"),
    Search.SKU: N_("SKU"),
}


@router.get("/orders")
def orders_inbox(request: Request, actor: Viewer) -> Response:
    given = {k: v for k, v in request.query_params.items() if k in (*FIELDS, "cursor")}
    hx = request.headers.get("hx-request") == "true"
    page: InboxPage | None = None
    error = ""
    try:
        page = inbox(actor.scope, parse_query(given), choices=not hx)
    except NotFound:
        raise
    except InvalidInput as exc:
        error = str(exc)
    form = {k: given.get(k, "") for k in FIELDS}
    kept = {k: v for k, v in form.items() if v}
    values: dict[str, Any] = {
        "page": page,
        "error": error,
        "form": form,
        # this view's address: what the live refresh asks for again, and what the pager adds its cursor to
        "here": urlencode({**kept, **({"cursor": given["cursor"]} if given.get("cursor") else {})}),
        "filters": urlencode(kept),
        "states": [s.value for s in OrderState],
        "sorts": [(k, gettext(v)) for k, v in SORTS.items()],
        "searches": [(k, gettext(v)) for k, v in SEARCHES.items()],
        "codes": _codes(page, form["reason"]),
        "channels": [(cid, name) for cid, name, role in (page.connections if page else []) if role == "channel"],
    }
    status = 422 if error and not hx else 200
    return templates_of(request).render(
        request, "orders.html", values, partial="_orders_results.html", status_code=status
    )


def _codes(page: InboxPage | None, chosen: str) -> list[str]:
    """The reasons to offer: those some order has open now, and the one chosen (even if none is)."""
    codes = set(page.open_codes if page else ())
    code = chosen.split(":", 1)[0]
    if code in REASON_CODES:
        codes.add(code)
    return sorted(codes)
