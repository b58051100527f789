"""Sync now: a person asks for a channel's sync at once; the ledger carries the request and its progress.

A request is a ``sync_runs`` row in state ``queued`` (decision 115), written by
:func:`request_sync` in the web process, with the person's action in the audit trail. Whoever runs
syncs then takes the row over — :func:`orderbridge.services.sync.sync_channel` with its
``run_id`` turns it ``running`` under the connection's lease and writes its figures into it after
every committed batch, then ``ok`` or ``failed``. The page that shows the progress polls that row
(:func:`sync_progress`) and nothing else, so it reads the same whichever process runs the sync:

- in ``orderbridge serve`` (one process), the web app hands the request to a
  :class:`SyncRunner` — ``runtime.sync_now.ThreadSyncRunner``, a small thread pool — which starts
  it within milliseconds, beside the scheduler's own jobs;
- on the procrastinate engine (docs/scaling.md), the runner defers a job carrying ``(tenant_id,
  connection_id, run_id)`` (:class:`QueuedSync`) that calls :func:`run_requested`; and a request
  nobody took within :data:`GRACE_S` (:func:`queued_syncs`) is run by the embedded worker loop, or
  deferred again by procrastinate's periodic dispatcher, so a request is never lost with the
  process that received it.

Taking the row over is one conditional UPDATE (``queued`` → ``running``), so two runners never run
one request; the lease keeps a requested sync and a scheduled one from running at once. A second
request while one is queued or running is not queued again: it is answered with the run in
progress (``already_running``), whoever started it — the scheduler, the CLI or another person.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import structlog
from sqlalchemy import Connection, insert, select, update

from orderbridge.connectors.base import Capability, Role
from orderbridge.errors import InvalidInput, NotFound, OrderBridgeError
from orderbridge.services.audit_trail import record_action
from orderbridge.services.hub import Hub
from orderbridge.services.principals import Actor
from orderbridge.services.scope import Scope
from orderbridge.services.sync import RunTaken, lease_name, sync_channel
from orderbridge.storage.leases import LeaseBusy
from orderbridge.storage.tables import connections, leases, sync_runs

log = structlog.get_logger("orderbridge.sync_now")

#: how long a request waits for the runner it was handed to before a worker loop runs it itself
GRACE_S = 5.0
#: the states of a run that is not over
ACTIVE = ("queued", "running")


@dataclass(frozen=True)
class QueuedSync:
    """Everything a worker needs to run a request elsewhere (a job's arguments)."""

    tenant_id: int
    connection_id: int
    run_id: int


class SyncRunner(Protocol):
    """Starts a queued request: in a thread of this process, or as a job for a worker."""

    def submit(self, request: QueuedSync) -> None: ...


@dataclass(frozen=True)
class SyncProgress:
    """One run of a channel's sync as the ledger has it, with its figures so far."""

    run_id: int
    connection_id: int
    #: queued | running | ok | failed | interrupted | skipped
    outcome: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    error: str | None

    @property
    def active(self) -> bool:
        return self.outcome in ACTIVE

    def count(self, name: str) -> int:
        value = self.counts.get(name, 0)
        return int(value) if isinstance(value, int | float) else 0

    @property
    def duration_s(self) -> float | None:
        return None if self.finished_at is None else (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class SyncRequest:
    run: SyncProgress
    #: a run was queued or running already: this request started nothing
    already_running: bool


def _progress(row: Any) -> SyncProgress:
    return SyncProgress(
        int(row.id),
        int(row.connection_id),
        str(row.outcome),
        row.started_at,
        row.finished_at,
        dict(row.counts or {}),
        row.error,
    )


def _syncable(scope: Scope, conn: Connection, connection_id: int) -> Any:
    row = scope.connection(conn, connection_id)
    if row.role is not Role.CHANNEL or not row.can(Capability.LIST_CHANGED):
        raise InvalidInput(
            f"{row.name!r} is a {row.role} connection: Sync now pulls orders from a channel",
            hint="A destination's orders are posted as soon as they are ready; its jobs' health is on its page.",
        )
    return row


def request_sync(scope: Scope, connection_id: int, runner: SyncRunner | None, *, by: Actor) -> SyncRequest:
    """Queue a sync of the tenant's channel ``connection_id`` and hand it to ``runner`` (None: a
    worker loop takes it after :data:`GRACE_S`), unless one is queued or running already."""
    now = scope.now()
    with scope.transaction() as conn:
        row = _syncable(scope, conn, connection_id)
        # serialise requests for one connection (PostgreSQL: its row's lock; SQLite writes are serial)
        conn.execute(select(connections.c.id).where(connections.c.id == row.id).with_for_update())
        current = _active_run(scope, conn, row.id, now)
        if current is not None:
            return SyncRequest(current, already_running=True)
        inserted = conn.execute(
            insert(sync_runs).values(
                tenant_id=scope.tenant_id,
                connection_id=row.id,
                kind="orders",
                started_at=now,
                outcome="queued",
                counts={},
            )
        ).inserted_primary_key
        assert inserted is not None
        run_id = int(inserted[0])
        record_action(
            by,
            "connection.sync_now",
            "connection",
            row.id,
            f"asked for a sync of {row.name} now",
            {"run_id": run_id},
            conn=conn,
        )
        queued = _progress(conn.execute(select(sync_runs).where(sync_runs.c.id == run_id)).one())
    if runner is not None:
        runner.submit(QueuedSync(scope.tenant_id, row.id, run_id))
    return SyncRequest(queued, already_running=False)


def _active_run(scope: Scope, conn: Connection, connection_id: int, now: datetime) -> SyncProgress | None:
    """The run of this connection in progress, if any: a request queued within the lease's TTL, or
    a sync holding the connection's lease (the scheduler's, the CLI's, another person's)."""
    fresh = now - timedelta(seconds=scope.settings.lease_ttl_s)
    queued = conn.execute(
        select(sync_runs)
        .where(
            sync_runs.c.tenant_id == scope.tenant_id,
            sync_runs.c.connection_id == connection_id,
            sync_runs.c.kind == "orders",
            sync_runs.c.outcome == "queued",
            sync_runs.c.started_at >= fresh,
        )
        .order_by(sync_runs.c.id.desc())
        .limit(1)
    ).one_or_none()
    if queued is not None:
        return _progress(queued)
    held = conn.execute(
        select(leases.c.expires_at).where(leases.c.name == lease_name(connection_id), leases.c.expires_at > now)
    ).first()
    if held is None:
        return None
    running = conn.execute(
        select(sync_runs)
        .where(
            sync_runs.c.tenant_id == scope.tenant_id,
            sync_runs.c.connection_id == connection_id,
            sync_runs.c.kind == "orders",
            sync_runs.c.outcome == "running",
        )
        .order_by(sync_runs.c.id.desc())
        .limit(1)
    ).one_or_none()
    if running is not None:
        return _progress(running)
    # the lease is taken and its run not yet written (a sync starting): show it as starting
    return SyncProgress(0, connection_id, "running", now, None, {}, None)


def sync_progress(scope: Scope, connection_id: int, run_id: int | None = None) -> SyncProgress | None:
    """Run ``run_id`` of the tenant's connection (NotFound for another connection's), or its latest
    sync run whoever started it; None when it never synced."""
    with scope.read() as conn:
        scope.connection(conn, connection_id)
        q = select(sync_runs).where(
            sync_runs.c.tenant_id == scope.tenant_id,
            sync_runs.c.connection_id == connection_id,
            sync_runs.c.kind == "orders",
        )
        if run_id is not None:
            found = conn.execute(q.where(sync_runs.c.id == run_id)).one_or_none()
            if found is None:
                raise NotFound(f"no sync run {run_id} of connection {connection_id}")
            return _progress(found)
        latest = conn.execute(q.order_by(sync_runs.c.id.desc()).limit(1)).one_or_none()
        if latest is not None and latest.outcome in ACTIVE:
            return _progress(latest)
        active = _active_run(scope, conn, connection_id, scope.now())
        if active is not None:
            return active
        return None if latest is None else _progress(latest)


def recent_runs(scope: Scope, connection_id: int, limit: int = 10) -> list[SyncProgress]:
    """The connection's latest sync runs, newest first (the "last sync" figures)."""
    with scope.read() as conn:
        scope.connection(conn, connection_id)
        rows = conn.execute(
            select(sync_runs)
            .where(
                sync_runs.c.tenant_id == scope.tenant_id,
                sync_runs.c.connection_id == connection_id,
                sync_runs.c.kind == "orders",
            )
            .order_by(sync_runs.c.id.desc())
            .limit(max(1, min(limit, 100)))
        ).all()
    return [_progress(r) for r in rows]


def run_requested(hub: Hub, request: QueuedSync, *, wake: Callable[[], None] | None = None) -> SyncProgress | None:
    """Run one queued request to its end (what a runner's thread or a worker's job calls). Whatever
    happens, the request's row ends in a final state — never ``queued`` for ever."""
    try:
        scope = Scope.of(hub, request.tenant_id)
    except NotFound:
        return None
    try:
        report = sync_channel(scope, request.connection_id, run_id=request.run_id)
    except RunTaken:  # another worker has it: its progress is in the same row
        return None
    except LeaseBusy:
        _settle(scope, request, "skipped", "another sync of this connection was running; its figures are its own run's")
    except OrderBridgeError as exc:  # refused before the sync started (the connection's settings)
        _settle(scope, request, "failed", str(exc))
    except Exception as exc:  # a bug: logged with its traceback, and the request is not left queued
        log.exception("sync_now.crashed", **scope.log_fields(), run_id=request.run_id)
        _settle(scope, request, "failed", f"internal error ({type(exc).__name__}); see the hub's log")
    else:
        if wake is not None and (report.counts.inserted or report.counts.changed):
            wake()  # new orders: the poster looks now
    with scope.read() as conn:
        found = conn.execute(select(sync_runs).where(sync_runs.c.id == request.run_id)).one_or_none()
    return None if found is None else _progress(found)


def _settle(scope: Scope, request: QueuedSync, outcome: str, error: str) -> None:
    with scope.transaction() as conn:
        conn.execute(
            update(sync_runs)
            .where(sync_runs.c.id == request.run_id, sync_runs.c.outcome == "queued")
            .values(outcome=outcome, finished_at=scope.now(), error=error)
        )


def queued_syncs(scope: Scope, *, older_than_s: float = GRACE_S) -> list[QueuedSync]:
    """The tenant's requests no runner has taken within ``older_than_s`` (for a worker loop)."""
    cutoff = scope.now() - timedelta(seconds=older_than_s)
    with scope.read() as conn:
        rows = conn.execute(
            select(sync_runs.c.id, sync_runs.c.connection_id)
            .where(
                sync_runs.c.tenant_id == scope.tenant_id,
                sync_runs.c.kind == "orders",
                sync_runs.c.outcome == "queued",
                sync_runs.c.started_at <= cutoff,
            )
            .order_by(sync_runs.c.id)
        ).all()
    return [QueuedSync(scope.tenant_id, int(r.connection_id), int(r.id)) for r in rows]
