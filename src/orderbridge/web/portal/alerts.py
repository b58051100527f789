"""The Alerts screen and the notification settings: open and past alerts, one alert with its fixes
and every episode's deliveries, acknowledging one (operator, decision 121); where this account's
alerts go — e-mail recipients and webhook targets — and a test message to each (admin, decisions
122–124).

The settings form posts back to its own page: a refused value is shown at its field with what was
typed, and a new webhook signing secret is shown on the answer to the post that made it — once,
never again (it is not kept readable anywhere).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response

from orderbridge.domain.roles import Role
from orderbridge.errors import Conflict
from orderbridge.services import notify
from orderbridge.web.deps import Admin, Operator, Viewer
from orderbridge.web.i18n import N_, gettext
from orderbridge.web.security import local_path
from orderbridge.web.templating import templates_of

router = APIRouter(include_in_schema=False)

SETTINGS = "/settings/notifications"
#: database ids are 64-bit: a larger number is refused as input (422), never sent to the database
MAX_ID = 2**63 - 1
AlertId = Annotated[int, Path(ge=1, le=MAX_ID)]

KINDS: dict[str, str] = {
    "connection_failing": N_("Connection failing"),
    "connection_silent": N_("Channel silent"),
    "api_version_deprecated": N_("API version ending"),
    "webhooks_missing": N_("Webhooks missing"),
    "reconciliation_finding": N_("Audit recovered orders"),
    "reconciliation_failed": N_("Audit failed"),
    notify.HOLD_ALERT: N_("New cause of held orders"),
    notify.DIGEST: N_("Digest"),
}
STATES: dict[str, str] = {notify.OPEN: N_("Open"), notify.RESOLVED: N_("Resolved")}
DELIVERY: dict[str, str] = {
    notify.SENT: N_("Sent"),
    notify.RETRYING: N_("Failed, will retry"),
    notify.FAILED: N_("Given up"),
}


def _label(table: dict[str, str], code: str) -> str:
    text = table.get(code)
    return gettext(text) if text else code


def target_label(target: str) -> str:
    """``email:ops@x`` → ``E-mail ops@x``; ``webhook:https://…`` → ``Webhook https://…``."""
    kind, _, address = target.partition(":")
    return f"{gettext('E-mail') if kind == 'email' else gettext('Webhook')} {address}"


def _helpers() -> dict[str, Any]:
    return {
        "alert_kind_label": lambda code: _label(KINDS, code),
        "alert_state_label": lambda code: _label(STATES, code),
        "delivery_label": lambda code: _label(DELIVERY, code),
        "target_label": target_label,
    }


@router.get("/alerts")
def alerts_page(
    request: Request, actor: Viewer, cursor: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None
) -> Response:
    screen = notify.alerts_screen(actor.scope, before_id=cursor)
    return templates_of(request).render(
        request,
        "alerts.html",
        {"screen": screen, "can_ack": actor.principal.role.allows(Role.OPERATOR), **_helpers()},
    )


@router.get("/alerts/{alert_id}")
def alert_page(request: Request, actor: Viewer, alert_id: AlertId) -> Response:
    detail = notify.get_alert(actor.scope, alert_id)
    return templates_of(request).render(
        request,
        "alert.html",
        {
            "detail": detail,
            "alert": detail.alert,
            "actions": detail.actions,
            "can_ack": actor.principal.role.allows(Role.OPERATOR),
            **_helpers(),
        },
    )


@router.post("/alerts/{alert_id}/ack")
def acknowledge(
    request: Request,
    actor: Operator,
    alert_id: AlertId,
    generation: Annotated[int | None, Form(ge=1, le=2**31 - 1)] = None,
    next: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    alert = notify.acknowledge_alert(actor, alert_id, generation=generation)
    return templates_of(request).see_other(
        local_path(next, f"/alerts/{alert.id}"),
        # no outside text in the flash: it travels in a cookie (Latin-1 only)
        flash=gettext("Alert acknowledged: the team sees that you are on it."),
    )


# --- notification settings ---------------------------------------------------------------------


def _settings_page(
    request: Request,
    actor: Any,
    screen: notify.SettingsScreen,
    *,
    status_code: int = 200,
    error: str = "",
    error_hint: str = "",
    error_field: str = "",
    typed: dict[str, str] | None = None,
    new_secret: str | None = None,
    probe: notify.ProbeReport | None = None,
) -> Response:
    s = screen.settings
    values = typed or {"recipients": "\n".join(s.recipients), "webhook_urls": "\n".join(s.webhook_urls)}
    return templates_of(request).render(
        request,
        "notification_settings.html",
        {
            "settings": s,
            "actions": screen.actions,
            "can_edit": actor.principal.role.allows(Role.ADMIN),
            "values": values,
            "error": error,
            "error_hint": error_hint,
            "error_field": error_field,
            "new_secret": new_secret,
            "probe": probe,
            "max_recipients": notify.MAX_RECIPIENTS,
            "max_webhooks": notify.MAX_WEBHOOKS,
        },
        status_code=status_code,
    )


@router.get(SETTINGS)
def settings_page(request: Request, actor: Viewer) -> Response:
    return _settings_page(request, actor, notify.settings_screen(actor.scope))


@router.post(SETTINGS)
def save_settings(
    request: Request,
    actor: Admin,
    recipients: Annotated[str, Form(max_length=20_000)] = "",
    webhook_urls: Annotated[str, Form(max_length=20_000)] = "",
    rotate_secret: Annotated[bool, Form()] = False,
    action: Annotated[str, Form(max_length=20)] = "save",
) -> Response:
    templates = templates_of(request)
    if action == "use_defaults":
        notify.use_hub_defaults(actor)
        return templates.see_other(SETTINGS, flash=gettext("Alerts of this account go to the hub's default targets."))
    try:
        saved = notify.save_notification_settings(
            actor, recipients=recipients, webhook_urls=webhook_urls, rotate_secret=rotate_secret
        )
    except notify.InvalidTarget as exc:
        return _settings_page(
            request,
            actor,
            notify.settings_screen(actor.scope),
            status_code=422,
            error=exc.message,
            error_hint=exc.hint,
            error_field=exc.field,
            typed={"recipients": recipients, "webhook_urls": webhook_urls},
        )
    if saved.new_secret:  # shown on this answer only
        return _settings_page(request, actor, notify.settings_screen(actor.scope), new_secret=saved.new_secret)
    return templates.see_other(SETTINGS, flash=gettext("Notification settings saved."))


@router.post(SETTINGS + "/test")
def send_test(request: Request, actor: Admin) -> Response:
    try:
        report = notify.send_test_message(actor)
    except Conflict as exc:
        return _settings_page(
            request, actor, notify.settings_screen(actor.scope), status_code=409, error=exc.message, error_hint=exc.hint
        )
    return _settings_page(request, actor, notify.settings_screen(actor.scope), probe=report)
