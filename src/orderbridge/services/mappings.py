"""Mappings: set, import from CSV, list the unmapped values seen — and release what they fix.

Setting a mapping re-evaluates every order held for that exact value (``sku_unmapped`` + SKU,
``shipping_method_unmapped`` + method; a default shipping mapping ``*`` re-evaluates every
shipping hold) in the same transaction, so the fix and the release are one fact: no other action
is needed, and the released orders are posted by the next run.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from orderbridge.connectors.base import Role
from orderbridge.domain import limits
from orderbridge.domain.mappings import DEFAULT_KEY, MappingKind, ServiceRef
from orderbridge.domain.reasons import HoldCode
from orderbridge.domain.states import OrderState
from orderbridge.errors import InvalidInput
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.reevaluate import reevaluate_orders
from orderbridge.services.scope import Scope
from orderbridge.storage.db import dialect_insert
from orderbridge.storage.tables import mappings, order_reasons, orders

_RELEASES = {
    MappingKind.SKU: (HoldCode.SKU_UNMAPPED,),
    MappingKind.SHIPPING: (HoldCode.SHIPPING_METHOD_UNMAPPED, HoldCode.SHIPPING_METHOD_MISSING),
}


@dataclass(frozen=True)
class MappingResult:
    kind: str
    source: str
    target: str
    released: int
    still_held: int


@dataclass(frozen=True)
class ImportRowError:
    line: int
    message: str


def _destination(scope: Scope, conn: Connection, destination_id: int | None) -> ConnectionRow:
    """The tenant's destination ``destination_id``; None: its only one."""
    if destination_id is None:
        dests = scope.connections(conn, Role.DESTINATION)
        if len(dests) != 1:
            raise InvalidInput(
                "which destination is this mapping for?",
                hint=f"Pass --destination; destinations: {', '.join(d.name for d in dests) or 'none'}",
            )
        return dests[0]
    row = scope.connection(conn, destination_id)
    if row.role is not Role.DESTINATION:
        raise InvalidInput(f"{row.name!r} is a channel; mappings translate channel values for a destination")
    return row


def _needs(dest: ConnectionRow, kind: MappingKind) -> None:
    """Refuse a mapping of a kind the destination does not declare: it would never be read."""
    declared = dest.declaration.mapping_kinds
    if kind not in declared:
        raise InvalidInput(
            f"{dest.name!r} ({dest.declaration.title}) takes no {kind} mapping",
            hint=f"It needs: {', '.join(sorted(declared)) or 'no mappings at all'}.",
        )


def _validate(kind: MappingKind, source: str, target: str) -> None:
    if not source.strip():
        raise InvalidInput(f"the {kind} to map is empty", hint="Give the channel's value exactly as shown by `holds`.")
    if kind is MappingKind.SHIPPING:
        try:
            ServiceRef.parse(target)
        except ValueError as exc:
            raise InvalidInput(str(exc)) from exc
    elif not target.strip():
        raise InvalidInput(f"the destination SKU for {source!r} is empty")
    for what, value, limit in (
        ("value to map", source, limits.MAPPING_SOURCE),
        ("target", target, limits.MAPPING_TARGET),
    ):
        if len(value) > limit.max_chars or limits.storable(value) != value:
            raise InvalidInput(
                f"the {kind} {what} {limits.shorten(value, limits.QUOTE_CHARS)!r} is not storable: at most "
                f"{limit.max_chars} characters, no NUL",
                hint="An order whose value is longer is held as value_too_long; shorten the value in the channel.",
            )


def set_mapping(scope: Scope, kind: str, source: str, target: str, destination_id: int | None = None) -> MappingResult:
    mk = _kind(kind)
    _validate(mk, source, target)
    with scope.db.transaction() as conn:
        dest = _destination(scope, conn, destination_id)
        _needs(dest, mk)
        _upsert(conn, scope, dest, mk, source, target)
        released, still = _release(conn, scope, mk, source)
    return MappingResult(mk.value, source, target, released, still)


