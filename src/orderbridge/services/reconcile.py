"""Reconciliation audits: completeness as a measured fact, per channel and time window.

An audit lists the channel's order ids and update times for a window — the cheapest listing the
API offers (:meth:`AuditableChannel.list_order_stamps`: ids and timestamps only) — compares them
with the ledger, fetches and ingests every order that is missing or older in the ledger than in
the channel, and stores a report: "N in the channel, N in the ledger, M recovered, 0 missing",
with the API requests and cost it took and, for each recovered order, why it had been missed.

A recovered order is never a quiet fix: it gets a ``recovered`` event on its timeline naming the
audit and the cause, the report lists it, and an alert is raised (one per audit with findings).

Why an order was missed, first match wins:

- ``no_webhook``: the connection receives webhooks, and none arrived for this version;
- ``sync_error``: a poll that should have fetched it failed (the connection was unhealthy);
- ``cursor_gap``: the poll cursor had passed the order's update time, yet it is not in the ledger
  (an order that became visible late, a clock skew wider than the overlap window);
- ``not_polled_yet``: the cursor has not reached it — the next poll would have fetched it;
- ``never_synced``: the connection has never completed a poll.

The audit takes its own lease (``reconcile:<connection>``), not the sync lease: ingesting is
idempotent, so an audit and a poll can overlap safely, and a long 60-day audit never delays polls.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import Connection, and_, func, insert, select, update

from orderbridge.connectors.base import AuditableChannel, Capability, ChannelRecord, OrderStamp, Role
from orderbridge.domain.events import EventKind
from orderbridge.errors import Conflict, FixConfiguration, InvalidInput, OrderBridgeError
from orderbridge.fixes import check_connection, register_webhooks, run_audit, show_audit
from orderbridge.services import notify
from orderbridge.services.health import record_failure, record_success
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.ingest import ChannelContext, ingest_records, settle_ties
from orderbridge.services.ledger import add_events, event_row
from orderbridge.services.scope import Scope
from orderbridge.services.sync import channel_context
from orderbridge.storage.leases import held
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.repos.cursors import read_cursor
from orderbridge.storage.tables import orders, reconciliation_runs, sync_runs, webhook_deliveries

log = structlog.get_logger("orderbridge.reconcile")

INGEST_CHUNK = 200
LOOKUP_CHUNK = 500
#: a running audit stores its figures so far at most this often (its report's page shows them)
PROGRESS_EVERY_S = 2.0
#: a report's outcome: ``queued`` (asked for, not started: ``services/audits.py``), ``running``, ``ok``, ``failed``
QUEUED, RUNNING, OK, FAILED = "queued", "running", "ok", "failed"

CAUSES = {
    "no_webhook": "no webhook arrived for it",
    "sync_error": "the polls that should have fetched it failed",
    "cursor_gap": "the poll cursor had already passed it (it became visible late)",
    "not_polled_yet": "the next poll had not run yet",
    "never_synced": "the connection had never completed a poll",
}


@dataclass
class ReconcileReport:
    connection: str
    kind: str
    window_start: datetime
    window_end: datetime
    run_id: int = 0
    channel_count: int = 0
    ledger_count: int = 0
    recovered: int = 0
    refreshed: int = 0
    missing: int = 0
    api_requests: int = 0
    api_cost: int = 0
    seconds: float = 0.0
    findings: list[dict[str, Any]] = field(default_factory=list)
    error: OrderBridgeError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def summary(self) -> str:
        return (
            f"{self.channel_count} in the channel, {self.ledger_count} in the ledger, "
            f"{self.recovered + self.refreshed} recovered, {self.missing} missing"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "kind": self.kind,
            "run_id": self.run_id,
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "channel_count": self.channel_count,
            "ledger_count": self.ledger_count,
            "recovered": self.recovered,
            "refreshed": self.refreshed,
            "missing": self.missing,
            "api_requests": self.api_requests,
            "api_cost": self.api_cost,
            "seconds": round(self.seconds, 3),
            "summary": self.summary,
            "findings": self.findings,
            "error": None if self.error is None else {"code": self.error.code, "message": str(self.error)},
        }


def reconcile(
    scope: Scope,
    channel_id: int,
    *,
    since: datetime,
    until: datetime | None = None,
    kind: str = "manual",
    progress: Callable[[ReconcileReport], None] | None = None,
    run_id: int | None = None,
) -> ReconcileReport:
    """Audit the tenant's channel ``channel_id`` for orders updated in ``[since, until]`` (until
    defaults to now). With ``run_id``, run the audit queued as that report (``services/audits.py``:
    "Run audit now"); :class:`Conflict` when it is not queued any more (another worker took it)."""
    row = scope.load(channel_id)
    name = row.name
    if row.role is not Role.CHANNEL:
        raise InvalidInput(f"{name!r} is a {row.role} connection; audits compare a channel with the ledger")
    if not row.can(Capability.LIST_ORDER_STAMPS):
        raise InvalidInput(f"{row.kind} connections cannot list order ids cheaply, so they cannot be audited yet")
    auditable = cast(AuditableChannel, scope.channel(row))
    until = until or scope.now()
    if since >= until:
        raise InvalidInput(f"the audit window is empty: {since.isoformat()} is not before {until.isoformat()}")
    report = ReconcileReport(name, kind, since, until)
    bound = log.bind(tenant_id=scope.tenant_id, connection_id=row.id, connection=name, kind=kind)
    started = time.perf_counter()
    with held(scope.db, f"reconcile:{row.id}", scope.settings.lease_ttl_s, scope.now) as lease:
        report.run_id = _start(scope, row, report, run_id)
        try:
            stamps: dict[str, OrderStamp] = {}
            shown = time.monotonic()
            for batch in auditable.list_order_stamps(since, until):
                for s in batch.stamps:
                    stamps[s.external_id] = s
                report.api_requests += batch.requests
                report.api_cost += batch.cost
                lease.renew()
                if time.monotonic() - shown >= PROGRESS_EVERY_S:  # what the report's page shows meanwhile
                    report.channel_count = len(stamps)
                    _progress(scope, report)
                    shown = time.monotonic()
            report.channel_count = len(stamps)
            behind = _behind(scope, row, stamps, since)
            if behind:
                _recover(scope, row, auditable, stamps, behind, report, lease.renew)
            report.ledger_count = report.channel_count - len(_behind(scope, row, stamps, since))
            report.missing = report.channel_count - report.ledger_count
        except OrderBridgeError as exc:
            report.error = exc
            bound.warning("reconcile.failed", code=exc.code, error=str(exc))
        except Exception as exc:  # a bug: the run is stored as failed and alerted, then re-raised
            report.error = OrderBridgeError(f"the audit crashed: {exc!r}", code="audit_crashed")
            report.seconds = time.perf_counter() - started
            _finish(scope, row, report)
            raise
        report.seconds = time.perf_counter() - started
        _finish(scope, row, report)
    scope.observer.reconciled(scope.slug, name, report.recovered + report.refreshed, report.missing)
    bound.info("reconcile.done", summary=report.summary, requests=report.api_requests, seconds=report.seconds)
    if progress is not None:
        progress(report)
    return report


def _start(scope: Scope, row: ConnectionRow, report: ReconcileReport, run_id: int | None) -> int:
    """The report's row: a new one, ``running``, or the queued ``run_id`` claimed (one worker wins)."""
    now = scope.now()
    with scope.db.transaction() as conn:
        if run_id is None:
            return int(
                conn.execute(
                    insert(reconciliation_runs)
                    .values(
                        tenant_id=scope.tenant_id,
                        connection_id=row.id,
                        kind=report.kind,
                        window_start=report.window_start,
                        window_end=report.window_end,
                        started_at=now,
                        outcome=RUNNING,
                        findings=[],
                    )
                    .returning(reconciliation_runs.c.id)
                ).scalar_one()
            )
        claimed = conn.execute(
            update(reconciliation_runs)
            .where(
                reconciliation_runs.c.id == run_id,
                reconciliation_runs.c.tenant_id == scope.tenant_id,
                reconciliation_runs.c.connection_id == row.id,
                reconciliation_runs.c.outcome == QUEUED,
            )
            .values(outcome=RUNNING, started_at=now)
        ).rowcount
    if not claimed:
        raise Conflict(f"audit #{run_id} of {row.name} is not queued any more", hint="Another worker runs it.")
    return run_id


