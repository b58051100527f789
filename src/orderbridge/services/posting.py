"""Posting: ready orders → each destination, exactly once per order version.

The sequence per batch, and why it survives a kill at any instruction:

1. In one transaction, insert a ``postings`` row per order with the idempotency key
   ``<order>:<destination>:v<version>`` (unique in the database) as ``pending``, and append an
   attempt. A re-run finds the same row (``ON CONFLICT DO NOTHING``), never a second one.
2. Send the batch. The destination document is keyed by ``order_key`` (stable per order and
   destination, in the format the destination declares — ``Declaration.document_key``: ShipStation's
   ``orderKey`` upserts), so a resend after a crash between 2 and 3 updates the same document
   instead of creating another.
3. In one transaction, record each result: ``posted`` with the document id (and the order's state
   when every destination has it) and what the connector shortened to fit the destination (one
   timeline event each), or ``rejected`` with the destination's own message, which holds the order
   with ``destination_rejected`` — or with the connector's own reason, when it refused to send.

Transient errors (after the connector's own bounded retries) leave the postings ``pending`` for
the next run and mark the destination ``degraded``; refused credentials mark it ``failing``. In
both cases the orders stay ``ready`` — visible as waiting for that destination — and nothing is
lost.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import and_, bindparam, exists, select

from orderbridge.connectors.base import Capability, OutgoingOrder, PostResult, Role
from orderbridge.domain import reasons as R
from orderbridge.domain.canonical import order_from_json
from orderbridge.domain.events import EventKind
from orderbridge.domain.mappings import DestinationPolicy
from orderbridge.domain.pipeline import NONE_WAIVED, Decision, left_out, open_lines, problems, resolve
from orderbridge.domain.states import OrderState, PostingState
from orderbridge.errors import InvalidInput, OrderBridgeError
from orderbridge.seams import crashpoint
from orderbridge.services import order_updates, preflight
from orderbridge.services.health import needs_recovery, record_failure, record_success
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.ledger import (
    Outcome,
    add_events,
    apply_decisions,
    destination_policy,
    event_row,
    idempotency_key,
)
from orderbridge.services.scope import Scope
from orderbridge.storage.leases import held
from orderbridge.storage.repos import events as event_repo
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.repos import postings as posting_repo
from orderbridge.storage.tables import orders, postings

log = structlog.get_logger("orderbridge.post")


@dataclass
class PostReport:
    destination: str
    posted: int = 0
    #: amendment postings recorded (updates, voids, re-posts, adjustments: services/order_updates.py)
    amended: int = 0
    rejected: int = 0
    held: int = 0
    batches: int = 0
    error: OrderBridgeError | None = None
    rejections: list[str] = field(default_factory=list)
    #: a POS destination's pre-flight in this run (services/preflight.py)
    preflight: preflight.PreflightReport = field(default_factory=lambda: preflight.PreflightReport())

    def as_dict(self) -> dict[str, Any]:
        return {
            "destination": self.destination,
            "posted": self.posted,
            "amended": self.amended,
            "rejected": self.rejected,
            "held": self.held,
            "batches": self.batches,
            "error": None if self.error is None else {"code": self.error.code, "message": str(self.error)},
            **({"preflight": self.preflight.as_dict()} if self.preflight.touched else {}),
        }


@dataclass(frozen=True, slots=True)
class Reserved:
    """One order reserved for sending: what goes out, its posting row and its order row."""

    outgoing: OutgoingOrder
    posting_id: int
    order_id: int
    received_at: datetime


# Statements built once with expanding IN parameters: per batch, only values are bound (building
# them per batch coerced every IN element and recomputed cache keys, a tenth of the posting time).
_DONE = exists().where(
    and_(
        postings.c.order_id == orders.c.id,
        postings.c.destination_id == bindparam("dest"),
        postings.c.order_version == orders.c.version,
        postings.c.status.in_((PostingState.POSTED.value, PostingState.REJECTED.value)),
    )
)
# a destination that holds a document of an earlier version is amended (services/order_updates.py),
# never sent a first post again: after the first post, only the amendments speak to it of the order
_HOLDS_EARLIER = exists().where(
    and_(
        postings.c.order_id == orders.c.id,
        postings.c.destination_id == bindparam("dest"),
        postings.c.order_version < orders.c.version,
        postings.c.status == PostingState.POSTED.value,
    )
)
_CANDIDATES = (
    select(
        orders.c.id,
        orders.c.version,
        orders.c.canonical,
        orders.c.connection_id,
        orders.c.external_id,
        orders.c.received_at,
    )
    .where(
        orders.c.tenant_id == bindparam("tenant"),
        orders.c.state == OrderState.READY.value,
        ~_DONE,
        ~_HOLDS_EARLIER,
        orders.c.id.not_in(bindparam("exclude", expanding=True)),
    )
    .order_by(orders.c.id)
    .limit(bindparam("size"))
)
_CANDIDATES_ONLY = _CANDIDATES.where(orders.c.id.in_(bindparam("only", expanding=True)))


def post_ready(
    scope: Scope,
    destination_id: int,
    *,
    limit: int | None = None,
    progress: Callable[[PostReport], None] | None = None,
) -> PostReport:
    """Post the tenant's ready orders to its destination ``destination_id``."""
    row = scope.load(destination_id)
    destination = row.name
    if row.role is not Role.DESTINATION:
        raise InvalidInput(f"{destination!r} is a {row.role} connection; orders are posted to destinations")
    report = PostReport(destination)
    bound = log.bind(**scope.log_fields(row))
    connector = scope.destination(row)
    with held(scope.db, f"post:{row.id}", scope.settings.lease_ttl_s, scope.now) as lease:
        with scope.db.read() as conn:
            policy = destination_policy(conn, row)
            n_destinations = len(scope.connections(conn, Role.DESTINATION))
        remaining = limit
        # a POS destination (``PREFLIGHT``): its checks before anything is sent (services/preflight.py)
        pos = preflight.as_preflight(row, connector)
        run = preflight.PreflightRun(row.name, pos) if pos is not None else None
        report.preflight.touched = run is not None
        # One batch is on the wire while the next is reserved and the previous recorded: the
        # destination's time overlaps the hub's. At most one request is in flight, so order and
        # rate limits are as with a plain loop; a crash leaves at most two batches pending. (A POS
        # destination's pre-flight reads it between batches: there, a batch is recorded before
        # the next is checked, so only one call at a time ever speaks to it.)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"post-{row.name}")
        in_flight: tuple[list[Reserved], Future[list[PostResult]]] | None = None
        sending: set[int] = set()

        def settle() -> None:
            nonlocal in_flight
            assert in_flight is not None
            sent, future = in_flight
            in_flight = None
            results = future.result()
            crashpoint("post.after_send")
            _record_results(scope, row, sent, results, n_destinations, report)
            crashpoint("post.after_commit")
            sending.difference_update(r.order_id for r in sent)
            report.batches += 1
            if pos is not None:
                posted = [(r.order_id, str(res.document_id)) for r, res in zip(sent, results, strict=True) if res.ok]
                preflight.read_documents(scope, row, pos, posted, report.preflight)
            lease.renew()
            if progress is not None:
                progress(report)

        try:
            # order updates being applied first: their amendments, then the first posts
            amended = order_updates.amend(scope, row, connector)
            report.amended += amended.amended
            report.rejected += amended.rejected
            report.held += amended.held
            if pos is not None and run is not None:
                # what this destination's checks hold, checked again; sales left pending, read again
                preflight.reread_incomplete(scope, row, pos, report.preflight)
                preflight.recheck(scope, row, run, report.preflight)
            while True:
                batch: list[Reserved] | None = []
                if run is not None and in_flight is not None:
                    settle()
                if remaining is None or remaining > 0:
                    size = connector.max_batch if remaining is None else min(connector.max_batch, remaining)
                    only: list[int] | None = None
                    if run is not None:
                        only = _preflight_next(scope, row, run, policy, size, report, exclude=sending)
                        if only is None:
                            continue  # every candidate was held by the checks; look again
                    if only != []:
                        batch = _prepare_batch(scope, row, policy, size, report, exclude=sending, only=only)
                    if batch is None:
                        continue  # orders were held during preparation; look again
                if in_flight is not None:
                    settle()
                if not batch:
                    break
                if remaining is not None:
                    remaining -= len(batch)
                crashpoint("post.before_send")
                in_flight = (batch, pool.submit(connector.post_orders, [r.outgoing for r in batch]))
                sending.update(r.order_id for r in batch)
            if run is not None and run.reads:
                report.preflight.checks, report.preflight.connection_reads = run.checks, run.reads
        except OrderBridgeError as exc:
            report.error = exc
            bound.warning("post.failed", code=exc.code, error=str(exc))
            scope.observer.post_failed(scope.slug, row.name, exc.code, len(sending))
            record_failure(scope, row, exc, job="post")
        else:
            if report.batches or needs_recovery(scope, row, "post"):
                record_success(scope, row, job="post")
            bound.info("post.done", posted=report.posted, rejected=report.rejected)
        finally:
            pool.shutdown(wait=True)  # an unrecorded batch stays pending: resent (upserted) next run
    return report


