"""The Order updates screen (issue #15): ``GET /updates`` lists the updates awaiting review — each
order's field changes, the policy per class and what accepting does at each destination (the plan's
sentences) — with accept / ignore / cancel per row and for the rows ticked (``POST /updates/decide``,
operator, CSRF).

With htmx a button posts in place and the answer is the refreshed list plus a notice swapped out of
band; without JavaScript the form posts normally and the answer is a redirect (303) back to the
screen with the notice as a flash. One form carries the checkboxes and the buttons: a row's own
button sends ``one=<id>``, the bulk buttons send the ticked ``ids``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from orderbridge.domain.roles import Role
from orderbridge.errors import InvalidInput, OrderBridgeError
from orderbridge.services import order_updates
from orderbridge.services.auth import Actor
from orderbridge.web import i18n
from orderbridge.web.deps import Operator, Viewer
from orderbridge.web.i18n import N_
from orderbridge.web.templating import templates_of

router = APIRouter(include_in_schema=False)

#: the step kinds and decisions as a person reads them
STEP_KINDS: dict[str, str] = {
    "update_in_place": N_("Update in place"),
    "void_and_repost": N_("Void and post again"),
    "adjust": N_("Post an adjustment"),
    "void": N_("Void"),
    "nothing_to_do": N_("Nothing to do"),
    "cannot": N_("Cannot: a person must"),
}
POLICIES: dict[str, str] = {"apply": N_("apply"), "review": N_("review"), "ignore": N_("ignore")}


def _page(request: Request, actor: Actor, notice: str | None = None, *, problem: bool = False) -> Response:
    values = {
        "updates": order_updates.pending_reviews(actor.scope),
        "can_decide": actor.principal.role.allows(Role.OPERATOR),
        "notice": notice,
        "problem": problem,
        "step_kind": lambda k: i18n.gettext(STEP_KINDS.get(k) or k),
        "policy_label": lambda p: i18n.gettext(POLICIES.get(p) or p),
    }
    return templates_of(request).render(request, "updates.html", values, partial="updates/_list.html")


@router.get("/updates")
def updates_page(request: Request, actor: Viewer) -> Response:
    return _page(request, actor)


@router.post("/updates/decide")
def decide(
    request: Request,
    actor: Operator,
    action: Annotated[str, Form(max_length=10)] = "",
    ids: Annotated[list[int] | None, Form()] = None,
    one: Annotated[str | None, Form(max_length=40)] = None,
) -> Response:
    htmx = request.headers.get("hx-request") == "true"
    chosen = list(ids or [])
    if one:  # a row's own button: "accept:12"
        action, _, picked = one.partition(":")
        chosen = [int(picked)] if picked.isdigit() else []
    try:
        if not chosen:
            raise InvalidInput(
                i18n.gettext("Tick at least one update."), hint=i18n.gettext("Or use a row's own button.")
            )
        results = order_updates.decide(actor, chosen, action)
    except OrderBridgeError as exc:
        if not htmx:
            raise
        return _page(request, actor, exc.message + (f" {exc.hint}" if exc.hint else ""), problem=True)
    done = sum(1 for r in results if r.changed)
    notice = {
        "accept": i18n.gettext("%(n)s updates accepted: the destinations are amended now.", n=str(done)),
        "ignore": i18n.gettext("%(n)s updates ignored: nothing is sent to the destinations.", n=str(done)),
        "cancel": i18n.gettext("%(n)s orders cancelled.", n=str(done)),
    }[action]
    wake = getattr(request.app.state, "wake", None)
    if wake is not None:
        wake()  # the poster performs the accepted plans now, not at its next tick
    if htmx:
        return _page(request, actor, notice)
    return templates_of(request).see_other("/updates", flash=notice)