def _progress(scope: Scope, report: ReconcileReport) -> None:
    """Store the figures so far on the running report (its page refreshes from them)."""
    with scope.db.transaction() as conn:
        conn.execute(
            update(reconciliation_runs)
            .where(reconciliation_runs.c.id == report.run_id, reconciliation_runs.c.outcome == RUNNING)
            .values(
                channel_count=report.channel_count,
                recovered=report.recovered,
                refreshed=report.refreshed,
                api_requests=report.api_requests,
                api_cost=report.api_cost,
            )
        )


def _behind(scope: Scope, row: ConnectionRow, stamps: dict[str, OrderStamp], since: datetime) -> dict[str, str]:
    """Channel ids the ledger lacks (``missing``) or has an older version of (``stale``)."""
    have: dict[str, datetime | None] = {}
    with scope.db.read() as conn:
        for ext, updated in conn.execute(
            select(orders.c.external_id, orders.c.channel_updated_at).where(
                orders.c.connection_id == row.id, orders.c.channel_updated_at >= since - timedelta(seconds=1)
            )
        ):
            have[ext] = updated
        have.update(order_repo.channel_updated(conn, row.id, [ext for ext in stamps if ext not in have]))
    out: dict[str, str] = {}
    for ext, stamp in stamps.items():
        if ext not in have:
            out[ext] = "missing"
        else:
            mine = have[ext]
            if mine is not None and mine.replace(microsecond=0) < stamp.updated_at.replace(microsecond=0):
                out[ext] = "stale"
    return out


