"""Audits as people see them: the reconciliation reports per window, one report with the orders it
recovered and why, and "Run audit now".

The audit itself is :mod:`.reconcile`. What this module adds is the reading side (typed, paged,
the recovered orders linked to the ledger's) and the request from a person: :func:`request_audit`
does not run the audit while the request waits (decision 120). An audit lists every order of its
window from the channel — seconds for a small shop, minutes for a 60-day window of a large one —
so it is **queued**: a report row with outcome ``queued``, returned at once, which the embedded
runtime's housekeeper (``serve``, every few seconds) claims and runs under the connection's audit
lease like a scheduled one (:func:`run_queued_audits`). The report's page shows it queued, then
running with the orders listed and recovered so far (``reconcile`` stores them every couple of
seconds), then its result. Queued in the database rather than on a thread of the web process, it
survives a restart, runs in whichever process runs the workers, and never runs twice at once for
one connection. Asking again while one is still queued for the connection returns that one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, update

from orderbridge.connectors.base import Capability, Role
from orderbridge.errors import Conflict, InvalidInput, NotFound, OrderBridgeError
from orderbridge.services.audit_trail import ActionInfo, actions_on, record_action
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.principals import Actor
from orderbridge.services.reconcile import CAUSES, FAILED, OK, QUEUED, RUNNING, ReconcileReport, reconcile
from orderbridge.services.scope import Scope
from orderbridge.storage.leases import LeaseBusy
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.tables import connections, reconciliation_runs

#: the audit trail's name for a report
OBJECT = "audit"
#: the windows a person picks from: the scheduled audits' (hourly: the last 72 h; daily: 60 days)
WINDOWS = ("recent", "full")
PAGE_MAX = 200
OUTCOMES = (QUEUED, RUNNING, OK, FAILED)


@dataclass(frozen=True)
class AuditSummary:
    id: int
    connection_id: int
    connection: str
    #: hourly | daily | manual
    kind: str
    window_start: datetime
    window_end: datetime
    #: when it started (while queued: when it was asked for)
    started_at: datetime
    finished_at: datetime | None
    #: queued | running | ok | failed
    outcome: str
    channel_count: int
    ledger_count: int
    recovered: int
    refreshed: int
    missing: int
    api_requests: int
    api_cost: int
    error: str | None

    @property
    def done(self) -> bool:
        return self.outcome in (OK, FAILED)

    @property
    def found(self) -> int:
        """Orders the ledger lacked or had an older version of, now recovered."""
        return self.recovered + self.refreshed

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "connection_id": self.connection_id,
            "connection": self.connection,
            "kind": self.kind,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "started_at": self.started_at.isoformat(),
            "finished_at": None if self.finished_at is None else self.finished_at.isoformat(),
            "outcome": self.outcome,
            "channel_count": self.channel_count,
            "ledger_count": self.ledger_count,
            "recovered": self.recovered,
            "refreshed": self.refreshed,
            "missing": self.missing,
            "api_requests": self.api_requests,
            "api_cost": self.api_cost,
            "error": self.error,
        }


@dataclass(frozen=True)
class Finding:
    """One order the audit found missing (``was`` = ``missing``) or older (``stale``) in the ledger."""

    external_id: str
    number: str | None
    updated_at: datetime | None
    was: str
    #: why it had been missed (``reconcile.CAUSES``)
    cause: str
    #: recovered | refreshed | gone (the channel no longer had it when fetched)
    action: str
    error: str | None
    #: the order in the ledger (None when it could not be fetched)
    order_id: int | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "external_id": self.external_id,
            "number": self.number,
            "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
            "was": self.was,
            "cause": self.cause,
            "action": self.action,
            "error": self.error,
            "order_id": self.order_id,
        }


@dataclass(frozen=True)
class AuditReport:
    audit: AuditSummary
    findings: list[Finding]
    #: findings per cause, most first
    by_cause: list[tuple[str, int]]
    #: who asked for it (a hand-run audit), newest first
    actions: list[ActionInfo]


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditSummary]
    #: pass as ``before_id`` for the next page; None on the last
    next_before: int | None


@dataclass(frozen=True)
class AuditableChannel:
    id: int
    name: str
    kind: str


@dataclass(frozen=True)
class AuditsScreen:
    """The audits page: one page of reports, the channels an audit can run on, and what the latest
    finished audit of each proved."""

    page: AuditPage
    channels: list[AuditableChannel]
    latest: list[AuditSummary]


def _query(scope: Scope) -> Select[Any]:
    return (
        select(reconciliation_runs, connections.c.name.label("connection"))
        .join(connections, connections.c.id == reconciliation_runs.c.connection_id)
        .where(reconciliation_runs.c.tenant_id == scope.tenant_id)
    )


def _summary(r: Any) -> AuditSummary:
    return AuditSummary(
        int(r.id),
        int(r.connection_id),
        str(r.connection),
        str(r.kind),
        r.window_start,
        r.window_end,
        r.started_at,
        r.finished_at,
        str(r.outcome),
        int(r.channel_count or 0),
        int(r.ledger_count or 0),
        int(r.recovered or 0),
        int(r.refreshed or 0),
        int(r.missing or 0),
        int(r.api_requests or 0),
        int(r.api_cost or 0),
        r.error,
    )


def list_audits(
    scope: Scope, *, connection_id: int | None = None, before_id: int | None = None, limit: int = 50
) -> AuditPage:
    """The tenant's reports, newest first (of one channel when given), a keyset page by id."""
    if not 1 <= limit <= PAGE_MAX:
        raise InvalidInput(f"limit {limit} is not between 1 and {PAGE_MAX}")
    q = _query(scope).order_by(reconciliation_runs.c.id.desc()).limit(limit + 1)
    if before_id is not None:
        q = q.where(reconciliation_runs.c.id < before_id)
    with scope.read() as conn:
        if connection_id is not None:
            q = q.where(reconciliation_runs.c.connection_id == scope.connection(conn, connection_id).id)
        rows = conn.execute(q).all()
    items = [_summary(r) for r in rows[:limit]]
    return AuditPage(items, items[-1].id if len(rows) > limit and items else None)


