"""Back-sync: shipments from destinations → fulfilments on the channel.

Two steps, each idempotent:

- ``poll_shipments``: read the destination's shipments from its cursor (minus overlap) and upsert
  them on ``(destination, external id)``; link each to its order through the posting's
  ``order_key``. A voided label updates the row (``voided``) and is never pushed.
- ``push_fulfilments``: for each shipment without a push, validate it (tracking number, carrier,
  and every line matched to a line of the order — :func:`~orderbridge.domain.shipments.fulfilment_lines`;
  an unmatched line holds the push naming it, and a push is never widened to the whole order);
  what cannot be sent is ``held`` with the reason and re-validated when the shipment changes.
  Otherwise a ``pending`` push row is committed *before* the channel call (the unique
  ``shipment_id`` makes it the only one), and the channel connector is asked to create the
  fulfilment idempotently (it first looks for an existing fulfilment with the same tracking
  number and lines, so a resend after a crash does not fulfil twice). A reshipment after a voided,
  already pushed label updates that fulfilment's tracking instead of creating another.

Unknown outcomes. A push whose answer was lost (timeout, truncated body, reset: the connector's
``OutcomeUnknown``) is ``unknown``; one left ``pending`` by a killed process may have been sent too.
Neither is sent again blindly: the next run first *reads* the channel (``find_fulfilment``) and, when
the fulfilment is there, records it — no second fulfilment, no false "nothing left to fulfil" hold.
Only when it is still absent ``unknown_outcome_settle_s`` after the attempt (long enough for a request
still running at the channel to have landed) is it sent again. A failure known not to have reached
the channel (refused connection, rate limit, the read before the create) is ``retry``: sent next run.

When every line the destination was asked to ship (the ``posted`` event's quantities: what was left
to fulfil when it was posted) is covered by non-voided pushed shipments the order becomes
``fulfilled``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import structlog
from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from orderbridge.connectors.base import (
    Capability,
    FulfilmentChannel,
    FulfilmentLine,
    FulfilmentRequest,
    Role,
    ShipmentSource,
)
from orderbridge.domain.canonical import order_from_json
from orderbridge.domain.events import EventKind
from orderbridge.domain.shipments import Shipment, ShipmentLine, fulfilment_lines, push_hold_reasons
from orderbridge.domain.states import OrderState
from orderbridge.errors import HoldOrder, InvalidInput, OrderBridgeError, OutcomeUnknown
from orderbridge.seams import crashpoint
from orderbridge.services.health import needs_recovery, record_failure, record_success
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.ledger import add_events, event_row
from orderbridge.services.scope import Scope
from orderbridge.storage.leases import held
from orderbridge.storage.repos.cursors import read_cursor, since_with_overlap, write_cursor
from orderbridge.storage.tables import events, fulfilment_pushes, orders, postings, shipments

log = structlog.get_logger("orderbridge.backsync")


@dataclass
class BackSyncReport:
    connection: str
    shipments_new: int = 0
    shipments_updated: int = 0
    pushed: int = 0
    held: int = 0
    voided: int = 0
    #: pushes whose outcome is still unknown (not found in the channel yet, inside the settle window)
    unsettled: int = 0
    error: OrderBridgeError | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "shipments_new": self.shipments_new,
            "shipments_updated": self.shipments_updated,
            "pushed": self.pushed,
            "held": self.held,
            "voided": self.voided,
            "unsettled": self.unsettled,
            "error": None if self.error is None else {"code": self.error.code, "message": str(self.error)},
        }


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def poll_shipments(scope: Scope, destination_id: int) -> BackSyncReport:
    """Read new and changed shipments from the tenant's destination ``destination_id``."""
    row = scope.load(destination_id)
    destination = row.name
    if row.role is not Role.DESTINATION:
        raise InvalidInput(f"{destination!r} is not a destination; shipments come from destinations")
    if not row.can(Capability.LIST_SHIPMENTS):
        raise InvalidInput(f"{destination!r} ({row.kind}) does not list shipments; nothing is read back from it")
    report = BackSyncReport(destination)
    connector = cast(ShipmentSource, scope.destination(row))
    with held(scope.db, f"shipments:{row.id}", scope.settings.lease_ttl_s, scope.now):
        with scope.db.read() as conn:
            cursor = read_cursor(conn, row.id, "shipments")
        try:
            for batch in connector.list_shipments(since_with_overlap(cursor, scope.settings.cursor_overlap_s)):
                now = scope.now()
                with scope.db.transaction() as conn:
                    for shipment in batch.shipments:
                        _upsert_shipment(conn, scope.tenant_id, row, shipment, now, report)
                    if batch.cursor_after is not None:
                        write_cursor(conn, scope.tenant_id, row.id, batch.cursor_after, now, "shipments")
        except OrderBridgeError as exc:
            report.error = exc
            record_failure(scope, row, exc, job="shipments")
        else:
            record_success(scope, row, job="shipments")
    return report