def _preflight_next(
    scope: Scope,
    row: ConnectionRow,
    run: preflight.PreflightRun,
    policy: DestinationPolicy,
    size: int,
    report: PostReport,
    exclude: set[int],
) -> list[int] | None:
    """A POS destination's next candidates, checked (services/preflight.py): the ids that passed,
    [] when no order is left, None when every candidate was held (the caller looks again)."""
    with scope.db.read() as conn:
        candidates = conn.execute(
            _CANDIDATES,
            {"tenant": scope.tenant_id, "dest": row.id, "exclude": sorted(exclude), "size": size},
        ).all()
    if not candidates:
        return []
    passed = preflight.check_candidates(scope, row, run, policy, candidates, report.preflight)
    report.held += len(candidates) - len(passed)
    return passed or None


def _prepare_batch(
    scope: Scope,
    row: ConnectionRow,
    policy: DestinationPolicy,
    size: int,
    report: PostReport,
    exclude: set[int],
    only: list[int] | None = None,
) -> list[Reserved] | None:
    """Reserve the next batch (skipping orders in ``exclude``, already on the wire; only those in
    ``only`` when given: the ones a POS destination's checks passed): [] when nothing is left, or
    None when some candidates were held instead (their mapping vanished) so the caller looks again."""
    now = scope.now()
    declaration = row.declaration
    with scope.db.transaction() as conn:
        if only is None:
            candidates = conn.execute(
                _CANDIDATES,
                {"tenant": scope.tenant_id, "dest": row.id, "exclude": sorted(exclude), "size": size},
            ).all()
        else:
            candidates = conn.execute(
                _CANDIDATES_ONLY,
                {"tenant": scope.tenant_id, "dest": row.id, "exclude": sorted(exclude), "size": size, "only": only},
            ).all()
        if not candidates:
            return []
        pairs: list[tuple[OutgoingOrder, Any]] = []
        to_hold: list[Outcome] = []
        for c in candidates:
            order = order_from_json(c.canonical)
            waived = NONE_WAIVED
            found = problems(order, policy)
            if found:  # holds an admin released on this version go on as resolved (decision 107)
                waived = event_repo.released_holds(conn, [c.id]).get(c.id, NONE_WAIVED)
                found = [r for r in found if r.key not in waived]
            if found:
                to_hold.append(Outcome(c.id, OrderState.READY, Decision(OrderState.HELD, tuple(found))))
                continue
            key = idempotency_key(c.id, row.id, c.version)
            document = declaration.order_key(c.connection_id, c.external_id)  # the destination's own key format
            pairs.append((OutgoingOrder(key, document, resolve(order, policy, waived)), c))
        if to_hold:
            apply_decisions(conn, scope.tenant_id, to_hold, now)
            report.held += len(to_hold)
            if not pairs:
                return None
        outgoing = [o for o, _ in pairs]
        by_key = {o.idempotency_key: c for o, c in pairs}
        # one posting row per order version (a re-run finds the same one), older pending ones superseded
        ids = posting_repo.reserve(
            conn,
            scope.tenant_id,
            row.id,
            [
                (by_key[o.idempotency_key].id, by_key[o.idempotency_key].version, o.idempotency_key, o.order_key)
                for o in outgoing
            ],
            now,
        )
    return [
        Reserved(o, ids[o.idempotency_key], by_key[o.idempotency_key].id, by_key[o.idempotency_key].received_at)
        for o in outgoing
    ]