def latest_audits(scope: Scope) -> list[AuditSummary]:
    """The latest finished report of each of the tenant's channels (what the last audit proved)."""
    with scope.read() as conn:
        newest = (
            select(reconciliation_runs.c.connection_id, reconciliation_runs.c.id)
            .where(reconciliation_runs.c.tenant_id == scope.tenant_id, reconciliation_runs.c.outcome.in_((OK, FAILED)))
            .order_by(reconciliation_runs.c.connection_id, reconciliation_runs.c.id.desc())
        )
        ids: dict[int, int] = {}
        for cid, rid in conn.execute(newest):
            ids.setdefault(int(cid), int(rid))
        if not ids:
            return []
        rows = conn.execute(_query(scope).where(reconciliation_runs.c.id.in_(list(ids.values())))).all()
    return sorted((_summary(r) for r in rows), key=lambda a: a.connection)


def get_audit(scope: Scope, run_id: int) -> AuditReport:
    """One report of the tenant with every finding and who asked for it; :class:`NotFound` for an
    unknown id and for another tenant's alike."""
    with scope.read() as conn:
        row = conn.execute(_query(scope).where(reconciliation_runs.c.id == run_id)).one_or_none()
        if row is None:
            raise NotFound(f"no audit #{run_id}", hint="The audits page lists every report of this account.")
        raw = [f for f in (row.findings or []) if isinstance(f, dict)]
        ids = order_repo.ids_by_external(conn, int(row.connection_id), [str(f.get("external_id")) for f in raw])
    findings = [
        Finding(
            str(f.get("external_id")),
            f.get("number"),
            _when(f.get("updated_at")),
            str(f.get("was") or "missing"),
            str(f.get("cause") or ""),
            str(f.get("action") or ""),
            f.get("error"),
            None if f.get("action") == "gone" else ids.get(str(f.get("external_id"))),
        )
        for f in raw
    ]
    counted: dict[str, int] = {}
    for f in findings:
        counted[f.cause] = counted.get(f.cause, 0) + 1
    by_cause = sorted(counted.items(), key=lambda kv: (-kv[1], kv[0]))
    return AuditReport(_summary(row), findings, by_cause, actions_on(scope, OBJECT, run_id))


