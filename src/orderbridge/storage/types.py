"""Column types that keep the domain's guarantees in every database.

- :class:`UTCDateTime` always returns timezone-aware UTC datetimes (SQLite stores naive text;
  PostgreSQL uses ``timestamptz``) and refuses naive datetimes on the way in. On SQLite its bind
  processor checks, converts and formats in one call with ``datetime.isoformat`` — the very text
  SQLAlchemy's own ``DATETIME`` writes (``2026-10-05 10:18:19.000000``), so comparisons in SQL and
  rows written by either agree — at a fraction of the cost of the decorator's two steps and that
  type's ``%``-formatting with a dict per value (five datetimes per order on the ingest hot path).
- :class:`DecimalAmount` stores money amounts exactly: ``NUMERIC`` on PostgreSQL, text on SQLite
  (whose NUMERIC affinity would round-trip through float).
- :class:`FixJSON` and :class:`FixList` store a fix (:class:`orderbridge.fixes.Fix`) as the JSON
  object ``{"action", "params", "text"}`` and read it back as a ``Fix`` (0007), so the stored form
  is the one the REST API and the portal exchange, and no rendering of it (a command, a link) is
  ever stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, Numeric, String
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from orderbridge.fixes import Fix, fixes_as_data, fixes_from_data


class UTCDateTime(TypeDecorator[datetime]):
    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return SQLITE_DATETIME()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves its __init__ untyped
        return dialect.type_descriptor(DateTime(timezone=True))

    def bind_processor(self, dialect: Dialect) -> Any:
        """On SQLite, one function from aware datetime to stored text (see :func:`_sqlite_text`)."""
        if dialect.name == "sqlite":
            return _sqlite_text()
        return super().bind_processor(dialect)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        tz = value.tzinfo
        if tz is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware UTC datetime")
        if tz is not UTC:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _sqlite_text() -> Any:
    """The SQLite bind processor of :class:`UTCDateTime`: refuse naive, convert to UTC and format,
    in one call instead of the decorator's two (``process_bind_param`` then the impl's formatter),
    remembering the last value formatted — a batch binds the same ``now`` on every row."""
    last: list[tuple[datetime | None, str | None]] = [(None, None)]

    def process(value: datetime | None) -> str | None:
        if value is None:
            return None
        seen, text = last[0]  # one tuple read: safe when threads share the processor
        if value is seen:
            return text
        if not isinstance(value, datetime):
            raise TypeError(f"SQLite DateTime type only accepts Python datetimes, got {value!r}")
        tz = value.tzinfo
        if tz is None:
            raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware UTC datetime")
        utc = value if tz is UTC else value.astimezone(UTC)
        text = utc.isoformat(" ", "microseconds")[:-6]  # without the "+00:00" offset
        last[0] = (value, text)
        return text

    return process


class DecimalAmount(TypeDecorator[Decimal]):
    impl = String(40)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Numeric(24, 6, asdecimal=True))
        return dialect.type_descriptor(String(40))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"money amounts must be Decimal, got {type(value).__name__}")
        return value if dialect.name == "postgresql" else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value))


class FixJSON(TypeDecorator[Fix]):
    """One fix, stored as its JSON object."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: Fix | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Fix):
            raise TypeError(f"a fix must be a Fix, got {type(value).__name__}")
        return value.as_dict()

    def process_result_value(self, value: Any, dialect: Dialect) -> Fix | None:
        return None if value is None else Fix.from_dict(value)


class FixList(TypeDecorator[tuple[Fix, ...]]):
    """Fixes in order (an alert's), stored as a JSON array of their objects."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value: tuple[Fix, ...] | list[Fix] | None, dialect: Dialect) -> Any:
        return fixes_as_data(value or ())

    def process_result_value(self, value: Any, dialect: Dialect) -> tuple[Fix, ...]:
        return fixes_from_data(value)
