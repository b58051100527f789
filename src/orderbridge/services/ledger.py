"""Ledger helpers shared by ingest, mappings, posting and back-sync.

``destination_policy`` and ``download_rules`` are the pipeline's inputs read from a connection:
what a destination requires, and which of a channel's orders to download.

``apply_decisions`` is the one place an order's pipeline outcome is written: the state, the open
reasons (released ones get ``released_at``, never deleted) and the timeline events — so a release
caused by a new mapping and a decision made at ingest leave the same trail.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from orderbridge.domain.events import EventKind
from orderbridge.domain.mappings import DestinationPolicy, MappingKind, ServiceRef
from orderbridge.domain.pipeline import Decision
from orderbridge.domain.reasons import Reason
from orderbridge.domain.rules import DownloadRules
from orderbridge.domain.states import OrderState, check_transition
from orderbridge.errors import InvalidInput
from orderbridge.fixes import edit_download_rules
from orderbridge.services.hub import ConnectionRow
from orderbridge.storage.db import insert_rows
from orderbridge.storage.tables import events, mappings, order_reasons, orders


def destination_policy(conn: Connection, row: ConnectionRow) -> DestinationPolicy:
    """What the destination needs of an order: the mapping kinds its kind declares (with the
    mappings set for it) and its mapping and required-field settings (stored, else the kind's
    defaults). A mapping kind the destination does not declare is neither required nor applied."""
    decl = row.declaration
    wants_sku = MappingKind.SKU in decl.mapping_kinds
    wants_shipping = MappingKind.SHIPPING in decl.mapping_kinds
    sku_map: dict[str, str] = {}
    shipping_map: dict[str, ServiceRef] = {}
    if decl.mapping_kinds:
        for kind, source, target in conn.execute(
            select(mappings.c.kind, mappings.c.source_value, mappings.c.target_value).where(
                mappings.c.destination_id == row.id
            )
        ):
            if kind == MappingKind.SKU and wants_sku:
                sku_map[source] = target
            elif kind == MappingKind.SHIPPING and wants_shipping:
                shipping_map[source] = ServiceRef.parse(target)
    return DestinationPolicy(
        name=row.name,
        sku_map=sku_map,
        shipping_map=shipping_map,
        sku_mapping_required=wants_sku and row.hub_setting("sku_mapping") == "required",
        shipping_mapping_required=wants_shipping and row.hub_setting("shipping_mapping") == "required",
        required_fields=tuple(row.hub_setting("required_fields") or ()),
    )


def download_rules(row: ConnectionRow) -> DownloadRules:
    """The connection's rules over its kind's declared defaults (a rule it leaves out keeps the kind's)."""
    try:
        return row.declaration.download_rules(row.settings.get("download_rules"))
    except ValueError as exc:
        raise InvalidInput(
            f"connection {row.name!r} has invalid download rules: {exc}",
            hint="Correct the connection's download_rules setting.",
            fix=edit_download_rules("Correct the connection's download rules.", row.name),
        ) from exc


@dataclass
class Outcome:
    order_id: int
    previous: OrderState | None
    decision: Decision


def event_row(
    tenant_id: int, order_id: int | None, kind: EventKind, at: datetime, message: str, **data: Any
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "order_id": order_id,
        "connection_id": data.pop("connection_id", None),
        "kind": kind.value,
        "at": at,
        "message": message,
        "data": data or None,
    }


EVENT_COLUMNS = ("tenant_id", "order_id", "connection_id", "kind", "at", "message", "data")


def add_events(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Append timeline events (rows as built by :func:`event_row`) with one driver executemany."""
    if rows:
        insert_rows(conn, events, EVENT_COLUMNS, [tuple([r.get(c) for c in EVENT_COLUMNS]) for r in rows])


def decision_text(d: Decision) -> str:
    if d.state is OrderState.READY:
        return "ready to post"
    return f"{d.state.value}: " + _reason_text(d.reasons)


def _reason_text(reasons: Iterable[Reason]) -> str:
    return "; ".join(r.message for r in reasons)


def apply_decisions(conn: Connection, tenant_id: int, outcomes: Sequence[Outcome], now: datetime) -> None:
    """Write states, reasons and events for pipeline outcomes (new or re-evaluated orders)."""
    if not outcomes:
        return
    reevaluated = [o.order_id for o in outcomes if o.previous is not None]
    open_by_order: dict[int, dict[tuple[str, str], int]] = {}
    if reevaluated:
        for rid, oid, code, value in conn.execute(
            select(order_reasons.c.id, order_reasons.c.order_id, order_reasons.c.code, order_reasons.c.value).where(
                order_reasons.c.order_id.in_(reevaluated), order_reasons.c.released_at.is_(None)
            )
        ):
            open_by_order.setdefault(oid, {})[(code, value)] = rid
    new_reasons: list[dict[str, Any]] = []
    released: list[int] = []
    event_rows: list[dict[str, Any]] = []
    by_state: dict[str, list[int]] = {}
    for o in outcomes:
        d = o.decision
        kind = "skip" if d.state is OrderState.SKIPPED else "hold"
        wanted = {r.key: r for r in d.reasons}
        current = open_by_order.get(o.order_id, {})
        gone = [rid for key, rid in current.items() if key not in wanted]
        released.extend(gone)
        for key, reason in wanted.items():
            if key not in current:
                new_reasons.append(
                    {
                        "tenant_id": tenant_id,
                        "order_id": o.order_id,
                        "kind": kind,
                        "code": reason.code,
                        "value": reason.value,
                        "message": reason.message,
                        "fix": reason.fix,
                        "created_at": now,
                    }
                )
        if o.previous is d.state and not gone and len(wanted) == len(current):
            continue
        if o.previous is None:
            continue  # new orders: state set at insert, decision told by their "received" event
        check_transition(o.previous, d.state)
        by_state.setdefault(d.state.value, []).append(o.order_id)
        if gone:
            event_rows.append(
                event_row(tenant_id, o.order_id, EventKind.RELEASED, now, f"released: {len(gone)} reason(s) resolved")
            )
        if d.state is OrderState.SKIPPED:
            event_rows.append(
                event_row(
                    tenant_id,
                    o.order_id,
                    EventKind.SKIPPED,
                    now,
                    "skipped: " + _reason_text(d.reasons),
                    codes=[r.code for r in d.reasons],
                )
            )
        elif d.state is OrderState.HELD:
            event_rows.append(
                event_row(
                    tenant_id,
                    o.order_id,
                    EventKind.HELD,
                    now,
                    "held: " + _reason_text(d.reasons),
                    codes=[r.code for r in d.reasons],
                )
            )
        elif d.state is OrderState.READY:
            event_rows.append(event_row(tenant_id, o.order_id, EventKind.READY, now, "ready to post"))
    for state, ids in by_state.items():
        for chunk in _chunks(ids, 500):
            conn.execute(update(orders).where(orders.c.id.in_(chunk)).values(state=state, updated_at=now))
    for chunk in _chunks(released, 500):
        conn.execute(update(order_reasons).where(order_reasons.c.id.in_(chunk)).values(released_at=now))
    if new_reasons:
        conn.execute(insert(order_reasons), new_reasons)
    add_events(conn, event_rows)


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
