"""Ties and pending re-reads: versions only the channel can order, settled by asking it.

A version with the ledger's own ``updated_at`` but other content (two edits within one second) is
settled by the channel, never by arrival order (``domain/versions.py``): after the batch commits,
the order is re-read and that version wins (:func:`settle_ties`). A re-read that fails leaves a
pending re-read, which every sync retries until the channel answers (:func:`settle_pending`,
decision 37).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import structlog
from sqlalchemy import Connection, delete, func, select, update

from orderbridge.connectors.base import ChannelConnector, ChannelRecord
from orderbridge.domain.events import EventKind
from orderbridge.errors import NotFound, OrderBridgeError
from orderbridge.services.ingest.context import ChannelContext, IngestCounts
from orderbridge.services.ingest.writer import ingest_records
from orderbridge.services.ledger import add_events, event_row
from orderbridge.services.scope import Scope
from orderbridge.storage.db import dialect_insert
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.tables import pending_rereads

log = structlog.get_logger("orderbridge.ingest")


def settle_ties(
    scope: Scope, ctx: ChannelContext, connector: ChannelConnector, external_ids: Sequence[str]
) -> IngestCounts:
    """Settle ties (see :func:`ingest_records`) by asking the channel: each order is fetched — its
    current state — and ingested as authoritative, in a transaction of its own, after the caller's
    has committed. It never fails the caller's sync or delivery:

    - an order the channel cannot be asked about now (refused, unreachable) keeps the ledger's
      version, a complete one, and becomes a *pending re-read* (counted as ``unsettled``; its
      timeline says so once): every sync asks again (:func:`settle_pending`) until it answers;
    - an order the channel no longer has (deleted) keeps the ledger's version, with an event saying
      so; there is nothing left to ask.
    """
    counts = IngestCounts()
    fetched: list[ChannelRecord] = []
    failed: dict[str, OrderBridgeError] = {}
    gone: dict[str, NotFound] = {}
    for ext in external_ids:
        try:
            fetched.append(connector.fetch_order(ext))
        except NotFound as exc:
            gone[ext] = exc
        except OrderBridgeError as exc:
            failed[ext] = exc
            log.warning("ingest.tie_unsettled", connection_id=ctx.row.id, external_id=ext, error=str(exc))
    now = scope.now()
    with scope.db.transaction() as conn:
        if fetched:
            counts.add(ingest_records(conn, scope.tenant_id, ctx, fetched, now, authoritative=True))
            counts.fetched = 0
        answered = [r.external_id for r in fetched] + list(gone)
        if answered:
            conn.execute(
                delete(pending_rereads).where(
                    pending_rereads.c.connection_id == ctx.row.id, pending_rereads.c.external_id.in_(answered)
                )
            )
        if not failed and not gone:
            return counts
        counts.unsettled += len(failed)
        first = _pend(conn, scope.tenant_id, ctx.row.id, failed, now)
        ids = order_repo.ids_by_external(conn, ctx.row.id, [*failed, *gone])
        name = ctx.row.name
        rows = [
            event_row(
                scope.tenant_id,
                ids[ext],
                EventKind.TIE_UNSETTLED,
                now,
                f"another version with the same updated_at arrived from {name}; re-reading the order to settle "
                f"which is newer failed ({failed[ext]}), so the ledger keeps its version until {name} answers — "
                "every sync asks again",
            )
            for ext in first
            if ext in ids
        ]
        rows += [
            event_row(
                scope.tenant_id,
                ids[ext],
                EventKind.TIE_UNSETTLED,
                now,
                f"another version with the same updated_at arrived from {name}, but {name} no longer has the "
                f"order ({exc}), so the ledger keeps its version; there is nothing left to re-read",
            )
            for ext, exc in gone.items()
            if ext in ids
        ]
        add_events(conn, rows)
    return counts


def _pend(
    conn: Connection, tenant_id: int, connection_id: int, failed: dict[str, OrderBridgeError], now: datetime
) -> list[str]:
    """Record each failed re-read as pending (a new row, or one more attempt on its row); returns
    the orders that were not pending before — their timelines get the event, once per episode."""
    if not failed:
        return []
    where = (pending_rereads.c.connection_id == connection_id, pending_rereads.c.external_id.in_(list(failed)))
    known = set(conn.execute(select(pending_rereads.c.external_id).where(*where)).scalars())
    for ext in known:
        conn.execute(
            update(pending_rereads)
            .where(pending_rereads.c.connection_id == connection_id, pending_rereads.c.external_id == ext)
            .values(attempts=pending_rereads.c.attempts + 1, last_attempt_at=now, last_error=str(failed[ext]))
        )
    new = [ext for ext in failed if ext not in known]
    if not new:
        return []
    inserted = conn.execute(
        dialect_insert(conn)(pending_rereads)
        .values(
            [
                {
                    "tenant_id": tenant_id,
                    "connection_id": connection_id,
                    "external_id": ext,
                    "since": now,
                    "attempts": 1,
                    "last_attempt_at": now,
                    "last_error": str(failed[ext]),
                }
                for ext in new
            ]
        )
        .on_conflict_do_nothing(index_elements=["connection_id", "external_id"])  # a racing webhook pended it
        .returning(pending_rereads.c.external_id)
    )
    return list(inserted.scalars())


def pending_reread_counts(conn: Connection, tenant_id: int) -> dict[int, int]:
    """Pending re-reads per connection id (for ``/healthz`` and ``/metrics``)."""
    return {
        cid: int(n)
        for cid, n in conn.execute(
            select(pending_rereads.c.connection_id, func.count())
            .where(pending_rereads.c.tenant_id == tenant_id)
            .group_by(pending_rereads.c.connection_id)
        )
    }


#: how many pending re-reads one sync asks about (least recently asked first, so all get their turn)
REREADS_PER_SYNC = 100


def settle_pending(
    scope: Scope, ctx: ChannelContext, connector: ChannelConnector, *, asked: Sequence[str] = ()
) -> IngestCounts:
    """Ask the channel again about ties it could not settle before (see :func:`settle_ties`).

    Called by every sync after its listing has committed: an order whose tie is pending may never
    be listed again (it has not changed, and an audit sees the same ``updated_at`` in the ledger
    and the channel), so waiting for a poll to meet it would leave the older version for good.
    ``asked``: orders this run has already asked about (its own ties), not asked twice."""
    skip = set(asked)
    with scope.db.read() as conn:
        ids = [
            ext
            for ext in conn.execute(
                select(pending_rereads.c.external_id)
                .where(pending_rereads.c.connection_id == ctx.row.id)
                .order_by(pending_rereads.c.last_attempt_at, pending_rereads.c.id)
                .limit(REREADS_PER_SYNC + len(skip))
            ).scalars()
            if ext not in skip
        ][:REREADS_PER_SYNC]
    if not ids:
        return IngestCounts()
    counts = settle_ties(scope, ctx, connector, ids)
    counts.rereads = len(ids)
    return counts
