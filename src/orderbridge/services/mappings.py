"""Mappings: list, add, edit, delete, import and export as CSV, the unmapped values seen — and
release what they fix.

Setting a mapping re-evaluates every order held for that exact value (``sku_unmapped`` + SKU,
``shipping_method_unmapped`` + method; a default shipping mapping ``*`` re-evaluates every
shipping hold) in the same transaction, so the fix and the release are one fact: no other action
is needed, and the released orders are posted by the next run.

Deleting a mapping (decision 117) changes nothing already posted: a posting keeps the document it
sent, and the destination keeps it. It changes what happens next: an order not yet posted to that
destination — ``ready`` or held for another reason — is held ``sku_unmapped`` (or
``shipping_method_unmapped``) when the poster reaches it, since the poster checks the mappings
again as it reserves each order; a new order, or a new version of a posted one, with that value is
held the same way. Editing a mapping's target likewise applies to what is posted from then on.

A CSV import (decision 118) is all or nothing: every row is checked first — its kind, its
destination, its values — and the report names each row's outcome; one bad row and nothing is
applied, so a file is never half in. The export writes the same columns the import reads
(``destination,kind,source,target``), so an exported file imports back unchanged.

Who changed a mapping, and when, is the audit trail's (``record_action`` on object type
``mapping``): each change a person makes through these functions records itself in the same
transaction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from orderbridge.connectors.base import Role
from orderbridge.domain import limits
from orderbridge.domain.mappings import DEFAULT_KEY, MappingKind, ServiceRef
from orderbridge.domain.reasons import HoldCode
from orderbridge.domain.states import OrderState
from orderbridge.errors import Conflict, InvalidInput, NotFound
from orderbridge.services.audit_trail import record_action
from orderbridge.services.hub import ConnectionRow
from orderbridge.services.principals import Actor
from orderbridge.services.reevaluate import reevaluate_orders
from orderbridge.services.scope import Scope
from orderbridge.storage.db import dialect_insert
from orderbridge.storage.tables import connections, mappings, order_reasons, orders, user_actions

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
    mapping_id: int | None = None


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
        mapping_id = _upsert(conn, scope, dest, mk, source, target)
        released, still = _release(conn, scope, mk, source)
    return MappingResult(mk.value, source, target, released, still, mapping_id)


def import_mappings(
    scope: Scope, kind: str, text: str, destination_id: int | None = None
) -> tuple[list[MappingResult], list[ImportRowError]]:
    """The CLI's import: CSV with columns ``source,target`` (header optional) of one kind. All or
    nothing (decision 118): with any bad row, the errors by line number and nothing applied."""
    mk = _kind(kind)
    rows: list[_Row] = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        if lineno == 1 and [c.strip().lower() for c in row[:2]] == ["source", "target"]:
            continue
        if len(row) < 2:
            rows.append(
                _Row(lineno, mk.value, "", "", None, f"expected 2 columns (source,target), got {len(row)}: {row!r}")
            )
            continue
        rows.append(_Row(lineno, mk.value, row[0].strip(), row[1].strip(), None))
    report, applied = _apply(scope, rows, destination_id, by=None)
    errors = [ImportRowError(r.line, r.message) for r in report.rows if r.status == "error"]
    if errors:
        return [], errors
    return [MappingResult(r.kind, r.source, r.target, r.released, r.still_held, r.mapping_id) for r in applied], []


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


def _upsert(conn: Connection, scope: Scope, dest: ConnectionRow, kind: MappingKind, source: str, target: str) -> int:
    """Insert or update the mapping; its id."""
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
    return int(
        conn.execute(
            select(mappings.c.id).where(
                mappings.c.destination_id == dest.id, mappings.c.kind == kind.value, mappings.c.source_value == source
            )
        ).scalar_one()
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


# --- the portal's and the API's mappings: list, add, edit, delete, import, export ------------------


@dataclass(frozen=True)
class MappingInfo:
    id: int
    destination_id: int
    destination: str
    kind: str
    source: str
    target: str
    created_at: datetime
    updated_at: datetime
    #: the last person (or token, or CLI) who changed it, from the audit trail; None: set before
    #: the trail existed, or by a program that records none (the demo)
    changed_by: str | None = None
    changed_at: datetime | None = None


@dataclass(frozen=True)
class MappingPage:
    mappings: list[MappingInfo]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _info(row: Any, last: dict[str, tuple[str, datetime]]) -> MappingInfo:
    who = last.get(str(row.id))
    return MappingInfo(
        int(row.id),
        int(row.destination_id),
        str(row.destination),
        str(row.kind),
        str(row.source_value),
        str(row.target_value),
        row.created_at,
        row.updated_at,
        None if who is None else who[0],
        None if who is None else who[1],
    )


def _last_changes(conn: Connection, scope: Scope, ids: Sequence[int]) -> dict[str, tuple[str, datetime]]:
    """Per mapping id, who last changed it and when (newest action on object ``mapping``)."""
    if not ids:
        return {}
    newest = (
        select(func.max(user_actions.c.id))
        .where(
            user_actions.c.tenant_id == scope.tenant_id,
            user_actions.c.object_type == "mapping",
            user_actions.c.object_id.in_([str(i) for i in ids]),
        )
        .group_by(user_actions.c.object_id)
    )
    rows = conn.execute(
        select(user_actions.c.object_id, user_actions.c.actor_name, user_actions.c.at).where(
            user_actions.c.id.in_(newest)
        )
    )
    return {str(r.object_id): (str(r.actor_name), r.at) for r in rows}


_SELECT = select(
    mappings.c.id,
    mappings.c.destination_id,
    connections.c.name.label("destination"),
    mappings.c.kind,
    mappings.c.source_value,
    mappings.c.target_value,
    mappings.c.created_at,
    mappings.c.updated_at,
).join(connections, connections.c.id == mappings.c.destination_id)


def list_mappings(
    scope: Scope,
    *,
    destination_id: int | None = None,
    kind: str | None = None,
    search: str | None = None,
    page: int = 1,
    per_page: int = 100,
) -> MappingPage:
    """The tenant's mappings by destination, kind and value, with who changed each last."""
    if page < 1 or not 1 <= per_page <= 1000:
        raise InvalidInput(f"page {page} of {per_page} per page is out of range", code="page_invalid")
    where = [mappings.c.tenant_id == scope.tenant_id]
    with scope.read() as conn:
        if destination_id is not None:
            scope.connection(conn, destination_id)
            where.append(mappings.c.destination_id == destination_id)
        if kind:
            where.append(mappings.c.kind == _kind(kind).value)
        if search and "\x00" in search:
            raise InvalidInput("the search text contains a NUL character", code="search_invalid")
        if search and search.strip():
            needle = f"%{search.strip().lower()}%"
            where.append(
                func.lower(mappings.c.source_value).like(needle) | func.lower(mappings.c.target_value).like(needle)
            )
        total = int(conn.execute(select(func.count()).select_from(mappings).where(*where)).scalar_one())
        rows = conn.execute(
            _SELECT.where(*where)
            .order_by(connections.c.name, mappings.c.kind, mappings.c.source_value)
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).all()
        last = _last_changes(conn, scope, [r.id for r in rows])
    return MappingPage([_info(r, last) for r in rows], total, page, per_page)


