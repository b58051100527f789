"""What the database (or its driver) says when it will not store one row, and values it will take.

Ingest stores a batch of orders with one statement; when that statement fails, it must tell a
*row's* problem (this order's name is longer than its column, it holds a NUL character PostgreSQL's
``text`` refuses, a trigger or a constraint refuses it, a value the JSON serialiser cannot write)
from the *database's* (the connection dropped, the disk is full, a deadlock, the lease lost). The
first is isolated — that one order is stored in a minimal form and held — and the second must still
fail the batch, so the run is retried as a whole and nothing is held for a reason that is not its
own. :func:`refusal` makes that call from the error alone:

- PostgreSQL: by SQLSTATE class — ``22`` data exception (value too long, out of range, bad
  encoding, ``\\u0000`` in ``jsonb``), ``23`` integrity constraint, ``54`` program limit (a value too
  large for an index), ``P0`` raised by a trigger or function; psycopg's own refusal of NUL in a
  text parameter (a ``DataError`` with no SQLSTATE: it never reaches the server).
- SQLite: ``IntegrityError`` (constraints and ``RAISE(ABORT, …)`` in triggers) and ``DataError``
  (``string or blob too big``).
- Either: a value the driver or serialiser cannot encode (lone UTF-16 surrogates from a JSON
  ``\\ud800`` escape, integers beyond 64 bits in a JSON column) — ``UnicodeEncodeError``,
  ``OverflowError``, ``orjson.JSONEncodeError``, raised bare or wrapped in SQLAlchemy's
  ``StatementError``.

Everything else (``OperationalError``, serialization failures, deadlocks, programming errors) is
not a row's: :func:`refusal` returns ``None`` and the caller re-raises.

:func:`storable` and :func:`storable_text` turn channel values into ones both databases accept
(the minimal form of a refused order); :func:`raw_bytes` keeps a payload's exact bytes for the
quarantine table, a ``BLOB``/``bytea`` column, which accepts any bytes at all.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.exc import StatementError

#: what a refused row can raise (``StatementError`` wraps every DBAPI error and bind-time error);
#: :func:`refusal` decides whether it is the row's
REFUSAL_ERRORS: tuple[type[BaseException], ...] = (
    StatementError,
    UnicodeEncodeError,
    OverflowError,
    orjson.JSONEncodeError,
)
#: PostgreSQL SQLSTATE classes whose errors are about the values of the row being written
_ROW_CLASSES = frozenset({"22", "23", "54", "P0"})
#: the kinds of refusal, by SQLSTATE (more specific first: a full code, then its class)
_KINDS_BY_SQLSTATE = {
    "22001": "value_too_long",
    "22P05": "nul_character",
    "22021": "invalid_text",
    "22003": "number_out_of_range",
    "54000": "value_too_large",
    "P0001": "refused_by_trigger",
    "22": "invalid_value",
    "23": "constraint",
    "54": "value_too_large",
    "P0": "refused_by_trigger",
}
#: the SQLite extended result code of ``RAISE(ABORT, …)`` in a trigger
_SQLITE_CONSTRAINT_TRIGGER = 1811
#: longest database message kept in a reason (the message may quote the value it refused)
DETAIL_LIMIT = 300


@dataclass(frozen=True, slots=True)
class Refusal:
    """One row refused: ``kind`` (a stable code, see ``domain.reasons.storage_refused``), the
    database's name and its message made storable (control characters escaped, shortened)."""

    kind: str
    database: str
    detail: str


def refusal(exc: BaseException, dialect: str) -> Refusal | None:
    """The row's refusal ``exc`` is, or ``None`` when it is not about the row's values."""
    database = "PostgreSQL" if dialect == "postgresql" else "SQLite" if dialect == "sqlite" else dialect
    orig: BaseException = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    if isinstance(orig, UnicodeEncodeError):
        return Refusal("invalid_text", database, storable_text(f"text it cannot encode ({orig.reason})"))
    if isinstance(orig, orjson.JSONEncodeError | OverflowError):
        return Refusal("value_not_storable", database, storable_text(str(orig)))
    if dialect == "postgresql":
        return _postgresql(orig, database)
    if dialect == "sqlite":
        return _sqlite(orig, database)
    return None


