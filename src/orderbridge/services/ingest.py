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
of its batch: it is *refused*, counted (``IngestCounts.unidentified``, on the sync report, its run's
row and ``health``), logged and recorded as a connection event quoting the problem.

An order already posted that changes in the channel gets a new version and a ``version_changed``
event with the changed fields; it is not re-posted (order-update policies come later, and a
blind second post is exactly what the promise forbids).

**One order the database refuses never fails its batch** (poison-pill isolation, decision 43).
Each batch runs inside a savepoint (``SAVEPOINT``/``RELEASE``: two statements per batch, nothing
per order — the hot path's one executemany per batch is unchanged). When the database refuses a
row — a value longer than its column, a NUL character PostgreSQL's text refuses, a constraint, a
trigger, a value the driver cannot encode; :func:`orderbridge.storage.refusals.refusal` tells those
from the database's own trouble, which still fails the batch — the savepoint is rolled back and
the batch is stored again order by order, each in its own savepoint, so the others are stored
exactly as they would have been (same states, reasons and events). An order that is refused on its
own is stored in a **minimal form** the database accepts (its id, its number made storable, its raw
payload with the values no column takes rewritten, no canonical content) and held
``storage_refused`` with the database's words and the fix; an order already posted keeps its posted
content and gets the new version's raw payload and an event. If even that is refused (the channel's
id itself, say), the order is **quarantined**: its raw bytes go to ``ingest_failures`` alone,
listed by ``orderbridge holds``. Every refusal has a row in ``ingest_failures``, open until a later
version of the order is stored whole; while one is open the connection's sync reports ``degraded``
naming it (``services/health.py``). Either way the batch commits and the cursor moves, so the next
sync is not stopped by the same order: the minimal form carries the content hash of the version
refused, so meeting that version again is "unchanged", and a corrected version is stored whole.

Why this shape, not validating every value first: the database is the only judge of what it stores
(a trigger, a constraint or an encoding the hub does not know about refuses as surely as a column
size), the boundary's validation layer already shortens what it knows, and checking before every
insert would cost the hot path for the rare order that fails. Why not one savepoint per order
always: two more statements per order, on a path that makes a handful per batch.
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
from sqlalchemy import Connection, case, delete, func, null, select, update
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
from orderbridge.storage.refusals import REFUSAL_ERRORS, Refusal, raw_bytes, refusal, storable, storable_text
from orderbridge.storage.tables import connections, cursors, ingest_failures, orders, pending_rereads

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
    #: records without a usable id: not stored (see the module docstring); ``unidentified_records`` says why
    unidentified: int = 0
    unidentified_records: list[str] = field(default_factory=list)
    #: orders the database refused as sent: stored in a minimal form and held (or, already posted,
    #: their new version's raw payload kept) — counted in ``inserted``/``changed`` as well
    refused: int = 0
    #: orders not stored even in a minimal form: their raw bytes are in ``ingest_failures`` only
    quarantined: int = 0
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
        self.unidentified += other.unidentified
        self.unidentified_records.extend(
            other.unidentified_records[: max(0, REFUSALS_KEPT - len(self.unidentified_records))]
        )
        self.quarantined += other.quarantined
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
            "unidentified": self.unidentified,
            "unidentified_records": list(self.unidentified_records),
            "quarantined": self.quarantined,
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
    """Upsert ``records`` into the ledger (see the module docstring and :func:`_ingest_batch`).

    The batch runs in a savepoint; when the database refuses one of its rows, the batch is stored
    again order by order and each order it still refuses is stored in a minimal form and held, or
    quarantined (:func:`_isolate`). Errors that are not a row's (a lost connection, a deadlock)
    propagate: the caller's transaction fails as a whole and its run is retried.
    """
    unidentified = IngestCounts()
    usable = _refuse_unidentified(conn, tenant_id, ctx, records, now, unidentified)
    try:
        with conn.begin_nested():
            counts = _ingest_batch(conn, tenant_id, ctx, usable, now, authoritative=authoritative)
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


def _ingest_batch(
    conn: Connection,
    tenant_id: int,
    ctx: ChannelContext,
    records: Sequence[ChannelRecord],
    now: datetime,
    *,
    authoritative: bool = False,
) -> IngestCounts:
    """Upsert ``records`` into the ledger (the hot path: new orders go in one executemany).

    A record with the ledger's own ``updated_at`` but other content is a *tie*: Shopify's
    timestamps have whole seconds, so two edits in one second carry the same one, and which of the
    two arrived last says nothing about which is newer. A tie is never settled by arrival order:
    it is not applied, and its id is returned in ``tied_ids`` for the caller to settle with
    :func:`settle_ties` once this transaction has committed (no request to the channel is made
    while the ledger is locked). ``authoritative`` records — the channel's answer to that re-read —
    replace the ledger's version on a tie.
    """
    counts = IngestCounts(fetched=len(records))
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
        counts.unidentified += 1
        if len(counts.unidentified_records) < REFUSALS_KEPT:
            counts.unidentified_records.append(message)
        log.warning("ingest.unidentified", connection_id=ctx.row.id, number=number, problem=problem)
        rows.append(event_row(tenant_id, None, EventKind.RECORD_REFUSED, now, message, connection_id=ctx.row.id))
    add_events(conn, rows)
    return [r for r in records if _usable_id(r.external_id)]


