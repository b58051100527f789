"""Read models: order lists, one order's full story, holds grouped by cause, the accounting."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from orderbridge.domain import limits
from orderbridge.domain.reasons import STORAGE_REFUSALS, HoldCode, storage_refused_fix
from orderbridge.domain.states import OrderState, PushState
from orderbridge.errors import InvalidInput, NotFound
from orderbridge.fixes import Fix, FixAction
from orderbridge.services.ingest import quarantined
from orderbridge.services.order_retry import retry
from orderbridge.services.order_story import order_row
from orderbridge.services.scope import Scope
from orderbridge.storage.repos import order_reasons as reason_repo
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.tables import (
    connections,
    events,
    fulfilment_pushes,
    order_reasons,
    orders,
    postings,
    shipments,
)


def _pairs(result: Any) -> list[tuple[Any, Any]]:
    return [(row[0], row[1]) for row in result]


@dataclass(frozen=True)
class OrderSummary:
    id: int
    connection: str
    external_id: str
    number: str
    state: str
    version: int
    total: str
    reasons: list[str]
    updated_at: datetime


def list_orders(
    scope: Scope,
    *,
    state: str | None = None,
    connection_id: int | None = None,
    search: str | None = None,
    limit: int = 50,
) -> list[OrderSummary]:
    if state is not None and state not in {s.value for s in OrderState}:
        raise InvalidInput(f"unknown state {state!r}", hint=f"States: {', '.join(s.value for s in OrderState)}")
    q = (
        select(
            orders.c.id,
            connections.c.name,
            orders.c.external_id,
            orders.c.number,
            orders.c.state,
            orders.c.version,
            orders.c.total,
            orders.c.currency,
            orders.c.updated_at,
        )
        .join(connections, connections.c.id == orders.c.connection_id)
        .where(orders.c.tenant_id == scope.tenant_id)
        .order_by(orders.c.id.desc())
        .limit(limit)
    )
    if state:
        q = q.where(orders.c.state == state)
    if connection_id is not None:
        q = q.where(orders.c.connection_id == connection_id)
    if search:
        q = q.where((orders.c.number == search) | (orders.c.external_id == search))
    with scope.db.read() as conn:
        if connection_id is not None:
            scope.connection(conn, connection_id)  # NotFound for another tenant's
        rows = conn.execute(q).all()
        reasons: dict[int, list[str]] = {}
        if rows:
            for oid, code, value in conn.execute(
                select(order_reasons.c.order_id, order_reasons.c.code, order_reasons.c.value).where(
                    order_reasons.c.order_id.in_([r.id for r in rows]), order_reasons.c.released_at.is_(None)
                )
            ):
                reasons.setdefault(oid, []).append(f"{code}:{value}" if value else code)
    return [
        OrderSummary(
            r.id,
            r.name,
            r.external_id,
            r.number,
            r.state,
            r.version,
            f"{r.total} {r.currency}" if r.total is not None else "",
            reasons.get(r.id, []),
            r.updated_at,
        )
        for r in rows
    ]


@dataclass
class OrderDetail:
    id: int
    connection: str
    external_id: str
    number: str
    state: str
    version: int
    total: str
    reasons: list[dict[str, Any]]  # kind, code, value, message (str) and fix (a Fix)
    timeline: list[dict[str, Any]]
    postings: list[dict[str, Any]]
    pushes: list[dict[str, Any]]
    raw: dict[str, Any] = field(repr=False)


def find_order_id(scope: Scope, ref: str) -> int:
    with scope.db.read() as conn:
        ids = order_repo.ids_by_ref(conn, scope.tenant_id, ref)
    if not ids:
        raise NotFound(f"no order {ref!r}", hint="Use the order number (#1001), the channel's id, or `orders list`.")
    if len(ids) > 1:
        raise InvalidInput(f"{ref!r} matches {len(ids)} orders", hint="Use the channel's order id instead.")
    return int(ids[0])


def _for_order(fix: Fix, number: str) -> Fix:
    """On one order's page, "retry the order" is about that order: its number fills the fix in."""
    if fix.action in (FixAction.RETRY_ORDER, FixAction.FILL_SHIPPING_DATA) and fix.param("order") is None:
        return fix.with_params(order=number)
    return fix


