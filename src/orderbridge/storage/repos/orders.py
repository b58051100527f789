"""Orders: the lookups by channel id, the new-order insert, a new version's content, and
:func:`transition` — the one writer of an order's state.

Unique ``(connection_id, external_id)`` is the binder: new orders go in with ``ON CONFLICT DO
NOTHING`` and come back with their ids, so a webhook and a poll racing for one order cannot make
two. A new version is written with an optimistic check on the version it replaces.

Every state change — the pipeline's decision on a re-evaluated order, a destination's rejection,
an order posted everywhere, one fulfilled, a retry — is a :class:`Move` given to :func:`transition`,
which checks it against :data:`orderbridge.domain.states.ORDER`, writes it guarded by the state
the caller read (``… WHERE state = :source``) and appends the events that tell it, in one
statement per (source, target) pair and chunk: the hot paths hand it whole batches. A row found in
another state than the caller read (another transaction moved it) is checked again from the state
it is really in, never overwritten blindly.

What the inbox lists by is derived from an order's content and written with it, here only
(0010): ``orders.placed_at`` (the channel's creation time, else when the hub received it),
``orders.email`` (:func:`email_key`, a content column ingest computes with the others) and
``order_skus``, each distinct SKU of the current version (:func:`skus_of_lines`), replaced with
every version whose content is written. Ingest hands both over as it read them from the record;
any other writer's are read from the canonical JSON it writes (:func:`skus_of`), so the values
searched are always those of the content stored. Derived in Python, not by the database from the
stored JSON: PostgreSQL's JSON operators refuse a document holding ``\\u0000`` (which the input
limits hold, but store), and reading SKUs back from the JSON in SQL cost ~30 µs an order.

The same statements keep the order **tallies** (``order_tallies``, decision 110): how many of a
tenant's orders are in each state, by the hour they were received in. Every insert and every move
appends signed deltas (``-1`` held, ``+1`` ready …) in the transaction that writes the state, so a
tally can never disagree with the rows it counts; appended rather than updated in place, so two
transactions that change states never wait for each other on a counter row (PostgreSQL runs syncs,
posting and webhooks concurrently). :func:`tallies` sums them (what the dashboard shows at a million
orders without counting a million rows); :func:`compact_tallies` folds them together (the
housekeeping), and :func:`rebuild_tallies` counts them again from the orders (after a bulk load
that did not come through here).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    String,
    Update,
    bindparam,
    delete,
    func,
    literal,
    select,
    text,
    type_coerce,
    update,
)

from orderbridge.domain.states import ORDER, InvalidTransition, OrderState
from orderbridge.storage.db import dialect_insert, insert_rows
from orderbridge.storage.repos import events as event_log
from orderbridge.storage.repos import order_versions as version_log
from orderbridge.storage.tables import order_skus, order_tallies, orders, postings

#: the content columns of an order, in the order ingest computes them
VALUE_COLUMNS = (
    "number",
    "content_hash",
    "channel_created_at",
    "channel_updated_at",
    "currency",
    "total",
    "canonical",
    "raw",
    "email",  # 0010: email_key(the customer's e-mail), for the inbox's search
)
#: the columns of a new order row, in the order :func:`insert_new` takes them
ORDER_COLUMNS = (
    "tenant_id",
    "connection_id",
    "external_id",
    "state",
    "version",
    "received_at",
    "updated_at",
    *VALUE_COLUMNS,
)
_STATE_AT = ORDER_COLUMNS.index("state")
_TENANT_AT = ORDER_COLUMNS.index("tenant_id")
_CONNECTION_AT = ORDER_COLUMNS.index("connection_id")
_EXTERNAL_AT = ORDER_COLUMNS.index("external_id")
_RECEIVED_AT = ORDER_COLUMNS.index("received_at")
_CANONICAL_AT = ORDER_COLUMNS.index("canonical")
_CREATED_AT = ORDER_COLUMNS.index("channel_created_at")
_VERSION_AT = ORDER_COLUMNS.index("version")
_HASH_AT = ORDER_COLUMNS.index("content_hash")
_CHANNEL_UPDATED_AT = ORDER_COLUMNS.index("channel_updated_at")
_WRITTEN_AT = ORDER_COLUMNS.index("updated_at")
#: what insert_new writes: the columns given, and the one derived from them here
_INSERTED = (*ORDER_COLUMNS, "placed_at")
_INITIAL = frozenset(s.value for s in ORDER.initial)
_CHUNK = 500


# --- lookups -------------------------------------------------------------------------------------


def existing(conn: Connection, connection_id: int, external_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """What the ledger has of these channel orders: id, content hash, version, state, channel update time."""
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(external_ids), _CHUNK):
        chunk = list(external_ids[i : i + _CHUNK])
        for row in conn.execute(
            select(
                orders.c.id,
                orders.c.external_id,
                orders.c.content_hash,
                orders.c.version,
                orders.c.state,
                orders.c.channel_updated_at,
            ).where(orders.c.connection_id == connection_id, orders.c.external_id.in_(chunk))
        ):
            found[row.external_id] = dict(row._mapping)
    return found


def ids_by_external(conn: Connection, connection_id: int, external_ids: Iterable[str]) -> dict[str, int]:
    """The ledger ids of a channel's orders, by channel id (those it has)."""
    wanted = list(external_ids)
    found: dict[str, int] = {}
    for i in range(0, len(wanted), _CHUNK):
        for ext, oid in conn.execute(
            select(orders.c.external_id, orders.c.id).where(
                orders.c.connection_id == connection_id, orders.c.external_id.in_(wanted[i : i + _CHUNK])
            )
        ):
            found[ext] = int(oid)
    return found