def get_mapping(scope: Scope, mapping_id: int) -> MappingInfo:
    with scope.read() as conn:
        return _get(conn, scope, mapping_id)


def _get(conn: Connection, scope: Scope, mapping_id: int) -> MappingInfo:
    row = conn.execute(
        _SELECT.where(mappings.c.tenant_id == scope.tenant_id, mappings.c.id == mapping_id)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no mapping {mapping_id}", hint="It may have been deleted; the mappings list shows the others.")
    return _info(row, _last_changes(conn, scope, [row.id]))


def _label(kind: MappingKind) -> str:
    return "SKU" if kind is MappingKind.SKU else "shipping method"


def save_mapping(
    scope: Scope,
    kind: str,
    source: str,
    target: str,
    destination_id: int | None = None,
    *,
    by: Actor,
) -> MappingResult:
    """Add a mapping, or change the target of the one that exists for this value (one mapping per
    destination, kind and value), and release the orders it unblocks."""
    mk = _kind(kind)
    source, target = source.strip(), target.strip()
    _validate(mk, source, target)
    with scope.transaction() as conn:
        dest = _destination(scope, conn, destination_id)
        _needs(dest, mk)
        before = conn.execute(
            select(mappings.c.target_value).where(
                mappings.c.destination_id == dest.id, mappings.c.kind == mk.value, mappings.c.source_value == source
            )
        ).scalar_one_or_none()
        mapping_id = _upsert(conn, scope, dest, mk, source, target)
        released, still = _release(conn, scope, mk, source)
        verb = "mapping.add" if before is None else "mapping.edit"
        record_action(
            by,
            verb,
            "mapping",
            mapping_id,
            (
                f"mapped {_label(mk)} {source!r} → {target!r} for {dest.name}"
                if before is None
                else f"changed {_label(mk)} {source!r} for {dest.name}: {before!r} → {target!r}"
            )
            + (f"; released {released} order(s)" if released else ""),
            {
                "kind": mk.value,
                "source": source,
                "target": target,
                "before": before,
                "destination_id": dest.id,
                "released": released,
            },
            conn=conn,
        )
    return MappingResult(mk.value, source, target, released, still, mapping_id)


def edit_mapping(scope: Scope, mapping_id: int, target: str, *, source: str | None = None, by: Actor) -> MappingResult:
    """Change a mapping's target (and its value, when ``source`` is given and differs: Conflict if
    that value has a mapping already)."""
    with scope.transaction() as conn:
        current = _get(conn, scope, mapping_id)
        mk = MappingKind(current.kind)
        new_source = current.source if source is None else source.strip()
        target = target.strip()
        _validate(mk, new_source, target)
        if new_source != current.source:
            clash = conn.execute(
                select(mappings.c.id).where(
                    mappings.c.destination_id == current.destination_id,
                    mappings.c.kind == mk.value,
                    mappings.c.source_value == new_source,
                )
            ).scalar_one_or_none()
            if clash is not None:
                raise Conflict(
                    f"{_label(mk)} {new_source!r} already has a mapping for {current.destination}",
                    hint="Edit that mapping instead, or delete it first.",
                )
        conn.execute(
            update(mappings)
            .where(mappings.c.id == mapping_id, mappings.c.tenant_id == scope.tenant_id)
            .values(source_value=new_source, target_value=target, updated_at=scope.now())
        )
        released, still = _release(conn, scope, mk, new_source)
        changes = []
        if new_source != current.source:
            changes.append(f"value {current.source!r} → {new_source!r}")
        if target != current.target:
            changes.append(f"target {current.target!r} → {target!r}")
        record_action(
            by,
            "mapping.edit",
            "mapping",
            mapping_id,
            f"changed {_label(mk)} mapping {current.source!r} for {current.destination}: "
            + (", ".join(changes) or "no change")
            + (f"; released {released} order(s)" if released else ""),
            {
                "kind": mk.value,
                "source": new_source,
                "target": target,
                "before": {"source": current.source, "target": current.target},
                "destination_id": current.destination_id,
                "released": released,
            },
            conn=conn,
        )
    return MappingResult(mk.value, new_source, target, released, still, mapping_id)


def delete_mapping(scope: Scope, mapping_id: int, *, by: Actor) -> MappingInfo:
    """Delete a mapping. Nothing already posted changes; an order not yet posted with this value is
    held when the poster reaches it (see the module's docstring)."""
    with scope.transaction() as conn:
        current = _get(conn, scope, mapping_id)
        conn.execute(delete(mappings).where(mappings.c.id == mapping_id, mappings.c.tenant_id == scope.tenant_id))
        record_action(
            by,
            "mapping.delete",
            "mapping",
            mapping_id,
            f"deleted {_label(MappingKind(current.kind))} mapping {current.source!r} → {current.target!r} for "
            f"{current.destination}",
            {
                "kind": current.kind,
                "source": current.source,
                "target": current.target,
                "destination_id": current.destination_id,
            },
            conn=conn,
        )
    return current


@dataclass(frozen=True)
class ExampleOrder:
    id: int
    number: str


@dataclass(frozen=True)
class UnmappedValue:
    kind: str
    value: str
    #: held orders it blocks
    orders: int
    examples: list[ExampleOrder]
    #: the destinations whose hold names it
    destinations: list[str]


def unmapped_seen(scope: Scope, *, examples: int = 3, limit: int = 200) -> list[UnmappedValue]:
    """The unmapped values on open holds, most blocking first, each with a few example orders and
    the destinations that need it (read from the holds' fixes)."""
    found = unmapped(scope)[:limit]
    out: list[UnmappedValue] = []
    codes = {"sku": HoldCode.SKU_UNMAPPED.value, "shipping": HoldCode.SHIPPING_METHOD_UNMAPPED.value}
    with scope.read() as conn:
        for u in found:
            rows = conn.execute(
                select(orders.c.id, orders.c.number, order_reasons.c.fix)
                .join(orders, orders.c.id == order_reasons.c.order_id)
                .where(
                    order_reasons.c.tenant_id == scope.tenant_id,
                    order_reasons.c.released_at.is_(None),
                    order_reasons.c.code == codes[u.kind],
                    order_reasons.c.value == u.value,
                )
                .order_by(order_reasons.c.order_id.desc())
                .limit(max(examples, 1) * 4)
            ).all()
            seen: dict[int, ExampleOrder] = {}
            dests: set[str] = set()
            for r in rows:
                seen.setdefault(int(r.id), ExampleOrder(int(r.id), str(r.number)))
                dest = r.fix.param("destination") if r.fix is not None else None
                if dest:
                    dests.add(str(dest))
            out.append(UnmappedValue(u.kind, u.value, u.orders, list(seen.values())[:examples], sorted(dests)))
    return out


# --- CSV ------------------------------------------------------------------------------------------

#: the columns of an exported file, and of an import (destination and kind may be left out when the
#: form says which)
CSV_COLUMNS = ("destination", "kind", "source", "target")
#: the most rows one import takes (a larger catalogue is imported in parts)
MAX_IMPORT_ROWS = 20_000


@dataclass
class _Row:
    line: int
    kind: str
    source: str
    target: str
    destination: str | None
    message: str = ""
    status: str = ""  # added | updated | unchanged | error
    released: int = 0
    still_held: int = 0
    mapping_id: int | None = None


@dataclass(frozen=True)
class ImportRow:
    line: int
    #: added | updated | unchanged | error | not_applied (a good row of a file with errors)
    status: str
    destination: str
    kind: str
    source: str
    target: str
    message: str = ""
    released: int = 0


@dataclass(frozen=True)
class ImportReport:
    rows: list[ImportRow] = field(default_factory=list)
    applied: bool = False

    @property
    def errors(self) -> list[ImportRow]:
        return [r for r in self.rows if r.status == "error"]

    @property
    def released(self) -> int:
        return sum(r.released for r in self.rows)

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)