def show_order(scope: Scope, ref: str) -> OrderDetail:
    oid = find_order_id(scope, ref)
    with scope.db.read() as conn:
        o = conn.execute(
            select(orders, connections.c.name.label("connection"))
            .join(connections, connections.c.id == orders.c.connection_id)
            .where(orders.c.id == oid)
        ).one()
        reasons = [
            {"kind": r.kind, "code": r.code, "value": r.value, "message": r.message, "fix": _for_order(r.fix, o.number)}
            for r in conn.execute(
                select(order_reasons).where(order_reasons.c.order_id == oid, order_reasons.c.released_at.is_(None))
            )
        ]
        timeline = [
            {"at": e.at, "kind": e.kind, "message": e.message}
            for e in conn.execute(select(events).where(events.c.order_id == oid).order_by(events.c.id))
        ]
        posts = [
            {
                "destination": p.name,
                "version": p.order_version,
                "status": p.status,
                "document_id": p.document_id,
                "attempts": p.attempts,
                "idempotency_key": p.idempotency_key,
                "last_error": p.last_error,
            }
            for p in conn.execute(
                select(postings, connections.c.name)
                .join(connections, connections.c.id == postings.c.destination_id)
                .where(postings.c.order_id == oid)
                .order_by(postings.c.id)
            )
        ]
        pushes = [
            {
                "status": p.status,
                "fulfilment_id": p.channel_fulfilment_id,
                "message": p.message,
                "reason_code": p.reason_code,
            }
            for p in conn.execute(select(fulfilment_pushes).where(fulfilment_pushes.c.order_id == oid))
        ]
    return OrderDetail(
        o.id,
        o.connection,
        o.external_id,
        o.number,
        o.state,
        o.version,
        f"{o.total} {o.currency}" if o.total is not None else "",
        reasons,
        timeline,
        posts,
        pushes,
        dict(o.raw),
    )


@dataclass(frozen=True)
class HoldGroup:
    """One root cause: ``kind`` hold | skip | push (held fulfilment pushes) | quarantine."""

    kind: str
    code: str
    #: what a fix releases (an order's); the channel, for held pushes (a cause per channel)
    value: str
    #: orders held (or skipped) for the cause; for held pushes, the orders they belong to
    orders: int
    message: str
    fix: Fix
    examples: list[str]
    #: held fulfilment pushes (a ``push`` group's count; 0 for the others)
    pushes: int = 0
    #: the ledger ids of the example orders, in the order of ``examples`` (none for quarantine)
    example_ids: tuple[int, ...] = ()


def holds(
    scope: Scope, *, include_skipped: bool = False, code: str | None = None, value: str | None = None
) -> list[HoldGroup]:
    """Open reasons grouped by root cause (code, value) with counts, the fix and a few examples:
    held orders, then held fulfilment pushes (grouped by code and channel: a cause such as "the 3PL
    sends no carrier" holds every shipment alike), then skipped orders (``include_skipped``), then
    orders in quarantine. ``code`` (and ``value``) keep only that root cause.

    Read from the open reasons alone (``ix_order_reasons_open``, decision 111): an order's open
    pipeline reasons are written with its state by ``apply_decisions``, one per (code, value), and
    released when it leaves ``held``/``skipped`` — so a cause's count is its open rows, counted in
    the index without reading an order (a grouping that joined every held order took 200–300 ms at
    30,000 held). Each cause's message and fix are those of its first order's reason."""
    return top_holds(scope, include_skipped=include_skipped, code=code, value=value)[0]


def top_holds(
    scope: Scope,
    *,
    limit: int | None = None,
    include_skipped: bool = False,
    code: str | None = None,
    value: str | None = None,
) -> tuple[list[HoldGroup], int]:
    """:func:`holds`, only the first ``limit`` causes described (what the dashboard shows), and how
    many causes there are in all."""
    asked = (code or "") + (value or "")
    if limits.storable(asked) != asked:
        return [], 0  # a NUL or a lone surrogate is never stored (and the databases refuse the query)
    kinds = [reason_repo.HOLD, reason_repo.SKIP] if include_skipped else [reason_repo.HOLD]
    with scope.db.read() as conn:
        # an order has one open pipeline reason per (code, value) — apply_decisions keys them so — so
        # a cause's open reasons are its orders: summed from the reasons' tallies (decision 147)
        counted = reason_repo.open_causes(conn, scope.tenant_id, kinds, code, value)
        held = [c for c in counted if c.kind == reason_repo.HOLD]
        skipped = [c for c in counted if c.kind != reason_repo.HOLD]
        pushes = _held_pushes(conn, scope.tenant_id)
        if code is not None:
            pushes = [g for g in pushes if g.code == code and (value is None or g.value == value)]
        refused = _quarantine(conn, scope.tenant_id) if reason_repo.HOLD in kinds else []
        if code is not None:
            refused = [g for g in refused if g.code == code and (value is None or g.value == value)]
        total = len(counted) + len(pushes) + len(refused)
        wanted = total if limit is None else limit
        groups = _describe(conn, scope.tenant_id, held[:wanted]) + pushes
        groups += _describe(conn, scope.tenant_id, skipped[: max(0, wanted - len(groups))]) + refused
    return groups[:wanted], total