def _usable_id(external_id: str) -> bool:
    return 0 < len(external_id) <= limits.EXTERNAL_ID.max_chars and limits.storable(external_id) == external_id


#: how long a stored order number may be (the minimal form of a refused order is cut to it)
_NUMBER_LENGTH: int = getattr(orders.c.number.type, "length", None) or 100


def _latest(records: Sequence[ChannelRecord]) -> dict[str, ChannelRecord]:
    """The newest version of each order in a batch (as :func:`_ingest_batch` dedupes it)."""
    latest: dict[str, ChannelRecord] = {}
    for rec in records:
        prev = latest.get(rec.external_id)
        if prev is None or _newer_or_equal(rec, prev):
            latest[rec.external_id] = rec
    return latest


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
    takes are stored exactly as in a batch; each one it still refuses goes to :func:`_store_refused`."""
    counts = IngestCounts(fetched=len(records))
    dialect = conn.dialect.name
    for rec in _latest(records).values():
        try:
            with conn.begin_nested():
                one = _ingest_batch(conn, tenant_id, ctx, [rec], now, authoritative=authoritative)
        except REFUSAL_ERRORS as exc:
            found = refusal(exc, dialect)
            if found is None:
                raise
        else:
            one.fetched = 0
            counts.add(one)
            continue
        counts.add(_store_refused(conn, tenant_id, ctx, rec, now, found, authoritative=authoritative))
    return counts


def _store_refused(
    conn: Connection,
    tenant_id: int,
    ctx: ChannelContext,
    rec: ChannelRecord,
    now: datetime,
    found: Refusal,
    *,
    authoritative: bool,
) -> IngestCounts:
    """Store an order the database refused as sent in its minimal form and hold it, or, when even
    that is refused, quarantine it (see the module docstring). Never raises for the row's values."""
    counts = IngestCounts()
    ext = rec.external_id
    log.warning("ingest.refused", connection_id=ctx.row.id, external_id=ext, kind=found.kind, error=found.detail)
    rewritten: list[str] = []
    raw_value = _storable_raw(rec, rewritten)
    try:  # the hash of the version refused: meeting it again is "unchanged", not another refusal
        content_hash = str(_row_values(rec)["content_hash"])
    except (UnicodeEncodeError, OverflowError, orjson.JSONEncodeError):  # its content cannot even be serialised
        content_hash = _raw_hash(raw_value)
    escaped = ""
    if rewritten:
        shown = ", ".join(rewritten[:5]) + (f" and {len(rewritten) - 5} more" if len(rewritten) > 5 else "")
        escaped = f" (with {len(rewritten)} value(s) written as escapes so they can be stored: {shown})"
    try:
        with conn.begin_nested():
            stored = _store_minimal(
                conn, tenant_id, ctx, rec, now, found, escaped, raw_value, content_hash, authoritative
            )
    except REFUSAL_ERRORS as exc:
        second = refusal(exc, conn.dialect.name)
        if second is None:
            raise
        with conn.begin_nested():  # a refusal here is not the row's to isolate: the batch fails as a whole
            _quarantine(conn, tenant_id, ctx, rec, now, found, second, content_hash)
        counts.quarantined += 1
        return counts
    if stored is None:  # another writer stored a version meanwhile: compare against what it wrote
        return ingest_records(conn, tenant_id, ctx, [rec], now, authoritative=authoritative)
    return stored


def _storable_raw(rec: ChannelRecord, rewritten: list[str]) -> dict[str, Any]:
    """The record's raw payload as the ``raw`` column takes it (see ``storage.refusals.storable``)."""
    raw: Any = rec.raw
    if isinstance(raw, bytes):
        try:
            raw = json.loads(raw)
        except ValueError as exc:  # bytes a JSON parser refuses: kept as text (and whole in ingest_failures)
            rewritten.append("$")
            return {"unparsed": storable_text(raw.decode("utf-8", "replace"), len(raw) * 6 + 1), "error": str(exc)}
    value = storable(raw if isinstance(raw, dict) else dict(raw), changed=rewritten)
    return value if isinstance(value, dict) else {"value": value}


