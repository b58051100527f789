"""Watching the files a file-export destination delivered (``WATCH_DELIVERIES``): seed 002's blind
spot — a package that imports files says nothing to the hub, so the hub reads what it did.

One run, for one destination, under the ``deliveries:<id>`` lease: the connector lists every file
it wrote with its fate now (:meth:`~orderbridge.connectors.base.WatchedDestination.watch_deliveries`);
each file's orders are found through the posting ledger (the file's idempotency keys → the postings
still ``posted`` there with that file's document id — an order re-posted to another file since is
not this file's any more). Then, in one transaction per file:

- **imported** (moved, deleted, acknowledged): an ``export_imported`` event per order, once; an
  ``export_not_picked_up`` hold on it is released, and an order held by nothing else goes back to
  ``posted`` (through ``ready``, guarded like the poster's move: posted only where every
  destination has the version).
- **rejected** (an error file): the postings go ``posted → rejected`` (the document never entered
  the package) and the orders are held with the package's own message (``destination_rejected``,
  via :func:`~orderbridge.domain.reasons.export_rejected`): the order page, the inbox groups and the
  hold alerts show it like any rejection, and a retry ("reset to pending") writes it to a new file.
- **waiting** past its ``due_by``: the orders are held ``export_not_picked_up`` with the fix, once.

Every step is idempotent — reading the same fates twice changes nothing — so the job can run as
often as the worker likes, and a crash between two files loses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import structlog
from sqlalchemy import Connection, select

from orderbridge.connectors.base import Capability, Delivery, DeliveryFate, Role, WatchedDestination
from orderbridge.domain import reasons as R
from orderbridge.domain.events import EventKind
from orderbridge.domain.reasons import HoldCode, Reason
from orderbridge.domain.states import OrderState, PostingState
from orderbridge.errors import InvalidInput, OrderBridgeError
from orderbridge.services.health import record_failure, record_success
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.ledger import add_events, event_row
from orderbridge.services.scope import Scope
from orderbridge.storage.leases import held
from orderbridge.storage.repos import order_reasons as reason_repo
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.repos import postings as posting_repo
from orderbridge.storage.tables import events, orders, postings

log = structlog.get_logger("orderbridge.deliveries")


@dataclass
class DeliveryReport:
    connection: str
    files: int = 0
    waiting: int = 0
    imported: int = 0
    rejected: int = 0
    overdue: int = 0
    released: int = 0
    error: OrderBridgeError | None = None
    listing: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection": self.connection,
            "files": self.files,
            "waiting": self.waiting,
            "imported": self.imported,
            "rejected": self.rejected,
            "overdue": self.overdue,
            "released": self.released,
            "error": None if self.error is None else {"code": self.error.code, "message": str(self.error)},
        }


@dataclass(frozen=True, slots=True)
class FileOrder:
    posting_id: int
    order_id: int
    number: str
    state: OrderState
    #: the posting carries the order's current version
    current: bool = True


def _watched(scope: Scope, destination_id: int) -> tuple[ConnectionRow, WatchedDestination]:
    row = scope.load(destination_id)
    if row.role is not Role.DESTINATION or not row.can(Capability.WATCH_DELIVERIES):
        raise InvalidInput(f"{row.name!r} ({row.kind}) delivers no files to watch")
    return row, cast(WatchedDestination, scope.destination(row))


def require_watched(scope: Scope, destination_id: int) -> None:
    """Refuse (``InvalidInput``, with the reason) a connection whose kind delivers no files."""
    _watched(scope, destination_id)


def status(scope: Scope, destination_id: int) -> list[dict[str, Any]]:
    """Read only: each file the destination wrote, its fate now and its orders (``export status``)."""
    row, connector = _watched(scope, destination_id)
    now = scope.now()
    out = []
    deliveries = connector.watch_deliveries()
    with scope.read() as conn:
        for d in sorted(deliveries, key=lambda d: d.written_at):
            found = _orders_of(conn, row, d)
            out.append(
                {
                    "file": d.file,
                    "written_at": d.written_at,
                    "due_by": d.due_by,
                    "fate": d.fate.value,
                    "overdue": d.fate is DeliveryFate.WAITING and now > d.due_by,
                    "message": d.message,
                    "orders": [f.number for f in found],
                }
            )
    return out


def watch_deliveries(scope: Scope, destination_id: int) -> DeliveryReport:
    """Read the fate of every file the destination delivered and record it (see the module)."""
    row = scope.load(destination_id)
    report = DeliveryReport(row.name)
    with held(scope.db, f"deliveries:{row.id}", scope.settings.lease_ttl_s, scope.now):
        try:
            row, connector = _watched(scope, destination_id)
            deliveries = connector.watch_deliveries()
            for d in deliveries:
                report.files += 1
                with scope.db.transaction() as conn:
                    _settle(conn, scope, row, d, report)
        except OrderBridgeError as exc:
            report.error = exc
            log.warning("deliveries.failed", **scope.log_fields(row), code=exc.code, error=str(exc))
            record_failure(scope, row, exc, job="deliveries")
        else:
            record_success(scope, row, job="deliveries")
    return report


def _orders_of(conn: Connection, row: ConnectionRow, d: Delivery) -> list[FileOrder]:
    """The orders ``d`` carries that are still the file's: posted there under its document id."""
    if not d.keys:
        return []
    prefix = f"{d.file}#"
    found = []
    for i in range(0, len(d.keys), 500):
        for pid, oid, doc, number, state, current in conn.execute(
            select(
                postings.c.id,
                postings.c.order_id,
                postings.c.document_id,
                orders.c.number,
                orders.c.state,
                postings.c.order_version == orders.c.version,
            )
            .join(orders, orders.c.id == postings.c.order_id)
            .where(
                postings.c.destination_id == row.id,
                postings.c.idempotency_key.in_(d.keys[i : i + 500]),
                postings.c.status == PostingState.POSTED.value,
            )
        ):
            if str(doc or "").startswith(prefix):
                found.append(FileOrder(int(pid), int(oid), str(number), OrderState(state), bool(current)))
    return found


