"""The task functions: what a job does, whichever engine runs it (decision 225).

Both engines run exactly these functions — the embedded runtime (``runtime.worker``, threads in
``orderbridge serve``) and procrastinate workers (``runtime.engine``, ``orderbridge worker``). A job
is named by its :class:`JobKind` and needs nothing but ``(tenant_id, connection_id)`` (and, for a
Sync now request, its ``run_id``) to run anywhere: the database is the source of truth, and each
function is an idempotent nudge over it — a sync pulls from the committed cursor, a post sends what
is ``ready`` under idempotency keys the destination upserts on, a push first reads the channel. A
re-run after a side effect (a retried stalled job) therefore does nothing twice.

What differs between the engines is only *who decides that a job runs now*: the embedded scheduler
loops over every connection; procrastinate runs the jobs deferred by state changes
(services/nudges.py) and by its periodic dispatcher, one at a time per connection (the job's
``lock``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from orderbridge.connectors.base import Capability, Role
from orderbridge.services.backsync import poll_shipments, push_fulfilments
from orderbridge.services.deliveries import watch_deliveries
from orderbridge.services.hub import Hub
from orderbridge.services.posting import PostReport, post_ready
from orderbridge.services.scope import Scope
from orderbridge.services.sync import sync_channel
from orderbridge.services.sync_now import QueuedSync, run_requested
from orderbridge.services.webhooks import ingest_queued

log = structlog.get_logger("orderbridge.tasks")


@dataclass(frozen=True, slots=True)
class JobKind:
    """One kind of per-connection job: the connections it runs on (``role`` whose kind declares
    ``capability``: decision 71), the function, and the procrastinate queue it goes to."""

    name: str
    role: Role
    capability: Capability
    run: Callable[[Scope, int], Any]
    queue: str

    def lock(self, connection_id: int) -> str:
        """The procrastinate ``lock`` (one such job per connection at a time) and ``queueing_lock``
        (one pending) of this kind's job for a connection: the same string."""
        return f"{self.name}:{connection_id}"


def _post(scope: Scope, destination_id: int) -> PostReport:
    """A post, unless the destination's ``post_schedule`` says it is not due (runtime/schedule.py);
    the last scheduled post is read from the ledger, so any worker decides alike."""
    from orderbridge.runtime.worker import post_due

    row = scope.load(destination_id)
    if not post_due(scope, row, {}, scope.now()):
        return PostReport(row.name)
    return post_ready(scope, destination_id)


#: the per-connection jobs, by name (the engines' shared vocabulary)
SYNC = JobKind("sync", Role.CHANNEL, Capability.LIST_CHANGED, sync_channel, "syncs")
POST = JobKind("post", Role.DESTINATION, Capability.POST_ORDERS, _post, "posts")
SHIPMENTS = JobKind("shipments", Role.DESTINATION, Capability.LIST_SHIPMENTS, poll_shipments, "posts")
PUSH = JobKind("push", Role.CHANNEL, Capability.PUSH_FULFILMENT, push_fulfilments, "posts")
DELIVERIES = JobKind("deliveries", Role.DESTINATION, Capability.WATCH_DELIVERIES, watch_deliveries, "posts")
#: a channel's queued webhook deliveries, ingested as one batch (decision 241); deferred by the
#: receiver with the deliveries, and by the backsync sweep for deliveries whose job did not run
INGEST = JobKind("ingest", Role.CHANNEL, Capability.WEBHOOKS, ingest_queued, "posts")
KINDS: dict[str, JobKind] = {k.name: k for k in (SYNC, POST, SHIPMENTS, PUSH, DELIVERIES, INGEST)}

#: the queues an ``orderbridge worker`` serves unless told otherwise
QUEUES = ("syncs", "posts", "housekeeping")


def run_job(hub: Hub, kind: str, tenant_id: int, connection_id: int) -> dict[str, Any]:
    """Run one per-connection job in its tenant's scope; its report as a dict."""
    scope = Scope.of(hub, tenant_id)
    report = KINDS[kind].run(scope, connection_id)
    return dict(report.as_dict())


def run_sync_now(hub: Hub, tenant_id: int, connection_id: int, run_id: int) -> str | None:
    """Run a Sync now request (its ``sync_runs`` row ends final whatever happens)."""
    progress = run_requested(hub, QueuedSync(tenant_id, connection_id, run_id))
    return None if progress is None else progress.outcome


def housekeeping(hub: Hub, tenant_id: int, *, check_webhooks: bool = False) -> list[str]:
    """One tenant's audits, hold alerts, digest, alert dispatch, tallies (and the webhook check):
    the jobs that crashed, by name."""
    from orderbridge.runtime.worker import CycleReport
    from orderbridge.runtime.worker import housekeeping as run

    report = CycleReport()
    run(Scope.of(hub, tenant_id), report, check_webhooks=check_webhooks)
    return report.crashed


def last_sync_started(scope: Scope) -> dict[int, datetime]:
    """Each channel's newest sync start (any run: scheduled, webhook-driven, Sync now, CLI)."""
    from sqlalchemy import func, select

    from orderbridge.storage.tables import sync_runs

    with scope.read() as conn:
        rows = conn.execute(
            select(sync_runs.c.connection_id, func.max(sync_runs.c.started_at))
            .where(sync_runs.c.tenant_id == scope.tenant_id, sync_runs.c.kind == "orders")
            .group_by(sync_runs.c.connection_id)
        ).all()
    out: dict[int, datetime] = {}
    for cid, started in rows:
        if started is not None:
            out[int(cid)] = started if started.tzinfo is not None else started.replace(tzinfo=scope.now().tzinfo)
    return out
