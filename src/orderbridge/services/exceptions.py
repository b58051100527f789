"""Exceptions: the held orders grouped by root cause, each with its fix made right there.

"37 orders blocked: SKU ABC-1 unmapped at ShipStation" is one :class:`Cause` — a
:class:`~orderbridge.services.queries.HoldGroup` (held orders, held fulfilment pushes, quarantined
orders, and the orders skipped by download rules) plus what the screen can do about it:

- **map it** (:func:`map_cause`) when the fix is a mapping (``sku_unmapped``,
  ``shipping_method_unmapped``, ``shipping_method_missing`` → the default ``*``): the mapping is
  set for the chosen destination and, in the same transaction, every order held for that value is
  evaluated again (:func:`orderbridge.services.mappings.set_mapping`) — the group releases;
- **retry it** (:func:`retry_cause`): every held order of the cause is retried as one order's
  retry would be (its destination rejection released, its rejected postings reopened, the pipeline
  run again), 500 orders per transaction so a large group never holds the ledger's write lock for
  long; each order's timeline says who asked, and the whole is **one** user action with the count.

Both need the operator role (the portal and the API check it first; checked here again).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from orderbridge.connectors.base import Role as ConnectionRole
from orderbridge.domain.events import EventKind
from orderbridge.domain.mappings import DEFAULT_KEY, MappingKind
from orderbridge.domain.reasons import HoldCode
from orderbridge.domain.roles import Role
from orderbridge.domain.states import OrderState
from orderbridge.errors import Forbidden, InvalidInput, NotFound
from orderbridge.services.audit_trail import record_action
from orderbridge.services.ledger import event_row
from orderbridge.services.mappings import MappingResult, set_mapping
from orderbridge.services.principals import Actor
from orderbridge.services.queries import HoldGroup, holds
from orderbridge.services.reevaluate import reevaluate_orders
from orderbridge.services.scope import Scope
from orderbridge.storage.repos import order_reasons as reason_repo
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.repos import postings as posting_repo
from orderbridge.storage.tables import mappings, order_reasons, orders

#: the causes a mapping fixes: code → (mapping kind, the value mapped: the cause's own, or the default)
MAPPED_BY: dict[str, tuple[MappingKind, str | None]] = {
    HoldCode.SKU_UNMAPPED: (MappingKind.SKU, None),
    HoldCode.SHIPPING_METHOD_UNMAPPED: (MappingKind.SHIPPING, None),
    HoldCode.SHIPPING_METHOD_MISSING: (MappingKind.SHIPPING, DEFAULT_KEY),
}
#: orders retried per transaction
RETRY_CHUNK = 500


@dataclass(frozen=True)
class Destination:
    id: int
    name: str


@dataclass(frozen=True)
class MapFix:
    """The mapping that fixes a cause, as a form: map ``source`` (a ``kind``) at a destination."""

    kind: str
    source: str
    #: the tenant's destinations that take this kind of mapping
    destinations: list[Destination]
    #: the one the reason names (preselected); None when it is not among them
    destination_id: int | None


@dataclass(frozen=True)
class Cause:
    group: HoldGroup
    #: the mapping form, for a cause a mapping fixes
    map: MapFix | None
    #: whether the cause's orders can be retried together (held orders; not pushes, quarantine, skips)
    retryable: bool


@dataclass(frozen=True)
class RetryResult:
    code: str
    value: str
    #: held orders of the cause that were retried
    orders: int
    #: of them, now ready (the poster sends them)
    released: int
    still_held: int


def causes(
    scope: Scope, *, code: str | None = None, value: str | None = None, include_skipped: bool = True
) -> list[Cause]:
    """The tenant's root causes (one cause with ``code`` and ``value``; every value of ``code``
    without ``value``), the largest first, each with its inline fix."""
    groups = holds(scope, include_skipped=include_skipped, code=code, value=value)
    with scope.read() as conn:
        destinations = scope.connections(conn, ConnectionRole.DESTINATION)
    takes = {
        kind: [Destination(d.id, d.name) for d in destinations if kind in d.declaration.mapping_kinds]
        for kind in MappingKind
    }
    found = []
    for g in groups:
        form = None
        if g.kind == reason_repo.HOLD and g.code in MAPPED_BY:
            kind, source = MAPPED_BY[g.code]
            named = g.fix.param("destination")
            choices = takes.get(kind, [])
            chosen = next((d.id for d in choices if d.name == named), choices[0].id if len(choices) == 1 else None)
            form = MapFix(kind.value, source if source is not None else g.value, choices, chosen)
        found.append(Cause(g, form, g.kind == reason_repo.HOLD))
    return found


def _operator(actor: Actor, scope: Scope, what: str) -> None:
    if actor.scope.tenant_id != scope.tenant_id:
        raise Forbidden(f"{actor.principal.name} does not belong to tenant {scope.slug!r}")
    if not actor.principal.allows(Role.OPERATOR):
        raise Forbidden(f"{what} needs the operator role; {actor.principal.name} is {actor.principal.role}")


def _held_for(scope: Scope, code: str, value: str) -> list[int]:
    if "\x00" in code + value:
        return []  # never stored: no order is held for it
    r = order_reasons.c
    with scope.read() as conn:
        return [
            int(oid)
            for oid in conn.execute(
                select(r.order_id)
                .join(orders, orders.c.id == r.order_id)
                .where(
                    r.tenant_id == scope.tenant_id,
                    r.kind == reason_repo.HOLD,
                    r.code == code,
                    r.value == value,
                    r.released_at.is_(None),
                    orders.c.state == OrderState.HELD.value,
                )
                .order_by(r.order_id)
            ).scalars()
        ]


def retry_cause(scope: Scope, code: str, value: str, *, by: Actor) -> RetryResult:
    """Retry every held order of one root cause (see the module docstring); one user action."""
    _operator(by, scope, "retrying a group of held orders")
    ids = _held_for(scope, code, value)
    if not ids:
        raise NotFound(
            f"no orders are held for {code} {value!r}",
            hint="The cause may have been fixed meanwhile; the exceptions screen lists the causes open now.",
        )
    note = f"retry requested by {by.principal.name} (bulk retry of every order held for {code} {value!r})"
    released = still = 0
    result = RetryResult(code, value, 0, 0, 0)
    for start in range(0, len(ids), RETRY_CHUNK):
        with scope.transaction() as conn:
            now = scope.now()
            held = [  # still held now (another user or the poster may have moved some)
                int(oid)
                for oid in conn.execute(
                    select(orders.c.id).where(
                        orders.c.tenant_id == scope.tenant_id,
                        orders.c.id.in_(ids[start : start + RETRY_CHUNK]),
                        orders.c.state == OrderState.HELD.value,
                    )
                ).scalars()
            ]
            reason_repo.release_code_of(conn, held, HoldCode.DESTINATION_REJECTED.value, now)
            posting_repo.reopen_rejected_of(conn, held)
            order_repo.transition(
                conn,
                [
                    order_repo.Move(
                        oid,
                        OrderState.HELD,
                        OrderState.HELD,
                        (event_row(scope.tenant_id, oid, EventKind.USER_ACTION, now, note),),
                    )
                    for oid in held
                ],
                now,
                leave_others=True,
            )
            done, kept = reevaluate_orders(conn, scope, held)
            released, still = released + done, still + kept
            if start + RETRY_CHUNK >= len(ids):
                result = RetryResult(code, value, released + still, released, still)
                record_action(
                    by,
                    "holds.retry",
                    "hold_cause",
                    f"{code}:{value}"[:100],
                    f"retried {result.orders} orders held for {code} {value!r}: {released} released, "
                    f"{still} still held",
                    {"code": code, "value": value, "orders": result.orders, "released": released, "still_held": still},
                    conn=conn,
                )
    return result


def map_cause(scope: Scope, code: str, value: str, target: str, destination_id: int, *, by: Actor) -> MappingResult:
    """Set the mapping that fixes a root cause at ``destination_id``; the orders held for it are
    evaluated again at once (``set_mapping``). One user action on the mapping."""
    _operator(by, scope, "setting a mapping")
    if code not in MAPPED_BY:
        raise InvalidInput(
            f"orders held for {code!r} are not released by a mapping",
            hint=f"Mappings fix: {', '.join(sorted(MAPPED_BY))}.",
        )
    kind, default = MAPPED_BY[code]
    source = default if default is not None else value
    result = set_mapping(scope, kind.value, source, target.strip(), destination_id)
    with scope.read() as conn:
        mapping_id = conn.execute(
            select(mappings.c.id).where(
                mappings.c.tenant_id == scope.tenant_id,
                mappings.c.destination_id == destination_id,
                mappings.c.kind == kind.value,
                mappings.c.source_value == source,
            )
        ).scalar_one()
        destination = scope.connection(conn, destination_id).name
    record_action(
        by,
        "mapping.set",
        "mapping",
        int(mapping_id),
        f"mapped {kind.value} {source!r} to {result.target!r} at {destination} from the exceptions screen: "
        f"{result.released} orders released, {result.still_held} still held",
        {
            "kind": kind.value,
            "source": source,
            "target": result.target,
            "destination_id": destination_id,
            "released": result.released,
            "still_held": result.still_held,
        },
    )
    return result
