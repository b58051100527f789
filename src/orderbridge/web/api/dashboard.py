"""``GET /api/v1/dashboard``: the dashboard's summary as JSON — orders per state and per hour, the
root causes of held orders with their fixes, each connection's health, last sync and lag, what the
latest audit of each channel proved, the open alerts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from orderbridge.services.dashboard import Dashboard, dashboard
from orderbridge.web.api.common import api_router
from orderbridge.web.api.holds import ExampleOut, FixOut
from orderbridge.web.deps import ApiViewer

router = api_router("dashboard")


class HourOut(BaseModel):
    hour: datetime = Field(description="the hour's start (UTC)")
    orders: int = Field(description="orders received in that hour")
    by_state: dict[str, int] = Field(description="of them, how many are in each state now")


class CauseSummary(BaseModel):
    kind: str
    code: str
    value: str
    orders: int
    pushes: int
    message: str
    fix: FixOut
    examples: list[ExampleOut]


class SyncRunOut(BaseModel):
    started_at: datetime
    finished_at: datetime | None
    outcome: str = Field(description="`running`, `ok` or `failed`")
    counts: dict[str, Any]
    error: str | None


class JobOut(BaseModel):
    job: str
    health: str
    message: str
    since: datetime
    last_success_at: datetime | None
    last_error_at: datetime | None


class ConnectionOut(BaseModel):
    id: int
    name: str
    kind: str
    role: str
    health: str = Field(description="`healthy`, `degraded`, `failing`, `silent` or `unknown`")
    message: str
    since: datetime | None
    last_success_at: datetime | None
    last_order_at: datetime | None
    sync_lag_s: float | None = Field(description="seconds since its sync (channel) or posting (destination) worked")
    last_sync: SyncRunOut | None
    jobs: list[JobOut]


class AuditOut(BaseModel):
    channel_id: int
    channel: str
    run_id: int | None = Field(description="the latest finished audit (`/api/v1/audits/{run_id}`); null: none yet")
    kind: str | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    finished_at: datetime | None = None
    outcome: str | None = None
    channel_count: int | None = Field(default=None, description="orders the channel listed in the window")
    ledger_count: int | None = Field(default=None, description="of them, in the ledger")
    missing: int | None = Field(default=None, description="still missing after the audit recovered what it could")
    recovered: int | None = None
    error: str | None = None


class AlertOut(BaseModel):
    id: int
    kind: str
    subject: str
    connection: str | None
    first_at: datetime
    last_at: datetime
    occurrences: int
    fixes: list[FixOut]


class DashboardOut(BaseModel):
    at: datetime
    total: int = Field(description="orders in the ledger")
    states: dict[str, int] = Field(description="orders per state (every state, zeros included)")
    causes: list[CauseSummary] = Field(description="the largest root causes of held orders (`/api/v1/holds`: all)")
    causes_total: int = Field(description="how many root causes there are in all")
    hours: list[HourOut] = Field(description="the last 24 hours, oldest first")
    connections: list[ConnectionOut]
    audits: list[AuditOut]
    alerts: list[AlertOut] = Field(description="open alerts, the latest first")


def dashboard_out(board: Dashboard) -> DashboardOut:
    audits = []
    for channel_id, name, proof in board.audits:
        if proof is None:
            audits.append(AuditOut(channel_id=channel_id, channel=name, run_id=None))
        else:
            audits.append(
                AuditOut(
                    channel_id=channel_id,
                    channel=name,
                    run_id=proof.run_id,
                    kind=proof.kind,
                    window_start=proof.window_start,
                    window_end=proof.window_end,
                    finished_at=proof.finished_at,
                    outcome=proof.outcome,
                    channel_count=proof.channel_count,
                    ledger_count=proof.ledger_count,
                    missing=proof.missing,
                    recovered=proof.recovered,
                    error=proof.error,
                )
            )
    return DashboardOut(
        at=board.at,
        total=board.total,
        states={s.state: s.orders for s in board.states},
        causes=[
            CauseSummary(
                kind=g.kind,
                code=g.code,
                value=g.value,
                orders=g.orders,
                pushes=g.pushes,
                message=g.message,
                fix=FixOut.of(g.fix),
                examples=[
                    ExampleOut(id=g.example_ids[i] if i < len(g.example_ids) else None, label=label)
                    for i, label in enumerate(g.examples)
                ],
            )
            for g in board.causes
        ],
        causes_total=board.causes_total,
        hours=[HourOut(hour=h.hour, orders=h.orders, by_state=h.by_state) for h in board.hours],
        connections=[
            ConnectionOut(
                id=c.id,
                name=c.name,
                kind=c.kind,
                role=c.role,
                health=c.health,
                message=c.message,
                since=c.since,
                last_success_at=c.last_success_at,
                last_order_at=c.last_order_at,
                sync_lag_s=c.sync_lag_s,
                last_sync=None
                if c.last_sync is None
                else SyncRunOut(
                    started_at=c.last_sync.started_at,
                    finished_at=c.last_sync.finished_at,
                    outcome=c.last_sync.outcome,
                    counts=c.last_sync.counts,
                    error=c.last_sync.error,
                ),
                jobs=[
                    JobOut(
                        job=j.job,
                        health=j.health,
                        message=j.message,
                        since=j.since,
                        last_success_at=j.last_success_at,
                        last_error_at=j.last_error_at,
                    )
                    for j in c.jobs
                ],
            )
            for c in board.connections
        ],
        audits=audits,
        alerts=[
            AlertOut(
                id=a.id,
                kind=a.kind,
                subject=a.subject,
                connection=a.connection,
                first_at=a.first_at,
                last_at=a.last_at,
                occurrences=a.occurrences,
                fixes=[FixOut.of(f) for f in a.fixes],
            )
            for a in board.alerts
        ],
    )


@router.get("/dashboard", response_model=DashboardOut, summary="The dashboard's summary")
def get_dashboard(actor: ApiViewer) -> DashboardOut:
    return dashboard_out(dashboard(actor.scope))
