"""The ingest entry point: channel records → the ledger, in a savepoint, with poison-pill isolation.

:func:`ingest_records` refuses the records without a usable id, writes the rest as one batch
(:func:`~orderbridge.services.ingest.batch.write_batch`) inside a savepoint, and, when the database
refuses one of its rows, stores the batch again order by order (:func:`_isolate`), each order it
still refuses going to :func:`~orderbridge.services.ingest.isolation.store_refused`. Versions
another writer committed first are compared again against what it wrote. :func:`commit_batch` is a
sync's batch: the records and the cursor that covers them, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import structlog
from sqlalchemy import Connection

from orderbridge.connectors.base import ChannelBatch, ChannelRecord
from orderbridge.domain.versions import latest
from orderbridge.services.ingest.batch import refuse_unidentified, write_batch
from orderbridge.services.ingest.context import ChannelContext, IngestCounts
from orderbridge.services.ingest.isolation import store_refused
from orderbridge.storage.refusals import REFUSAL_ERRORS, refusal
from orderbridge.storage.repos.cursors import write_cursor

log = structlog.get_logger("orderbridge.ingest")


def ingest_records(
    conn: Connection,
    tenant_id: int,
    ctx: ChannelContext,
    records: Sequence[ChannelRecord],
    now: datetime,
    *,
    authoritative: bool = False,
) -> IngestCounts:
    """Upsert ``records`` into the ledger (see the package docstring and :func:`write_batch`).

    The batch runs in a savepoint; when the database refuses one of its rows, the batch is stored
    again order by order and each order it still refuses is stored in a minimal form and held, or
    quarantined (:func:`_isolate`). Errors that are not a row's (a lost connection, a deadlock)
    propagate: the caller's transaction fails as a whole and its run is retried.
    """
    unidentified = IngestCounts()
    usable = refuse_unidentified(conn, tenant_id, ctx, records, now, unidentified)
    try:
        with conn.begin_nested():
            counts = _batch(conn, tenant_id, ctx, usable, now, authoritative)
    except REFUSAL_ERRORS as exc:
        found = refusal(exc, conn.dialect.name)
        if found is None:
            raise
        log.warning(
            "ingest.batch_refused", connection_id=ctx.row.id, orders=len(usable), kind=found.kind, error=found.detail
        )
        counts = _isolate(conn, tenant_id, ctx, usable, now, authoritative=authoritative)
    counts.add(unidentified)
    counts.fetched = len(records)
    return counts


def _batch(
    conn: Connection,
    tenant_id: int,
    ctx: ChannelContext,
    records: Sequence[ChannelRecord],
    now: datetime,
    authoritative: bool,
) -> IngestCounts:
    """One batch written; the versions another writer committed first compared against what it wrote."""
    counts, lost_race = write_batch(conn, tenant_id, ctx, records, now, authoritative=authoritative)
    if lost_race:
        again = ingest_records(conn, tenant_id, ctx, lost_race, now, authoritative=authoritative)
        again.fetched = 0
        counts.add(again)
    return counts


def _isolate(
    conn: Connection,
    tenant_id: int,
    ctx: ChannelContext,
    records: Sequence[ChannelRecord],
    now: datetime,
    *,
    authoritative: bool,
) -> IngestCounts:
    """Store a batch the database refused order by order, each in its own savepoint: the orders it
    takes are stored exactly as in a batch; each one it still refuses goes to :func:`store_refused`."""
    counts = IngestCounts(fetched=len(records))
    dialect = conn.dialect.name
    for rec in latest(records).values():
        try:
            with conn.begin_nested():
                one = _batch(conn, tenant_id, ctx, [rec], now, authoritative)
        except REFUSAL_ERRORS as exc:
            found = refusal(exc, dialect)
            if found is None:
                raise
        else:
            one.fetched = 0
            counts.add(one)
            continue
        stored = store_refused(conn, tenant_id, ctx, rec, now, found, authoritative=authoritative)
        if stored is None:  # another writer stored a version meanwhile: compare against what it wrote
            stored = ingest_records(conn, tenant_id, ctx, [rec], now, authoritative=authoritative)
        counts.add(stored)
    return counts


def commit_batch(
    conn: Connection,
    tenant_id: int,
    ctx: ChannelContext,
    batch: ChannelBatch,
    now: datetime,
) -> IngestCounts:
    """A sync's batch: its records and, in the same transaction, the cursor after them."""
    counts = ingest_records(conn, tenant_id, ctx, batch.records, now)
    if batch.cursor_after is not None:
        write_cursor(conn, tenant_id, ctx.row.id, batch.cursor_after, now)
    return counts