def _postgresql(orig: BaseException, database: str) -> Refusal | None:
    import psycopg

    if not isinstance(orig, psycopg.Error):
        return None
    state = orig.sqlstate
    if state is None:  # refused by psycopg before it was sent: NUL in a text parameter
        if isinstance(orig, psycopg.DataError):
            kind = "nul_character" if "NUL" in str(orig) else "invalid_value"
            return Refusal(kind, database, storable_text(str(orig)))
        return None
    if state[:2] not in _ROW_CLASSES:
        return None
    kind = _KINDS_BY_SQLSTATE.get(state) or _KINDS_BY_SQLSTATE[state[:2]]
    diag = orig.diag
    detail = diag.message_primary or str(orig)
    if diag.message_detail:
        detail += f" ({diag.message_detail})"
    return Refusal(kind, database, storable_text(detail))


def _sqlite(orig: BaseException, database: str) -> Refusal | None:
    import sqlite3

    if isinstance(orig, sqlite3.IntegrityError):
        trigger = getattr(orig, "sqlite_errorcode", None) == _SQLITE_CONSTRAINT_TRIGGER
        return Refusal("refused_by_trigger" if trigger else "constraint", database, storable_text(str(orig)))
    if isinstance(orig, sqlite3.DataError):
        return Refusal("value_too_large", database, storable_text(str(orig)))
    return None


def storable_text(text: str, limit: int = DETAIL_LIMIT, *, controls: bool = True) -> str:
    """``text`` as any text column takes it: NUL and lone surrogates — and, with ``controls``, the
    other control characters (for messages people read) — written as ``\\uXXXX`` escapes; at most
    ``limit`` characters (an ellipsis marks a cut)."""
    if text.isprintable() and len(text) <= limit:
        return text
    out = []
    for ch in text:
        code = ord(ch)
        unstorable = code == 0 or 0xD800 <= code <= 0xDFFF
        if unstorable or (controls and ((code < 0x20 and ch not in "\t\n") or code == 0x7F)):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    safe = "".join(out)
    return safe if len(safe) <= limit else safe[: limit - 1] + "…"


#: the integers every JSON column takes (orjson writes 64-bit integers only)
_INT_RANGE = (-(2**63), 2**64 - 1)


def storable(value: Any, path: str = "$", changed: list[str] | None = None) -> Any:
    """A copy of a JSON value that both databases store: strings through :func:`storable_text`
    (unshortened), integers beyond 64 bits as their decimal text. ``changed`` collects the paths
    of the values that had to be rewritten."""
    if isinstance(value, str):
        safe = storable_text(value, limit=len(value) * 6 + 1, controls=False)
        if safe != value and changed is not None:
            changed.append(path)
        return safe
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        if _INT_RANGE[0] <= value <= _INT_RANGE[1]:
            return value
        if changed is not None:
            changed.append(path)
        return str(value)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for k, v in value.items():
            key = storable(str(k), f"{path}.<key>", changed)
            out[key] = storable(v, f"{path}.{key}", changed)
        return out
    if isinstance(value, list | tuple):
        return [storable(v, f"{path}[{i}]", changed) for i, v in enumerate(value)]
    return storable(str(value), path, changed)


def raw_bytes(raw: bytes | Mapping[str, Any]) -> bytes:
    """A payload's bytes for the quarantine table: as received when it was kept as bytes, else its
    JSON with every character kept (``\\u`` escapes for what is not ASCII, surrogates included)."""
    if isinstance(raw, bytes):
        return bytes(raw)
    return json.dumps(raw, ensure_ascii=True, default=str).encode("ascii")