def id_by_external(conn: Connection, connection_id: int, external_id: str) -> int | None:
    oid = conn.execute(
        select(orders.c.id).where(orders.c.connection_id == connection_id, orders.c.external_id == external_id)
    ).scalar_one_or_none()
    return None if oid is None else int(oid)


def channel_updated(conn: Connection, connection_id: int, external_ids: Iterable[str]) -> dict[str, datetime | None]:
    """The channel's update time of each order the ledger has, by channel id."""
    wanted = list(external_ids)
    found: dict[str, datetime | None] = {}
    for i in range(0, len(wanted), _CHUNK):
        for ext, updated in conn.execute(
            select(orders.c.external_id, orders.c.channel_updated_at).where(
                orders.c.connection_id == connection_id, orders.c.external_id.in_(wanted[i : i + _CHUNK])
            )
        ):
            found[ext] = updated
    return found


def ids_by_ref(conn: Connection, tenant_id: int, ref: str) -> list[int]:
    """Orders of the tenant a person's reference names: the number (``#1001``, or ``1001``) or the channel's id."""
    cond = (orders.c.number == ref) | (orders.c.external_id == ref)
    if ref.isdigit():
        cond = cond | (orders.c.number == f"#{ref}")
    return [int(i) for i in conn.execute(select(orders.c.id).where(orders.c.tenant_id == tenant_id, cond)).scalars()]


def state_of(conn: Connection, order_id: int) -> OrderState:
    return OrderState(conn.execute(select(orders.c.state).where(orders.c.id == order_id)).scalar_one())


def canonical_of(conn: Connection, order_id: int) -> Any:
    return conn.execute(select(orders.c.canonical).where(orders.c.id == order_id)).scalar_one()


# --- new orders and new versions ------------------------------------------------------------------