def _shipment_values(s: Shipment) -> dict[str, Any]:
    return {
        "tracking_number": s.tracking_number,
        "carrier": s.carrier,
        "service": s.service,
        "tracking_url": s.tracking_url,
        "ship_date": s.ship_date,
        "voided": s.voided,
        "lines": [{"line_key": ln.line_key, "sku": ln.sku, "quantity": ln.quantity} for ln in s.lines],
    }


def _upsert_shipment(
    conn: Connection, tenant_id: int, row: ConnectionRow, s: Shipment, now: datetime, report: BackSyncReport
) -> None:
    values = _shipment_values(s)
    existing = conn.execute(
        select(shipments).where(shipments.c.destination_id == row.id, shipments.c.external_id == s.external_id)
    ).one_or_none()
    order_id = conn.execute(
        select(postings.c.order_id)
        .where(postings.c.destination_id == row.id, postings.c.order_key == s.order_key)
        .limit(1)
    ).scalar_one_or_none()
    if existing is None:
        result = conn.execute(
            _insert(conn)(shipments)
            .values(
                tenant_id=tenant_id,
                destination_id=row.id,
                order_id=order_id,
                external_id=s.external_id,
                order_key=s.order_key,
                received_at=now,
                updated_at=now,
                **values,
            )
            .on_conflict_do_nothing(index_elements=["destination_id", "external_id"])
        )
        if result.rowcount:
            report.shipments_new += 1
            add_events(
                conn,
                [
                    event_row(
                        tenant_id,
                        order_id,
                        EventKind.SHIPMENT_RECEIVED,
                        now,
                        f"shipment {s.external_id} from {row.name}: {s.carrier or '?'} "
                        f"{s.tracking_number or '(no tracking)'}" + (" (voided)" if s.voided else ""),
                        shipment=s.external_id,
                        connection_id=row.id,
                    )
                ],
            )
        return
    changed = {k: v for k, v in values.items() if existing._mapping[k] != v}
    if not changed:
        return
    report.shipments_updated += 1
    conn.execute(update(shipments).where(shipments.c.id == existing.id).values(updated_at=now, **changed))
    if changed.get("voided"):
        report.voided += 1
        add_events(
            conn,
            [
                event_row(
                    tenant_id,
                    existing.order_id,
                    EventKind.SHIPMENT_VOIDED,
                    now,
                    f"label {s.tracking_number} of shipment {s.external_id} was voided",
                    shipment=s.external_id,
                )
            ],
        )
    # a held push is re-validated with the new data
    conn.execute(
        update(fulfilment_pushes)
        .where(fulfilment_pushes.c.shipment_id == existing.id, fulfilment_pushes.c.status == "held")
        .values(status="recheck", updated_at=now)
    )


def push_fulfilments(scope: Scope, channel_id: int) -> BackSyncReport:
    """Push the shipments of the tenant's channel ``channel_id``'s orders back to it as fulfilments."""
    row = scope.load(channel_id)
    channel = row.name
    if row.role is not Role.CHANNEL:
        raise InvalidInput(f"{channel!r} is not a channel; fulfilments are pushed to channels")
    if not row.can(Capability.PUSH_FULFILMENT):
        raise InvalidInput(f"{channel!r} ({row.kind}) does not accept fulfilments; nothing is pushed to it")
    report = BackSyncReport(channel)
    connector = cast(FulfilmentChannel, scope.channel(row))
    with held(scope.db, f"push:{row.id}", scope.settings.lease_ttl_s, scope.now):
        try:
            for item in _work(scope, row):
                _push_one(scope, row, connector, item, report)
        except OrderBridgeError as exc:
            report.error = exc
            record_failure(scope, row, exc, job="push")
        else:
            if report.pushed or needs_recovery(scope, row, "push"):
                record_success(scope, row, job="push")
    return report


#: push statuses with work left: sent or maybe sent (pending, unknown), to re-check, or to resend
_TO_DO = ("pending", "unknown", "recheck", "retry")
#: statuses whose send may have reached the channel: read it before anything is sent again
_MAYBE_SENT = ("pending", "unknown")


def _work(scope: Scope, row: ConnectionRow) -> list[Any]:
    """Shipments of this channel's orders with no push yet, or whose push must be re-checked/resent."""
    with scope.db.read() as conn:
        q = (
            select(
                shipments,
                fulfilment_pushes.c.id.label("push_id"),
                fulfilment_pushes.c.status.label("push_status"),
                fulfilment_pushes.c.updated_at.label("push_updated_at"),
                orders.c.external_id.label("order_external_id"),
                orders.c.canonical,
            )
            .join(orders, orders.c.id == shipments.c.order_id)
            .outerjoin(fulfilment_pushes, fulfilment_pushes.c.shipment_id == shipments.c.id)
            .where(
                orders.c.connection_id == row.id,
                (fulfilment_pushes.c.id.is_(None)) | (fulfilment_pushes.c.status.in_(_TO_DO)),
            )
            .order_by(shipments.c.id)
        )
        return list(conn.execute(q).all())


