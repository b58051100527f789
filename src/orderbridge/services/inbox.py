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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Connection, Select, and_, bindparam, exists, func, literal, select, tuple_
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import custom_op

from orderbridge.domain.reasons import HoldCode, SkipCode
from orderbridge.domain.states import OrderState
from orderbridge.errors import InvalidInput
from orderbridge.services.scope import Scope
from orderbridge.storage.repos.orders import email_key
from orderbridge.storage.tables import (
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
    #: what the filters offer (asked for with ``choices``): the tenant's connections (id, name,
    #: role) and the reason codes open now
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
        return _Order(orders.c.placed_at, True)
    if sort is Sort.OLDEST:
        return _Order(orders.c.placed_at, False)
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


def inbox(scope: Scope, query: InboxQuery, *, choices: bool = False) -> InboxPage:
    """One page of the tenant's orders matching ``query``, with the cursors of its neighbours;
    with ``choices``, what the filter form offers too (the page's form needs them, a refresh of the
    results and the API do not)."""
    with scope.read() as conn:
        if query.connection_id is not None:
            scope.connection(conn, query.connection_id)  # NotFound for an unknown id and another tenant's
        before, edge = False, None
        if query.cursor is not None:
            before, key, oid = read_cursor(query.cursor, query.sort)
            edge = (key, oid)
        plan = plan_page(conn, scope.tenant_id, query)
        found = [] if plan is None else list(conn.execute(_page_ids(scope.tenant_id, query, plan, edge, before)).all())
        more = len(found) > query.limit
        found = found[: query.limit]
        if before:
            found.reverse()
        rows = _rows(conn, scope.tenant_id, [int(r.id) for r in found])
        channels = [(c.id, c.name, c.role.value) for c in scope.connections(conn)] if choices else []
        codes = _open_codes(conn, scope.tenant_id) if choices else []
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
        connections=channels,
        open_codes=codes,
    )


# --- how a page is found (decision 95) -----------------------------------------------------------
#
# A page is found one of two ways. *Walk*: read the sort's index from the cursor on and keep the
# orders every filter accepts — right when they are many (the first 51 come quickly). *Drive*: read
# the orders of the narrowest filter from its own index and sort them — right when they are few.
# Which one depends on how many orders a filter matches, which is data: PostgreSQL's planner reads
# it from its statistics (it has histograms of SKUs and reasons, so a best seller and a SKU seen
# twice are planned apart), SQLite has none (the hub never runs ANALYZE, and even then it keeps no
# histogram). So the inbox counts, up to DRIVE_AT_MOST, what each narrowing filter matches (one
# index-only probe each) and chooses; on SQLite it also hides from the planner every term that
# is not the chosen index's (SQLite's documented unary ``+``), since without statistics it takes
# any ``tenant_id = ?`` index for a narrow one.

#: a filter matching at most this many orders drives the page (they are read and sorted: ~10 ms at
#: the limit); above it, walking the sort's index finds a page in about as many steps
DRIVE_AT_MOST = 5_000


_Hide = Callable[[ColumnElement[Any]], ColumnElement[Any]]


@dataclass(frozen=True)
class _Filter:
    """One filter of a query: its test on a row of ``orders``, written with the columns ``hide``
    gives it, and — unless it is a prefix of the index the sort walks — the order ids it matches,
    from an index of its own (then it may drive the page)."""

    name: str
    test: Callable[[_Hide], ColumnElement[bool]]
    ids: Select[Any] | None = None


@dataclass(frozen=True)
class Plan:
    """How a page is found: walking the sort's index, or driven by one filter's orders."""

    sort: _Order
    #: the filter whose orders are read and sorted; None: the sort's index is walked
    driver: _Filter | None
    #: what each order must pass (every filter but the driver)
    tests: list[ColumnElement[bool]]
    #: the tenant term, as the plan wants it seen by the planner
    tenant: ColumnElement[Any]


_PLUS: custom_op[Any] = custom_op("+")


def _seen(column: ColumnElement[Any]) -> ColumnElement[Any]:
    return column


def _hidden(dialect: str) -> _Hide:
    """SQLite's unary ``+``: a no-op that makes its planner use no index for the term. PostgreSQL
    plans by statistics: nothing is hidden from it."""
    if dialect != "sqlite":
        return _seen
    return lambda column: UnaryExpression(column, operator=_PLUS, type_=column.type)


