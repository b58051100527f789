"""Which errors are a row's refusal, and values made storable (pure; the databases' own refusals are
exercised in tests/services/test_isolation.py)."""

from __future__ import annotations

import sqlite3

import orjson
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from orderbridge.storage.refusals import raw_bytes, refusal, storable, storable_text


def wrapped(orig: Exception) -> Exception:
    kind = IntegrityError if isinstance(orig, sqlite3.IntegrityError) else OperationalError
    return kind("INSERT INTO orders …", (), orig)


def test_a_constraint_or_a_trigger_is_the_rows_refusal_and_a_locked_database_is_not() -> None:
    trigger = sqlite3.IntegrityError("order 7 refused")
    trigger.sqlite_errorcode = 1811  # SQLITE_CONSTRAINT_TRIGGER
    found = refusal(wrapped(trigger), "sqlite")
    assert found is not None and (found.kind, found.database, found.detail) == (
        "refused_by_trigger",
        "SQLite",
        "order 7 refused",
    )
    unique = refusal(wrapped(sqlite3.IntegrityError("UNIQUE constraint failed: orders.x")), "sqlite")
    assert unique is not None and unique.kind == "constraint"
    assert refusal(wrapped(sqlite3.OperationalError("database is locked")), "sqlite") is None
    assert refusal(RuntimeError("a bug"), "sqlite") is None


def test_values_a_driver_or_the_json_serialiser_cannot_encode_are_the_rows_refusal() -> None:
    with pytest.raises(orjson.JSONEncodeError) as big:
        orjson.dumps({"n": 2**70})
    found = refusal(big.value, "postgresql")
    assert found is not None and found.kind == "value_not_storable"
    try:
        "a\ud800".encode()
    except UnicodeEncodeError as exc:
        surrogate = refusal(exc, "sqlite")
    assert surrogate is not None and surrogate.kind == "invalid_text"


def test_storable_rewrites_only_what_no_column_takes_and_says_where() -> None:
    changed: list[str] = []
    value = {"name": "#1\u0000", "note": "line\nbreak\ttab", "lines": [{"qty": 2**70, "t": "a\ud800"}], "ok": 3}
    assert storable(value, changed=changed) == {
        "name": "#1\\u0000",
        "note": "line\nbreak\ttab",
        "lines": [{"qty": str(2**70), "t": "a\\ud800"}],
        "ok": 3,
    }
    assert changed == ["$.name", "$.lines[0].qty", "$.lines[0].t"]
    orjson.dumps(storable(value))  # and the JSON serialiser takes it


def test_storable_text_escapes_control_characters_and_cuts_at_the_limit() -> None:
    assert storable_text("plain") == "plain"
    assert storable_text("a\u0000b\x1b[2J") == "a\\u0000b\\u001b[2J"
    assert storable_text("x" * 10, 5) == "xxxx…"


def test_raw_bytes_keep_every_character() -> None:
    assert raw_bytes(b'{"a":"\\u0000"}') == b'{"a":"\\u0000"}'
    assert raw_bytes({"a": "\u0000\ud800é"}) == b'{"a": "\\u0000\\ud800\\u00e9"}'
