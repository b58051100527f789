"""The dashboard's read model: one tenant's ledger at a glance, fast at a million orders.

What it answers, each from the cheapest place that tells the truth:

- **orders per state** and **orders received per hour** (the last :data:`HOURS`, by the state each
  is in now) — from the order tallies the order writer appends with every state it writes
  (``storage/repos/orders.py``, decision 110): a few hundred rows, never a million;
- **held orders by root cause, with the fix** — the largest :data:`CAUSES` of
  :func:`orderbridge.services.queries.top_holds` (held fulfilment pushes and quarantined orders
  included), read from the open-cause index (decision 111);
- **each connection's health**, its jobs, its **last sync** and its **sync lag** — the connection
  rows, their job rows and one seek per channel for its newest sync run;
- **what the latest audit proved** per audited channel ("300 in the channel, 300 in the ledger,
  0 missing") — one seek per channel and kind of audit;
- **open alerts** — :func:`orderbridge.services.notify.listing.list_alerts`.

Sync lag is the time since the connection's main job last succeeded (its order sync for a channel,
its posting for a destination): how old, at most, what the portal shows of that system is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from orderbridge.connectors import registry
from orderbridge.connectors.base import Capability, Role
from orderbridge.domain.states import OrderState
from orderbridge.services.notify.listing import AlertInfo, list_alerts
from orderbridge.services.queries import HoldGroup, top_holds
from orderbridge.services.scope import Scope
from orderbridge.storage.repos import order_reasons as reason_repo
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.tables import connection_jobs, connections, reconciliation_runs, sync_runs

#: the root causes the dashboard describes (the largest; the exceptions screen has them all)
CAUSES = 6
#: the hours the orders-per-hour chart covers (at most the tallies' ``TALLY_HOURS``)
HOURS = 24
#: the states in the order a person reads them (the order state machine's own order)
STATES: tuple[OrderState, ...] = tuple(OrderState)
#: the kinds of audit (``reconciliation_runs.kind``)
AUDIT_KINDS = ("hourly", "daily", "manual")
#: the job whose last success a connection's sync lag is measured from, by role
MAIN_JOB = {Role.CHANNEL: "sync", Role.DESTINATION: "post"}


@dataclass(frozen=True)
class StateCount:
    state: str
    orders: int


@dataclass(frozen=True)
class HourCount:
    """The orders received in one hour, by the state each is in now."""

    hour: datetime
    by_state: dict[str, int]

    @property
    def orders(self) -> int:
        return sum(self.by_state.values())


@dataclass(frozen=True)
class SyncRun:
    started_at: datetime
    finished_at: datetime | None
    #: running | ok | failed
    outcome: str
    counts: dict[str, Any]
    error: str | None


@dataclass(frozen=True)
class JobStatus:
    job: str
    health: str
    message: str
    since: datetime
    last_success_at: datetime | None
    last_error_at: datetime | None


@dataclass(frozen=True)
class ConnectionStatus:
    id: int
    name: str
    kind: str
    role: str
    health: str
    message: str
    since: datetime | None
    last_success_at: datetime | None
    last_order_at: datetime | None
    #: seconds since the main job (:data:`MAIN_JOB`) last succeeded; None: it never has
    sync_lag_s: float | None
    #: the channel's newest order sync (None for a destination, or before the first)
    last_sync: SyncRun | None
    jobs: list[JobStatus]


@dataclass(frozen=True)
class AuditProof:
    """What a channel's latest finished audit proved."""

    channel_id: int
    channel: str
    run_id: int
    kind: str
    window_start: datetime
    window_end: datetime
    finished_at: datetime
    outcome: str
    channel_count: int
    ledger_count: int
    missing: int
    recovered: int
    error: str | None


@dataclass(frozen=True)
class Dashboard:
    at: datetime
    total: int
    #: every state, in :data:`STATES` order, zeros included
    states: list[StateCount]
    #: held orders (and held pushes, quarantined orders) by root cause: the :data:`CAUSES` largest
    causes: list[HoldGroup]
    #: how many root causes there are in all
    causes_total: int
    #: the last :data:`HOURS` hours, oldest first, empty hours included
    hours: list[HourCount]
    connections: list[ConnectionStatus]
    #: per audited channel (it declares ``list_order_stamps``); None: never audited yet
    audits: list[tuple[int, str, AuditProof | None]]
    alerts: list[AlertInfo] = field(default_factory=list)

    def count(self, state: str) -> int:
        return next((s.orders for s in self.states if s.state == state), 0)

    @property
    def held_orders(self) -> int:
        return self.count(OrderState.HELD.value)