def _filters(tenant_id: int, query: InboxQuery, dialect: str) -> list[_Filter]:
    found: list[_Filter] = []
    by_placed = query.sort in (Sort.NEWEST, Sort.OLDEST)

    def of(column: ColumnElement[Any]) -> Select[Any]:
        return select(orders.c.id).where(orders.c.tenant_id == tenant_id, column)

    if query.state is not None:
        state, connection_id = query.state, query.connection_id

        def of_state(f: _Hide) -> ColumnElement[bool]:
            terms = [f(orders.c.state) == state.value]
            return and_(*terms, *([] if connection_id is None else [f(orders.c.connection_id) == connection_id]))

        # ix_orders_inbox_state is (tenant, state, placed_at, id, connection): sorted by placed_at it
        # is walked, the connection read from it; for another sort it lists the state's orders. The
        # connection is never an index term here (SQLite would take its unique index for a narrow one)
        hide_connection = _hidden(dialect)

        def seen_state(column: ColumnElement[Any]) -> ColumnElement[Any]:
            return hide_connection(column) if column is orders.c.connection_id else column

        if by_placed:
            found.append(_Filter("state", lambda f: of_state(seen_state if f is _seen else f)))
        else:
            found.append(_Filter("state", of_state, of(of_state(seen_state))))
    elif query.connection_id is not None:
        connection_id = query.connection_id

        def of_connection(f: _Hide) -> ColumnElement[bool]:
            return f(orders.c.connection_id) == connection_id

        # a connection's orders, from its unique (connection, external id) index: the connection
        # was found through the scope, so they are the tenant's (the page checks the tenant again)
        found.append(_Filter("connection", of_connection, select(orders.c.id).where(of_connection(_seen))))
    if query.created_from is not None or query.created_to is not None:
        start, end = query.created_from, query.created_to

        def of_dates(f: _Hide) -> ColumnElement[bool]:
            placed, kind = f(orders.c.placed_at), orders.c.placed_at.type
            return and_(
                *([] if start is None else [placed >= literal(start, kind)]),
                *([] if end is None else [placed < literal(end, kind)]),
            )

        found.append(_Filter("created", of_dates, None if by_placed else of(of_dates(_seen))))
    if query.number is not None:
        number, text = _number(dialect), query.number

        def of_number(f: _Hide) -> ColumnElement[bool]:
            return _number_prefix(text, f(number))

        found.append(_Filter("number", of_number, None if query.sort is Sort.NUMBER else of(of_number(_seen))))
    if query.email is not None:
        key = email_key(query.email)

        def of_email(f: _Hide) -> ColumnElement[bool]:
            return f(orders.c.email) == key

        found.append(_Filter("email", of_email, of(of_email(_seen))))
    if query.sku is not None:
        of_sku = (order_skus.c.tenant_id == tenant_id, order_skus.c.sku == query.sku)
        has_sku = exists().where(*of_sku, order_skus.c.order_id == orders.c.id)  # one probe of its key
        found.append(_Filter("sku", lambda f: has_sku, select(order_skus.c.order_id).where(*of_sku)))
    if query.reason is not None:
        code, value = query.reason, query.reason_value

        def is_open(f: _Hide) -> list[ColumnElement[bool]]:
            return [
                f(order_reasons.c.tenant_id) == tenant_id,
                f(order_reasons.c.code) == code,
                order_reasons.c.released_at.is_(None),
                *([] if value is None else [f(order_reasons.c.value) == value]),
            ]

        # checked order by order, the reasons are read by order (the cause's columns hidden from
        # SQLite: it would scan every open reason of the cause for each order)
        held = exists().where(order_reasons.c.order_id == orders.c.id, *is_open(_hidden(dialect)))
        found.append(_Filter("reason", lambda f: held, select(order_reasons.c.order_id).where(*is_open(_seen))))
    return found


def plan_page(conn: Connection, tenant_id: int, query: InboxQuery) -> Plan | None:
    """Walk or drive (see above); None when a filter matches no order at all (the page is empty)."""
    dialect = conn.dialect.name
    hide = _hidden(dialect)
    filters = _filters(tenant_id, query, dialect)
    narrowing = [f for f in filters if f.ids is not None]
    driver = None
    if narrowing:  # one round trip: each count stops at DRIVE_AT_MOST + 1
        counts = [
            select(func.count()).select_from(f.ids.limit(DRIVE_AT_MOST + 1).subquery()).scalar_subquery()
            for f in narrowing
            if f.ids is not None
        ]
        sizes = [(int(n), k) for k, n in enumerate(conn.execute(select(*counts)).one())]
        smallest, at = min(sizes)
        if smallest == 0:
            return None
        if smallest <= DRIVE_AT_MOST:
            driver = narrowing[at]
    sort = _sort(query.sort, dialect)
    if driver is not None:  # the driver's orders are read by id; every other filter is a check, by no index
        tests = [f.test(hide) for f in filters if f is not driver]
        return Plan(sort, driver, tests, hide(orders.c.tenant_id))
    # a walk: the filters that are a prefix of the walked index are its own; the others are checks
    tests = [f.test(hide if f.ids is not None else _seen) for f in filters]
    return Plan(sort, None, tests, orders.c.tenant_id)