def insert_new(
    conn: Connection,
    rows: Sequence[Sequence[Any]],
    skus: Sequence[Iterable[str]] | None = None,
    *,
    now: datetime | None = None,
) -> list[tuple[Any, ...]]:
    """Insert new orders (tuples in :data:`ORDER_COLUMNS` order, each in a state an order may start
    in) with one driver executemany; returns ``(id, external_id)`` of those inserted — one another
    writer stored first is not (``ON CONFLICT DO NOTHING``). ``skus``, aligned with ``rows``, are
    each order's SKUs as ingest read them from the record (:func:`skus_of_lines`); without them
    they are read from each row's canonical JSON. ``now`` (default: the clock) is when the write
    happens, for the tallies' hours (:data:`TALLY_HOURS`)."""
    refused = {row[_STATE_AT] for row in rows} - _INITIAL
    if refused:
        raise InvalidTransition(None, OrderState(min(refused)), ORDER)
    inserted = insert_rows(
        conn,
        orders,
        _INSERTED,
        [(*row, row[_CREATED_AT] or row[_RECEIVED_AT]) for row in rows],
        conflict=("connection_id", "external_id"),
        returning=("id", "external_id", "connection_id"),
    )
    if inserted:
        by_key: dict[tuple[Any, Any], int] = {}
        for i, row in enumerate(rows):
            by_key.setdefault((row[_CONNECTION_AT], row[_EXTERNAL_AT]), i)
        tally = _Tally(now)
        found = []
        versions = []
        for oid, ext, connection_id in inserted:
            i = by_key[(connection_id, ext)]
            row = rows[i]
            tally.add(row[_TENANT_AT], row[_STATE_AT], row[_RECEIVED_AT], 1)
            found.append((int(oid), row[_TENANT_AT], skus[i] if skus is not None else skus_of(row[_CANONICAL_AT])))
            versions.append(
                (
                    row[_TENANT_AT],
                    oid,
                    row[_VERSION_AT],
                    None,
                    row[_HASH_AT],
                    row[_CHANNEL_UPDATED_AT],
                    row[_WRITTEN_AT],
                )
            )  # its content is the order's own until a later version replaces it (decision 150)
        tally.write(conn)
        _add_skus(conn, found)
        version_log.record(conn, versions)
    return [(oid, ext) for oid, ext, _c in inserted]


def insert_one(conn: Connection, values: Mapping[str, Any], *, now: datetime | None = None) -> int | None:
    """Insert one new order (column values, its state one an order may start in); its id, or None
    when another writer stored the order first."""
    ORDER.check(None, OrderState(values["state"]))
    columns, skus = _derived(values)
    columns["placed_at"] = values.get("channel_created_at") or values["received_at"]
    oid = conn.execute(
        dialect_insert(conn)(orders)
        .values(**columns)
        .on_conflict_do_nothing(index_elements=["connection_id", "external_id"])
        .returning(orders.c.id)
    ).scalar_one_or_none()
    if oid is None:
        return None
    tally = _Tally(now)
    tally.add(values["tenant_id"], values["state"], values["received_at"], 1)
    tally.write(conn)
    _add_skus(conn, [(int(oid), values["tenant_id"], skus or ())])
    version_log.record(conn, [_version_row(values["tenant_id"], int(oid), columns)])
    return int(oid)


def _version_row(tenant_id: int, order_id: int, columns: Mapping[str, Any]) -> tuple[Any, ...]:
    """The ``order_versions`` row of the current version, written with ``columns`` (the orders'
    column values): without its content, which is the order row's until a later version replaces
    it — then :func:`write_version` copies it in (decision 150)."""
    return (
        tenant_id,
        order_id,
        columns["version"],
        None,
        columns["content_hash"],
        columns.get("channel_updated_at"),
        columns["updated_at"],
    )


def write_version(conn: Connection, order_id: int, replaces: int, columns: Mapping[str, Any]) -> bool:
    """Write a new version's content (``version`` among ``columns``; ``skus`` too, as
    :func:`insert_new` takes them, else read from the new canonical JSON) over version
    ``replaces``; False when another writer replaced it first (the caller compares against what it
    wrote). The SKUs searched become the new content's: ``order_skus`` is keyed by SKU, so the
    old version's rows are found from the old content (:func:`skus_of`, as they were written).
    Every version stays (decision 150): the replaced version's content is copied into its
    ``order_versions`` row, and the new version gets its own."""
    if "state" in columns:
        raise ValueError("an order's state is written by transition(), not with its content")
    values, skus = _derived(columns)
    if "channel_created_at" in values:
        created = literal(values["channel_created_at"], orders.c.channel_created_at.type)
        values["placed_at"] = func.coalesce(created, orders.c.received_at)
    before = None
    versioned = "version" in values and "content_hash" in values
    if skus is not None or versioned:
        before = conn.execute(
            select(orders.c.tenant_id, orders.c.canonical, orders.c.content_hash, orders.c.channel_updated_at).where(
                orders.c.id == order_id, orders.c.version == replaces
            )
        ).first()
        if before is None:
            return False
    done = conn.execute(
        update(orders).where(orders.c.id == order_id, orders.c.version == replaces).values(**values)
    ).rowcount
    if not done:
        return False
    if skus is not None and before is not None:
        old = skus_of(before.canonical)
        if old:
            conn.execute(
                delete(order_skus).where(
                    order_skus.c.tenant_id == before.tenant_id,
                    order_skus.c.sku.in_(old),
                    order_skus.c.order_id == order_id,
                )
            )
        _add_skus(conn, [(order_id, int(before.tenant_id), skus)])
    if versioned and before is not None:
        tenant_id = int(before.tenant_id)
        # the replaced version's content leaves the order row: it stays, in its own row
        replaced = (tenant_id, order_id, replaces, before.canonical, before.content_hash, before.channel_updated_at)
        version_log.supersede(conn, (*replaced, values["updated_at"]))
        version_log.record(conn, [_version_row(tenant_id, order_id, values)])
    return True


