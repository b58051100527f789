"""Dispatch: send every episode not yet dispatched to every target, exactly once per target.

:func:`dispatch` writes one ``alert_deliveries`` row per (alert, generation, target), unique in
the database. A target with a ``sent`` row is never sent again, so a rerun after a crash does not
duplicate. Each delivery is committed on its own, with no transaction held open across network I/O
(SQLite would block every other writer). The one window left is a kill between the server's
acceptance and that commit; the episode is then sent again with the *same* identifiers
(``Message-ID``, ``X-OrderBridge-Alert-Id``), so a receiver can tell it is a repeat. A failed
delivery is recorded with its error as ``retrying`` and tried again by a later dispatch after a
growing pause (:data:`RETRY_AFTER_S`: the worker dispatches every few seconds, and five attempts
in 25 s would give up during a mail-server restart). After :data:`MAX_ATTEMPTS` it is ``failed``
and logged as an error. The alert is ``dispatched_at`` once every target is ``sent`` or
``failed``. One dispatch runs at a time per tenant (a lease), because two would both send.

The targets are the tenant's (:mod:`.tenant_targets`: its own recipients and webhooks, signed with
its own secret, or the hub's defaults when it set none), read at the start of every dispatch, so a
change in the portal applies to the next one; a target removed meanwhile is not tried again.

An episode resolved before it was sent is still sent, saying so: a failure that healed itself
within seconds should still be on record for the person who owns the connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from sqlalchemy import Connection, select, update

from orderbridge.services.notify.mail import Mailer, email_message
from orderbridge.services.notify.outgoing import Delivery, DeliveryFailed, Outgoing
from orderbridge.services.notify.render import Renderer
from orderbridge.services.notify.tenant_targets import TENANT, Targets, check_public, hub_targets, tenant_targets
from orderbridge.services.notify.webhook import post_webhook
from orderbridge.services.scope import Scope
from orderbridge.settings import Settings
from orderbridge.storage.db import dialect_insert
from orderbridge.storage.leases import held
from orderbridge.storage.tables import alert_deliveries, alerts

log = structlog.get_logger("orderbridge.notify")

SENT, RETRYING, FAILED = "sent", "retrying", "failed"
#: deliveries are given up (``failed``) after this many attempts
MAX_ATTEMPTS = 5
#: pause before attempt n+1 after n failed attempts (n = 1..4): about 40 minutes in all
RETRY_AFTER_S = (30.0, 120.0, 600.0, 1800.0)
#: alerts handled per dispatch (the rest wait for the next one, a few seconds later)
BATCH = 200


@dataclass
class DispatchReport:
    #: deliveries sent by this dispatch
    sent: int = 0
    #: deliveries given up by this dispatch (their last attempt failed)
    failed: int = 0
    #: deliveries that failed this time or are waiting for their retry pause; a later dispatch retries them
    pending: int = 0
    #: alerts marked dispatched with nothing sent, because no recipient and no webhook is configured
    skipped_no_targets: int = 0
    #: alerts whose every target is now sent or failed
    dispatched: int = 0
    errors: list[str] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def targets(settings: Settings) -> list[str]:
    """The hub's default targets as ``email:<address>`` / ``webhook:<url>``; refuses unsafe or unusable settings."""
    return hub_targets(settings).names()


def dispatch(scope: Scope) -> DispatchReport:
    """Send every alert whose current generation is not dispatched, to every e-mail recipient and every
    webhook target of the tenant (its own, or the hub's defaults); record one alert_deliveries row per
    (alert, generation, target) — never send a (alert, generation, target) that already has a 'sent'
    row (so a crash/rerun does not duplicate); failures are recorded with the error and retried on the
    next dispatch (attempt count), up to 5 attempts, then marked failed and logged; an alert is
    dispatched_at once every target is sent or failed. With no recipients and no webhook targets
    configured, alerts stay listed (dispatched_at set, nothing sent) and `dispatch` says so in its report."""
    wanted = tenant_targets(scope)  # SettingsError before anything is touched
    report = DispatchReport()
    with held(scope.db, f"notify:{scope.tenant_id}", scope.settings.lease_ttl_s, scope.now) as lease:
        pending = _pending(scope)
        if not pending:
            return report
        if not wanted.names():
            _mark_listed_only(scope, pending, report, wanted)
            return report
        render = Renderer(scope.present, scope.settings.public_url)
        with Mailer(scope.settings) as mailer, httpx.Client(timeout=scope.settings.http_timeout_s) as http:
            for alert in pending:
                lease.renew()
                final = [
                    _deliver(scope, render, alert, target, wanted, mailer, http, report) for target in wanted.names()
                ]
                if all(final):
                    report.dispatched += _mark_dispatched(scope, alert)
    return report


