"""``/api/v1/alerts`` and ``/api/v1/settings/notifications``: alerts (open and past, one with its
episodes' deliveries, acknowledging one) and where the tenant's alerts go (read, replace, back to
the hub's defaults, send a test message)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, Field

from orderbridge.errors import InvalidInput
from orderbridge.services import notify
from orderbridge.web.api.common import api_router
from orderbridge.web.deps import ApiAdmin, ApiOperator, ApiViewer

router = api_router("alerts")

#: database ids are 64-bit: a larger number is refused as input (422), never sent to the database
MAX_ID = 2**63 - 1
AlertId = Annotated[int, Path(ge=1, le=MAX_ID, description="the alert's id")]


class FixOut(BaseModel):
    action: str
    params: dict[str, str]
    text: str


class DeliveryOut(BaseModel):
    target: str = Field(description="email:<address> or webhook:<url>")
    status: str = Field(description="sent | retrying | failed")
    attempts: int
    error: str | None
    at: datetime


class AlertOut(BaseModel):
    id: int
    key: str = Field(description="the cause: one alert per key while it is open")
    kind: str
    state: str = Field(description="open | resolved")
    generation: int = Field(description="the episode: +1 each time a resolved cause comes back")
    occurrences: int
    subject: str
    body: str
    fixes: list[FixOut]
    connection_id: int | None
    connection: str | None
    data: dict[str, Any] | None
    first_at: datetime
    last_at: datetime
    resolved_at: datetime | None
    dispatched_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    deliveries: list[DeliveryOut] = Field(description="the deliveries of the current episode")

    @classmethod
    def of(cls, a: notify.AlertInfo) -> AlertOut:
        return cls(
            id=a.id,
            key=a.key,
            kind=a.kind,
            state=a.state,
            generation=a.generation,
            occurrences=a.occurrences,
            subject=a.subject,
            body=a.body,
            fixes=[FixOut(**f.as_dict()) for f in a.fixes],
            connection_id=a.connection_id,
            connection=a.connection,
            data=a.data,
            first_at=a.first_at,
            last_at=a.last_at,
            resolved_at=a.resolved_at,
            dispatched_at=a.dispatched_at,
            acknowledged_at=a.acknowledged_at,
            acknowledged_by=a.acknowledged_by,
            deliveries=[DeliveryOut(**vars(d)) for d in a.deliveries],
        )


class EpisodeOut(BaseModel):
    generation: int
    deliveries: list[DeliveryOut]


class AlertDetailOut(AlertOut):
    episodes: list[EpisodeOut] = Field(description="every episode's deliveries, the current one first")


class AlertPageOut(BaseModel):
    items: list[AlertOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class AckIn(BaseModel):
    generation: int | None = Field(
        None,
        ge=1,
        le=2**31 - 1,
        description="the episode you looked at: refused (409) when the alert has a newer one since",
    )


class NotificationSettingsOut(BaseModel):
    source: Literal["tenant", "hub"] = Field(
        description="tenant: the account's own targets; hub: the hub's defaults (the account saved none)"
    )
    recipients: list[str]
    webhook_urls: list[str]
    signing_secret_set: bool
    hub_defaults: dict[str, int] = Field(description="how many default recipients and webhook URLs the hub has")
    mail_server: bool = Field(description="the hub has an SMTP server, so e-mail recipients can be used")
    updated_at: datetime | None
    updated_by: str | None

    @classmethod
    def of(cls, s: notify.NotificationSettings) -> NotificationSettingsOut:
        return cls(**s.as_dict())


class SavedSettingsOut(NotificationSettingsOut):
    signing_secret: str | None = Field(
        description="the webhook signing secret when this request made one (shown once, never again); else null"
    )


class NotificationSettingsIn(BaseModel):
    recipients: list[Annotated[str, Field(max_length=400)]] = Field(default_factory=list, max_length=100)
    webhook_urls: list[Annotated[str, Field(max_length=1000)]] = Field(default_factory=list, max_length=100)
    rotate_secret: bool = Field(False, description="make a new webhook signing secret (the old one stops verifying)")


class ProbeResultOut(BaseModel):
    target: str
    kind: str = Field(description="email | webhook")
    address: str
    ok: bool
    detail: str
    hint: str


class ProbeReportOut(BaseModel):
    at: datetime
    source: str
    ok: bool
    reached: int
    results: list[ProbeResultOut]


def _cursor(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit() or int(value) > MAX_ID:
        raise InvalidInput(f"cursor {value[:40]!r} is not one this API gave", hint="Pass next_cursor as it was.")
    return int(value)


@router.get("/alerts", response_model=AlertPageOut, summary="Alerts, newest cause first")
def list_alerts(
    actor: ApiViewer,
    state: Annotated[Literal["open", "resolved", "all"], Query(description="open, past (resolved) or both")] = "all",
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> AlertPageOut:
    page = notify.alert_page(actor.scope, state=state, before_id=_cursor(cursor), limit=limit)
    return AlertPageOut(
        items=[AlertOut.of(a) for a in page.items],
        next_cursor=None if page.next_before is None else str(page.next_before),
    )


@router.get("/alerts/{alert_id}", response_model=AlertDetailOut, summary="One alert with every episode's deliveries")
def get_alert(actor: ApiViewer, alert_id: AlertId) -> AlertDetailOut:
    detail = notify.get_alert(actor.scope, alert_id)
    return AlertDetailOut(
        **AlertOut.of(detail.alert).model_dump(),
        episodes=[
            EpisodeOut(generation=e.generation, deliveries=[DeliveryOut(**vars(d)) for d in e.deliveries])
            for e in detail.episodes
        ],
    )


@router.post(
    "/alerts/{alert_id}/ack",
    response_model=AlertOut,
    summary="Acknowledge an open alert (operator)",
    description="Says who took the current episode in hand. It does not resolve the alert: only its cause "
    "going away does. Acknowledging twice changes nothing; a resolved alert is refused (409).",
)
def acknowledge(actor: ApiOperator, alert_id: AlertId, body: AckIn | None = None) -> AlertOut:
    generation = None if body is None else body.generation
    return AlertOut.of(notify.acknowledge_alert(actor, alert_id, generation=generation))


@router.get("/settings/notifications", response_model=NotificationSettingsOut, summary="Where this account's alerts go")
def get_settings(actor: ApiViewer) -> NotificationSettingsOut:
    return NotificationSettingsOut.of(notify.notification_settings(actor.scope))


@router.put(
    "/settings/notifications",
    response_model=SavedSettingsOut,
    summary="Set this account's recipients and webhook targets (admin)",
    description="Replaces the hub's defaults for this account, even with empty lists (alerts are then sent "
    "nowhere). Every value is checked first; the first bad one is refused (422) naming it and its field.",
)
def put_settings(actor: ApiAdmin, body: NotificationSettingsIn) -> SavedSettingsOut:
    saved = notify.save_notification_settings(
        actor, recipients=body.recipients, webhook_urls=body.webhook_urls, rotate_secret=body.rotate_secret
    )
    return SavedSettingsOut(**saved.settings.as_dict(), signing_secret=saved.new_secret)


@router.delete(
    "/settings/notifications",
    response_model=NotificationSettingsOut,
    summary="Go back to the hub's default targets (admin)",
)
def delete_settings(actor: ApiAdmin) -> NotificationSettingsOut:
    return NotificationSettingsOut.of(notify.use_hub_defaults(actor))


@router.post(
    "/settings/notifications/test",
    response_model=ProbeReportOut,
    summary="Send a test message to every target now (admin)",
    description="A real e-mail to each recipient and a signed webhook to each target; the answer says per target "
    "what happened. 409 when there is nowhere to send it.",
)
def send_test(actor: ApiAdmin) -> ProbeReportOut:
    return ProbeReportOut(**notify.send_test_message(actor).as_dict())