def note_channel_update(conn: Connection, order_id: int, at: datetime) -> None:
    """The channel touched the order without changing its content: remember when."""
    conn.execute(update(orders).where(orders.c.id == order_id).values(channel_updated_at=at))


# --- what the inbox searches by (0010) -------------------------------------------------------------


def searchable(value: str) -> str:
    """``value`` as a text column the inbox searches can hold it on either database: a NUL (which
    PostgreSQL's text refuses) and a lone surrogate (which no encoding writes) become U+FFFD. The
    order's content keeps the value as sent; only the search key is mended."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    return value


def email_key(email: str | None) -> str | None:
    """An e-mail as ``orders.email`` holds it and the inbox searches it: trimmed, lower-cased,
    :func:`searchable`; None when empty."""
    key = searchable((email or "").strip().lower())
    return key or None


def skus_of_lines(skus: Iterable[str | None]) -> tuple[str, ...]:
    """An order's distinct SKUs, in line order, from its lines' SKUs (empty ones left out), each
    :func:`searchable`."""
    return tuple(dict.fromkeys(searchable(s) for s in skus if s))


def skus_of(canonical: Any) -> tuple[str, ...]:
    """The SKUs of a canonical JSON form (a dict, or its text as ingest serialised it); none
    without one (an unreadable order, a minimal form)."""
    if isinstance(canonical, str):
        canonical = orjson.loads(str(canonical))  # orjson reads exact str only, not JsonText
    if not isinstance(canonical, Mapping) or not isinstance(canonical.get("lines"), list):
        return ()
    return skus_of_lines(
        li.get("sku") if isinstance(li, Mapping) and isinstance(li.get("sku"), str) else None
        for li in canonical["lines"]
    )


def _derived(values: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[str, ...] | None]:
    """Column values, with ``email`` derived from the content they write when the caller left it
    out (a minimal form: no content, no e-mail), and the SKUs to store: given, or read from the
    canonical JSON written; None when no content is written."""
    columns = {k: v for k, v in values.items() if k != "skus"}
    if "canonical" not in columns:
        return columns, None
    canonical = columns["canonical"]
    readable = canonical if isinstance(canonical, Mapping | str) else None  # SQL NULL: no content
    if "email" not in columns:
        email = orjson.loads(readable).get("email") if isinstance(readable, str) else (readable or {}).get("email")
        columns["email"] = email_key(email if isinstance(email, str) else None)
    given = values.get("skus")
    return columns, tuple(given) if given is not None else skus_of(readable)


def _add_skus(conn: Connection, found: Sequence[tuple[int, int, Iterable[str]]]) -> None:
    """``order_skus`` rows for ``(order id, tenant id, SKUs)`` each."""
    insert_rows(
        conn,
        order_skus,
        ("order_id", "tenant_id", "sku"),
        [(oid, tenant, sku) for oid, tenant, skus in found for sku in skus],
    )


# --- the state writer -----------------------------------------------------------------------------


class Move(NamedTuple):
    """One order's state change: from ``source`` (the state the caller read) to ``target``, told
    by ``events`` (rows built by :func:`orderbridge.storage.repos.events.event_row`; none when the
    caller's own event already tells it, as posting's "posted to D" does). A tuple: the hot paths
    make one per order."""

    order_id: int
    source: OrderState
    target: OrderState
    events: tuple[dict[str, Any], ...] = ()


_POSTED_HERE = (
    select(func.count())
    .select_from(postings)
    .where(
        postings.c.order_id == orders.c.id,
        postings.c.status == "posted",
        postings.c.order_version == orders.c.version,
    )
    .scalar_subquery()
)

#: conditions a move can be limited to, by name (so each statement is built once): ``posted_everywhere``
#: — every destination (``n`` of them) has the order's current version; ``not_posted_everywhere`` —
#: one at least lacks it (a user's reset moves a posted order back to ready only then: decision 106)
GUARDS: dict[str, ColumnElement[bool]] = {
    "posted_everywhere": bindparam("n") <= _POSTED_HERE,
    "not_posted_everywhere": bindparam("n") > _POSTED_HERE,
}

# Statements built once, with an expanding IN: per batch only values are bound (building one per
# batch coerces every IN element and recomputes its cache key).
_statements: dict[tuple[OrderState, OrderState, str | None], Update] = {}


def _statement(source: OrderState, target: OrderState, guard: str | None) -> Update:
    key = (source, target, guard)
    stmt = _statements.get(key)
    if stmt is None:
        stmt = update(orders).where(orders.c.id.in_(bindparam("ids", expanding=True)), orders.c.state == source.value)
        if guard is not None:
            stmt = stmt.where(GUARDS[guard])
        # the receipt time as stored (SQLite: text, parsed once per distinct hour by the tally)
        stmt = stmt.values(state=target.value, updated_at=bindparam("now")).returning(
            orders.c.id, orders.c.tenant_id, type_coerce(orders.c.received_at, String)
        )
        _statements[key] = stmt
    return stmt


def transition(
    conn: Connection,
    moves: Sequence[Move],
    now: datetime,
    *,
    guard: str | None = None,
    params: Mapping[str, Any] | None = None,
    leave_others: bool = False,
) -> set[int]:
    """Write ``moves`` (each checked against the order state machine) and append their events;
    returns the ids of the orders moved.

    A row not in its move's ``source`` state is, by default, checked again from the state it is in
    and moved from there (:class:`InvalidTransition` if the machine does not allow that). With
    ``leave_others`` — or a ``guard`` (a name in :data:`GUARDS`, its parameters in ``params``) — a
    move happens only where the row is still in ``source`` (and the guard holds): the others are
    left as they are, with no event ("fulfilled if it is posted")."""
    leave = leave_others or guard is not None
    moved: set[int] = set()
    tally = _Tally(now)
    todo = list(moves)
    for _ in range(3):
        groups: dict[tuple[OrderState, OrderState], list[Move]] = {}
        for m in todo:
            groups.setdefault((m.source, m.target), []).append(m)
        for source, target in groups:  # every move is checked before anything is written
            ORDER.check(source, target)
        missed: list[Move] = []
        for (source, target), group in groups.items():
            stmt = _statement(source, target, guard)
            for i in range(0, len(group), _CHUNK):
                chunk = group[i : i + _CHUNK]
                written = conn.execute(stmt, {**(params or {}), "ids": [m.order_id for m in chunk], "now": now}).all()
                done = {oid for oid, _t, _r in written}
                if source is not target:
                    tally.move(source.value, target.value, written)
                moved.update(done)
                missed.extend(m for m in chunk if m.order_id not in done)
        if leave or not missed:
            break
        todo = _from_actual(conn, missed)
        if not todo:
            break
    else:
        raise RuntimeError(f"orders {sorted(m.order_id for m in todo)} kept changing state under this transaction")
    event_log.append(conn, [e for m in moves if m.order_id in moved for e in m.events])
    tally.write(conn)
    return moved


def _from_actual(conn: Connection, missed: Sequence[Move]) -> list[Move]:
    """The missed moves again, from the state each row is really in (locked on PostgreSQL), checked."""
    actual = {
        int(oid): OrderState(state)
        for oid, state in conn.execute(
            select(orders.c.id, orders.c.state).where(orders.c.id.in_([m.order_id for m in missed])).with_for_update()
        )
    }
    again = []
    for m in missed:
        current = actual.get(m.order_id)
        if current is None:
            raise LookupError(f"order {m.order_id} is not in the ledger")
        ORDER.check(current, m.target)
        again.append(Move(m.order_id, current, m.target, m.events))
    return again


# --- the tallies ----------------------------------------------------------------------------------

#: receipt hours the tallies keep apart: an order received more than this before a write of its
#: state is tallied as "earlier" (``hour`` null). The dashboard's chart shows at most this many.
TALLY_HOURS = 48

_TALLY_COLUMNS = ("tenant_id", "state", "hour", "n")


def _floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def tally_hour(received_at: datetime, now: datetime) -> datetime | None:
    """The hour an order received at ``received_at`` is tallied under when its state is written at
    ``now``: its receipt's hour, or None (earlier) more than :data:`TALLY_HOURS` before now's."""
    hour = _floor(received_at)
    return None if hour < _floor(now) - timedelta(hours=TALLY_HOURS) else hour


class _Tally:
    """The deltas of one write, by (tenant, state, hour), appended as one executemany.

    The hot paths hand it many orders received at the same few moments (a batch's ``now``) or, from
    a transition's ``RETURNING``, SQLite's stored text: each distinct value is turned into its hour
    once (:meth:`hour`), and :meth:`move` counts a whole statement's rows before it touches a state."""

    __slots__ = ("counts", "horizon", "hours")

    def __init__(self, now: datetime | None) -> None:
        self.horizon = _floor(now if now is not None else datetime.now(UTC)) - timedelta(hours=TALLY_HOURS)
        self.counts: Counter[tuple[int, str, datetime | None]] = Counter()
        self.hours: dict[object, datetime | None] = {}

    def hour(self, received_at: datetime | str) -> datetime | None:
        """The tally hour of a receipt time: a datetime, or SQLite's text (``YYYY-MM-DD HH:…``, UTC)."""
        key = received_at[:13].replace("T", " ") if isinstance(received_at, str) else received_at
        found = self.hours.get(key, self)
        if found is self:
            if isinstance(key, str):
                hour = datetime.strptime(key, "%Y-%m-%d %H").replace(tzinfo=UTC)
            else:
                hour = _floor(key.astimezone(UTC)) if key.tzinfo is not UTC else _floor(key)
            found = self.hours[key] = None if hour < self.horizon else hour
        return found  # type: ignore[return-value]

    def add(self, tenant_id: int, state: str, received_at: datetime | str, n: int) -> None:
        self.counts[(tenant_id, state, self.hour(received_at))] += n

    def move(self, source: str, target: str, written: Sequence[Sequence[Any]]) -> None:
        """Rows ``(id, tenant_id, received_at)`` moved from ``source`` to ``target``."""
        moved: Counter[tuple[int, datetime | None]] = Counter()
        for _oid, tenant_id, received_at in written:
            moved[(tenant_id, self.hour(received_at))] += 1
        for (tenant_id, hour), n in moved.items():
            self.counts[(tenant_id, source, hour)] -= n
            self.counts[(tenant_id, target, hour)] += n

    def write(self, conn: Connection) -> None:
        rows = [(t, s, h, n) for (t, s, h), n in self.counts.items() if n]
        if rows:
            insert_rows(conn, order_tallies, _TALLY_COLUMNS, rows)
        self.counts.clear()


class Tallies(NamedTuple):
    """A tenant's orders per state, and per (receipt hour, state) for the recent hours."""

    by_state: dict[str, int]
    by_hour: dict[tuple[datetime, str], int]
    #: the tally rows summed (the housekeeping folds them together: this stays small)
    rows: int


def tallies(conn: Connection, tenant_id: int, since: datetime | None = None, until: datetime | None = None) -> Tallies:
    """Sum the tenant's tallies — a few hundred rows, whatever the ledger's size: per state, and per
    (hour, state) for the hours from ``since`` and before ``until`` (every hour kept apart when None;
    a receipt time ahead of the hub's clock is tallied in a future hour, which a chart leaves out)."""
    t = order_tallies.c
    by_state: Counter[str] = Counter()
    rows = 0
    for state, n, count in conn.execute(
        select(t.state, func.sum(t.n), func.count()).where(t.tenant_id == tenant_id).group_by(t.state)
    ):
        rows += int(count)
        by_state[state] += int(n)
    recent = select(t.hour, t.state, func.sum(t.n)).where(t.tenant_id == tenant_id, t.hour.is_not(None))
    if since is not None:
        recent = recent.where(t.hour >= since)
    if until is not None:
        recent = recent.where(t.hour < until)
    by_hour: Counter[tuple[datetime, str]] = Counter()
    for hour, state, n in conn.execute(recent.group_by(t.hour, t.state)):
        by_hour[(hour, state)] += int(n)
    return Tallies({s: n for s, n in by_state.items() if n}, {k: n for k, n in by_hour.items() if n}, rows)


def compact_tallies(conn: Connection, tenant_id: int, now: datetime) -> int:
    """Fold the tenant's tally rows into one per (state, hour), the hours beyond
    :data:`TALLY_HOURS` into "earlier"; returns how many rows it removed. Safe beside writers and
    another compaction: it deletes the rows it read (``DELETE … RETURNING``) and writes back their
    sums, so a delta committed meanwhile, or taken by the other compaction, is counted once."""
    horizon = _floor(now) - timedelta(hours=TALLY_HOURS)
    shape = conn.execute(
        select(order_tallies.c.hour, func.count())
        .where(order_tallies.c.tenant_id == tenant_id)
        .group_by(order_tallies.c.state, order_tallies.c.hour)
    ).all()
    if all(count == 1 and (hour is None or hour >= horizon) for hour, count in shape):
        return 0
    taken = conn.execute(
        delete(order_tallies)
        .where(order_tallies.c.tenant_id == tenant_id)
        .returning(order_tallies.c.state, order_tallies.c.hour, order_tallies.c.n)
    ).all()
    sums: Counter[tuple[int, str, datetime | None]] = Counter()
    for state, hour, n in taken:
        sums[(tenant_id, state, None if hour is None or hour < horizon else hour)] += n
    kept = [(t, s, h, n) for (t, s, h), n in sums.items() if n]
    insert_rows(conn, order_tallies, _TALLY_COLUMNS, kept)
    return len(taken) - len(kept)


def rebuild_tallies(conn: Connection, tenant_id: int, now: datetime) -> None:
    """Count the tenant's tallies again from its orders (after a bulk load that bypassed this
    module, or to repair). On PostgreSQL it locks ``orders`` against writers while it counts."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE orders IN SHARE MODE"))
    conn.execute(delete(order_tallies).where(order_tallies.c.tenant_id == tenant_id))
    tally = _Tally(now)
    horizon = tally.horizon
    older = conn.execute(
        select(orders.c.state, func.count())
        .where(orders.c.tenant_id == tenant_id, orders.c.received_at < horizon)
        .group_by(orders.c.state)
    ).all()
    for state, n in older:
        tally.counts[(tenant_id, state, None)] += int(n)
    for state, received_at in conn.execute(
        select(orders.c.state, orders.c.received_at).where(
            orders.c.tenant_id == tenant_id, orders.c.received_at >= horizon
        )
    ):
        tally.add(tenant_id, state, received_at, 1)
    tally.write(conn)


def row_of(conn: Connection, tenant_id: int, order_id: int, *, lock: bool = False) -> Any | None:
    """The tenant's order row ``order_id`` (locked for the transaction on PostgreSQL with ``lock``)."""
    stmt = select(orders).where(orders.c.id == order_id, orders.c.tenant_id == tenant_id)
    return conn.execute(stmt.with_for_update() if lock else stmt).one_or_none()


def numbers_of(conn: Connection, order_ids: Sequence[int]) -> dict[int, str]:
    """The order number of each id (ids of no order are left out)."""
    found: dict[int, str] = {}
    ids = list(dict.fromkeys(order_ids))
    for i in range(0, len(ids), 500):
        rows = conn.execute(select(orders.c.id, orders.c.number).where(orders.c.id.in_(ids[i : i + 500])))
        found.update({int(r.id): str(r.number) for r in rows})
    return found