def import_mappings(
    scope: Scope, kind: str, text: str, destination_id: int | None = None
) -> tuple[list[MappingResult], list[ImportRowError]]:
    """CSV with columns ``source,target`` (header optional). Bad rows are reported by line number;
    good rows are all applied."""
    mk = _kind(kind)
    good: list[tuple[str, str]] = []
    errors: list[ImportRowError] = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        if lineno == 1 and [c.strip().lower() for c in row[:2]] == ["source", "target"]:
            continue
        if len(row) < 2:
            errors.append(ImportRowError(lineno, f"expected 2 columns (source,target), got {len(row)}: {row!r}"))
            continue
        source, target = row[0].strip(), row[1].strip()
        try:
            _validate(mk, source, target)
        except InvalidInput as exc:
            errors.append(ImportRowError(lineno, exc.message))
            continue
        good.append((source, target))
    results: list[MappingResult] = []
    with scope.db.transaction() as conn:
        dest = _destination(scope, conn, destination_id)
        _needs(dest, mk)
        for source, target in good:
            _upsert(conn, scope, dest, mk, source, target)
        for source, target in good:
            released, still = _release(conn, scope, mk, source)
            results.append(MappingResult(mk.value, source, target, released, still))
    return results, errors


@dataclass(frozen=True)
class Unmapped:
    kind: str
    value: str
    orders: int


def unmapped(scope: Scope) -> list[Unmapped]:
    """Unmapped values actually seen on held orders, with how many orders each blocks."""
    codes = {HoldCode.SKU_UNMAPPED: "sku", HoldCode.SHIPPING_METHOD_UNMAPPED: "shipping"}
    with scope.db.read() as conn:
        rows = conn.execute(
            select(order_reasons.c.code, order_reasons.c.value, func.count(func.distinct(order_reasons.c.order_id)))
            .where(
                order_reasons.c.tenant_id == scope.tenant_id,
                order_reasons.c.released_at.is_(None),
                order_reasons.c.code.in_(list(codes)),
            )
            .group_by(order_reasons.c.code, order_reasons.c.value)
            .order_by(func.count(func.distinct(order_reasons.c.order_id)).desc(), order_reasons.c.value)
        ).all()
    return [Unmapped(codes[HoldCode(code)], value, int(n)) for code, value, n in rows]


def _kind(kind: str) -> MappingKind:
    try:
        return MappingKind(kind)
    except ValueError:
        raise InvalidInput(f"unknown mapping kind {kind!r}", hint="Use 'sku' or 'shipping'.") from None


def _upsert(conn: Connection, scope: Scope, dest: ConnectionRow, kind: MappingKind, source: str, target: str) -> None:
    now = scope.now()
    stmt = dialect_insert(conn)(mappings).values(
        tenant_id=scope.tenant_id,
        destination_id=dest.id,
        kind=kind.value,
        source_value=source,
        target_value=target,
        created_at=now,
        updated_at=now,
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["destination_id", "kind", "source_value"], set_={"target_value": target, "updated_at": now}
        )
    )


def _release(conn: Connection, scope: Scope, kind: MappingKind, source: str) -> tuple[int, int]:
    q = (
        select(order_reasons.c.order_id)
        .distinct()
        .join(orders, orders.c.id == order_reasons.c.order_id)
        .where(
            order_reasons.c.tenant_id == scope.tenant_id,
            order_reasons.c.released_at.is_(None),
            order_reasons.c.code.in_([c.value for c in _RELEASES[kind]]),
            orders.c.state == OrderState.HELD.value,
        )
    )
    if not (kind is MappingKind.SHIPPING and source == DEFAULT_KEY):
        q = q.where(order_reasons.c.value == source)
    order_ids = list(conn.execute(q).scalars())
    return reevaluate_orders(conn, scope, order_ids)