def _settle(conn: Connection, scope: Scope, row: ConnectionRow, d: Delivery, report: DeliveryReport) -> None:
    now = scope.now()
    found = _orders_of(conn, row, d)
    if d.fate is DeliveryFate.IMPORTED:
        report.imported += 1
        _imported(conn, scope, row, d, found, now, report)
    elif d.fate is DeliveryFate.REJECTED:
        report.rejected += 1
        _rejected(conn, scope, row, d, found, now)
    else:
        report.waiting += 1
        if now > d.due_by:
            report.overdue += 1
            hours = (d.due_by - d.written_at).total_seconds() / 3600
            _hold(conn, scope, found, R.export_not_picked_up(row.name, d.file, hours), now)


def _imported(
    conn: Connection,
    scope: Scope,
    row: ConnectionRow,
    d: Delivery,
    found: Sequence[FileOrder],
    now: datetime,
    report: DeliveryReport,
) -> None:
    if not found:
        return
    ids = [f.order_id for f in found]
    told = {
        int(oid)
        for (oid, data) in conn.execute(
            select(events.c.order_id, events.c.data).where(
                events.c.order_id.in_(ids), events.c.kind == EventKind.EXPORT_IMPORTED.value
            )
        )
        if isinstance(data, dict) and data.get("file") == d.file
    }
    add_events(
        conn,
        [
            event_row(
                scope.tenant_id,
                f.order_id,
                EventKind.EXPORT_IMPORTED,
                now,
                f"imported by the package from {row.name}: file {d.file} ({d.message})",
                destination=row.name,
                file=d.file,
            )
            for f in found
            if f.order_id not in told
        ],
    )
    # the late file is taken: its "not picked up" hold goes, and an order held by nothing else is posted again
    open_reasons = reason_repo.open_for_orders(conn, ids)
    late = (HoldCode.EXPORT_NOT_PICKED_UP.value, row.name)
    freed: list[int] = []
    for f in found:
        reasons = open_reasons.get(f.order_id, {})
        if late not in reasons:
            continue
        reason_repo.release(conn, [reasons[late]], now)
        report.released += 1
        if f.state is OrderState.HELD and len(reasons) == 1:
            freed.append(f.order_id)
    # an order released meanwhile by something else (a retry re-ran the pipeline: ready, with its
    # current version already in this file) is posted too — never left ready with nothing to post
    ready = [f.order_id for f in found if f.state is OrderState.READY and f.current]
    if freed or ready:
        n_destinations = len(scope.connections(conn, Role.DESTINATION))
        released = event_row(scope.tenant_id, None, EventKind.RELEASED, now, "released: the file was picked up")
        order_repo.transition(
            conn,
            [
                order_repo.Move(oid, OrderState.HELD, OrderState.READY, ({**released, "order_id": oid},))
                for oid in freed
            ],
            now,
            leave_others=True,
        )
        order_repo.transition(
            conn,
            [order_repo.Move(oid, OrderState.READY, OrderState.POSTED) for oid in [*freed, *ready]],
            now,
            guard="posted_everywhere",
            params={"n": n_destinations},
        )


def _rejected(
    conn: Connection, scope: Scope, row: ConnectionRow, d: Delivery, found: Sequence[FileOrder], now: datetime
) -> None:
    if not found:
        return
    reason = R.export_rejected(row.name, d.file, d.message)
    moved = set(posting_repo.reject_delivered(conn, [f.posting_id for f in found], reason.message))
    posting_repo.add_attempts(
        conn,
        scope.tenant_id,
        [(f.posting_id, "rejected", reason.message, None) for f in found if f.posting_id in moved],
        now,
    )
    # a "not picked up" hold is over: the package did take the file, and refused it
    open_reasons = reason_repo.open_for_orders(conn, [f.order_id for f in found])
    late = (HoldCode.EXPORT_NOT_PICKED_UP.value, row.name)
    reason_repo.release(conn, [r[late] for r in open_reasons.values() if late in r], now)
    _hold(conn, scope, [f for f in found if f.posting_id in moved], reason, now)


def _hold(conn: Connection, scope: Scope, found: Sequence[FileOrder], reason: Reason, now: datetime) -> None:
    """Hold each order with ``reason`` unless it already has it open: posted (or ready) → held.
    Fulfilled, closed or cancelled orders are not the file's to hold (an open reason always goes
    with ``held``, which the hold groups count)."""
    holdable = [f for f in found if f.state in (OrderState.POSTED, OrderState.READY, OrderState.HELD)]
    if not holdable:
        return
    open_reasons = reason_repo.open_for_orders(conn, [f.order_id for f in holdable])
    new = [f for f in holdable if reason.key not in open_reasons.get(f.order_id, {})]
    reason_repo.add(
        conn, [reason_repo.reason_row(scope.tenant_id, f.order_id, reason_repo.HOLD, reason, now) for f in new]
    )
    moves = [
        order_repo.Move(
            f.order_id,
            f.state,
            OrderState.HELD,
            (
                event_row(
                    scope.tenant_id, f.order_id, EventKind.HELD, now, "held: " + reason.message, codes=[reason.code]
                ),
            ),
        )
        for f in new
    ]
    if moves:
        order_repo.transition(conn, moves, now)
