"""The order page: ``GET /orders/{order_id}`` and its actions.

What is wrong comes first (seed 002: "check the error message that displays at the top of the
order page"): each open reason of the order and of its held pushes, in the reader's language
(``web/labels.py``) with the domain's sentence as the detail, and the fix beside it; then what the
page can do about it — retry now, reset to pending, refresh from the channel, release a hold
(admins) — as plain ``<form method=post>`` buttons that htmx runs in place (``hx-post``; the
irreversible ones ask first with ``hx-confirm``). Then the order itself, its timeline (ledger
events and the user actions on it), its postings per destination with every attempt and what was
sent, its shipments and pushes, and the raw payloads as pretty-printed JSON inside ``<pre>``
(escaped like everything else: nothing from a channel is ever markup).

Each route parses, calls one service (``services/order_story``, ``services/order_actions``) and
renders: without JavaScript an action answers 303 back to the page with a one-time message; with
htmx it answers the re-rendered order, the action's result at its top. An order that changed
nudges the embedded poster (``app.state.wake``), so "Sync now" is never needed after a reset.

``GET /orders/by-ref/{order_ref}`` resolves a number, a channel id or an id in the reader's
tenant and redirects to the page (the address alerts link to: ``web/links.py``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from orderbridge.domain.events import EventKind
from orderbridge.errors import Forbidden, InvalidInput, NotFound, NotSignedIn
from orderbridge.fixes import Fix
from orderbridge.services import channel_intents, order_actions, order_story, shipping_fill
from orderbridge.services.queries import find_order_id
from orderbridge.web import labels
from orderbridge.web.deps import Admin, Operator, Viewer
from orderbridge.web.i18n import N_, gettext
from orderbridge.web.portal.order_versions import versions_context
from orderbridge.web.templating import templates_of

router = APIRouter(include_in_schema=False)

OrderId = Annotated[int, Path(ge=1, le=2**62)]

#: the timeline's words for each kind of ledger event (the event's own sentence is the detail)
EVENTS: dict[str, str] = {
    EventKind.RECEIVED: N_("Received"),
    EventKind.VERSION_CHANGED: N_("Changed in the channel"),
    EventKind.SKIPPED: N_("Skipped"),
    EventKind.HELD: N_("Held"),
    EventKind.RELEASED: N_("Released"),
    EventKind.READY: N_("Ready to post"),
    EventKind.POST_ATTEMPT_FAILED: N_("Posting failed"),
    EventKind.POSTED: N_("Posted"),
    EventKind.CANCELLED: N_("Cancelled"),
    EventKind.SHIPMENT_RECEIVED: N_("Shipment received"),
    EventKind.SHIPMENT_VOIDED: N_("Shipment voided"),
    EventKind.FULFILMENT_PUSHED: N_("Fulfilment sent to the channel"),
    EventKind.FULFILMENT_PUSH_HELD: N_("Fulfilment held"),
    EventKind.FULFILLED: N_("Fulfilled"),
    EventKind.USER_ACTION: N_("Action"),
    EventKind.HOLD_RELEASED: N_("Hold released"),
    EventKind.RECOVERED: N_("Recovered by an audit"),
    EventKind.DELETED_IN_CHANNEL: N_("Deleted in the channel"),
    EventKind.AUDITED: N_("Audited"),
    EventKind.HEALTH_CHANGED: N_("Connection health changed"),
    EventKind.TIE_UNSETTLED: N_("Two versions at the same time"),
    EventKind.FIELD_SHORTENED: N_("A value was shortened for the destination"),
    EventKind.RECORD_REFUSED: N_("Record refused"),
    EventKind.INGEST_QUARANTINED: N_("Quarantined"),
    EventKind.SUBMITTED: N_("Placed by hand or imported"),
    EventKind.EXPORT_IMPORTED: N_("Imported by the package from its file"),
    # issue #16
    EventKind.PUSH_CALL: N_("Call made to the channel"),
    EventKind.PUSH_WAITING: N_("Waiting for the channel"),
    EventKind.CHANNEL_INTENT: N_("Request to the channel"),
}

#: what the page says an action did (the service's sentence follows as the detail)
DONE: dict[str, str] = {
    "retry": N_("The order was retried."),
    "reset": N_("The order was reset to pending."),
    "refresh": N_("The order was refreshed from its channel."),
    "release": N_("The hold was released."),
}

#: issue #16: what a person may ask of the order's channel (the request's outcome)
ASK: dict[str, str] = {
    "cancelled": N_("Cancel the order at the channel"),
    "refunded": N_("Refund at the channel"),
    "accepted": N_("Accept the order at the channel"),
    "refused": N_("Refuse the order at the channel"),
}

#: why an action cannot be done now (the page shows it instead of the button)
WHY_NOT: dict[str, str] = {
    "retry": N_("Nothing to retry in this state."),
    "reset": N_("Every destination has the current version, or the order can no longer go back."),
    "refresh": N_("This channel cannot be asked for one order."),
    "release": N_("No hold of this order can be released."),
}


def event_label(kind: str) -> str:
    text = EVENTS.get(kind)
    return gettext(text) if text else kind


def pretty(value: Any) -> str:
    """JSON for people: indented, keys as the payload had them, non-ASCII as is (escaped by Jinja)."""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", "replace")
    if isinstance(value, str):
        text: str = value
        try:
            value = json.loads(text)
        except ValueError:
            return text
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def result_message(result: order_actions.ActionResult) -> str:
    """The action's outcome in the reader's language; the service's English sentence as the detail."""
    if not result.changed:
        head = gettext("Nothing was changed.")
    else:
        head = gettext(DONE[result.action])
        if result.to_post:
            head += " " + gettext("It is posted next to: %(destinations)s.", destinations=", ".join(result.to_post))
        else:
            head += " " + gettext("It is now: %(state)s.", state=labels.state_label(result.state))
    return f"{head} ({result.message})"


