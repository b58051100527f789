"""Ingest: channel records → the ledger, idempotently, with the pipeline applied.

The importer's fixed sequence (after OCA/connector): fetch a batch → dedupe within it → look up
what the ledger has (one query per batch) → insert new orders with ``ON CONFLICT DO NOTHING`` on
``(connection_id, external_id)`` (the database is the binder, so a racing webhook cannot create a
duplicate) → update changed ones (new version, content hash differs, not older than the ledger's)
→ run the pipeline → write reasons and events → store the cursor → commit. The cursor is written
in the same transaction as the batch it covers, so it can never be ahead of committed data; a
crash anywhere repeats at most one batch, and repeating it is a no-op (unchanged hashes).

A version with the ledger's own ``updated_at`` but other content (two edits within one second)
is settled by the channel, never by arrival order: after the batch commits, the order is re-read
and that version wins (:func:`settle_ties`). A re-read that fails leaves a pending re-read, which
every sync retries until the channel answers (:func:`settle_pending`).

A record without a usable id (the connector's mapper leaves its ``external_id`` empty) is never
stored — under a made-up key it would merge with the next such record — and never stops the rest
of its batch: it is *refused*, counted (``IngestCounts.refused``, on the sync report, its run's
row and ``health``), logged and recorded as a connection event quoting the problem.

An order already posted that changes in the channel gets a new version and a ``version_changed``
event with the changed fields; it is not re-posted (order-update policies come later, and a
blind second post is exactly what the promise forbids).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import structlog
from sqlalchemy import Connection, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from orderbridge.connectors.base import ChannelBatch, ChannelConnector, ChannelRecord, UnreadableOrder
from orderbridge.domain import limits
from orderbridge.domain import reasons as R
from orderbridge.domain.canonical import canonical_hash, order_to_json
from orderbridge.domain.events import EventKind
from orderbridge.domain.mappings import DestinationPolicy
from orderbridge.domain.order import Order, RawJson
from orderbridge.domain.pipeline import Decision, evaluate
from orderbridge.domain.rules import DownloadRules
from orderbridge.domain.states import OrderState, is_evaluable
from orderbridge.errors import NotFound, OrderBridgeError
from orderbridge.services.hub import ConnectionRow, Hub
from orderbridge.services.ledger import Outcome, add_events, apply_decisions, decision_text, event_row
from orderbridge.storage.db import JsonText, dump_json, insert_rows
from orderbridge.storage.tables import cursors, orders, pending_rereads

log = structlog.get_logger("orderbridge.ingest")


#: how many refusal messages a report keeps (the count is always whole)
REFUSALS_KEPT = 20


@dataclass
class IngestCounts:
    fetched: int = 0
    inserted: int = 0
    changed: int = 0
    unchanged: int = 0
    stale: int = 0
    #: versions with the ledger's ``updated_at`` but other content, not applied (see :func:`settle_ties`)
    tied: int = 0
    #: of those, the orders the channel could not be asked about (the ledger keeps its version)
    unsettled: int = 0
    #: pending re-reads (ties not settled earlier) asked about again (see :func:`settle_pending`)
    rereads: int = 0
    #: records without a usable id: not stored (see the module docstring); ``refusals`` says why
    refused: int = 0
    refusals: list[str] = field(default_factory=list)
    by_state: dict[str, int] = field(default_factory=dict)
    #: the external ids of the ties, for the caller to settle once its transaction has committed
    tied_ids: list[str] = field(default_factory=list)

    def add(self, other: IngestCounts) -> None:
        self.fetched += other.fetched
        self.inserted += other.inserted
        self.changed += other.changed
        self.unchanged += other.unchanged
        self.stale += other.stale
        self.tied += other.tied
        self.unsettled += other.unsettled
        self.rereads += other.rereads
        self.refused += other.refused
        self.refusals.extend(other.refusals[: max(0, REFUSALS_KEPT - len(self.refusals))])
        self.tied_ids.extend(other.tied_ids)
        for k, v in other.by_state.items():
            self.by_state[k] = self.by_state.get(k, 0) + v

    def as_dict(self) -> dict[str, Any]:
        return {
            "fetched": self.fetched,
            "inserted": self.inserted,
            "changed": self.changed,
            "unchanged": self.unchanged,
            "stale": self.stale,
            "tied": self.tied,
            "unsettled": self.unsettled,
            "rereads": self.rereads,
            "refused": self.refused,
            "refusals": list(self.refusals),
            "by_state": dict(self.by_state),
        }


@dataclass
class ChannelContext:
    row: ConnectionRow
    rules: DownloadRules
    policies: Sequence[DestinationPolicy]


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _decide(record: ChannelRecord, ctx: ChannelContext) -> Decision:
    if isinstance(record, UnreadableOrder):
        return Decision(OrderState.HELD, (R.invalid_order(record.problem),))
    return evaluate(record, ctx.rules, ctx.policies)


#: the columns :func:`_row_values` fills, in its order
_VALUE_COLUMNS = (
    "number",
    "content_hash",
    "channel_created_at",
    "channel_updated_at",
    "currency",
    "total",
    "canonical",
    "raw",
)
#: the columns of a new order row, in the order :func:`ingest_records` (and the benchmark) insert them
ORDER_COLUMNS = (
    "tenant_id",
    "connection_id",
    "external_id",
    "state",
    "version",
    "received_at",
    "updated_at",
    *_VALUE_COLUMNS,
)


def _row_values(record: ChannelRecord) -> dict[str, Any]:
    """The order's content columns, keyed and ordered as :data:`_VALUE_COLUMNS`. Bounded columns
    get what fits (domain/limits.py): the number without NULs, a total the column cannot hold
    exactly left empty — the canonical form and the raw payload keep every value whole, and the
    pipeline holds the order naming what did not fit."""
    if isinstance(record, UnreadableOrder):
        raw = dict(record.raw)
        return {
            "number": limits.storable(record.number or record.external_id),
            "content_hash": _raw_hash(raw),
            "channel_created_at": None,
            "channel_updated_at": record.updated_at,
            "currency": None,
            "total": None,
            "canonical": None,
            "raw": dump_json(raw),
        }
    canonical = order_to_json(record)
    total = record.total.amount
    return {
        "number": limits.storable(record.number),
        "content_hash": canonical_hash(canonical),
        "channel_created_at": record.created_at,
        "channel_updated_at": record.updated_at,
        "currency": record.currency,
        "total": total if limits.fits_column(total) else None,
        # JSON serialised now, once: the dicts die young and nothing holds them (see JsonText)
        "canonical": dump_json(canonical),
        "raw": JsonText(record.raw.decode()) if isinstance(record.raw, RawJson) else dump_json(record.raw),
    }


def _loaded(values: dict[str, Any]) -> dict[str, Any]:
    """Column values from :func:`_row_values` as Core expects them (pre-serialised JSON decoded)."""
    return {k: orjson.loads(str(v)) if isinstance(v, JsonText) else v for k, v in values.items()}


def _raw_hash(raw: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()


def _changed_fields(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    if old is None or new is None:
        return ["*"]
    return sorted(k for k in set(old) | set(new) if k != "updated_at" and old.get(k) != new.get(k))


def ingest_records(
    conn: Connection,
    tenant_id: int,
    ctx: ChannelContext,
    records: Sequence[ChannelRecord],
    now: datetime,
    *,
    authoritative: bool = False,
) -> IngestCounts:
    """Upsert ``records`` into the ledger (see the module docstring).

    A record with the ledger's own ``updated_at`` but other content is a *tie*: Shopify's
    timestamps have whole seconds, so two edits in one second carry the same one, and which of the
    two arrived last says nothing about which is newer. A tie is never settled by arrival order:
    it is not applied, and its id is returned in ``tied_ids`` for the caller to settle with
    :func:`settle_ties` once this transaction has committed (no request to the channel is made
    while the ledger is locked). ``authoritative`` records — the channel's answer to that re-read —
    replace the ledger's version on a tie.
    """
    counts = IngestCounts(fetched=len(records))
    records = _refuse_unidentified(conn, tenant_id, ctx, records, now, counts)
    latest: dict[str, ChannelRecord] = {}
    for rec in records:  # dedupe within the batch: keep the newest version of each order
        prev = latest.get(rec.external_id)
        if prev is None or _newer_or_equal(rec, prev):
            latest[rec.external_id] = rec
    values = {ext: _row_values(rec) for ext, rec in latest.items()}
    existing = _existing(conn, ctx.row.id, list(latest))
    new_ids = [ext for ext in latest if ext not in existing]
    outcomes: list[Outcome] = []
    event_rows: list[dict[str, Any]] = []
    lost_race: list[ChannelRecord] = []
    tied: list[str] = []
    if new_ids:
        decisions = {ext: _decide(latest[ext], ctx) for ext in new_ids}
        rows = [
            (
                tenant_id,
                ctx.row.id,
                ext,
                decisions[ext].state.value,
                1,
                now,
                now,
                *map(values[ext].__getitem__, _VALUE_COLUMNS),
            )
            for ext in new_ids
        ]
        inserted = {
            ext: oid
            for oid, ext in insert_rows(
                conn,
                orders,
                ORDER_COLUMNS,
                rows,
                conflict=("connection_id", "external_id"),
                returning=("id", "external_id"),
            )
        }
        for ext in new_ids:
            oid = inserted.get(ext)
            if oid is None:
                continue  # inserted concurrently (webhook vs poll): handled below as existing
            counts.inserted += 1
            d = decisions[ext]
            counts.by_state[d.state.value] = counts.by_state.get(d.state.value, 0) + 1
            event_rows.append(
                event_row(
                    tenant_id,
                    oid,
                    EventKind.RECEIVED,
                    now,
                    f"received {values[ext]['number']} from {ctx.row.name} — {decision_text(d)}",
                    version=1,
                    state=d.state.value,
                    codes=[r.code for r in d.reasons],
                )
            )
            outcomes.append(Outcome(oid, None, d))
        raced = [ext for ext in new_ids if ext not in inserted]
        if raced:
            existing.update(_existing(conn, ctx.row.id, raced))
    for ext, cur in existing.items():
        rec = latest[ext]
        v = values[ext]
        cur_updated = cur["channel_updated_at"]
        if cur_updated is not None and v["channel_updated_at"] is not None and v["channel_updated_at"] < cur_updated:
            counts.stale += 1
            continue
        if cur["content_hash"] == v["content_hash"]:
            counts.unchanged += 1
            if v["channel_updated_at"] is not None and (cur_updated is None or v["channel_updated_at"] > cur_updated):
                conn.execute(
                    update(orders).where(orders.c.id == cur["id"]).values(channel_updated_at=v["channel_updated_at"])
                )
            continue
        tie = cur_updated is not None and v["channel_updated_at"] == cur_updated
        if tie and not authoritative:
            tied.append(ext)
            continue
        version = cur["version"] + 1
        old_canonical = conn.execute(select(orders.c.canonical).where(orders.c.id == cur["id"])).scalar_one()
        columns = _loaded(v)
        new_canonical = columns["canonical"]
        # optimistic: a webhook and a poll may carry the same order at once; the loser re-reads
        done = conn.execute(
            update(orders)
            .where(orders.c.id == cur["id"], orders.c.version == cur["version"])
            .values(version=version, updated_at=now, **columns)
        )
        if done.rowcount == 0:
            lost_race.append(rec)
            continue
        counts.changed += 1
        state = OrderState(cur["state"])
        fields = _changed_fields(old_canonical, new_canonical)
        note = "" if is_evaluable(state) else " (already posted: not re-posted; review the change)"
        if tie:
            note += f" (same updated_at as the ledger's version: re-read from {ctx.row.name} to settle it)"
        event_rows.append(
            event_row(
                tenant_id,
                cur["id"],
                EventKind.VERSION_CHANGED,
                now,
                f"version {version} from {ctx.row.name}: {', '.join(fields)} changed{note}",
                version=version,
                fields=fields,
            )
        )
        if is_evaluable(state):
            d = _decide(rec, ctx)
            counts.by_state[d.state.value] = counts.by_state.get(d.state.value, 0) + 1
            outcomes.append(Outcome(cur["id"], state, d))
    add_events(conn, event_rows)
    apply_decisions(conn, tenant_id, outcomes, now)
    if lost_race:  # another writer committed a version first: compare against what it wrote
        again = ingest_records(conn, tenant_id, ctx, lost_race, now, authoritative=authoritative)
        again.fetched = 0
        counts.add(again)
    if tied:
        counts.tied += len(tied)
        counts.tied_ids.extend(tied)
        log.info("ingest.tied", connection_id=ctx.row.id, external_ids=tied)
    return counts


def _refuse_unidentified(
    conn: Connection,
    tenant_id: int,
    ctx: ChannelContext,
    records: Sequence[ChannelRecord],
    now: datetime,
    counts: IngestCounts,
) -> Sequence[ChannelRecord]:
    """``records`` without those that have no usable id, which are refused (see the module docstring).

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
        counts.refused += 1
        if len(counts.refusals) < REFUSALS_KEPT:
            counts.refusals.append(message)
        log.warning("ingest.refused", connection_id=ctx.row.id, number=number, problem=problem)
        rows.append(event_row(tenant_id, None, EventKind.RECORD_REFUSED, now, message, connection_id=ctx.row.id))
    add_events(conn, rows)
    return [r for r in records if _usable_id(r.external_id)]