def _when(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def auditable_channels(scope: Scope) -> list[AuditableChannel]:
    """The tenant's channels an audit can run on (their kind lists order ids cheaply)."""
    with scope.read() as conn:
        rows = scope.connections(conn, Role.CHANNEL)
    return [AuditableChannel(r.id, r.name, r.kind) for r in rows if r.can(Capability.LIST_ORDER_STAMPS)]


def audits_screen(
    scope: Scope, *, connection_id: int | None = None, before_id: int | None = None, limit: int = 50
) -> AuditsScreen:
    """What the audits page shows (see :class:`AuditsScreen`)."""
    return AuditsScreen(
        list_audits(scope, connection_id=connection_id, before_id=before_id, limit=limit),
        auditable_channels(scope),
        latest_audits(scope),
    )


def window_seconds(scope: Scope, window: str) -> float:
    if window == "recent":
        return scope.settings.reconcile_recent_window_s
    if window == "full":
        return scope.settings.reconcile_full_window_s
    raise InvalidInput(
        f"audit window {window[:40]!r} is not one of {', '.join(WINDOWS)}",
        hint="recent: the hourly audit's window (the last 72 hours by default); full: the daily one's (60 days).",
    )


def _auditable(row: ConnectionRow) -> None:
    if row.role is not Role.CHANNEL:
        raise InvalidInput(f"{row.name!r} is a {row.role} connection; audits compare a channel with the ledger")
    if not row.can(Capability.LIST_ORDER_STAMPS):
        raise InvalidInput(f"{row.kind} connections cannot list order ids cheaply, so they cannot be audited yet")


def request_audit(actor: Actor, connection_id: int, *, window: str = "recent") -> AuditSummary:
    """Queue an audit of the actor's tenant's channel ``connection_id`` over the last ``window``
    (``recent`` or ``full``), ending now; the embedded runtime runs it within seconds. While one is
    still queued for the channel, that one is returned and nothing new is queued."""
    scope = actor.scope
    seconds = window_seconds(scope, window)
    now = scope.now()
    with scope.transaction() as conn:
        row = scope.connection(conn, connection_id)
        _auditable(row)
        waiting = conn.execute(
            select(reconciliation_runs.c.id).where(
                reconciliation_runs.c.tenant_id == scope.tenant_id,
                reconciliation_runs.c.connection_id == row.id,
                reconciliation_runs.c.outcome == QUEUED,
            )
        ).scalar()
        run_id = waiting
        if run_id is None:
            start = now - timedelta(seconds=seconds)
            run_id = conn.execute(
                reconciliation_runs.insert()
                .values(
                    tenant_id=scope.tenant_id,
                    connection_id=row.id,
                    kind="manual",
                    window_start=start,
                    window_end=now,
                    started_at=now,
                    outcome=QUEUED,
                    findings=[],
                )
                .returning(reconciliation_runs.c.id)
            ).scalar_one()
            record_action(
                actor,
                "audit.run",
                OBJECT,
                run_id,
                f"Asked for an audit of {row.name} ({start:%Y-%m-%d %H:%M} → {now:%Y-%m-%d %H:%M} UTC).",
                detail={"connection_id": row.id, "connection": row.name, "window": window},
                conn=conn,
            )
        found = conn.execute(_query(scope).where(reconciliation_runs.c.id == run_id)).one()
    return _summary(found)


def run_queued_audits(scope: Scope) -> list[ReconcileReport]:
    """Run the tenant's queued audits, oldest first (the housekeeper calls this on every pass). One
    whose channel is being audited already waits for the next pass; one that cannot run any more
    (its connection was removed or changed kind) is stored as failed, saying why."""
    with scope.read() as conn:
        queued = conn.execute(
            select(
                reconciliation_runs.c.id,
                reconciliation_runs.c.connection_id,
                reconciliation_runs.c.window_start,
                reconciliation_runs.c.window_end,
            )
            .where(reconciliation_runs.c.tenant_id == scope.tenant_id, reconciliation_runs.c.outcome == QUEUED)
            .order_by(reconciliation_runs.c.id)
        ).all()
    done: list[ReconcileReport] = []
    for q in queued:
        try:
            done.append(
                reconcile(
                    scope, int(q.connection_id), since=q.window_start, until=q.window_end, kind="manual", run_id=q.id
                )
            )
        except LeaseBusy:
            continue  # the channel's audit is running: this one waits for the next pass
        except Conflict:
            continue  # another worker claimed it
        except InvalidInput as exc:  # before it started: unknown connection, not auditable, empty window
            _fail_queued(scope, int(q.id), exc)
    return done


def _fail_queued(scope: Scope, run_id: int, exc: OrderBridgeError) -> None:
    with scope.transaction() as conn:
        conn.execute(
            update(reconciliation_runs)
            .where(reconciliation_runs.c.id == run_id, reconciliation_runs.c.outcome == QUEUED)
            .values(outcome=FAILED, finished_at=scope.now(), error=str(exc))
        )


__all__ = [
    "CAUSES",
    "OUTCOMES",
    "WINDOWS",
    "AuditPage",
    "AuditReport",
    "AuditSummary",
    "AuditableChannel",
    "AuditsScreen",
    "Finding",
    "auditable_channels",
    "audits_screen",
    "get_audit",
    "latest_audits",
    "list_audits",
    "request_audit",
    "run_queued_audits",
]
