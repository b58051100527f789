"""Ledger helpers shared by ingest, mappings, posting and back-sync.

``destination_policy`` and ``download_rules`` are the pipeline's inputs read from a connection:
what a destination requires, and which of a channel's orders to download.

``apply_decisions`` is the one place an order's pipeline outcome is written: the state (through
the order state writer, :func:`orderbridge.storage.repos.orders.transition`, which checks the move
and appends its events), the open reasons (released ones get ``released_at``, never deleted) and
the timeline events — so a release caused by a new mapping and a decision made at ingest leave the
same trail. The statements themselves live in ``storage/repos/``; ``add_events`` and
``event_row`` are the timeline's (``storage/repos/events.py``), named here for the services.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from orderbridge.domain.events import EventKind
from orderbridge.domain.mappings import DestinationPolicy, MappingKind, ServiceRef
from orderbridge.domain.pipeline import Decision
from orderbridge.domain.reasons import Reason
from orderbridge.domain.rules import DownloadRules
from orderbridge.domain.states import OrderState
from orderbridge.errors import InvalidInput
from orderbridge.fixes import edit_download_rules
from orderbridge.services.hub import ConnectionRow
from orderbridge.storage.repos import order_reasons
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.repos.events import EVENT_COLUMNS, event_row
from orderbridge.storage.repos.events import append as add_events
from orderbridge.storage.tables import mappings

__all__ = [
    "EVENT_COLUMNS",
    "Outcome",
    "add_events",
    "apply_decisions",
    "decision_text",
    "destination_policy",
    "download_rules",
    "event_row",
    "idempotency_key",
]


def idempotency_key(order_id: int, destination_id: int, version: int) -> str:
    """A posting's idempotency key: one per order version and destination (the poster's, and the
    pre-flight's for the order it checks)."""
    return f"{order_id}:{destination_id}:v{version}"


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
    open_by_order = order_reasons.open_for_orders(conn, reevaluated) if reevaluated else {}
    new_reasons: list[dict[str, Any]] = []
    released: list[int] = []
    moves: list[order_repo.Move] = []
    for o in outcomes:
        d = o.decision
        kind = order_reasons.SKIP if d.state is OrderState.SKIPPED else order_reasons.HOLD
        wanted = {r.key: r for r in d.reasons}
        current = open_by_order.get(o.order_id, {})
        gone = [rid for key, rid in current.items() if key not in wanted]
        released.extend(gone)
        new_reasons.extend(
            order_reasons.reason_row(tenant_id, o.order_id, kind, reason, now)
            for key, reason in wanted.items()
            if key not in current
        )
        if o.previous is d.state and not gone and len(wanted) == len(current):
            continue
        if o.previous is None:
            continue  # new orders: state set at insert, decision told by their "received" event
        told: list[dict[str, Any]] = []
        if gone:
            told.append(
                event_row(tenant_id, o.order_id, EventKind.RELEASED, now, f"released: {len(gone)} reason(s) resolved")
            )
        if d.state is OrderState.SKIPPED:
            told.append(
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
            told.append(
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
            told.append(event_row(tenant_id, o.order_id, EventKind.READY, now, "ready to post"))
        moves.append(order_repo.Move(o.order_id, o.previous, d.state, tuple(told)))
    order_repo.transition(conn, moves, now)
    order_reasons.release(conn, released, now)
    order_reasons.add(conn, new_reasons)