def _recover(
    scope: Scope,
    row: ConnectionRow,
    connector: AuditableChannel,
    stamps: dict[str, OrderStamp],
    behind: dict[str, str],
    report: ReconcileReport,
    renew: Callable[[], None],
) -> None:
    ctx = channel_context(scope, row)
    causes = _causes(scope, row, [stamps[e] for e in behind])
    ids = sorted(behind, key=lambda e: (stamps[e].updated_at, e))
    for chunk in _chunks(ids, INGEST_CHUNK):
        records: list[ChannelRecord] = []
        for ext in chunk:
            spent = connector.api_cost_spent()
            try:
                records.append(connector.fetch_order(ext))
            except OrderBridgeError as exc:
                if exc.code not in ("not_found",):
                    raise
                report.findings.append(_finding(stamps[ext], behind[ext], causes[ext], "gone", str(exc)))
            finally:
                report.api_requests += 1
                report.api_cost += connector.api_cost_spent() - spent
        _ingest(scope, row, ctx, connector, records, stamps, behind, causes, report)
        renew()
        _progress(scope, report)


def _ingest(
    scope: Scope,
    row: ConnectionRow,
    ctx: ChannelContext,
    connector: AuditableChannel,
    records: list[ChannelRecord],
    stamps: dict[str, OrderStamp],
    behind: dict[str, str],
    causes: dict[str, str],
    report: ReconcileReport,
) -> None:
    now = scope.now()
    with scope.db.transaction() as conn:
        counts = ingest_records(conn, scope.tenant_id, ctx, records, now)
        exts = [r.external_id for r in records]
        ids = order_repo.ids_by_external(conn, row.id, exts)
        rows = []
        for r in records:
            ext = r.external_id
            what = behind[ext]
            if what == "missing":
                report.recovered += 1
            else:
                report.refreshed += 1
            action = "recovered" if what == "missing" else "refreshed"
            report.findings.append(_finding(stamps[ext], what, causes[ext], action))
            rows.append(
                event_row(
                    scope.tenant_id,
                    ids.get(ext),
                    EventKind.RECOVERED,
                    now,
                    f"{action} by the {report.kind} audit #{report.run_id} of {row.name}: "
                    f"{'it was not in the ledger' if what == 'missing' else 'the ledger had an older version'}"
                    f" because {CAUSES[causes[ext]]}",
                    audit=report.run_id,
                    cause=causes[ext],
                )
            )
        add_events(conn, rows)
    if counts.tied_ids:  # a poll or webhook wrote another same-second version since the fetch: ask again
        spent = connector.api_cost_spent()
        settle_ties(scope, ctx, connector, counts.tied_ids)
        report.api_requests += len(counts.tied_ids)  # one re-read each, on the audit's bill
        report.api_cost += connector.api_cost_spent() - spent