def _context(
    story: order_story.OrderStory,
    result: str | None = None,
    changed: bool = False,
    error: InvalidInput | None = None,
    requests: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "story": story,
        "requests": requests or {"intents": [], "askable": []},
        "fillable": shipping_fill.FILLABLE,
        "fix_of": Fix.from_dict,
        "request_label": lambda outcome: gettext(ASK[outcome]) if outcome in ASK else outcome,
        "result": result,
        "result_changed": changed,
        "action_error": error,
        "raw_json": pretty(story.raw),
        "pretty": pretty,
        "event_label": event_label,
        "posting_state_label": labels.posting_state_label,
        "push_state_label": labels.push_state_label,
        "why_not": {a.name: gettext(WHY_NOT[a.name]) for a in story.actions if not a.possible},
    }


@router.get("/orders/by-ref/{order_ref}")
async def order_by_ref(order_ref: Annotated[str, Path(max_length=300)], actor: Viewer) -> Response:
    order_id = await run_in_threadpool(find_order_id, actor.scope, order_ref)
    return RedirectResponse(f"/orders/{order_id}", status_code=303)


@router.get("/orders/{order_id}")
async def order_page(
    request: Request,
    order_id: OrderId,
    actor: Viewer,
    from_version: Annotated[int | None, Query(alias="from", ge=1, le=2**31 - 1)] = None,  # the Versions section's
    to_version: Annotated[int | None, Query(alias="to", ge=1, le=2**31 - 1)] = None,
) -> Response:
    story = await run_in_threadpool(order_story.order_story, actor.scope, order_id)
    versions = await run_in_threadpool(versions_context, actor.scope, order_id, from_version, to_version)
    requests = await run_in_threadpool(channel_intents.order_requests, actor.scope, order_id)
    context = {**_context(story, requests=requests), **versions}
    return templates_of(request).render(request, "order_page.html", context, partial="order_page/_order.html")