def _quarantine(conn: Connection, tenant_id: int) -> list[HoldGroup]:
    """Orders the database refused even in a minimal form: in quarantine, not in orders."""
    groups = []
    for refusal_kind, n, error, examples in quarantined(conn, tenant_id):
        what = STORAGE_REFUSALS.get(refusal_kind, STORAGE_REFUSALS["invalid_value"])[0]
        message = (
            f"not stored: the database refused the order even in a minimal form — {what}: {error}; its "
            "raw payload is kept in quarantine (ingest_failures)"
        )
        # a value of its own: quarantined orders are not in the held group's alert
        groups.append(
            HoldGroup(
                "quarantine",
                HoldCode.STORAGE_REFUSED,
                f"{refusal_kind} (quarantined)",
                n,
                message,
                storage_refused_fix(refusal_kind),
                examples,
            )
        )
    return groups


_EXAMPLES = 3
#: a cause's first open reasons (built once: per call only values are bound)
_FIRSTS = (
    select(order_reasons.c.order_id, order_reasons.c.message, order_reasons.c.fix)
    .where(
        order_reasons.c.tenant_id == bindparam("tenant_id"),
        order_reasons.c.code == bindparam("code"),
        order_reasons.c.value == bindparam("value"),
        order_reasons.c.kind == bindparam("kind"),
        order_reasons.c.released_at.is_(None),
    )
    .order_by(order_reasons.c.order_id)
    .limit(_EXAMPLES)
)


def _describe(conn: Connection, tenant_id: int, causes: Sequence[Any]) -> list[HoldGroup]:
    """Each cause (kind, code, value, orders) with its message, fix and first orders: one seek in
    the open-cause index per cause, then the example orders' numbers in one statement."""
    firsts: list[Sequence[Any]] = [
        conn.execute(_FIRSTS, {"tenant_id": tenant_id, "code": code, "value": value, "kind": kind}).all()
        for kind, code, value, _n in causes
    ]
    wanted = sorted({row.order_id for rows in firsts for row in rows})
    numbers: dict[int, str] = {}
    for i in range(0, len(wanted), 500):
        numbers.update(
            conn.execute(select(orders.c.id, orders.c.number).where(orders.c.id.in_(wanted[i : i + 500]))).all()
        )
    groups = []
    for (kind, code, value, n), rows in zip(causes, firsts, strict=True):
        if not rows:  # released between the two statements
            continue
        ids = tuple(int(row.order_id) for row in rows)
        groups.append(
            HoldGroup(
                kind,
                code,
                value,
                int(n),
                rows[0].message,
                rows[0].fix,
                [numbers.get(i, str(i)) for i in ids],
                example_ids=ids,
            )
        )
    return groups