def _store_minimal(
    conn: Connection,
    tenant_id: int,
    ctx: ChannelContext,
    rec: ChannelRecord,
    now: datetime,
    found: Refusal,
    escaped: str,
    raw_value: dict[str, Any],
    content_hash: str,
    authoritative: bool,
) -> IngestCounts | None:
    """The minimal form of a refused order (see :func:`_store_refused`); ``None`` when another
    writer stored the order first (the caller compares again)."""
    counts = IngestCounts()
    ext = rec.external_id
    number = storable_text(rec.number or ext, _NUMBER_LENGTH)
    name = ctx.row.name
    cur = _existing(conn, ctx.row.id, [ext]).get(ext)
    if cur is None:
        kept = f"the ledger keeps its id, number and raw payload{escaped}, and holds it"
        reason = R.storage_refused(found.kind, found.database, found.detail, kept=kept)
        oid = conn.execute(
            _insert(conn)(orders)
            .values(
                tenant_id=tenant_id,
                connection_id=ctx.row.id,
                external_id=ext,
                state=OrderState.HELD.value,
                version=1,
                received_at=now,
                updated_at=now,
                number=number,
                content_hash=content_hash,
                channel_created_at=getattr(rec, "created_at", None),
                channel_updated_at=rec.updated_at,
                raw=raw_value,
            )
            .on_conflict_do_nothing(index_elements=["connection_id", "external_id"])
            .returning(orders.c.id)
        ).scalar_one_or_none()
        if oid is None:
            return None
        decision = Decision(OrderState.HELD, (reason,))
        add_events(
            conn,
            [
                event_row(
                    tenant_id,
                    oid,
                    EventKind.RECEIVED,
                    now,
                    f"received {number} from {name} — {decision_text(decision)}",
                    version=1,
                    state=OrderState.HELD.value,
                    codes=[reason.code],
                )
            ],
        )
        apply_decisions(conn, tenant_id, [Outcome(oid, None, decision)], now)
        counts.inserted += 1
        counts.by_state[OrderState.HELD.value] = 1
        stage = "held"
    else:
        oid = cur["id"]
        cur_updated = cur["channel_updated_at"]
        if cur_updated is not None and rec.updated_at is not None and rec.updated_at < cur_updated:
            counts.stale += 1
            return counts
        if cur["content_hash"] == content_hash:
            counts.unchanged += 1
            return counts
        tie = cur_updated is not None and rec.updated_at == cur_updated
        if tie and not authoritative:
            counts.tied += 1
            counts.tied_ids.append(ext)
            return counts
        state = OrderState(cur["state"])
        evaluable = is_evaluable(state)
        version = cur["version"] + 1
        if evaluable:
            kept = f"the ledger keeps this version's raw payload{escaped}, not its content, and holds the order"
        else:
            kept = f"the ledger keeps the posted version's content and this version's raw payload{escaped}"
        reason = R.storage_refused(found.kind, found.database, found.detail, kept=kept)
        columns: dict[str, Any] = {
            "version": version,
            "updated_at": now,
            "content_hash": content_hash,
            "channel_updated_at": rec.updated_at,
            "raw": raw_value,
        }
        if evaluable:  # no content: a re-evaluation can neither post the older content nor release the hold
            columns["canonical"] = null()  # SQL NULL, as an unreadable order's (None would be JSON null)
        done = conn.execute(
            update(orders).where(orders.c.id == oid, orders.c.version == cur["version"]).values(**columns)
        )
        if done.rowcount == 0:
            return None
        note = "" if evaluable else " (already posted: not re-posted; review the change)"
        add_events(
            conn,
            [
                event_row(
                    tenant_id,
                    oid,
                    EventKind.VERSION_CHANGED,
                    now,
                    f"version {version} from {name} could not be stored whole: {reason.message}{note}",
                    version=version,
                    fields=["*"],
                    codes=[reason.code],
                )
            ],
        )
        if evaluable:
            apply_decisions(conn, tenant_id, [Outcome(oid, state, Decision(OrderState.HELD, (reason,)))], now)
            counts.by_state[OrderState.HELD.value] = 1
        counts.changed += 1
        stage = "held" if evaluable else "kept"
    counts.refused += 1
    _record_failure(conn, tenant_id, ctx, rec, now, stage, oid, found.kind, found.detail, content_hash)
    return counts


