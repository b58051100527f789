"""Listing alerts with their deliveries (``alerts list``, ``/alerts``, ``/api/v1/alerts``).

Three reads, each of the scope's tenant only:

- :func:`list_alerts` — every alert (or the open ones), the most recently seen first: what the CLI
  prints and the portal's "Open" list (there is one alert per cause, so the open ones are few);
- :func:`alert_page` — a keyset page, newest cause first (by id, which never changes: ``last_at``
  moves with every repeat, so a cursor over it would skip or repeat alerts — decision 120);
- :func:`get_alert` — one alert with the deliveries of every episode and the audit trail on it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, select

from orderbridge.errors import InvalidInput, NotFound
from orderbridge.fixes import Fix
from orderbridge.services.audit_trail import ActionInfo, actions_on
from orderbridge.services.notify.outbox import OPEN, RESOLVED
from orderbridge.services.scope import Scope
from orderbridge.storage.tables import alert_deliveries, alerts, connections

#: the audit trail's name for an alert
OBJECT = "alert"
#: the states :func:`alert_page` filters by (``all``: both)
STATES = (OPEN, RESOLVED, "all")
PAGE_MAX = 200


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
    connection_id: int | None = None
    #: who took the current episode in hand, and when (decision 121); None when nobody did
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "fixes": [f.as_dict() for f in self.fixes]}


@dataclass(frozen=True)
class Episode:
    generation: int
    deliveries: list[DeliveryInfo]


@dataclass(frozen=True)
class AlertDetail:
    alert: AlertInfo
    #: the deliveries of every episode, the current one first
    episodes: list[Episode]
    #: what people did to it (acknowledged …), newest first
    actions: list[ActionInfo]


@dataclass(frozen=True)
class AlertPage:
    items: list[AlertInfo]
    #: the id to pass as ``before_id`` for the next page; None on the last page
    next_before: int | None


@dataclass(frozen=True)
class AlertsScreen:
    """The alerts page: every open alert (most recently seen first) and a page of past ones."""

    open: list[AlertInfo]
    past: AlertPage


def _query(scope: Scope) -> Select[Any]:
    return (
        select(alerts, connections.c.name.label("connection"))
        .outerjoin(connections, connections.c.id == alerts.c.connection_id)
        .where(alerts.c.tenant_id == scope.tenant_id)
    )


def list_alerts(scope: Scope, *, open_only: bool = False) -> list[AlertInfo]:
    """Alerts of this tenant, most recently seen first, with the deliveries of their current episode."""
    q = _query(scope).order_by(alerts.c.last_at.desc(), alerts.c.id.desc())
    if open_only:
        q = q.where(alerts.c.state == OPEN)
    return _read(scope, q)


def alert_page(scope: Scope, *, state: str = "all", before_id: int | None = None, limit: int = 50) -> AlertPage:
    """One page of the tenant's alerts in ``state`` (``open``, ``resolved`` or ``all``), newest cause
    first (by id); the next page starts before the last id of this one."""
    if state not in STATES:
        raise InvalidInput(f"alert state {state[:40]!r} is not one of {', '.join(STATES)}")
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"limit {limit} is not between 1 and {PAGE_MAX}")
    q = _query(scope).order_by(alerts.c.id.desc()).limit(limit + 1)
    if state != "all":
        q = q.where(alerts.c.state == state)
    if before_id is not None:
        q = q.where(alerts.c.id < before_id)
    items = _read(scope, q)
    more = len(items) > limit
    items = items[:limit]
    return AlertPage(items, items[-1].id if more and items else None)


def alerts_screen(scope: Scope, *, before_id: int | None = None, limit: int = 50) -> AlertsScreen:
    """What the alerts page shows (see :class:`AlertsScreen`)."""
    return AlertsScreen(
        list_alerts(scope, open_only=True), alert_page(scope, state=RESOLVED, before_id=before_id, limit=limit)
    )


def get_alert(scope: Scope, alert_id: int) -> AlertDetail:
    """One alert of the tenant, with the deliveries of every episode and what people did to it;
    :class:`NotFound` for an unknown id and for another tenant's alike."""
    found = _read(scope, _query(scope).where(alerts.c.id == alert_id))
    if not found:
        raise NotFound(f"no alert {alert_id}", hint="The alerts page lists every alert of this account.")
    alert = found[0]
    with scope.read() as conn:
        rows = conn.execute(
            select(alert_deliveries)
            .where(alert_deliveries.c.alert_id == alert.id, alert_deliveries.c.tenant_id == scope.tenant_id)
            .order_by(alert_deliveries.c.generation.desc(), alert_deliveries.c.id)
        ).all()
    by_generation: dict[int, list[DeliveryInfo]] = {}
    for d in rows:
        by_generation.setdefault(int(d.generation), []).append(_delivery(d))
    episodes = [Episode(g, by_generation[g]) for g in sorted(by_generation, reverse=True)]
    return AlertDetail(alert, episodes, actions_on(scope, OBJECT, alert.id))


def _delivery(d: Any) -> DeliveryInfo:
    return DeliveryInfo(d.target, d.status, d.attempts, d.error, d.at)


def _read(scope: Scope, q: Select[Any]) -> list[AlertInfo]:
    with scope.db.read() as conn:
        rows = conn.execute(q).all()
        by_alert: dict[tuple[int, int], list[DeliveryInfo]] = {}
        for chunk in _chunks([r.id for r in rows], 500):
            for d in conn.execute(
                select(alert_deliveries).where(alert_deliveries.c.alert_id.in_(chunk)).order_by(alert_deliveries.c.id)
            ):
                by_alert.setdefault((d.alert_id, d.generation), []).append(_delivery(d))
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
            r.connection_id,
            r.acknowledged_at,
            r.acknowledged_by,
        )
        for r in rows
    ]


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