def _push_one(scope: Scope, row: ConnectionRow, connector: Any, s: Any, report: BackSyncReport) -> None:
    now = scope.now()
    shipment = Shipment(
        s.external_id,
        s.order_key,
        s.tracking_number,
        s.carrier,
        s.service,
        s.ship_date,
        s.voided,
        tuple(ShipmentLine(ln.get("line_key"), ln.get("sku"), int(ln.get("quantity") or 0)) for ln in s.lines),
        s.tracking_url,
    )
    if s.voided:
        if s.push_id is None:
            with scope.db.transaction() as conn:
                conn.execute(
                    insert(fulfilment_pushes).values(
                        tenant_id=scope.tenant_id,
                        shipment_id=s.id,
                        order_id=s.order_id,
                        channel_id=row.id,
                        status="voided",
                        message="label voided before it was pushed; not sent",
                        created_at=now,
                        updated_at=now,
                    )
                )
        return
    order = order_from_json(s.canonical)
    lines, line_problems = fulfilment_lines(shipment, order)
    problems = [*push_hold_reasons(shipment), *line_problems]
    if problems:
        message = "; ".join(p.message for p in problems)
        _hold_push(
            scope,
            row,
            s,
            now,
            report,
            problems[0].code,
            message,
            f"fulfilment push held: {message} — {problems[0].fix.text}",
            [p.code for p in problems],
        )
        return
    # reshipment after a voided label already pushed: update that fulfilment's tracking
    with scope.db.read() as conn:
        replaces = conn.execute(
            select(fulfilment_pushes.c.channel_fulfilment_id)
            .join(shipments, shipments.c.id == fulfilment_pushes.c.shipment_id)
            .where(
                shipments.c.order_id == s.order_id,
                shipments.c.voided.is_(True),
                fulfilment_pushes.c.status == "pushed",
                shipments.c.id != s.id,
            )
            .limit(1)
        ).scalar_one_or_none()
    request = FulfilmentRequest(
        s.order_external_id,
        tuple(FulfilmentLine(key, quantity) for key, quantity in lines),
        s.tracking_number,
        s.carrier,
        tracking_url=s.tracking_url,
        replaces_fulfilment_id=replaces,
    )
    if s.push_status in _MAYBE_SENT and replaces is None:
        # an earlier attempt may have reached the channel: what it holds decides, not a resend
        try:
            found = connector.find_fulfilment(request)
        except HoldOrder as exc:  # the order is gone from the channel, say
            _hold_push(scope, row, s, now, report, exc.code, str(exc), f"{row.name}: {exc}", [exc.code])
            return
        if found is not None:
            _record_pushed(
                scope,
                row,
                s,
                order,
                now,
                report,
                found,
                f"fulfilment {found} found in {row.name} with tracking {s.carrier} {s.tracking_number}: "
                "the earlier attempt reached it and its answer was lost; recorded, not sent again",
            )
            return
        waited = (now - s.push_updated_at).total_seconds() if s.push_updated_at is not None else None
        if waited is not None and waited < scope.settings.unknown_outcome_settle_s:
            report.unsettled += 1
            return
    with scope.db.transaction() as conn:
        _set_push(conn, scope, row, s, now, status="pending", reason_code=None, message="sending", attempt=True)
    crashpoint("push.before_send")
    try:
        fulfilment_id = connector.push_fulfilment(request)
    except HoldOrder as exc:
        code = exc.code if exc.code != HoldOrder.code else "channel_rejected"
        _hold_push(
            scope,
            row,
            s,
            now,
            report,
            code,
            str(exc),
            f"{row.name} rejected the fulfilment: {exc}",
            [code],
        )
        return
    except OrderBridgeError as exc:  # OutcomeUnknown: maybe applied; else answered, or never reached it
        unknown = isinstance(exc, OutcomeUnknown)
        with scope.db.transaction() as conn:
            _set_push(
                conn,
                scope,
                row,
                s,
                scope.now(),
                status="unknown" if unknown else "retry",
                reason_code=exc.code,
                message=(
                    f"outcome unknown: {exc.message}; {row.name} is read before it is sent again"
                    if unknown
                    else f"not sent: {exc.message}; sent again on the next run"
                ),
            )
        raise
    crashpoint("push.after_send")
    _record_pushed(
        scope,
        row,
        s,
        order,
        now,
        report,
        fulfilment_id,
        f"fulfilment {fulfilment_id} pushed to {row.name} with tracking {s.carrier} {s.tracking_number}",
    )


