"""Real database errors on chosen rows, for the poison-pill isolation tests (no mocks: the
database itself refuses, through a trigger the test creates and drops)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import text

from orderbridge.services.hub import Hub


@contextmanager
def refusing(hub: Hub, external_id: str, *, minimal_too: bool = False) -> Iterator[None]:
    """A trigger on ``orders`` that raises for one order's *content*: a row inserted with canonical
    content, or an update writing canonical content other than the row's (a new version stored
    whole) — so the minimal form of a refused order (no content, or a posted order's content kept)
    passes. With ``minimal_too`` it raises for any row of that order. Dropped again afterwards (the
    PostgreSQL test database outlives the test)."""
    with hub.db.transaction() as conn:
        if hub.db.dialect == "postgresql":
            content = (
                "TRUE"
                if minimal_too
                else "NEW.canonical IS NOT NULL AND (TG_OP = 'INSERT' OR NEW.canonical::text IS DISTINCT FROM"
                " OLD.canonical::text)"
            )
            conn.execute(
                text(
                    "CREATE FUNCTION test_refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                    f" IF NEW.external_id = '{external_id}' AND {content} THEN"
                    " RAISE EXCEPTION 'order % refused by the test trigger', NEW.external_id; END IF;"
                    " RETURN NEW; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER test_refuse_one BEFORE INSERT OR UPDATE ON orders"
                    " FOR EACH ROW EXECUTE FUNCTION test_refuse_one()"
                )
            )
        else:
            conditions = {
                "INSERT": "" if minimal_too else " AND NEW.canonical IS NOT NULL",
                "UPDATE": ""
                if minimal_too
                else " AND NEW.canonical IS NOT NULL AND NEW.canonical IS NOT OLD.canonical",
            }
            for verb, when in conditions.items():
                conn.execute(
                    text(
                        f"CREATE TRIGGER test_refuse_one_{verb.lower()} BEFORE {verb} ON orders"
                        f" WHEN NEW.external_id = '{external_id}'{when}"
                        f" BEGIN SELECT RAISE(ABORT, 'order {external_id} refused by the test trigger'); END"
                    )
                )
    try:
        yield
    finally:
        with hub.db.transaction() as conn:
            if hub.db.dialect == "postgresql":
                conn.execute(text("DROP TRIGGER IF EXISTS test_refuse_one ON orders"))
                conn.execute(text("DROP FUNCTION IF EXISTS test_refuse_one()"))
            else:
                conn.execute(text("DROP TRIGGER IF EXISTS test_refuse_one_insert"))
                conn.execute(text("DROP TRIGGER IF EXISTS test_refuse_one_update"))