def _parse_csv(text: str, kind: str | None) -> list[_Row]:
    text = text.lstrip("\ufeff")  # a spreadsheet's byte-order mark
    reader = csv.reader(io.StringIO(text))
    rows: list[_Row] = []
    try:
        lines = list(reader)
    except csv.Error as exc:
        raise InvalidInput(f"the file is not readable as CSV: {exc}", code="csv_unreadable") from exc
    if not lines:
        raise InvalidInput("the file is empty", hint="Export the mappings to see the columns.", code="csv_empty")
    header = [c.strip().lower() for c in lines[0]]
    if "source" not in header or "target" not in header:
        raise InvalidInput(
            "the first line must name the columns: destination,kind,source,target",
            hint="destination and kind may be left out when you choose them on the form.",
            code="csv_header_missing",
        )
    unknown = sorted(set(header) - set(CSV_COLUMNS) - {""})
    if unknown:
        raise InvalidInput(
            f"unknown column(s) {', '.join(unknown)}",
            hint="Columns: " + ",".join(CSV_COLUMNS),
            code="csv_header_invalid",
        )
    if "kind" not in header and kind is None:
        raise InvalidInput(
            "the file has no kind column",
            hint="Add one (sku or shipping), or choose the kind on the form.",
            code="csv_kind_missing",
        )
    at = {name: header.index(name) for name in CSV_COLUMNS if name in header}
    body = [(n, cells) for n, cells in enumerate(lines[1:], start=2) if cells and any(c.strip() for c in cells)]
    if len(body) > MAX_IMPORT_ROWS:
        raise InvalidInput(
            f"the file has {len(body):,} rows; at most {MAX_IMPORT_ROWS:,} are imported at once",
            hint="Split the file.",
            code="csv_too_long",
        )
    for n, cells in body:

        def cell(name: str, cells: list[str] = cells) -> str | None:
            i = at.get(name)
            return None if i is None or i >= len(cells) else _restored(cells[i].strip())

        if len(cells) > len(header):
            rows.append(_Row(n, "", "", "", None, f"{len(cells)} cells, but the header names {len(header)} columns"))
            continue
        rows.append(
            _Row(
                n, cell("kind") or (kind or ""), cell("source") or "", cell("target") or "", cell("destination") or None
            )
        )
    return rows


