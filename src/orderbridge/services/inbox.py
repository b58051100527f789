"""The orders inbox: one tenant's orders filtered, searched and sorted, a page at a time.

What the portal's inbox, the REST API's ``GET /orders`` and ``orderbridge orders list`` show.
It is shaped by one requirement — every page stays fast at a million orders, on SQLite and
PostgreSQL — and that decides three things:

- **Keyset pagination, never OFFSET.** A page is "the ``limit`` orders after (or before) this
  one in this order": the cursor is the sort key and id of the row at the page's edge, and the
  query is a range scan of an index that ends with that key and ``id`` (migration 0010), so page
  10,000 costs what page 1 costs. The cursor is an opaque string (base64 of the sort, the
  direction, the key and the id); a cursor that cannot be read, or was made for another sort, is
  refused as :class:`~orderbridge.errors.InvalidInput`, never guessed at.
- **Two queries per page.** The first finds the page's ids with nothing but indexed columns
  (``id`` and the sort key) — an index-only walk wherever the filter allows; the second reads the
  rows to show (connection, customer from the canonical JSON, totals) and their open reasons for
  those ids only. Reading the customer's name inside the first query would make a database that
  has to sort (a popular SKU, a hold reason) read it from every candidate row.
- **Every filter is an index's prefix** (decision 96): a state or a connection with the sort
  key, the e-mail (``orders.email``, lower-cased by the orders writer), a SKU (``order_skus``), an
  open reason's code and value (a partial index), a number prefix as a range of ``number``
  (``COLLATE "C"`` on PostgreSQL, so the range is exact under any database collation and the
  order is SQLite's).

Every query filters by ``scope.tenant_id``; a connection id of another tenant is answered as an
unknown one (:class:`~orderbridge.errors.NotFound`). Filter values come from people (a form, a
URL, the CLI): :func:`parse_query` reads them from strings and refuses a bad one naming it, with
a hint, as :class:`~orderbridge.errors.InvalidInput` carrying the offending ``field``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, Select, and_, bindparam, literal, select, tuple_
from sqlalchemy.sql.elements import KeyedColumnElement

from orderbridge.domain.reasons import HoldCode, SkipCode
from orderbridge.domain.states import OrderState
from orderbridge.errors import InvalidInput
from orderbridge.services.scope import Scope
from orderbridge.storage.repos.orders import email_key
from orderbridge.storage.tables import (
    INBOX_CREATED,
    INBOX_TOTAL,
    connections,
    order_reasons,
    order_skus,
    orders,
)

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
#: searches longer than this are no order number, e-mail or SKU (and would only make a long query)
MAX_SEARCH = 300
STATES = tuple(s.value for s in OrderState)
REASON_CODES = tuple(sorted({*(c.value for c in HoldCode), *(c.value for c in SkipCode)}))
#: reason kinds that make an order "a problem" in the inbox (a skip is a rule working, shown, not red)
PROBLEM_KINDS = frozenset({"hold", "push"})


class Sort(StrEnum):
    NEWEST = "newest"
    OLDEST = "oldest"
    UPDATED = "updated"
    NUMBER = "number"
    TOTAL = "total"


class Search(StrEnum):
    """What the one search box of the portal searches in (``auto``: an e-mail when it has an @)."""

    AUTO = "auto"
    NUMBER = "number"
    EMAIL = "email"
    SKU = "sku"


def invalid(field_name: str, message: str, hint: str) -> InvalidInput:
    """An :class:`InvalidInput` naming the form field or query parameter it is about."""
    err = InvalidInput(message, hint=hint)
    err.field = field_name  # type: ignore[attr-defined]  # read by the API's error shape
    return err


@dataclass(frozen=True)
class InboxQuery:
    """What to show. Every field is optional; ``created_to`` is exclusive."""

    state: OrderState | None = None
    connection_id: int | None = None
    reason: str | None = None
    reason_value: str | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    number: str | None = None
    email: str | None = None
    sku: str | None = None
    sort: Sort = Sort.NEWEST
    cursor: str | None = None
    limit: int = DEFAULT_LIMIT

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise invalid("limit", f"limit {self.limit} is out of range", f"Ask for 1 to {MAX_LIMIT} orders a page.")
        for name in ("created_from", "created_to"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise invalid(name, f"{name} {value.isoformat()} has no time zone", "Give the time in UTC.")
        if self.created_from and self.created_to and self.created_from >= self.created_to:
            raise invalid(
                "created_to",
                f"the date range from {self.created_from.isoformat()} to {self.created_to.isoformat()} is empty",
                "The end of the range must come after its start.",
            )
        if self.reason_value is not None and self.reason is None:
            raise invalid("reason_value", "a reason value without a reason code", "Choose the reason first.")

    @property
    def filtered(self) -> bool:
        """Is anything narrowed (the inbox says "no order matches" rather than "no orders yet")?"""
        return any(
            v is not None
            for v in (
                self.state,
                self.connection_id,
                self.reason,
                self.created_from,
                self.created_to,
                self.number,
                self.email,
                self.sku,
            )
        )


@dataclass(frozen=True)
class RowReason:
    kind: str
    code: str
    value: str
    message: str


@dataclass(frozen=True)
class InboxRow:
    id: int
    connection_id: int
    connection: str
    external_id: str
    number: str
    version: int
    customer_name: str
    customer_email: str
    state: str
    total: Decimal | None
    currency: str | None
    #: the channel's creation time; None for an order the hub could not read
    created_at: datetime | None
    received_at: datetime
    updated_at: datetime
    reasons: tuple[RowReason, ...]

    @property
    def problem(self) -> bool:
        """Does the order need someone (held, or a fulfilment push held)? The row stands out."""
        return self.state == OrderState.HELD.value or any(r.kind in PROBLEM_KINDS for r in self.reasons)


@dataclass(frozen=True)
class InboxPage:
    rows: list[InboxRow]
    query: InboxQuery
    #: the cursor of the page after this one, None on the last page
    next_cursor: str | None
    #: the cursor of the page before this one, None on the first page
    prev_cursor: str | None
    #: what the filters offer: the tenant's connections (id, name, role) and the reason codes open now
    connections: list[tuple[int, str, str]] = field(default_factory=list)
    open_codes: list[str] = field(default_factory=list)


# --- parsing what people typed -------------------------------------------------------------------


def parse_query(params: Mapping[str, str | None]) -> InboxQuery:
    """An :class:`InboxQuery` from a form's or a URL's strings; an empty value is no filter.

    Names: ``state``, ``connection_id``, ``reason`` (``code`` or ``code:value``), ``reason_value``,
    ``created_from``/``created_to`` (a date — the range includes the ``to`` day — or an ISO time),
    ``number``, ``email``, ``sku``, ``q`` with ``search`` (``auto``, ``number``, ``email``,
    ``sku``: the portal's one search box), ``sort``, ``cursor``, ``limit``."""

    def get(name: str) -> str | None:
        value = params.get(name)
        if value is None:
            return None
        value = value.strip()
        if len(value) > MAX_SEARCH:
            raise invalid(name, f"{name} is {len(value)} characters long", f"Use at most {MAX_SEARCH} characters.")
        return value or None

    state = get("state")
    if state is not None and state not in STATES:
        raise invalid("state", f"unknown state {state!r}", f"States: {', '.join(STATES)}.")
    reason, reason_value = get("reason"), get("reason_value")
    if reason is not None and ":" in reason and reason_value is None:
        reason, reason_value = (part.strip() or None for part in reason.split(":", 1))
    if reason is not None and reason not in REASON_CODES:
        raise invalid("reason", f"unknown reason {reason!r}", f"Reasons: {', '.join(REASON_CODES)}.")
    sort = get("sort") or Sort.NEWEST.value
    if sort not in Sort.__members__.values():
        raise invalid("sort", f"unknown sort {sort!r}", f"Sort by one of: {', '.join(s.value for s in Sort)}.")
    searched = {"number": get("number"), "email": get("email"), "sku": get("sku")}
    q = get("q")
    if q is not None:
        where = get("search") or Search.AUTO.value
        if where not in Search.__members__.values():
            raise invalid("search", f"cannot search in {where!r}", f"Search in: {', '.join(s.value for s in Search)}.")
        if where == Search.AUTO:
            where = Search.EMAIL.value if "@" in q else Search.NUMBER.value
        searched[where] = q
    limit = _int("limit", get("limit"))
    return InboxQuery(
        state=OrderState(state) if state else None,
        connection_id=_int("connection_id", get("connection_id")),
        reason=reason,
        reason_value=reason_value,
        created_from=_when("created_from", get("created_from"), end=False),
        created_to=_when("created_to", get("created_to"), end=True),
        number=searched["number"],
        email=searched["email"],
        sku=searched["sku"],
        sort=Sort(sort),
        cursor=get("cursor"),
        limit=DEFAULT_LIMIT if limit is None else limit,
    )


def _int(name: str, value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 18:
        raise invalid(name, f"{name} {value!r} is not a number", "Use a whole number, as the lists show it.")
    return int(value)


def _when(name: str, value: str | None, *, end: bool) -> datetime | None:
    """A date (the whole day: the start of the next day as an exclusive end) or an ISO time (UTC when naive)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            start = datetime.combine(day, time(), UTC)
            return start + timedelta(days=1) if end else start
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(name, f"{name} {value!r} is not a date", "Use a date as 2026-11-30.") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


# --- the sort keys and the cursor ----------------------------------------------------------------


@dataclass(frozen=True)
class _Order:
    """How a sort orders rows: the key (an indexed expression) and whether the largest comes first."""

    key: ColumnElement[Any]
    descending: bool


def _number(dialect: str) -> ColumnElement[str]:
    """``orders.number`` as its index holds it (0010: ``COLLATE "C"`` on PostgreSQL)."""
    return orders.c.number.collate("C") if dialect == "postgresql" else orders.c.number


def _sort(sort: Sort, dialect: str) -> _Order:
    if sort is Sort.NEWEST:
        return _Order(INBOX_CREATED, True)
    if sort is Sort.OLDEST:
        return _Order(INBOX_CREATED, False)
    if sort is Sort.UPDATED:
        return _Order(orders.c.updated_at, True)
    if sort is Sort.NUMBER:
        return _Order(_number(dialect), False)
    return _Order(INBOX_TOTAL, True)


_BAD_CURSOR = "This page link is out of date or damaged: start again from the first page."


def make_cursor(sort: Sort, before: bool, key: Any, order_id: int) -> str:
    """The opaque cursor of a row: the rows after it (``before``: before it) in ``sort``."""
    value = key.isoformat() if isinstance(key, datetime) else key
    raw = orjson.dumps([sort.value, "b" if before else "a", value, order_id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_cursor(cursor: str, sort: Sort) -> tuple[bool, Any, int]:
    """``(before, key, id)`` of a cursor made for ``sort``; :class:`InvalidInput` for any other string."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        made_for, direction, value, order_id = orjson.loads(raw)
    except (binascii.Error, ValueError, TypeError, orjson.JSONDecodeError):
        raise invalid("cursor", "the page cursor cannot be read", _BAD_CURSOR) from None
    if made_for != sort.value:
        raise invalid("cursor", f"the page cursor is for the {made_for!r} sort, not {sort.value!r}", _BAD_CURSOR)
    if direction not in ("a", "b") or type(order_id) is not int:
        raise invalid("cursor", "the page cursor cannot be read", _BAD_CURSOR)
    try:
        key = _key_value(sort, value)
    except (TypeError, ValueError):
        raise invalid("cursor", "the page cursor cannot be read", _BAD_CURSOR) from None
    return direction == "b", key, order_id


def _key_value(sort: Sort, value: Any) -> Any:
    if sort in (Sort.NEWEST, Sort.OLDEST, Sort.UPDATED):
        if not isinstance(value, str):
            raise TypeError(value)
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError(value)
        return parsed
    if sort is Sort.NUMBER:
        if not isinstance(value, str):
            raise TypeError(value)
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(value)
    return float(value)


# --- the read model ------------------------------------------------------------------------------


def inbox(scope: Scope, query: InboxQuery) -> InboxPage:
    """One page of the tenant's orders matching ``query``, with the cursors of its neighbours."""
    with scope.read() as conn:
        dialect = conn.dialect.name
        choices = scope.connections(conn)
        if query.connection_id is not None:
            scope.connection(conn, query.connection_id)  # NotFound for an unknown id and another tenant's
        order = _sort(query.sort, dialect)
        before, edge = False, None
        if query.cursor is not None:
            before, key, oid = read_cursor(query.cursor, query.sort)
            edge = (key, oid)
        found = list(conn.execute(_page_ids(scope.tenant_id, query, order, dialect, edge, before)).all())
        more = len(found) > query.limit
        found = found[: query.limit]
        if before:
            found.reverse()
        rows = _rows(conn, scope.tenant_id, [int(r.id) for r in found])
        codes = _open_codes(conn, scope.tenant_id)
    next_cursor = prev_cursor = None
    if found:
        first, last = found[0], found[-1]
        # forward: a next page when more rows came back; a previous one when we came from a cursor
        has_next = more if not before else True
        has_prev = (edge is not None) if not before else more
        if has_next:
            next_cursor = make_cursor(query.sort, False, last.k, int(last.id))
        if has_prev:
            prev_cursor = make_cursor(query.sort, True, first.k, int(first.id))
    elif edge is not None:  # past the end (rows went away): the way back is the cursor's own row
        prev_cursor = make_cursor(query.sort, True, edge[0], edge[1]) if not before else None
        next_cursor = make_cursor(query.sort, False, edge[0], edge[1]) if before else None
    return InboxPage(
        rows=rows,
        query=query,
        next_cursor=next_cursor,
        prev_cursor=prev_cursor,
        connections=[(c.id, c.name, c.role.value) for c in choices],
        open_codes=codes,
    )


def _filters(tenant_id: int, query: InboxQuery, dialect: str) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [orders.c.tenant_id == tenant_id]
    if query.state is not None:
        where.append(orders.c.state == query.state.value)
    if query.connection_id is not None:
        where.append(orders.c.connection_id == query.connection_id)
    if query.created_from is not None:
        where.append(literal(query.created_from, INBOX_CREATED.type) <= INBOX_CREATED)
    if query.created_to is not None:
        where.append(literal(query.created_to, INBOX_CREATED.type) > INBOX_CREATED)
    if query.reason is not None:
        held = select(order_reasons.c.order_id).where(
            order_reasons.c.tenant_id == tenant_id,
            order_reasons.c.code == query.reason,
            order_reasons.c.released_at.is_(None),
        )
        if query.reason_value is not None:
            held = held.where(order_reasons.c.value == query.reason_value)
        where.append(orders.c.id.in_(held))
    if query.email is not None:
        where.append(orders.c.email == email_key(query.email))
    if query.sku is not None:
        where.append(
            orders.c.id.in_(
                select(order_skus.c.order_id).where(order_skus.c.tenant_id == tenant_id, order_skus.c.sku == query.sku)
            )
        )
    if query.number is not None:
        where.append(_number_prefix(query.number, dialect))
    return where


def _number_prefix(text: str, dialect: str) -> ColumnElement[bool]:
    """Numbers equal to ``text`` or starting with it — ``1001`` finds ``#1001`` too — as index ranges."""
    number = _number(dialect)
    prefixes = [text] if text.startswith("#") else [text, f"#{text}"]
    ranges = [and_(number >= p, number < _after_prefix(p)) for p in prefixes]
    return ranges[0] if len(ranges) == 1 else ranges[0] | ranges[1]


def _after_prefix(prefix: str) -> str:
    """The least string greater than every string starting with ``prefix`` (binary order)."""
    last = ord(prefix[-1]) + 1
    if 0xD800 <= last <= 0xDFFF:  # not a character: the next one is
        last = 0xE000
    if last > 0x10FFFF:
        return prefix + "\U0010ffff"
    return prefix[:-1] + chr(last)


def _page_ids(
    tenant_id: int,
    query: InboxQuery,
    order: _Order,
    dialect: str,
    edge: tuple[Any, int] | None,
    before: bool,
) -> Select[Any]:
    """The ids (and sort keys) of the page: ``limit + 1`` rows, to know whether another page follows."""
    key: KeyedColumnElement[Any] | ColumnElement[Any] = order.key
    where = _filters(tenant_id, query, dialect)
    # walking backwards (a "before" cursor) is walking the other way, then reversing the page
    descending = order.descending != before
    if edge is not None:
        k = bindparam("edge_key", edge[0], type_=key.type)
        i = bindparam("edge_id", edge[1], type_=orders.c.id.type)
        if descending:
            # the plain bound is what SQLite needs to range-scan an expression index; the row value is exact
            where += [key <= k, tuple_(key, orders.c.id) < tuple_(k, i)]
        else:
            where += [key >= k, tuple_(key, orders.c.id) > tuple_(k, i)]
    ordering = [key.desc(), orders.c.id.desc()] if descending else [key.asc(), orders.c.id.asc()]
    return select(orders.c.id, key.label("k")).where(*where).order_by(*ordering).limit(query.limit + 1)


_CUSTOMER = orders.c.canonical["customer_name"].as_string()
_EMAIL = orders.c.canonical["email"].as_string()


def _rows(conn: Connection, tenant_id: int, ids: Sequence[int]) -> list[InboxRow]:
    if not ids:
        return []
    reasons: dict[int, list[RowReason]] = {}
    for why in conn.execute(
        select(
            order_reasons.c.order_id,
            order_reasons.c.kind,
            order_reasons.c.code,
            order_reasons.c.value,
            order_reasons.c.message,
        )
        .where(
            order_reasons.c.tenant_id == tenant_id,
            order_reasons.c.order_id.in_(ids),
            order_reasons.c.released_at.is_(None),
        )
        .order_by(order_reasons.c.id)
    ):
        reasons.setdefault(why.order_id, []).append(RowReason(why.kind, why.code, why.value, why.message))
    by_id = {}
    for r in conn.execute(
        select(
            orders.c.id,
            orders.c.connection_id,
            connections.c.name,
            orders.c.external_id,
            orders.c.number,
            orders.c.version,
            _CUSTOMER.label("customer_name"),
            _EMAIL.label("customer_email"),
            orders.c.state,
            orders.c.total,
            orders.c.currency,
            orders.c.channel_created_at,
            orders.c.received_at,
            orders.c.updated_at,
        )
        .join(connections, connections.c.id == orders.c.connection_id)
        .where(orders.c.tenant_id == tenant_id, orders.c.id.in_(ids))
    ):
        by_id[r.id] = InboxRow(
            id=int(r.id),
            connection_id=int(r.connection_id),
            connection=r.name,
            external_id=r.external_id,
            number=r.number,
            version=int(r.version),
            customer_name=r.customer_name or "",
            customer_email=r.customer_email or "",
            state=r.state,
            total=r.total,
            currency=r.currency,
            created_at=r.channel_created_at,
            received_at=r.received_at,
            updated_at=r.updated_at,
            reasons=tuple(reasons.get(r.id, ())),
        )
    return [by_id[i] for i in ids if i in by_id]


def _open_codes(conn: Connection, tenant_id: int) -> list[str]:
    """The reason codes some order of the tenant has open now (the filter's choices)."""
    return sorted(
        conn.execute(
            select(order_reasons.c.code)
            .where(order_reasons.c.tenant_id == tenant_id, order_reasons.c.released_at.is_(None))
            .distinct()
        ).scalars()
    )
