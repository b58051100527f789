"""Engine creation and the explicit transaction helper (the unit of work).

One place builds engines (never at import time). SQLite runs in WAL mode with a busy timeout and
``BEGIN IMMEDIATE`` for write transactions, so concurrent writers (the worker and a CLI command)
queue instead of failing with "database is locked". A SQLite file is created 0600 before SQLite
opens it (:func:`~orderbridge.files.secure_sqlite`). Commit is explicit — leaving the ``with``
block normally commits, any exception rolls back.

:meth:`Database.read` is for reading only. On SQLite it begins a deferred transaction — a WAL
reader, which neither waits for the writer nor holds it up (a health check or a long audit query
does not delay a webhook's commit) — with ``PRAGMA query_only`` on, so a write slipped into a read
fails at once instead of racing for the write lock under load; every write transaction turns it
off again before it begins.

:func:`insert_rows` is a hand-written bulk insert for the hot append paths (orders, events,
postings, posting attempts): SQLAlchemy Core's ``executemany`` builds and processes a parameter dict
per row through its compiled-statement machinery, a large share of the ledger's write time in the
ingest benchmark. It still applies each column type's own bind processor (so JSON, ``Decimal`` and
UTC datetimes are stored exactly as Core stores them, on SQLite and PostgreSQL) and runs through the
SQLAlchemy connection (same transaction, same events); it skips only the per-row statement work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

import orjson
from sqlalchemy import JSON, Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url

from orderbridge.files import secure_sqlite
from orderbridge.storage import tables


def _json_default(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _dumps(value: Any) -> str:
    """JSON columns via orjson (several times faster than json on the ingest hot path)."""
    return orjson.dumps(value, default=_json_default).decode()


class JsonText(str):
    """A JSON column value already serialised by :func:`dump_json`: :func:`insert_rows` stores it as
    is. Serialising early lets the value's dicts die young instead of being held (and traversed by
    the garbage collector) until its batch is inserted."""


def dump_json(value: Any) -> JsonText:
    """Serialise ``value`` exactly as a JSON column would (see :class:`JsonText`)."""
    return JsonText(_dumps(value))


def _keep_json_text(conn: Connection, process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    wrap: Callable[[JsonText], Any] = str  # SQLite: JSON columns are text
    if conn.dialect.name == "postgresql":
        from psycopg.types.json import Json

        def wrap(text: JsonText) -> Any:  # psycopg: a json parameter, already serialised
            return Json(text, dumps=str)

    def keep(value: Any) -> Any:
        return wrap(value) if type(value) is JsonText else process(value)

    return keep


_Processors = list[tuple[int, Callable[[Any], Any]]]
#: per dialect instance (each engine's carries its own JSON serialiser), per (table, columns)
_processors: WeakKeyDictionary[Dialect, dict[tuple[str, tuple[str, ...]], _Processors]] = WeakKeyDictionary()


def _row_processors(conn: Connection, table: Table, columns: tuple[str, ...]) -> _Processors:
    cache = _processors.setdefault(conn.dialect, {})
    key = (table.name, columns)
    found = cache.get(key)
    if found is None:
        found = []
        for i, name in enumerate(columns):
            column_type = table.c[name].type
            process: Callable[[Any], Any] | None = column_type._cached_bind_processor(conn.dialect)
            if process is not None and isinstance(column_type, JSON):
                process = _keep_json_text(conn, process)
            if process is not None:
                found.append((i, process))
        cache[key] = found
    return found


def dialect_insert(conn: Connection) -> Any:
    """The dialect's ``insert`` (PostgreSQL's or SQLite's), which has ``on_conflict_do_nothing/update``."""
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def insert_rows(
    conn: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    conflict: Sequence[str] | None = None,
    returning: Sequence[str] = (),
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (tuples in ``columns`` order) with the driver's own executemany.

    ``conflict`` names the unique columns for ``ON CONFLICT DO NOTHING``; with ``returning`` the rows
    go as multi-row ``VALUES`` statements and the returned tuples (of the rows actually inserted)
    come back in no particular order.
    """
    if not rows:
        return []
    cols = tuple(columns)
    processors = _row_processors(conn, table, cols)
    if processors:
        processed = []
        for row in rows:
            values = list(row)
            for i, process in processors:
                values[i] = process(values[i])
            processed.append(tuple(values))
    else:
        processed = [tuple(row) for row in rows]
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    one = "(" + ", ".join([mark] * len(cols)) + ")"
    head = f"INSERT INTO {quote(table.name)} ({', '.join(map(quote, cols))}) VALUES "
    tail = f" ON CONFLICT ({', '.join(map(quote, conflict))}) DO NOTHING" if conflict else ""
    if not returning:
        conn.exec_driver_sql(head + one + tail, processed)
        return []
    tail += f" RETURNING {', '.join(map(quote, returning))}"
    per = max(1, min(1000, conn.dialect.insertmanyvalues_max_parameters // len(cols)))
    out: list[tuple[Any, ...]] = []
    for start in range(0, len(processed), per):
        chunk = processed[start : start + per]
        flat = [v for row in chunk for v in row]
        result = conn.exec_driver_sql(head + ", ".join([one] * len(chunk)) + tail, tuple(flat))
        out.extend(tuple(r) for r in result)
    return out


#: SQLite checkpoints the WAL into the database once it holds this many pages (32 MiB at 4 KiB),
#: not SQLite's default 1,000: each checkpoint costs two fsyncs, and a backfill writes ~5 KB per
#: order. Storing 20,000 orders' rows took 0.48 s (median of 7) with 1,000 and 0.36 s with 8,192
#: on this VM (decision 38).
WAL_AUTOCHECKPOINT_PAGES = 8192
#: after a checkpoint a WAL file larger than this is truncated back to it (64 MiB)
JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024


#: the execution option :meth:`Database.read` sets on its connection
_READ_ONLY = "orderbridge_read_only"


def make_engine(url: str, **kwargs: Any) -> Engine:
    kwargs.setdefault("json_serializer", _dumps)
    kwargs.setdefault("json_deserializer", orjson.loads)
    parsed = make_url(url)
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            secure_sqlite(Path(parsed.database))  # 0600 before SQLite creates it (and its WAL) with 0644
        engine = create_engine(url, connect_args={"timeout": 60, "isolation_level": None}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            cur.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            if conn.get_execution_options().get(_READ_ONLY):
                conn.exec_driver_sql("PRAGMA query_only=ON")
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("PRAGMA query_only=OFF")  # the pooled connection may have served a read
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.drivername in ("postgresql", "postgres"):
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    engine = create_engine(url, pool_pre_ping=True, **kwargs)
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def _pg_session(dbapi_conn: Any, _record: Any) -> None:
            # the hub's statements are short and bounded (a page of 51, a batch of 250): a parallel
            # plan's workers took 20-70 ms to start on them at a million orders, more than the whole
            # serial plan (decision 148). A SET once per pooled connection, not a startup option,
            # which a connection pooler such as PgBouncer may refuse.
            with dbapi_conn.cursor() as cur:
                cur.execute("SET max_parallel_workers_per_gather = 0")
            dbapi_conn.commit()

    return engine


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only unit of work (see the module docstring); never write through it."""
        with self.engine.connect() as conn:
            yield conn.execution_options(**{_READ_ONLY: True})

    def migrate(self) -> None:
        from orderbridge.storage.migrate import upgrade

        upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


__all__ = ["Database", "JsonText", "dump_json", "insert_rows", "make_engine", "tables"]