def _record_results(
    scope: Scope,
    row: ConnectionRow,
    batch: Sequence[Reserved],
    results: Sequence[PostResult],
    n_destinations: int,
    report: PostReport,
) -> None:
    if len(results) != len(batch):
        raise AssertionError(f"{row.name} returned {len(results)} results for {len(batch)} orders")
    now = scope.now()
    pos = row.can(Capability.PREFLIGHT)
    with scope.db.transaction() as conn:
        attempts: list[posting_repo.Attempt] = []
        event_rows: list[dict[str, Any]] = []
        holds: list[Outcome] = []
        posted_orders: list[int] = []
        posted_rows: list[tuple[int, str | None]] = []
        rejected_rows: list[tuple[int, str]] = []
        for reserved, result in zip(batch, results, strict=True):
            outgoing, pid, oid = reserved.outgoing, reserved.posting_id, reserved.order_id
            if result.ok:
                posted_rows.append((pid, result.document_id))
                attempts.append((pid, "posted", f"document {result.document_id}", _sent(result)))
                order = outgoing.resolved.order
                skipped_lines = left_out(order)
                event_rows.append(
                    event_row(
                        scope.tenant_id,
                        oid,
                        EventKind.POSTED,
                        now,
                        f"posted to {row.name} as document {result.document_id}"
                        + (f" — only what is left to fulfil: {'; '.join(skipped_lines)}" if skipped_lines else ""),
                        destination=row.name,
                        document_id=result.document_id,
                        idempotency_key=outgoing.idempotency_key,
                        # what the destination was asked to ship: back-sync's measure of "fulfilled"
                        lines={line.external_id: line.open_quantity for line in open_lines(order)},
                    )
                )
                event_rows.extend(
                    event_row(scope.tenant_id, oid, EventKind.FIELD_SHORTENED, now, note, destination=row.name)
                    for note in result.notes
                )
                posted_orders.append(oid)
                report.posted += 1
            else:
                message = str(result.error) if result.error else "no document id returned"
                rejected_rows.append((pid, message))
                log.warning(
                    "post.rejected", tenant_id=scope.tenant_id, connection_id=row.id, order_id=oid, error=message
                )
                attempts.append((pid, "rejected", message, _sent(result)))
                reason = (
                    R.addressed(result.hold, row.name)
                    if result.hold is not None
                    else R.destination_rejected(row.name, result.error.message if result.error else message)
                )
                if pos:
                    # a POS connector's own hold (a pre-flight cause, a document it left unpaid) names
                    # this destination, as the pre-flight's do: re-checked, retried and grouped by it
                    reason = R.pos_addressed(reason, row.name)
                holds.append(Outcome(oid, OrderState.READY, Decision(OrderState.HELD, (reason,))))
                report.rejected += 1
                report.rejections.append(f"{outgoing.resolved.order.number}: {message}")
        posting_repo.record(conn, scope.tenant_id, posted_rows, rejected_rows, attempts, now)
        add_events(conn, event_rows)
        apply_decisions(conn, scope.tenant_id, holds, now)
        if posted_orders:
            # an order is ``posted`` once every destination has its current version; the
            # "posted to <destination>" events above tell it
            order_repo.transition(
                conn,
                [order_repo.Move(oid, OrderState.READY, OrderState.POSTED) for oid in posted_orders],
                now,
                guard="posted_everywhere",
                params={"n": n_destinations},
            )
    if posted_rows:
        scope.observer.posted(
            scope.slug,
            row.name,
            [(now - r.received_at).total_seconds() for r, res in zip(batch, results, strict=True) if res.ok],
        )
    if rejected_rows:
        scope.observer.post_failed(scope.slug, row.name, "rejected", len(rejected_rows))


def last_posted_at(scope: Scope, destination_id: int) -> datetime | None:
    """When the destination last had a document posted (a posting schedule's start after a restart)."""
    with scope.read() as conn:
        newest: datetime | None = conn.execute(
            select(postings.c.posted_at)  # the column itself, not max(): its type reads it back aware
            .where(postings.c.destination_id == destination_id, postings.c.posted_at.is_not(None))
            .order_by(postings.c.posted_at.desc())
            .limit(1)
        ).scalar_one_or_none()
    return newest


def _sent(result: PostResult) -> dict[str, Any] | None:
    """What the connector says it sent for the order, as stored with the attempt (decision 108)."""
    return None if result.sent is None else dict(result.sent)