def _finding(stamp: OrderStamp, what: str, cause: str, action: str, error: str = "") -> dict[str, Any]:
    found = {
        "external_id": stamp.external_id,
        "number": stamp.number,
        "updated_at": stamp.updated_at.isoformat(),
        "was": what,
        "cause": cause,
        "action": action,
    }
    if error:
        found["error"] = error
    return found


def _causes(scope: Scope, row: ConnectionRow, behind: list[OrderStamp]) -> dict[str, str]:
    with scope.db.read() as conn:
        cursor = read_cursor(conn, row.id)
        uses_webhooks = conn.execute(
            select(func.count()).select_from(webhook_deliveries).where(webhook_deliveries.c.connection_id == row.id)
        ).scalar_one() > 0 or bool(row.settings.get("webhook_address"))
        delivered: set[str] = set()
        if uses_webhooks:
            for chunk in _chunks([s.external_id for s in behind], LOOKUP_CHUNK):
                delivered.update(
                    conn.execute(
                        select(webhook_deliveries.c.external_id).where(
                            webhook_deliveries.c.connection_id == row.id,
                            webhook_deliveries.c.external_id.in_(chunk),
                        )
                    ).scalars()
                )
        failures = [
            r.finished_at
            for r in conn.execute(
                select(sync_runs.c.finished_at).where(
                    and_(
                        sync_runs.c.connection_id == row.id,
                        sync_runs.c.kind == "orders",
                        sync_runs.c.outcome == "failed",
                    )
                )
            )
            if r.finished_at is not None
        ]
    out: dict[str, str] = {}
    for s in behind:
        if uses_webhooks and s.external_id not in delivered:
            out[s.external_id] = "no_webhook"
        elif any(f >= s.updated_at for f in failures):
            out[s.external_id] = "sync_error"
        elif cursor is None:
            out[s.external_id] = "never_synced"
        elif cursor >= s.updated_at:
            out[s.external_id] = "cursor_gap"
        else:
            out[s.external_id] = "not_polled_yet"
    return out


def _finish(scope: Scope, row: ConnectionRow, report: ReconcileReport) -> None:
    now = scope.now()
    with scope.db.transaction() as conn:
        conn.execute(
            update(reconciliation_runs)
            .where(reconciliation_runs.c.id == report.run_id)
            .values(
                finished_at=now,
                outcome=OK if report.ok else FAILED,
                channel_count=report.channel_count,
                ledger_count=report.ledger_count,
                recovered=report.recovered,
                refreshed=report.refreshed,
                missing=report.missing,
                api_requests=report.api_requests,
                api_cost=report.api_cost,
                findings=report.findings,
                error=None if report.ok else str(report.error),
            )
        )
        add_events(
            conn,
            [
                event_row(
                    scope.tenant_id,
                    None,
                    EventKind.AUDITED,
                    now,
                    f"{report.kind} audit #{report.run_id} of {row.name} "
                    f"({report.window_start:%Y-%m-%d %H:%M} → {report.window_end:%Y-%m-%d %H:%M} UTC): "
                    + (report.summary if report.ok else f"failed — {report.error}"),
                    connection_id=row.id,
                    audit=report.run_id,
                )
            ],
        )
        if report.missing or any(f["cause"] != "not_polled_yet" for f in report.findings):
            _alert(conn, scope, row, report, now)
        failed_key = f"reconcile_failed:{row.id}"
        if report.ok:
            notify.resolve_alert(conn, scope.tenant_id, failed_key, now)
            record_success(scope, row, conn, job="audit")
        elif isinstance(report.error, FixConfiguration):
            # refused credentials or settings: the connection is failing, and its one alert says so
            record_failure(scope, row, report.error, conn, job="audit")
        else:
            notify.raise_alert(
                conn,
                scope.tenant_id,
                key=failed_key,
                kind="reconciliation_failed",
                subject=f"Audit of {row.name} failed: {report.error.message if report.error else ''}"[:250],
                body=(
                    f"The {report.kind} audit #{report.run_id} of {row.name} could not finish: {report.error}\n"
                    "Until an audit succeeds, completeness for this window is not proven. Check the connection "
                    "and run the audit again."
                ),
                fixes=(show_audit(report.run_id), check_connection(row.name), run_audit(row.name)),
                now=now,
                connection_id=row.id,
            )