def dashboard(scope: Scope) -> Dashboard:
    now = scope.now()
    with scope.read() as conn:
        first_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
        until = first_hour + timedelta(hours=HOURS)
        tallies = order_repo.tallies(conn, scope.tenant_id, since=first_hour, until=until)
        rows = list(
            conn.execute(
                select(connections).where(connections.c.tenant_id == scope.tenant_id).order_by(connections.c.id)
            )
        )
        jobs = _jobs(conn, scope.tenant_id)
        statuses = [_status(conn, row, jobs.get(row.id, []), now) for row in rows]
        audits = [
            (int(row.id), str(row.name), _latest_audit(conn, row))
            for row in rows
            if row.role == Role.CHANNEL and _audited(row.kind)
        ]
    states = [StateCount(s.value, tallies.by_state.get(s.value, 0)) for s in STATES]
    causes, causes_total = top_holds(scope, limit=CAUSES)
    return Dashboard(
        at=now,
        total=sum(s.orders for s in states),
        states=states,
        causes=causes,
        causes_total=causes_total,
        hours=_hours(tallies.by_hour, now),
        connections=statuses,
        audits=audits,
        alerts=list_alerts(scope, open_only=True),
    )


def _hours(by_hour: dict[tuple[datetime, str], int], now: datetime) -> list[HourCount]:
    last = now.replace(minute=0, second=0, microsecond=0)
    hours = [last - timedelta(hours=HOURS - 1 - i) for i in range(HOURS)]
    counts: dict[datetime, dict[str, int]] = {h: {} for h in hours}
    for (hour, state), n in by_hour.items():
        if hour in counts and n > 0:
            counts[hour][state] = counts[hour].get(state, 0) + n
    return [HourCount(h, counts[h]) for h in hours]


def _jobs(conn: Connection, tenant_id: int) -> dict[int, list[JobStatus]]:
    found: dict[int, list[JobStatus]] = {}
    j = connection_jobs.c
    for row in conn.execute(select(connection_jobs).where(j.tenant_id == tenant_id).order_by(j.connection_id, j.job)):
        found.setdefault(int(row.connection_id), []).append(
            JobStatus(row.job, row.health, row.message, row.since, row.last_success_at, row.last_error_at)
        )
    return found


def _status(conn: Connection, row: Any, jobs: list[JobStatus], now: datetime) -> ConnectionStatus:
    role = Role(row.role)
    main = next((j for j in jobs if j.job == MAIN_JOB[role]), None)
    succeeded = main.last_success_at if main is not None else row.last_success_at
    last_sync = None
    if role is Role.CHANNEL:
        run = conn.execute(
            select(sync_runs)
            .where(sync_runs.c.connection_id == row.id, sync_runs.c.kind == "orders")
            .order_by(sync_runs.c.id.desc())
            .limit(1)
        ).one_or_none()
        if run is not None:
            last_sync = SyncRun(run.started_at, run.finished_at, run.outcome, dict(run.counts or {}), run.error)
    return ConnectionStatus(
        id=int(row.id),
        name=row.name,
        kind=row.kind,
        role=role.value,
        health=row.health,
        message=row.health_message,
        since=row.health_since,
        last_success_at=row.last_success_at,
        last_order_at=row.last_order_at,
        sync_lag_s=None if succeeded is None else max(0.0, (now - succeeded).total_seconds()),
        last_sync=last_sync,
        jobs=jobs,
    )


def _audited(kind: str) -> bool:
    return kind in registry.kinds(Role.CHANNEL) and registry.can(kind, Capability.LIST_ORDER_STAMPS)


def _latest_audit(conn: Connection, row: Any) -> AuditProof | None:
    """The channel's newest finished audit: one seek per kind in ``ix_reconciliation_runs_connection``."""
    r = reconciliation_runs.c
    newest = None
    for kind in AUDIT_KINDS:
        run = conn.execute(
            select(reconciliation_runs)
            .where(r.connection_id == row.id, r.kind == kind, r.finished_at.is_not(None))
            .order_by(r.started_at.desc())
            .limit(1)
        ).one_or_none()
        if run is not None and (newest is None or run.finished_at > newest.finished_at):
            newest = run
    if newest is None:
        return None
    return AuditProof(
        channel_id=int(row.id),
        channel=row.name,
        run_id=int(newest.id),
        kind=newest.kind,
        window_start=newest.window_start,
        window_end=newest.window_end,
        finished_at=newest.finished_at,
        outcome=newest.outcome,
        channel_count=int(newest.channel_count),
        ledger_count=int(newest.ledger_count),
        missing=int(newest.missing),
        recovered=int(newest.recovered),
        error=newest.error,
    )


def compact(scope: Scope) -> int:
    """Fold the tenant's order and reason tallies together (the housekeeping runs it); rows removed."""
    with scope.transaction() as conn:
        removed = order_repo.compact_tallies(conn, scope.tenant_id, scope.now())
        return removed + reason_repo.compact_tallies(conn, scope.tenant_id)