def _number_prefix(text: str, number: ColumnElement[str]) -> ColumnElement[bool]:
    """Numbers equal to ``text`` or starting with it — ``1001`` finds ``#1001`` too — as index ranges."""
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
    plan: Plan,
    edge: tuple[Any, int] | None,
    before: bool,
) -> Select[Any]:
    """The ids (and sort keys) of the page: ``limit + 1`` rows, to know whether another page follows."""
    key: ColumnElement[Any] = plan.sort.key
    where: list[ColumnElement[bool]] = [plan.tenant == tenant_id, *plan.tests]
    if plan.driver is not None and plan.driver.ids is not None:
        where.append(orders.c.id.in_(plan.driver.ids))
    # walking backwards (a "before" cursor) is walking the other way, then reversing the page
    descending = plan.sort.descending != before
    if edge is not None:
        k = bindparam("edge_key", edge[0], type_=key.type)
        i = bindparam("edge_id", edge[1], type_=orders.c.id.type)
        if descending:
            # the plain bound lets SQLite range-scan an expression index; the row value is exact
            where += [key <= k, tuple_(key, orders.c.id) < tuple_(k, i)]
        else:
            where += [key >= k, tuple_(key, orders.c.id) > tuple_(k, i)]
    ordering = [key.desc(), orders.c.id.desc()] if descending else [key.asc(), orders.c.id.asc()]
    return select(orders.c.id, key.label("k")).where(*where).order_by(*ordering).limit(query.limit + 1)


_CUSTOMER = orders.c.canonical["customer_name"].as_string()
_EMAIL = orders.c.canonical["email"].as_string()


def _rows(conn: Connection, tenant_id: int, ids: Sequence[int]) -> list[InboxRow]:
    """The page's rows by id, each with its open reasons (one query: an order's row once per open
    reason). The tenant term is hidden from SQLite, which would walk a tenant index for it."""
    if not ids:
        return []
    hide = _hidden(conn.dialect.name)
    reason = order_reasons.alias("reason")
    found: dict[int, tuple[Any, list[RowReason]]] = {}
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
            reason.c.kind,
            reason.c.code,
            reason.c.value,
            reason.c.message,
        )
        .join(connections, connections.c.id == orders.c.connection_id)
        .outerjoin(reason, (reason.c.order_id == orders.c.id) & reason.c.released_at.is_(None))
        .where(hide(orders.c.tenant_id) == tenant_id, orders.c.id.in_(ids))
        .order_by(orders.c.id, reason.c.id)
    ):
        _first, reasons = found.setdefault(int(r.id), (r, []))
        if r.code is not None:
            reasons.append(RowReason(r.kind, r.code, r.value, r.message))
    return [
        InboxRow(
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
            reasons=tuple(reasons),
        )
        for r, reasons in (found[i] for i in ids if i in found)
    ]


def _open_codes(conn: Connection, tenant_id: int) -> list[str]:
    """The reason codes some order of the tenant has open now (the filter's choices).

    A walk of the open reasons' index (``ix_order_reasons_open``: tenant, code), one seek per code:
    each step asks for the smallest code after the last one. A plain ``DISTINCT`` read every open
    reason on PostgreSQL (21 ms of each inbox page at a million orders, 30,000 of them held)."""
    is_open = (order_reasons.c.tenant_id == tenant_id, order_reasons.c.released_at.is_(None))
    codes = select(func.min(order_reasons.c.code).label("code")).where(*is_open).cte("codes", recursive=True)
    following = select(func.min(order_reasons.c.code)).where(*is_open, order_reasons.c.code > codes.c.code)
    codes = codes.union_all(select(following.scalar_subquery()).where(codes.c.code.is_not(None)))
    return sorted(conn.execute(select(codes.c.code).where(codes.c.code.is_not(None))).scalars())
