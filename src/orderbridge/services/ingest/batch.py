"""The batch writer's hot path: one batch of channel records upserted into the ledger.

:func:`write_batch` runs the importer's fixed steps, each a function below:

1. keep the newest version of each order in the batch (``domain.versions.latest``) and build its
   row values once;
2. look up what the ledger has (one query per 500 orders);
3. insert the new orders in one executemany, ``ON CONFLICT DO NOTHING`` on ``(connection_id,
   external_id)`` (the database is the binder: an order a racing webhook inserted first is then
   handled as an existing one) — :func:`_insert_new`;
4. judge each existing order's version against the ledger's (``domain.versions.judge``): stale and
   unchanged versions are counted, a tie is left for the channel to settle, a changed one is
   written optimistically (``version`` = the one read) — :func:`_apply_versions`;
5. append the events and apply the pipeline's decisions (``services.ledger``).

Versions another writer committed first are returned, for the caller to compare again against
what that writer wrote (:func:`orderbridge.services.ingest.writer.ingest_records`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Connection

from orderbridge.connectors.base import ChannelRecord, UnreadableOrder
from orderbridge.domain import limits
from orderbridge.domain.events import EventKind
from orderbridge.domain.pipeline import Decision
from orderbridge.domain.states import OrderState, is_evaluable
from orderbridge.domain.versions import Verdict, judge, latest, moves_forward
from orderbridge.services import order_updates
from orderbridge.services.ingest.context import REFUSALS_KEPT, ChannelContext, IngestCounts, decide
from orderbridge.services.ingest.rows import VALUE_COLUMNS, changed_fields, loaded, row_values
from orderbridge.services.ledger import Outcome, add_events, apply_decisions, decision_text, event_row
from orderbridge.storage.repos import orders as order_repo

log = structlog.get_logger("orderbridge.ingest")


@dataclass
class _Batch:
    """One batch in flight: its newest versions, their row values, and what it will write."""

    tenant_id: int
    ctx: ChannelContext
    now: datetime
    latest: dict[str, ChannelRecord]
    values: dict[str, dict[str, Any]]
    counts: IngestCounts
    outcomes: list[Outcome] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def count_state(self, d: Decision) -> None:
        self.counts.by_state[d.state.value] = self.counts.by_state.get(d.state.value, 0) + 1


def write_batch(
    conn: Connection,
    tenant_id: int,
    ctx: ChannelContext,
    records: Sequence[ChannelRecord],
    now: datetime,
    *,
    authoritative: bool = False,
) -> tuple[IngestCounts, list[ChannelRecord]]:
    """Upsert ``records`` into the ledger (the hot path: new orders go in one executemany).

    A record with the ledger's own ``updated_at`` but other content is a *tie*: it is never settled
    by arrival order: it is not applied, and its id is returned in ``tied_ids`` for the caller to
    settle with :func:`~orderbridge.services.ingest.ties.settle_ties` once this transaction has
    committed (no request to the channel is made while the ledger is locked). ``authoritative``
    records — the channel's answer to that re-read — replace the ledger's version on a tie.

    Returns the counts and the records whose version another writer committed first (to compare again).
    """
    newest = latest(records)
    batch = _Batch(
        tenant_id,
        ctx,
        now,
        newest,
        {ext: row_values(rec) for ext, rec in newest.items()},
        IngestCounts(fetched=len(records)),
    )
    existing = order_repo.existing(conn, ctx.row.id, list(newest))
    new_ids = [ext for ext in newest if ext not in existing]
    if new_ids:
        raced = _insert_new(conn, batch, new_ids)
        if raced:  # inserted concurrently (webhook vs poll): handled as existing
            existing.update(order_repo.existing(conn, ctx.row.id, raced))
    lost_race, tied = _apply_versions(conn, batch, existing, authoritative)
    add_events(conn, batch.events)
    apply_decisions(conn, tenant_id, batch.outcomes, now)
    if tied:
        batch.counts.tied += len(tied)
        batch.counts.tied_ids.extend(tied)
        log.info("ingest.tied", connection_id=ctx.row.id, external_ids=tied)
    return batch.counts, lost_race


def _insert_new(conn: Connection, batch: _Batch, new_ids: list[str]) -> list[str]:
    """Insert the orders the ledger did not have, with their decision; returns those another writer
    inserted first."""
    ctx, now, values = batch.ctx, batch.now, batch.values
    decisions = {ext: decide(batch.latest[ext], ctx) for ext in new_ids}
    rows = [
        (
            batch.tenant_id,
            ctx.row.id,
            ext,
            decisions[ext].state.value,
            1,
            now,
            now,
            *map(values[ext].__getitem__, VALUE_COLUMNS),
        )
        for ext in new_ids
    ]
    skus = [values[ext]["skus"] for ext in new_ids]
    inserted = {ext: oid for oid, ext in order_repo.insert_new(conn, rows, skus, now=now)}
    for ext in new_ids:
        oid = inserted.get(ext)
        if oid is None:
            continue
        batch.counts.inserted += 1
        d = decisions[ext]
        batch.count_state(d)
        batch.events.append(
            event_row(
                batch.tenant_id,
                oid,
                EventKind.RECEIVED,
                now,
                f"received {values[ext]['number']} from {ctx.row.name} — {decision_text(d)}",
                version=1,
                state=d.state.value,
                codes=[r.code for r in d.reasons],
            )
        )
        batch.outcomes.append(Outcome(oid, None, d))
    return [ext for ext in new_ids if ext not in inserted]


def _apply_versions(
    conn: Connection, batch: _Batch, existing: dict[str, dict[str, Any]], authoritative: bool
) -> tuple[list[ChannelRecord], list[str]]:
    """Judge each existing order's incoming version and write the changed ones; returns the records
    another writer changed first, and the ties left for the channel to settle."""
    lost_race: list[ChannelRecord] = []
    tied: list[str] = []
    counts = batch.counts
    for ext, cur in existing.items():
        v = batch.values[ext]
        verdict = judge(v["channel_updated_at"], v["content_hash"], cur["channel_updated_at"], cur["content_hash"])
        if verdict is Verdict.STALE:
            counts.stale += 1
        elif verdict is Verdict.UNCHANGED:
            counts.unchanged += 1
            if moves_forward(v["channel_updated_at"], cur["channel_updated_at"]):
                order_repo.note_channel_update(conn, cur["id"], v["channel_updated_at"])
        elif verdict is Verdict.TIE and not authoritative:
            tied.append(ext)
        elif not _write_version(conn, batch, ext, cur, tie=verdict is Verdict.TIE):
            lost_race.append(batch.latest[ext])
    return lost_race, tied


def _write_version(conn: Connection, batch: _Batch, ext: str, cur: dict[str, Any], *, tie: bool) -> bool:
    """Write a changed version over the ledger's (optimistic on ``version``: a webhook and a poll may
    carry the same order at once; False when the other won), its event, and its re-evaluation while
    it is not posted."""
    ctx, now = batch.ctx, batch.now
    version = cur["version"] + 1
    old_canonical = order_repo.canonical_of(conn, cur["id"])
    columns = loaded(batch.values[ext])
    if not order_repo.write_version(
        conn, cur["id"], cur["version"], {"version": version, "updated_at": now, **columns}
    ):
        return False
    batch.counts.changed += 1
    state = OrderState(cur["state"])
    fields = changed_fields(old_canonical, columns["canonical"])
    # a destination holds a document of the order: an order update, decided by policy (issue #15)
    held = (
        old_canonical is not None
        and columns["canonical"] is not None
        and bool(order_updates.held_documents(conn, cur["id"]))
    )
    note = " (an order update: see its decision)" if held else ""
    if not held and not is_evaluable(state):
        note = " (nothing posted to amend)"
    if tie:
        note += f" (same updated_at as the ledger's version: re-read from {ctx.row.name} to settle it)"
    told = event_row(
        batch.tenant_id,
        cur["id"],
        EventKind.VERSION_CHANGED,
        now,
        f"version {version} from {ctx.row.name}: {', '.join(fields)} changed{note}",
        version=version,
        fields=fields,
    )
    if held:
        add_events(conn, [told])  # before the update's own event, on the timeline
        order_updates.note_version(
            conn, batch.tenant_id, cur["id"], state, old_canonical, columns["canonical"], version, now
        )
        return True
    batch.events.append(told)
    if is_evaluable(state):
        d = decide(batch.latest[ext], ctx)
        batch.count_state(d)
        batch.outcomes.append(Outcome(cur["id"], state, d))
    return True


def refuse_unidentified(
    conn: Connection,
    tenant_id: int,
    ctx: ChannelContext,
    records: Sequence[ChannelRecord],
    now: datetime,
    counts: IngestCounts,
) -> Sequence[ChannelRecord]:
    """``records`` without those that have no usable id, which are refused (see the package docstring).

    Each connector normalises its ids (and leaves an unusable one empty); this is the ledger's own
    guard for any connector: an id that is empty, longer than ``orders.external_id`` or not
    storable text is refused the same way."""
    refused = [r for r in records if not _usable_id(r.external_id)]
    if not refused:
        return records
    rows = []
    for rec in refused:
        if isinstance(rec, UnreadableOrder) and not rec.external_id:
            problem = rec.problem
        else:
            shown = limits.shorten(rec.external_id, limits.QUOTE_CHARS)
            problem = f"its id {shown!r} is not usable (empty, over {limits.EXTERNAL_ID.max_chars} characters or NUL)"
        number = limits.shorten(limits.storable(rec.number), limits.QUOTE_CHARS)
        message = limits.storable(
            f"a record from {ctx.row.name} was refused, nothing stored: {problem}"
            + (f" (order name {number!r})" if number else "")
        )
        counts.unidentified += 1
        if len(counts.unidentified_records) < REFUSALS_KEPT:
            counts.unidentified_records.append(message)
        log.warning("ingest.unidentified", connection_id=ctx.row.id, number=number, problem=problem)
        rows.append(event_row(tenant_id, None, EventKind.RECORD_REFUSED, now, message, connection_id=ctx.row.id))
    add_events(conn, rows)
    return [r for r in records if _usable_id(r.external_id)]


def _usable_id(external_id: str) -> bool:
    return 0 < len(external_id) <= limits.EXTERNAL_ID.max_chars and limits.storable(external_id) == external_id
