"""The Audits screen: reconciliation reports per window, one report with the orders it recovered and
why they had been missed, and "Run audit now".

"Run audit now" queues the audit (decision 120): the post answers with the report's page at once,
which follows the audit while it runs — the htmx partial ``_audit_progress.html`` asks again every
2 s until the report is finished, and without JavaScript a "Refresh" link does the same.
"""

from __future__ import annotations

from typing import Annotated

from babel.numbers import format_decimal
from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response

from orderbridge.domain.roles import Role
from orderbridge.errors import InvalidInput
from orderbridge.services import audits
from orderbridge.web import i18n
from orderbridge.web.deps import Operator, Viewer
from orderbridge.web.i18n import N_, gettext
from orderbridge.web.templating import templates_of

router = APIRouter(include_in_schema=False)

#: database ids are 64-bit: a larger number is refused as input (422), never sent to the database
MAX_ID = 2**63 - 1
RunId = Annotated[int, Path(ge=1, le=MAX_ID)]

#: why an audit found an order missing, and where to look (``services/reconcile.CAUSES``)
CAUSES: dict[str, tuple[str, str]] = {
    "no_webhook": (
        N_("No webhook arrived for it"),
        N_("Check the channel's webhook subscription and that the channel can reach the hub."),
    ),
    "sync_error": (
        N_("The polls that should have fetched it failed"),
        N_("See the connection's health and last error."),
    ),
    "cursor_gap": (
        N_("The poll had already passed it (it became visible late)"),
        N_("The channel publishes orders late: raise the cursor overlap."),
    ),
    "not_polled_yet": (N_("The next poll had not run yet"), N_("Nothing: the audit simply ran first.")),
    "never_synced": (
        N_("The connection had never completed a poll"),
        N_("Start the hub's workers, or run a sync of the connection."),
    ),
}
OUTCOMES: dict[str, str] = {
    "queued": N_("Queued"),
    "running": N_("Running"),
    "ok": N_("Done"),
    "failed": N_("Failed"),
}
KINDS: dict[str, str] = {"hourly": N_("Hourly"), "daily": N_("Daily"), "manual": N_("By hand")}
ACTIONS: dict[str, str] = {
    "recovered": N_("Recovered"),
    "refreshed": N_("Updated to the channel's version"),
    "gone": N_("Gone from the channel"),
}
WAS: dict[str, str] = {"missing": N_("Not in the ledger"), "stale": N_("An older version in the ledger")}


def _label(table: dict[str, str], code: str) -> str:
    text = table.get(code)
    return gettext(text) if text else code


def cause_label(code: str) -> str:
    found = CAUSES.get(code)
    return gettext(found[0]) if found else code


def cause_hint(code: str) -> str:
    found = CAUSES.get(code)
    return gettext(found[1]) if found else ""


def number(value: int) -> str:
    """A count in the reader's language (4,213 / 4 213)."""
    return format_decimal(value, locale=i18n.current_locale())


def _helpers() -> dict[str, object]:
    return {
        "number": number,
        "cause_label": cause_label,
        "cause_hint": cause_hint,
        "outcome_label": lambda code: _label(OUTCOMES, code),
        "audit_kind_label": lambda code: _label(KINDS, code),
        "finding_action_label": lambda code: _label(ACTIONS, code),
        "finding_was_label": lambda code: _label(WAS, code),
    }


def _id(value: str) -> int | None:
    """The filter form's channel: empty for every channel (the form sends ``connection_id=``)."""
    if not value.strip():
        return None
    if not value.strip().isdigit() or not 1 <= int(value) <= MAX_ID:
        raise InvalidInput(f"connection id {value[:20]!r} is not a number", hint="Pick a channel from the list.")
    return int(value)


@router.get("/audits")
def audits_page(
    request: Request,
    actor: Viewer,
    connection_id: Annotated[str, Query(max_length=20, description="a channel's id; empty: every channel")] = "",
    cursor: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    channel = _id(connection_id)
    screen = audits.audits_screen(actor.scope, connection_id=channel, before_id=cursor)
    return templates_of(request).render(
        request,
        "audits.html",
        {
            "screen": screen,
            "connection_id": channel,
            "can_run": actor.principal.role.allows(Role.OPERATOR),
            "recent_hours": round(actor.scope.settings.reconcile_recent_window_s / 3600),
            "full_days": round(actor.scope.settings.reconcile_full_window_s / 86400),
            **_helpers(),
        },
    )


@router.get("/audits/{run_id}")
def audit_page(request: Request, actor: Viewer, run_id: RunId) -> Response:
    report = audits.get_audit(actor.scope, run_id)
    return templates_of(request).render(
        request,
        "audit.html",
        {"report": report, "audit": report.audit, "actions": report.actions, **_helpers()},
        partial="_audit_progress.html",
    )


@router.post("/audits/run")
def run_audit(
    request: Request,
    actor: Operator,
    connection_id: Annotated[int, Form(ge=1, le=MAX_ID)],
    window: Annotated[str, Form(max_length=20)] = "recent",
) -> Response:
    queued = audits.request_audit(actor, connection_id, window=window)
    return templates_of(request).see_other(
        f"/audits/{queued.id}",
        # no outside text (a connection's name) in the flash: it travels in a cookie (Latin-1 only)
        flash=gettext("The audit is queued; this page follows it."),
    )