def import_csv(
    scope: Scope, text: str, *, kind: str | None = None, destination_id: int | None = None, by: Actor
) -> ImportReport:
    """Import mappings from CSV (columns :data:`CSV_COLUMNS`; ``kind`` and ``destination_id`` stand
    for a column the file leaves out or leaves empty). All or nothing (decision 118)."""
    if kind is not None:
        _kind(kind)
    return _apply(scope, _parse_csv(text, kind), destination_id, by=by)[0]


def _apply(
    scope: Scope, rows: list[_Row], destination_id: int | None, *, by: Actor | None
) -> tuple[ImportReport, list[_Row]]:
    """Check every row, then apply them all or none; the report, and the rows applied."""
    with scope.transaction() as conn:
        by_name = {r.name: r for r in scope.connections(conn, Role.DESTINATION)}
        default = None
        if destination_id is not None:
            default = scope.connection(conn, destination_id)
            if default.role is not Role.DESTINATION:
                raise InvalidInput(
                    f"{default.name!r} is a channel; mappings translate channel values for a destination"
                )
        elif len(by_name) == 1:
            default = next(iter(by_name.values()))
        seen: dict[tuple[int, str, str], int] = {}
        checked: list[tuple[_Row, ConnectionRow, MappingKind]] = []
        for r in rows:
            if r.message:
                r.status = "error"
                continue
            try:
                mk = _kind(r.kind)
                if r.destination:
                    dest = by_name.get(r.destination)
                    if dest is None:
                        raise InvalidInput(
                            f"no destination named {r.destination!r}"
                            + (f" (destinations: {', '.join(sorted(by_name))})" if by_name else "")
                        )
                elif default is not None:
                    dest = default
                else:
                    raise InvalidInput("which destination? name it in the destination column")
                _needs(dest, mk)
                _validate(mk, r.source, r.target)
                key = (dest.id, mk.value, r.source)
                if key in seen:
                    raise InvalidInput(f"{_label(mk)} {r.source!r} for {dest.name} is also on line {seen[key]}")
                seen[key] = r.line
            except InvalidInput as exc:
                r.status, r.message = "error", exc.message
                continue
            r.kind, r.destination = mk.value, dest.name
            checked.append((r, dest, mk))
        if any(r.status == "error" for r in rows):
            return ImportReport(
                [_report_row(r, "error" if r.status == "error" else "not_applied") for r in rows], applied=False
            ), []
        for r, dest, mk in checked:
            before = conn.execute(
                select(mappings.c.target_value).where(
                    mappings.c.destination_id == dest.id,
                    mappings.c.kind == mk.value,
                    mappings.c.source_value == r.source,
                )
            ).scalar_one_or_none()
            r.status = "added" if before is None else "unchanged" if before == r.target else "updated"
            if r.status == "unchanged":
                continue
            r.mapping_id = _upsert(conn, scope, dest, mk, r.source, r.target)
            if by is not None:
                record_action(
                    by,
                    "mapping.add" if before is None else "mapping.edit",
                    "mapping",
                    r.mapping_id,
                    f"imported {_label(mk)} {r.source!r} → {r.target!r} for {dest.name} (line {r.line})"
                    + (f", was {before!r}" if before is not None else ""),
                    {
                        "kind": mk.value,
                        "source": r.source,
                        "target": r.target,
                        "before": before,
                        "destination_id": dest.id,
                        "import_line": r.line,
                    },
                    conn=conn,
                )
        for r, _dest, mk in checked:
            if r.status != "unchanged":
                r.released, r.still_held = _release(conn, scope, mk, r.source)
    return ImportReport([_report_row(r, r.status) for r in rows], applied=True), [r for r, _d, _k in checked]


