"""Listing alerts with the deliveries of their current episode (``alerts list``, ``/alerts``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from orderbridge.fixes import Fix
from orderbridge.services.notify.outbox import OPEN
from orderbridge.services.scope import Scope
from orderbridge.storage.tables import alert_deliveries, alerts, connections


@dataclass(frozen=True)
class DeliveryInfo:
    target: str
    status: str
    attempts: int
    error: str | None
    at: datetime


@dataclass(frozen=True)
class AlertInfo:
    id: int
    key: str
    kind: str
    state: str
    generation: int
    occurrences: int
    subject: str
    body: str
    #: what to do, as data (the CLI renders each as a command; the e-mail linked to the first with a page)
    fixes: tuple[Fix, ...]
    connection: str | None
    data: dict[str, Any] | None
    first_at: datetime
    last_at: datetime
    resolved_at: datetime | None
    dispatched_at: datetime | None
    #: deliveries of the current generation
    deliveries: list[DeliveryInfo]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fixes": [f.as_dict() for f in self.fixes]}


def list_alerts(scope: Scope, *, open_only: bool = False) -> list[AlertInfo]:
    """Alerts of this tenant, most recent first, with the deliveries of their current episode."""
    q = (
        select(alerts, connections.c.name.label("connection"))
        .outerjoin(connections, connections.c.id == alerts.c.connection_id)
        .where(alerts.c.tenant_id == scope.tenant_id)
        .order_by(alerts.c.last_at.desc(), alerts.c.id.desc())
    )
    if open_only:
        q = q.where(alerts.c.state == OPEN)
    with scope.db.read() as conn:
        rows = conn.execute(q).all()
        by_alert: dict[tuple[int, int], list[DeliveryInfo]] = {}
        for chunk in _chunks([r.id for r in rows], 500):
            for d in conn.execute(
                select(alert_deliveries).where(alert_deliveries.c.alert_id.in_(chunk)).order_by(alert_deliveries.c.id)
            ):
                by_alert.setdefault((d.alert_id, d.generation), []).append(
                    DeliveryInfo(d.target, d.status, d.attempts, d.error, d.at)
                )
    return [
        AlertInfo(
            r.id,
            r.key,
            r.kind,
            r.state,
            r.generation,
            r.occurrences,
            r.subject,
            r.body,
            r.fixes,
            r.connection,
            r.data,
            r.first_at,
            r.last_at,
            r.resolved_at,
            r.dispatched_at,
            by_alert.get((r.id, r.generation), []),
        )
        for r in rows
    ]


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