def _usable_id(external_id: str) -> bool:
    return 0 < len(external_id) <= limits.EXTERNAL_ID.max_chars and limits.storable(external_id) == external_id


def settle_ties(
    hub: Hub, ctx: ChannelContext, connector: ChannelConnector, external_ids: Sequence[str]
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
    now = hub.now()
    with hub.db.transaction() as conn:
        if fetched:
            counts.add(ingest_records(conn, hub.tenant_id, ctx, fetched, now, authoritative=True))
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
        first = _pend(conn, hub.tenant_id, ctx.row.id, failed, now)
        ids = dict(
            conn.execute(
                select(orders.c.external_id, orders.c.id).where(
                    orders.c.connection_id == ctx.row.id, orders.c.external_id.in_([*failed, *gone])
                )
            ).all()
        )
        name = ctx.row.name
        rows = [
            event_row(
                hub.tenant_id,
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
                hub.tenant_id,
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
        _insert(conn)(pending_rereads)
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
    hub: Hub, ctx: ChannelContext, connector: ChannelConnector, *, asked: Sequence[str] = ()
) -> IngestCounts:
    """Ask the channel again about ties it could not settle before (see :func:`settle_ties`).

    Called by every sync after its listing has committed: an order whose tie is pending may never
    be listed again (it has not changed, and an audit sees the same ``updated_at`` in the ledger
    and the channel), so waiting for a poll to meet it would leave the older version for good.
    ``asked``: orders this run has already asked about (its own ties), not asked twice."""
    skip = set(asked)
    with hub.db.read() as conn:
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
    counts = settle_ties(hub, ctx, connector, ids)
    counts.rereads = len(ids)
    return counts


def _newer_or_equal(a: ChannelRecord, b: ChannelRecord) -> bool:
    if a.updated_at is None or b.updated_at is None:
        return True
    return a.updated_at >= b.updated_at


def _existing(conn: Connection, connection_id: int, external_ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(external_ids), 500):
        chunk = external_ids[i : i + 500]
        for row in conn.execute(
            select(
                orders.c.id,
                orders.c.external_id,
                orders.c.content_hash,
                orders.c.version,
                orders.c.state,
                orders.c.channel_updated_at,
            ).where(orders.c.connection_id == connection_id, orders.c.external_id.in_(chunk))
        ):
            found[row.external_id] = dict(row._mapping)
    return found


def read_cursor(conn: Connection, connection_id: int, name: str = "orders") -> datetime | None:
    value: datetime | None = conn.execute(
        select(cursors.c.value).where(cursors.c.connection_id == connection_id, cursors.c.name == name)
    ).scalar_one_or_none()
    return value


def write_cursor(
    conn: Connection, tenant_id: int, connection_id: int, value: datetime, now: datetime, name: str = "orders"
) -> None:
    """Move a cursor forward (never back) inside the caller's transaction."""
    current = read_cursor(conn, connection_id, name)
    if current is not None and value <= current:
        return
    stmt = _insert(conn)(cursors).values(
        connection_id=connection_id, name=name, tenant_id=tenant_id, value=value, updated_at=now
    )
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["connection_id", "name"], set_={"value": value, "updated_at": now})
    )


def since_with_overlap(cursor: datetime | None, overlap_s: float) -> datetime | None:
    return None if cursor is None else cursor - timedelta(seconds=overlap_s)


def commit_batch(
    conn: Connection,
    tenant_id: int,
    ctx: ChannelContext,
    batch: ChannelBatch,
    now: datetime,
) -> IngestCounts:
    counts = ingest_records(conn, tenant_id, ctx, batch.records, now)
    if batch.cursor_after is not None:
        write_cursor(conn, tenant_id, ctx.row.id, batch.cursor_after, now)
    return counts


def order_of(record: ChannelRecord) -> Order | None:
    return record if isinstance(record, Order) else None
