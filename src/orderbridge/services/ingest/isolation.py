"""Poison-pill isolation: an order the database refuses is stored in a minimal form and held, or
quarantined, and its refusal is kept in ``ingest_failures`` until a later version is stored whole.

See the package docstring (decision 43). :func:`store_refused` is called by the writer for each
order the database still refuses on its own; the listing functions feed ``holds`` and ``health``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import orjson
import structlog
from sqlalchemy import Connection, case, func, null, select, update

from orderbridge.connectors.base import ChannelRecord
from orderbridge.domain import reasons as R
from orderbridge.domain.events import EventKind
from orderbridge.domain.pipeline import Decision
from orderbridge.domain.states import OrderState, is_evaluable
from orderbridge.domain.versions import Verdict, judge
from orderbridge.services.ingest.context import ChannelContext, IngestCounts
from orderbridge.services.ingest.rows import raw_hash, row_values
from orderbridge.services.ledger import Outcome, add_events, apply_decisions, decision_text, event_row
from orderbridge.storage.db import dialect_insert
from orderbridge.storage.refusals import REFUSAL_ERRORS, Refusal, raw_bytes, refusal, storable, storable_text
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.tables import connections, ingest_failures, orders

log = structlog.get_logger("orderbridge.ingest")


#: how long a stored order number may be (the minimal form of a refused order is cut to it)
_NUMBER_LENGTH: int = getattr(orders.c.number.type, "length", None) or 100


def store_refused(
    conn: Connection,
    tenant_id: int,
    ctx: ChannelContext,
    rec: ChannelRecord,
    now: datetime,
    found: Refusal,
    *,
    authoritative: bool,
) -> IngestCounts | None:
    """Store an order the database refused as sent in its minimal form and hold it, or, when even
    that is refused, quarantine it (see the module docstring). Never raises for the row's values.
    ``None`` when another writer stored a version meanwhile: the caller compares against what it wrote."""
    counts = IngestCounts()
    ext = rec.external_id
    log.warning("ingest.refused", connection_id=ctx.row.id, external_id=ext, kind=found.kind, error=found.detail)
    rewritten: list[str] = []
    raw_value = _storable_raw(rec, rewritten)
    try:  # the hash of the version refused: meeting it again is "unchanged", not another refusal
        content_hash = str(row_values(rec)["content_hash"])
    except (UnicodeEncodeError, OverflowError, orjson.JSONEncodeError):  # its content cannot even be serialised
        content_hash = raw_hash(raw_value)
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
    """The minimal form of a refused order (see :func:`store_refused`); ``None`` when another
    writer stored the order first (the caller compares again)."""
    counts = IngestCounts()
    ext = rec.external_id
    number = storable_text(rec.number or ext, _NUMBER_LENGTH)
    name = ctx.row.name
    cur = order_repo.existing(conn, ctx.row.id, [ext]).get(ext)
    if cur is None:
        kept = f"the ledger keeps its id, number and raw payload{escaped}, and holds it"
        reason = R.storage_refused(found.kind, found.database, found.detail, kept=kept)
        oid = order_repo.insert_one(
            conn,
            {
                "tenant_id": tenant_id,
                "connection_id": ctx.row.id,
                "external_id": ext,
                "state": OrderState.HELD.value,
                "version": 1,
                "received_at": now,
                "updated_at": now,
                "number": number,
                "content_hash": content_hash,
                "channel_created_at": getattr(rec, "created_at", None),
                "channel_updated_at": rec.updated_at,
                "raw": raw_value,
            },
            now=now,
        )
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
        verdict = judge(rec.updated_at, content_hash, cur["channel_updated_at"], cur["content_hash"])
        if verdict is Verdict.STALE:
            counts.stale += 1
            return counts
        if verdict is Verdict.UNCHANGED:
            counts.unchanged += 1
            return counts
        if verdict is Verdict.TIE and not authoritative:
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
        if not order_repo.write_version(conn, oid, cur["version"], columns):
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
        oid = order_repo.id_by_external(conn, ctx.row.id, ext)
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
                f"({found.database}: {error}); its raw payload is kept in quarantine — the holds list it",
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
    stmt = dialect_insert(conn)(ingest_failures).values(
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