async def _act(request: Request, actor: Any, order_id: int, action: Any, *args: Any) -> Response:
    """Run one order action and answer: the poster nudged when the order changed; the page (htmx)
    or a redirect back to it with the outcome. An action the order's state refuses (409, 422) is
    shown at the top of the re-rendered order for htmx — which swaps only successful answers —
    and as the error page without JavaScript; not found, forbidden and signed out are the app's."""
    templates = templates_of(request)
    hx = request.headers.get("hx-request") == "true"
    try:
        result: order_actions.ActionResult = await run_in_threadpool(action, actor, order_id, *args)
    except (NotFound, Forbidden, NotSignedIn):
        raise
    except InvalidInput as exc:
        if not hx:
            raise
        story = await run_in_threadpool(order_story.order_story, actor.scope, order_id)
        requests = await run_in_threadpool(channel_intents.order_requests, actor.scope, order_id)
        return templates.render(
            request, "order_page.html", _context(story, error=exc, requests=requests), partial="order_page/_order.html"
        )
    wake = getattr(request.app.state, "wake", None)
    if result.changed and wake is not None:
        wake()
    message = result_message(result)
    if not hx:
        return templates.see_other(f"/orders/{result.order_id}", flash=message)
    story = await run_in_threadpool(order_story.order_story, actor.scope, result.order_id)
    requests = await run_in_threadpool(channel_intents.order_requests, actor.scope, result.order_id)
    return templates.render(
        request,
        "order_page.html",
        _context(story, message, result.changed, requests=requests),
        partial="order_page/_order.html",
    )


@router.post("/orders/{order_id}/retry")
async def retry(request: Request, order_id: OrderId, actor: Operator) -> Response:
    return await _act(request, actor, order_id, order_actions.retry_now)


@router.post("/orders/{order_id}/reset")
async def reset(request: Request, order_id: OrderId, actor: Operator) -> Response:
    return await _act(request, actor, order_id, order_actions.reset_to_pending)


@router.post("/orders/{order_id}/refresh")
async def refresh(request: Request, order_id: OrderId, actor: Operator) -> Response:
    return await _act(request, actor, order_id, order_actions.refresh_from_channel)


@router.post("/orders/{order_id}/release")
async def release(
    request: Request,
    order_id: OrderId,
    actor: Admin,
    reason_id: Annotated[int, Form(ge=1, le=2**62)],
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    return await _act(request, actor, order_id, order_actions.release_hold, reason_id, reason)


# --- issue #16: requests to the channel, and the shipping data of a held push ---------------------


async def _answer(
    request: Request, actor: Any, order_id: int, message: str | None, error: InvalidInput | None
) -> Response:
    """The page again (htmx) or a redirect with the outcome; an invalid request shown at the top."""
    templates = templates_of(request)
    if request.headers.get("hx-request") != "true":
        if error is not None:
            raise error
        return templates.see_other(f"/orders/{order_id}", flash=message or "")
    story = await run_in_threadpool(order_story.order_story, actor.scope, order_id)
    requests = await run_in_threadpool(channel_intents.order_requests, actor.scope, order_id)
    return templates.render(
        request,
        "order_page.html",
        _context(story, message, message is not None, error=error, requests=requests),
        partial="order_page/_order.html",
    )


@router.post("/orders/{order_id}/channel-requests")
async def ask_channel(
    request: Request,
    order_id: OrderId,
    actor: Operator,
    outcome: Annotated[str, Form(max_length=20)],
    refund_total: Annotated[str, Form(max_length=40)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    try:
        asked = await run_in_threadpool(
            channel_intents.ask, actor, order_id, outcome, refund_total=refund_total or None, note=note
        )
    except InvalidInput as exc:
        return await _answer(request, actor, order_id, None, exc)
    wake = getattr(request.app.state, "wake", None)
    if wake is not None:
        wake()
    message = (
        gettext("Asked: it is sent to the channel by the next push run.")
        if asked.created
        else gettext("This was already asked and is not done yet.")
    )
    return await _answer(request, actor, order_id, message, None)


@router.post("/orders/{order_id}/shipping-data")
async def fill_shipping_data(
    request: Request,
    order_id: OrderId,
    actor: Operator,
    tracking_number: Annotated[str, Form(max_length=200)] = "",
    carrier: Annotated[str, Form(max_length=200)] = "",
    tracking_url: Annotated[str, Form(max_length=2000)] = "",
    shipment: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        filled = await run_in_threadpool(
            shipping_fill.fill, actor, order_id, tracking_number=tracking_number or None, carrier=carrier or None,
            tracking_url=tracking_url or None, shipment=shipment or None,
        )  # fmt: skip
    except InvalidInput as exc:
        return await _answer(request, actor, order_id, None, exc)
    pushed = filled.report is not None and filled.report.pushed
    message = (
        gettext("The shipping data was filled in and sent to the channel.")
        if pushed
        else gettext("The shipping data was filled in; the push is planned again (see Shipments).")
    )
    return await _answer(request, actor, order_id, message, None)