def _report_row(r: _Row, status: str) -> ImportRow:
    return ImportRow(r.line, status, r.destination or "", r.kind, r.source, r.target, r.message, r.released)


def export_csv(scope: Scope, *, destination_id: int | None = None, kind: str | None = None) -> str:
    """Every mapping of the tenant (or of one destination, one kind) as CSV the import reads back.
    A value a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, a tab first) — a SKU
    comes from the channel, so from anyone — is written after a ``'``, which the import removes."""
    where = [mappings.c.tenant_id == scope.tenant_id]
    with scope.read() as conn:
        if destination_id is not None:
            scope.connection(conn, destination_id)
            where.append(mappings.c.destination_id == destination_id)
        if kind:
            where.append(mappings.c.kind == _kind(kind).value)
        rows = conn.execute(
            _SELECT.where(*where).order_by(connections.c.name, mappings.c.kind, mappings.c.source_value)
        ).all()
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow(tuple(_defused(v) for v in (r.destination, r.kind, r.source_value, r.target_value)))
    return out.getvalue()


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _defused(value: str) -> str:
    """The cell a spreadsheet shows as text: ``'`` before a value it would run as a formula."""
    return "'" + value if value.startswith(_FORMULA) else value


def _restored(value: str) -> str:
    """The value an exported cell holds (the inverse of :func:`_defused`)."""
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA) else value