def _quarantine(
    conn: Connection,
    tenant_id: int,
    ctx: ChannelContext,
    rec: ChannelRecord,
    now: datetime,
    found: Refusal,
    second: Refusal,
    content_hash: str,
) -> None:
    """Keep an order the database refused even in its minimal form: its raw bytes in
    ``ingest_failures`` (which takes any bytes) and an event on the connection's timeline."""
    ext = storable_text(rec.external_id)
    error = found.detail if second.detail == found.detail else f"{found.detail}; its minimal form too: {second.detail}"
    log.error("ingest.quarantined", connection_id=ctx.row.id, external_id=ext, kind=second.kind, error=error)
    oid = None
    if ext == rec.external_id:  # an id a query can carry: the order may be in the ledger already
        oid = conn.execute(
            select(orders.c.id).where(orders.c.connection_id == ctx.row.id, orders.c.external_id == ext)
        ).scalar_one_or_none()
    _record_failure(conn, tenant_id, ctx, rec, now, "quarantined", oid, second.kind, error, content_hash)
    add_events(
        conn,
        [
            event_row(
                tenant_id,
                oid,
                EventKind.INGEST_QUARANTINED,
                now,
                f"order {ext} from {ctx.row.name} could not be stored, not even in a minimal form "
                f"({found.database}: {error}); its raw payload is kept in quarantine — see orderbridge holds",
                connection_id=ctx.row.id,
                external_id=ext,
                refusal=second.kind,
            )
        ],
    )


def _record_failure(
    conn: Connection,
    tenant_id: int,
    ctx: ChannelContext,
    rec: ChannelRecord,
    now: datetime,
    stage: str,
    order_id: int | None,
    kind: str,
    error: str,
    content_hash: str,
) -> None:
    """Open (or refresh) the order's row in ``ingest_failures``: one per order, attempts counted."""
    values = {
        "stage": stage,
        "order_id": order_id,
        "kind": kind,
        "error": storable_text(error, 2000),
        "content_hash": content_hash,
        "channel_updated_at": rec.updated_at,
        "raw": raw_bytes(rec.raw),
        "number": storable_text(rec.number or "", 300),
        "last_at": now,
    }
    stmt = _insert(conn)(ingest_failures).values(
        tenant_id=tenant_id,
        connection_id=ctx.row.id,
        external_id=storable_text(rec.external_id),
        attempts=1,
        first_at=now,
        **values,
    )
    f = ingest_failures.c
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["connection_id", "external_id"],
            set_={
                **values,
                # a new episode when the last one was resolved
                "first_at": case((f.resolved_at.is_(None), f.first_at), else_=now),
                "attempts": case((f.resolved_at.is_(None), f.attempts + 1), else_=1),
                "resolved_at": None,
            },
        )
    )


def _superseded() -> Any:
    """Whether a version of the order other than the one an ``ingest_failures`` row refused has been
    written since (a later version, stored whole)."""
    f = ingest_failures.c
    return (
        select(orders.c.id)
        .where(
            orders.c.connection_id == f.connection_id,
            orders.c.external_id == f.external_id,
            orders.c.content_hash != f.content_hash,
            orders.c.updated_at >= f.last_at,
        )
        .exists()
    )


def ingest_failures_open(conn: Connection, connection_id: int, limit: int = 3) -> tuple[int, list[dict[str, Any]]]:
    """How many orders of a connection the database refused are still refused (not resolved, not
    superseded), and the newest few (external id, number, stage, kind, error) — for health."""
    f = ingest_failures.c
    where = (f.connection_id == connection_id, f.resolved_at.is_(None), ~_superseded())
    n = int(conn.execute(select(func.count()).select_from(ingest_failures).where(*where)).scalar_one())
    if not n or not limit:
        return n, []
    rows = [
        dict(r._mapping)
        for r in conn.execute(
            select(f.external_id, f.number, f.stage, f.kind, f.error)
            .where(*where)
            .order_by(f.last_at.desc(), f.id.desc())
            .limit(limit)
        )
    ]
    return n, rows


def quarantined(conn: Connection, tenant_id: int) -> list[tuple[str, int, str, list[str]]]:
    """Open quarantined orders (refused even in a minimal form: not in ``orders``) grouped by kind
    of refusal: (kind, how many, the newest one's error, a few external ids with their channel)."""
    f = ingest_failures.c
    where = (f.tenant_id == tenant_id, f.stage == "quarantined", f.resolved_at.is_(None), ~_superseded())
    groups = []
    for kind, n in conn.execute(
        select(f.kind, func.count()).where(*where).group_by(f.kind).order_by(func.count().desc(), f.kind)
    ):
        rows = conn.execute(
            select(f.external_id, f.number, f.error, connections.c.name)
            .join(connections, connections.c.id == f.connection_id)
            .where(*where, f.kind == kind)
            .order_by(f.last_at.desc(), f.id.desc())
            .limit(3)
        ).all()
        examples = [f"{r.number or r.external_id} ({r.name} id {r.external_id})" for r in rows]
        groups.append((str(kind), int(n), str(rows[0].error) if rows else "", examples))
    return groups


def resolve_ingest_failures(conn: Connection, connection_id: int, now: datetime) -> int:
    """Close a connection's failures whose order has since been stored whole; returns how many."""
    f = ingest_failures.c
    done = conn.execute(
        update(ingest_failures)
        .where(f.connection_id == connection_id, f.resolved_at.is_(None), _superseded())
        .values(resolved_at=now)
    )
    return int(done.rowcount)


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