def _pending(scope: Scope) -> list[Outgoing]:
    with scope.db.read() as conn:
        rows = conn.execute(
            select(alerts)
            .where(alerts.c.tenant_id == scope.tenant_id, alerts.c.dispatched_at.is_(None))
            .order_by(alerts.c.id)
            .limit(BATCH)
        ).all()
        done: dict[int, dict[str, Delivery]] = {}
        if rows:
            generation = {r.id: r.generation for r in rows}
            for d in conn.execute(select(alert_deliveries).where(alert_deliveries.c.alert_id.in_(list(generation)))):
                if d.generation == generation[d.alert_id]:
                    done.setdefault(d.alert_id, {})[d.target] = Delivery(d.status, d.attempts, d.at)
    return [
        Outgoing(
            r.id,
            r.key,
            r.kind,
            r.subject,
            r.body,
            r.fixes,
            r.data,
            r.generation,
            r.state,
            r.first_at,
            r.resolved_at,
            done.get(r.id, {}),
        )
        for r in rows
    ]


def _mark_listed_only(scope: Scope, pending: Sequence[Outgoing], report: DispatchReport, wanted: Targets) -> None:
    now = scope.now()
    with scope.db.transaction() as conn:
        for alert in pending:
            report.skipped_no_targets += _mark_dispatched(scope, alert, conn, now)
    where = (
        "add them in the account's notification settings"
        if wanted.source == TENANT
        else "add them in the account's notification settings, or set the hub's defaults "
        "ORDERBRIDGE_ALERT_RECIPIENTS or ORDERBRIDGE_ALERT_WEBHOOK_URLS"
    )
    report.note = (
        f"no alert recipients or webhooks are configured: {report.skipped_no_targets} alert(s) are recorded and "
        f"listed but were not sent; {where}"
    )
    log.warning("notify.no_targets", tenant_id=scope.tenant_id, alerts=report.skipped_no_targets)


def _mark_dispatched(scope: Scope, alert: Outgoing, conn: Connection | None = None, now: datetime | None = None) -> int:
    """Mark this generation dispatched — unless the cause recurred meanwhile (a new generation to send)."""
    now = now or scope.now()
    if conn is None:
        with scope.db.transaction() as c:
            return _mark_dispatched(scope, alert, c, now)
    return int(
        conn.execute(
            update(alerts)
            .where(alerts.c.id == alert.id, alerts.c.generation == alert.generation, alerts.c.dispatched_at.is_(None))
            .values(dispatched_at=now)
        ).rowcount
    )


def _retry_due(delivery: Delivery, now: datetime) -> bool:
    pause = RETRY_AFTER_S[min(delivery.attempts, len(RETRY_AFTER_S)) - 1]
    return now >= delivery.at + timedelta(seconds=pause)


def _deliver(
    scope: Scope,
    render: Renderer,
    alert: Outgoing,
    target: str,
    wanted: Targets,
    mailer: Mailer,
    http: httpx.Client,
    report: DispatchReport,
) -> bool:
    """Send one episode to one target unless already done; record the outcome. True when the target is final."""
    before = alert.deliveries.get(target)
    if before is not None and before.status in (SENT, FAILED):
        return True
    if before is not None and not _retry_due(before, scope.now()):
        report.pending += 1
        return False
    attempts = (before.attempts if before else 0) + 1
    bound = log.bind(tenant_id=scope.tenant_id, key=alert.key, alert_id=alert.id, target=target, attempt=attempts)
    error: str | None = None
    try:
        if target.startswith("email:"):
            mailer.send(email_message(scope.settings, render, alert, target.removeprefix("email:"), scope.now()))
        else:
            url = target.removeprefix("webhook:")
            if wanted.restricted and not scope.settings.alert_webhook_allow_private:
                check_public(url)
            post_webhook(render, http, alert, url, wanted.secret or "")
    except DeliveryFailed as exc:
        error = str(exc)
    status = SENT if error is None else FAILED if attempts >= MAX_ATTEMPTS else RETRYING
    _record(scope, alert, target, status, attempts, error)
    if status == SENT:
        report.sent += 1
        bound.info("alert.sent")
    elif status == RETRYING:
        report.pending += 1
        bound.warning("alert.delivery_failed", error=error, retry_in_s=RETRY_AFTER_S[attempts - 1])
    else:
        report.failed += 1
        report.errors.append(f"{alert.key} → {target}: {error}")
        bound.error("alert.delivery_given_up", error=error, attempts=attempts)
    return status != RETRYING


def _record(scope: Scope, alert: Outgoing, target: str, status: str, attempts: int, error: str | None) -> None:
    values = {"status": status, "attempts": attempts, "error": error, "at": scope.now()}
    with scope.db.transaction() as conn:
        conn.execute(
            dialect_insert(conn)(alert_deliveries)
            .values(tenant_id=scope.tenant_id, alert_id=alert.id, generation=alert.generation, target=target, **values)
            .on_conflict_do_update(index_elements=["alert_id", "generation", "target"], set_=values)
        )