@dataclass(frozen=True)
class MappingDestination:
    """A destination the mappings screen offers, with the kinds of mapping it takes."""

    id: int
    name: str
    title: str
    kinds: tuple[str, ...]


def mapping_destinations(scope: Scope) -> list[MappingDestination]:
    with scope.read() as conn:
        rows = scope.connections(conn, Role.DESTINATION)
    return [
        MappingDestination(
            r.id, r.name, r.declaration.title, tuple(sorted(k.value for k in r.declaration.mapping_kinds))
        )
        for r in rows
        if r.declaration.mapping_kinds
    ]


@dataclass(frozen=True)
class MappingAction:
    at: datetime
    who: str
    action: str
    summary: str
    address: str | None
    mapping_id: int | None


def recent_mapping_actions(scope: Scope, limit: int = 20) -> list[MappingAction]:
    """The latest changes to the tenant's mappings, deleted ones included (newest first)."""
    with scope.read() as conn:
        rows = conn.execute(
            select(user_actions)
            .where(user_actions.c.tenant_id == scope.tenant_id, user_actions.c.object_type == "mapping")
            .order_by(user_actions.c.id.desc())
            .limit(max(1, min(limit, 200)))
        ).all()
    return [
        MappingAction(
            r.at,
            str(r.actor_name),
            str(r.action),
            str(r.summary),
            r.address,
            int(r.object_id) if r.object_id and str(r.object_id).isdigit() else None,
        )
        for r in rows
    ]
