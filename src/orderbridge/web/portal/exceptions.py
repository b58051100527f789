"""The exceptions screen: ``GET /holds`` (``?code=…&value=…`` for one root cause — where alerts link),
``POST /holds/map`` and ``POST /holds/retry`` (operator).

Each cause is a card: how many orders it holds, what it is, the domain's sentence, the fix — and,
right there, the form that makes it: the mapping (SKU, shipping method) for a cause a mapping
fixes, and "retry all" for every cause of held orders. With htmx the form posts in place and the
answer is the refreshed list of causes (the group that a mapping released is gone) plus a notice
swapped out of band; the list also refreshes itself every 5 s, keeping what a person is typing
(``hx-preserve`` on the inputs, by the cause's stable key). Without JavaScript the forms post
normally and the answer is a redirect (303) back to the screen with the notice as a flash.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated
from urllib.parse import parse_qs, urlencode, urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response

from orderbridge.domain.roles import Role
from orderbridge.errors import OrderBridgeError
from orderbridge.services import channel_intents
from orderbridge.services.auth import Actor
from orderbridge.services.exceptions import causes, map_cause, retry_cause
from orderbridge.web import causes as cause_words
from orderbridge.web import i18n
from orderbridge.web.deps import Operator, Viewer
from orderbridge.web.templating import templates_of

router = APIRouter(include_in_schema=False)

Code = Annotated[str, Form(min_length=1, max_length=60)]
Value = Annotated[str, Form(max_length=300)]


def _address(code: str | None, value: str | None) -> str:
    if code is None:
        return "/holds"
    return "/holds?" + urlencode({"code": code, **({"value": value} if value is not None else {})})


def _page(
    request: Request,
    actor: Actor,
    code: str | None,
    value: str | None,
    notice: str | None = None,
    *,
    problem: bool = False,
) -> Response:
    found = causes(actor.scope, code=code, value=value)
    # issue #16: requests to channels (cancel, refund, accept, refuse) held, by cause
    requests = [] if code is not None else channel_intents.held_by_cause(actor.scope)
    values = {
        "held_requests": requests,
        "causes": found,
        "held": [c for c in found if c.group.kind != "skip"],
        "skipped": [c for c in found if c.group.kind == "skip"],
        "code": code,
        "value": value,
        "self_url": _address(code, value),
        "can_fix": actor.principal.role.allows(Role.OPERATOR),
        "notice": notice,
        "problem": problem,
        "headline": cause_words.headline,
        "cause_key": cause_words.key,
        "cause_href": cause_words.query,
        "num": cause_words.number,
    }
    return templates_of(request).render(request, "exceptions.html", values, partial="exceptions/_causes.html")


@router.get("/holds")
def holds_page(
    request: Request,
    actor: Viewer,
    code: Annotated[str | None, Query(max_length=60)] = None,
    value: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    return _page(request, actor, code or None, value if code else None)


def _back(back: str) -> tuple[str, str | None, str | None]:
    """Where the form came from — the exceptions screen, filtered or not (nothing else) — and its filter."""
    if back != "/holds" and not back.startswith("/holds?"):
        return "/holds", None, None
    query = parse_qs(urlsplit(back).query, keep_blank_values=True)
    code = (query.get("code") or [""])[0] or None
    values = query.get("value")
    value = values[0] if code and values else None
    return _address(code, value), code, value


def _act(request: Request, actor: Actor, back: str, action: Callable[[], str]) -> Response:
    """Run the fix; answer htmx with the refreshed causes and a notice, a plain form with a 303."""
    address, code, value = _back(back)
    htmx = request.headers.get("hx-request") == "true"
    try:
        notice = action()
    except OrderBridgeError as exc:
        if not htmx:
            raise  # the error page, with its status
        return _page(request, actor, code, value, exc.message + (f" {exc.hint}" if exc.hint else ""), problem=True)
    wake = getattr(request.app.state, "wake", None)
    if wake is not None:
        wake()  # the released orders are posted now, not at the poster's next tick
    if htmx:
        return _page(request, actor, code, value, notice)
    return templates_of(request).see_other(address, flash=notice)


@router.post("/holds/map")
def map_hold(
    request: Request,
    actor: Operator,
    code: Code,
    value: Value,
    target: Annotated[str, Form(min_length=1, max_length=300)],
    destination_id: Annotated[int, Form()],
    back: Annotated[str, Form(max_length=2000)] = "/holds",
) -> Response:

    def action() -> str:
        result = map_cause(actor.scope, code, value, target, destination_id, by=actor)
        return i18n.gettext(
            "Mapped %(source)s to %(target)s: %(released)s orders released, %(still)s still held.",
            source=result.source,
            target=result.target,
            released=cause_words.number(result.released),
            still=cause_words.number(result.still_held),
        )

    return _act(request, actor, back, action)


@router.post("/holds/retry")
def retry_hold(
    request: Request,
    actor: Operator,
    code: Code,
    value: Value,
    back: Annotated[str, Form(max_length=2000)] = "/holds",
) -> Response:

    def action() -> str:
        result = retry_cause(actor.scope, code, value, by=actor)
        return i18n.gettext(
            "Retried %(orders)s orders: %(released)s released, %(still)s still held.",
            orders=cause_words.number(result.orders),
            released=cause_words.number(result.released),
            still=cause_words.number(result.still_held),
        )

    return _act(request, actor, back, action)