def _held_pushes(conn: Connection, tenant_id: int) -> list[HoldGroup]:
    """Held fulfilment pushes grouped by cause: reason code and channel."""
    held = (
        order_reasons.c.tenant_id == tenant_id,
        order_reasons.c.kind == reason_repo.PUSH,
        order_reasons.c.released_at.is_(None),
        fulfilment_pushes.c.status == PushState.HELD.value,
    )
    n_pushes = func.count(func.distinct(fulfilment_pushes.c.id))
    rows = conn.execute(
        select(
            order_reasons.c.code,
            fulfilment_pushes.c.channel_id,
            connections.c.name,
            n_pushes,
            func.count(func.distinct(fulfilment_pushes.c.order_id)),
            func.min(order_reasons.c.message),
        )
        .join(fulfilment_pushes, fulfilment_pushes.c.id == order_reasons.c.push_id)
        .join(connections, connections.c.id == fulfilment_pushes.c.channel_id)
        .where(*held)
        .group_by(order_reasons.c.code, fulfilment_pushes.c.channel_id, connections.c.name)
        .order_by(n_pushes.desc(), order_reasons.c.code, connections.c.name)
    ).all()
    groups = []
    for code, channel_id, channel, n, n_orders, message in rows:
        of_cause = (*held, order_reasons.c.code == code, fulfilment_pushes.c.channel_id == channel_id)
        # the fix of a reason with the message shown (a JSON column: no min() on PostgreSQL)
        fix = conn.execute(
            select(order_reasons.c.fix)
            .join(fulfilment_pushes, fulfilment_pushes.c.id == order_reasons.c.push_id)
            .where(*of_cause, order_reasons.c.message == message)
            .limit(1)
        ).scalar_one()
        found = conn.execute(
            select(orders.c.id, orders.c.number, shipments.c.external_id)
            .select_from(order_reasons)
            .join(fulfilment_pushes, fulfilment_pushes.c.id == order_reasons.c.push_id)
            .join(shipments, shipments.c.id == fulfilment_pushes.c.shipment_id)
            .join(orders, orders.c.id == fulfilment_pushes.c.order_id)
            .where(*of_cause)
            .order_by(fulfilment_pushes.c.id)
            .limit(_EXAMPLES)
        ).all()
        examples = [f"{number} (shipment {shipment})" for _id, number, shipment in found]
        ids = tuple(int(oid) for oid, _n, _s in found)
        groups.append(
            HoldGroup(reason_repo.PUSH, code, channel, int(n_orders), message, fix, examples, int(n), example_ids=ids)
        )
    return groups


def accounting(scope: Scope) -> dict[str, Any]:
    """Every ledger order in exactly one bucket, with held/skipped broken down by reason code."""
    with scope.db.read() as conn:
        by_state = dict(
            _pairs(
                conn.execute(
                    select(orders.c.state, func.count())
                    .where(orders.c.tenant_id == scope.tenant_id)
                    .group_by(orders.c.state)
                )
            )
        )
        reason_rows = conn.execute(
            select(orders.c.state, order_reasons.c.code, func.count(func.distinct(orders.c.id)))
            .join(order_reasons, order_reasons.c.order_id == orders.c.id)
            .where(
                orders.c.tenant_id == scope.tenant_id,
                order_reasons.c.released_at.is_(None),
                orders.c.state.in_([OrderState.HELD.value, OrderState.SKIPPED.value]),
            )
            .group_by(orders.c.state, order_reasons.c.code)
        ).all()
    held_by: dict[str, int] = {}
    skipped_by: dict[str, int] = {}
    for state, code, n in reason_rows:
        (held_by if state == OrderState.HELD.value else skipped_by)[code] = int(n)
    posted = sum(by_state.get(s.value, 0) for s in (OrderState.POSTED, OrderState.FULFILLED, OrderState.CLOSED))
    return {
        "ledger_orders": sum(by_state.values()),
        "posted": posted,
        "fulfilled": by_state.get(OrderState.FULFILLED.value, 0),
        "held": by_state.get(OrderState.HELD.value, 0),
        "skipped": by_state.get(OrderState.SKIPPED.value, 0),
        "ready": by_state.get(OrderState.READY.value, 0),
        "received": by_state.get(OrderState.RECEIVED.value, 0),
        "cancelled": by_state.get(OrderState.CANCELLED.value, 0),
        "held_by_reason": dict(sorted(held_by.items())),
        "skipped_by_reason": dict(sorted(skipped_by.items())),
        "by_state": dict(sorted(by_state.items())),
    }


def retry_order(scope: Scope, ref: str, *, actor: str = "cli") -> str:
    """Release a destination rejection (after the user fixed its cause) and re-evaluate the order
    (the CLI's ``orders retry``; the portal's is :func:`orderbridge.services.order_actions.retry_now`)."""
    oid = find_order_id(scope, ref)
    with scope.db.transaction() as conn:
        retry(conn, scope, order_row(conn, scope, oid), actor)
        new_state = order_repo.state_of(conn, oid).value
    return new_state