def _alert(conn: Connection, scope: Scope, row: ConnectionRow, report: ReconcileReport, now: datetime) -> None:
    by_cause: dict[str, int] = {}
    for f in report.findings:
        by_cause[f["cause"]] = by_cause.get(f["cause"], 0) + 1
    lines = [f"  {n} because {CAUSES.get(c, c)}" for c, n in sorted(by_cause.items(), key=lambda kv: -kv[1])]
    listed = ", ".join(f.get("number") or f["external_id"] for f in report.findings[:20])
    more = f" and {len(report.findings) - 20} more" if len(report.findings) > 20 else ""
    notify.raise_alert(
        conn,
        scope.tenant_id,
        key=f"reconcile:{report.run_id}",
        kind="reconciliation_finding",
        subject=f"Audit of {row.name} recovered {report.recovered + report.refreshed} order(s)"
        + (f", {report.missing} still missing" if report.missing else ""),
        body=(
            f"The {report.kind} audit #{report.run_id} of {row.name} "
            f"({report.window_start:%Y-%m-%d %H:%M} → {report.window_end:%Y-%m-%d %H:%M} UTC): {report.summary}.\n"
            "They were missed because:\n" + "\n".join(lines) + f"\nOrders: {listed}{more}.\n\n"
            "Recovered orders went through the normal pipeline; nothing is posted twice. A repeated cause "
            "points at the fix: no_webhook → check the channel's webhook subscription; sync_error → see the "
            "connection's health."
        ),
        # the report first (its page is where the e-mail links); the webhooks when they missed orders
        fixes=(show_audit(report.run_id), *((register_webhooks(row.name),) if "no_webhook" in by_cause else ())),
        now=now,
        connection_id=row.id,
        data={"run_id": report.run_id, "by_cause": by_cause, "missing": report.missing},
    )


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- scheduling -----------------------------------------------------------------------------------


def settled(scope: Scope, now: datetime | None = None) -> datetime:
    """The end of a scheduled audit's window: older than one poll interval plus the overlap, so an
    order changed since the last poll (or whose webhook is in flight) is not reported as missed."""
    now = now or scope.now()
    return now - timedelta(seconds=scope.settings.poll_interval_s + scope.settings.cursor_overlap_s)


def due_audits(scope: Scope, now: datetime | None = None) -> list[tuple[int, str, datetime]]:
    """(channel id, kind, since) for every audit of the tenant whose interval has elapsed since its
    last run."""
    now = now or scope.now()
    s = scope.settings
    plans = (
        ("hourly", s.reconcile_recent_every_s, s.reconcile_recent_window_s),
        ("daily", s.reconcile_full_every_s, s.reconcile_full_window_s),
    )
    due: list[tuple[int, str, datetime]] = []
    with scope.db.read() as conn:
        for row in scope.connections(conn, Role.CHANNEL):
            if not row.can(Capability.LIST_ORDER_STAMPS):  # audits run only where the kind declares them
                continue
            if read_cursor(conn, row.id) is None:
                continue  # nothing to audit before the first poll completes (the backfill is the audit)
            for kind, every, window in plans:
                last = conn.execute(
                    select(func.max(reconciliation_runs.c.started_at)).where(
                        reconciliation_runs.c.connection_id == row.id, reconciliation_runs.c.kind == kind
                    )
                ).scalar_one()
                if last is None or (now - last).total_seconds() >= every:
                    due.append((row.id, kind, now - timedelta(seconds=window)))
    return due


def run_due_audits(scope: Scope) -> list[ReconcileReport]:
    until = settled(scope)
    return [reconcile(scope, cid, since=since, until=until, kind=kind) for cid, kind, since in due_audits(scope)]


def list_reports(
    scope: Scope, channel_id: int | None = None, limit: int = 20, *, run_id: int | None = None
) -> list[dict[str, Any]]:
    """The tenant's stored audit reports, newest first (of one channel, or only the one numbered
    ``run_id``, when given)."""
    q = select(reconciliation_runs).where(reconciliation_runs.c.tenant_id == scope.tenant_id)
    if run_id is not None:
        q = q.where(reconciliation_runs.c.id == run_id)
    with scope.db.read() as conn:
        if channel_id is not None:
            q = q.where(reconciliation_runs.c.connection_id == scope.connection(conn, channel_id).id)
        rows = conn.execute(q.order_by(reconciliation_runs.c.id.desc()).limit(limit)).all()
    return [dict(r._mapping) for r in rows]
