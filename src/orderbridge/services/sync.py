"""Channel sync: poll the channel from the cursor (minus the overlap window) into the ledger.

Runs under the connection's lease (one sync per connection across processes). Each batch is
committed with its cursor; an error after some batches keeps those batches and that cursor, marks
the connection (``failing`` for refused credentials, ``degraded`` for transient trouble) and
re-raises nothing to the scheduler — the next run resumes from the last committed cursor, so an
expired token loses nothing: once it is fixed, the next sync catches up.

After the listing, each sync asks the channel again about the orders whose tie on ``updated_at``
it could not settle before (pending re-reads, decision 37).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import insert, update

from orderbridge.connectors.base import Role, VersionedApi
from orderbridge.errors import InvalidInput, OrderBridgeError
from orderbridge.seams import crashpoint
from orderbridge.services.health import record_api_version, record_failure, record_success
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.ingest import (
    ChannelContext,
    IngestCounts,
    commit_batch,
    settle_pending,
    settle_ties,
)
from orderbridge.services.ledger import destination_policy, download_rules
from orderbridge.services.scope import Scope
from orderbridge.storage.leases import held
from orderbridge.storage.repos.cursors import read_cursor, since_with_overlap
from orderbridge.storage.tables import sync_runs

log = structlog.get_logger("orderbridge.sync")


@dataclass
class SyncReport:
    connection: str
    counts: IngestCounts = field(default_factory=IngestCounts)
    batches: int = 0
    cost: int = 0
    error: OrderBridgeError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "batches": self.batches,
            "cost": self.cost,
            **self.counts.as_dict(),
            "error": None if self.error is None else {"code": self.error.code, "message": str(self.error)},
        }


class RunTaken(InvalidInput):
    """The queued run was taken over (or settled) by another worker before this one could: nothing
    to do here — that worker reports its progress into the same row."""

    code = "sync_run_taken"

    def __init__(self, run_id: int) -> None:
        super().__init__(f"sync run {run_id} is no longer queued: another worker took it")
        self.run_id = run_id


def channel_context(scope: Scope, row: ConnectionRow) -> ChannelContext:
    rules = download_rules(row)
    with scope.db.read() as conn:
        policies = [destination_policy(conn, d) for d in scope.connections(conn, Role.DESTINATION)]
    return ChannelContext(row, rules, policies)


def lease_name(channel_id: int) -> str:
    """The lease a channel's sync runs under (one sync per connection, across processes)."""
    return f"sync:{channel_id}"


def sync_channel(
    scope: Scope,
    channel_id: int,
    *,
    progress: Callable[[SyncReport], None] | None = None,
    full: bool = False,
    run_id: int | None = None,
) -> SyncReport:
    """Pull the tenant's channel ``channel_id`` from its cursor into the ledger.

    The run is one ``sync_runs`` row whose figures are written with every committed batch, so a
    page (Sync now's progress) reads how far it is from the ledger alone. ``run_id`` names a row
    already ``queued`` by :func:`orderbridge.services.sync_now.request_sync`: the run takes that one
    over instead of inserting its own (:data:`RunTaken` when another worker took it first). Rows left
    ``running`` by a process that died are marked ``interrupted`` once this run holds the lease —
    nothing else can be running then."""
    row = scope.load(channel_id)
    if row.role is not Role.CHANNEL:
        raise InvalidInput(f"{row.name!r} is a {row.role} connection; sync pulls orders from channels")
    report = SyncReport(row.name)
    bound = log.bind(**scope.log_fields(row))
    with held(scope.db, lease_name(row.id), scope.settings.lease_ttl_s, scope.now) as lease:
        ctx = channel_context(scope, row)
        connector = scope.channel(row)
        with scope.db.transaction() as conn:
            cursor = None if full else read_cursor(conn, row.id)
            conn.execute(
                update(sync_runs)
                .where(
                    sync_runs.c.connection_id == row.id,
                    sync_runs.c.kind == "orders",
                    sync_runs.c.outcome == "running",
                )
                .values(outcome="interrupted", finished_at=scope.now(), error="the process running it stopped")
            )
            if run_id is None:
                inserted = conn.execute(
                    insert(sync_runs).values(
                        tenant_id=scope.tenant_id,
                        connection_id=row.id,
                        kind="orders",
                        started_at=scope.now(),
                        outcome="running",
                        counts={},
                    )
                ).inserted_primary_key
                assert inserted is not None
                run_id = int(inserted[0])
            else:
                taken = conn.execute(
                    update(sync_runs)
                    .where(
                        sync_runs.c.id == run_id,
                        sync_runs.c.connection_id == row.id,
                        sync_runs.c.outcome == "queued",
                    )
                    .values(outcome="running", started_at=scope.now())
                ).rowcount
                if not taken:
                    raise RunTaken(run_id)
        since = since_with_overlap(cursor, scope.settings.cursor_overlap_s)
        bound.info("sync.start", since=since.isoformat() if since else None)
        try:
            for batch in connector.list_changed(since):
                crashpoint("sync.after_fetch")
                now = scope.now()
                with scope.db.transaction() as conn:
                    counts = commit_batch(conn, scope.tenant_id, ctx, batch, now)
                    lease.renew(conn)  # the batch commits only while this sync still holds the lease
                    if counts.inserted or counts.changed:  # their post jobs commit with them
                        scope.hub.nudges.orders_ready(conn, scope.tenant_id)
                    so_far = IngestCounts()
                    so_far.add(report.counts)
                    so_far.add(counts)
                    # the run's figures so far, with the batch they count (what Sync now shows)
                    conn.execute(
                        update(sync_runs)
                        .where(sync_runs.c.id == run_id)
                        .values(counts={**so_far.as_dict(), "batches": report.batches + 1})
                    )
                    crashpoint("sync.before_commit")
                crashpoint("sync.after_commit")
                if counts.tied_ids:  # the batch is committed: now ask the channel which version is newer
                    counts.add(settle_ties(scope, ctx, connector, counts.tied_ids))
                report.counts.add(counts)
                report.batches += 1
                report.cost += batch.cost
                if progress is not None:
                    progress(report)
            # ties an earlier run could not settle: the order may never be listed again
            report.counts.add(settle_pending(scope, ctx, connector, asked=report.counts.tied_ids))
        except OrderBridgeError as exc:
            report.error = exc
            bound.warning("sync.failed", code=exc.code, error=str(exc))
            record_failure(scope, row, exc, job="sync")
        else:
            record_success(scope, row, job="sync")
            if isinstance(connector, VersionedApi):  # what the responses said about the API version
                record_api_version(scope, row, connector.api_version_notice())
            bound.info("sync.done", **report.counts.as_dict())
        finally:
            with scope.db.transaction() as conn:
                conn.execute(
                    update(sync_runs)
                    .where(sync_runs.c.id == run_id)
                    .values(
                        finished_at=scope.now(),
                        outcome="ok" if report.ok else "failed",
                        counts={**report.counts.as_dict(), "batches": report.batches},
                        error=None if report.ok else str(report.error),
                    )
                )
    return report