def _record_pushed(
    scope: Scope,
    row: ConnectionRow,
    s: Any,
    order: Any,
    now: datetime,
    report: BackSyncReport,
    fulfilment_id: str,
    message: str,
) -> None:
    with scope.db.transaction() as conn:
        _set_push(conn, scope, row, s, now, status="pushed", reason_code=None, message="", fulfilment_id=fulfilment_id)
        add_events(
            conn,
            [event_row(scope.tenant_id, s.order_id, EventKind.FULFILMENT_PUSHED, now, message, shipment=s.external_id)],
        )
        report.pushed += 1
        _maybe_fulfilled(conn, scope, s.order_id, order, now)


def _hold_push(
    scope: Scope,
    row: ConnectionRow,
    s: Any,
    now: datetime,
    report: BackSyncReport,
    code: str,
    message: str,
    event_message: str,
    codes: list[str],
) -> None:
    """A push that cannot go: held with its reason, on the order's timeline and in the log."""
    with scope.db.transaction() as conn:
        _set_push(conn, scope, row, s, now, status="held", reason_code=code, message=message)
        add_events(
            conn,
            [
                event_row(
                    scope.tenant_id,
                    s.order_id,
                    EventKind.FULFILMENT_PUSH_HELD,
                    now,
                    event_message,
                    shipment=s.external_id,
                    codes=codes,
                )
            ],
        )
    report.held += 1
    log.info("push.held", tenant_id=scope.tenant_id, connection_id=row.id, order_id=s.order_id, reason=message)


def _set_push(
    conn: Connection,
    scope: Scope,
    row: ConnectionRow,
    s: Any,
    now: datetime,
    *,
    status: str,
    reason_code: str | None,
    message: str,
    fulfilment_id: str | None = None,
    attempt: bool = False,
) -> None:
    values: dict[str, Any] = {"status": status, "reason_code": reason_code, "message": message, "updated_at": now}
    if fulfilment_id is not None:
        values["channel_fulfilment_id"] = fulfilment_id
    stmt = _insert(conn)(fulfilment_pushes).values(
        tenant_id=scope.tenant_id,
        shipment_id=s.id,
        order_id=s.order_id,
        channel_id=row.id,
        created_at=now,
        attempts=1 if attempt else 0,
        **values,
    )
    set_ = dict(values)
    if attempt:
        set_["attempts"] = fulfilment_pushes.c.attempts + 1
    conn.execute(stmt.on_conflict_do_update(index_elements=["shipment_id"], set_=set_))


def _maybe_fulfilled(conn: Connection, scope: Scope, order_id: int, order: Any, now: datetime) -> None:
    rows = (
        conn.execute(
            select(shipments.c.lines)
            .join(fulfilment_pushes, fulfilment_pushes.c.shipment_id == shipments.c.id)
            .where(
                shipments.c.order_id == order_id, shipments.c.voided.is_(False), fulfilment_pushes.c.status == "pushed"
            )
        )
        .scalars()
        .all()
    )
    shipped: dict[str, int] = {}
    for lines in rows:
        for ln in lines:
            key = ln.get("line_key") or ln.get("sku") or ""
            shipped[key] = shipped.get(key, 0) + int(ln["quantity"])
    # what the destination was asked to ship; orders posted before posts recorded it: every unit
    asked = _posted_quantities(conn, order_id) or {line.external_id: line.quantity for line in order.lines}
    complete = all(
        shipped.get(line.external_id, 0) + (shipped.get(line.sku, 0) if line.sku else 0)
        >= asked.get(line.external_id, 0)
        for line in order.lines
    )
    if complete:
        n = conn.execute(
            update(orders)
            .where(orders.c.id == order_id, orders.c.state == OrderState.POSTED.value)
            .values(state=OrderState.FULFILLED.value, updated_at=now)
        ).rowcount
        if n:
            add_events(conn, [event_row(scope.tenant_id, order_id, EventKind.FULFILLED, now, "all lines fulfilled")])


def _posted_quantities(conn: Connection, order_id: int) -> dict[str, int] | None:
    """The line quantities the order's last ``posted`` event says the destination was sent, if any."""
    for data in conn.execute(
        select(events.c.data)
        .where(events.c.order_id == order_id, events.c.kind == EventKind.POSTED.value)
        .order_by(events.c.id.desc())
        .limit(1)
    ).scalars():
        if isinstance(data, dict) and isinstance(data.get("lines"), dict):
            return {str(k): int(v) for k, v in data["lines"].items()}
    return None


def pending_push_count(scope: Scope) -> int:
    with scope.db.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(fulfilment_pushes)
                .where(fulfilment_pushes.c.tenant_id == scope.tenant_id, fulfilment_pushes.c.status != "pushed")
            ).scalar_one()
        )
