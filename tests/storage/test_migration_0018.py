"""Migration 0018 (order updates) gives every existing posting the action ``post``, adds the link
to the posting an amendment amends and the ``order_updates`` table (one update per order version),
and takes them away again, keeping the postings."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from tests.storage.test_migrations import AT, engine, migrate

__all__ = ["engine"]  # the fixture: one empty database per backend


def test_0018_marks_old_postings_as_posts_adds_amendments_and_updates_and_drops_them_again(engine: Engine) -> None:
    migrate(engine, "upgrade", "0017")
    with engine.begin() as conn:
        tenant = conn.execute(text("SELECT id FROM tenants WHERE slug = 'default'")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO connections (tenant_id, name, kind, role, base_url, credentials, settings, enabled,"
                " health, health_message, consecutive_failures, created_at) VALUES (:t, 'wh', 'shipstation',"
                " 'destination', 'http://x', '', '{}', true, 'unknown', '', 0, :at)"
            ),
            {"t": tenant, "at": AT},
        )
        dest = conn.execute(text("SELECT id FROM connections")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO orders (tenant_id, connection_id, external_id, number, state, version, content_hash,"
                " raw, received_at, updated_at) VALUES (:t, :d, 'A', '#1', 'posted', 1, 'h', '{}', :at, :at)"
            ),
            {"t": tenant, "d": dest, "at": AT},
        )
        order = conn.execute(text("SELECT id FROM orders")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO postings (tenant_id, order_id, destination_id, order_version, idempotency_key,"
                " order_key, status, attempts, created_at) VALUES (:t, :o, :d, 1, 'k1', 'ok', 'posted', 1, :at)"
            ),
            {"t": tenant, "o": order, "d": dest, "at": AT},
        )
    migrate(engine, "upgrade", "0018")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT action, amends_id FROM postings")).one() == ("post", None)
        first = conn.execute(text("SELECT id FROM postings")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO postings (tenant_id, order_id, destination_id, order_version, idempotency_key, order_key,"
                " status, attempts, created_at, action, amends_id) VALUES (:t, :o, :d, 2, 'k1:update', 'ok',"
                " 'pending', 0, :at, 'update', :p)"
            ),
            {"t": tenant, "o": order, "d": dest, "at": AT, "p": first},
        )
        insert_update = text(
            "INSERT INTO order_updates (tenant_id, order_id, from_version, to_version, classes, changes, policy,"
            " policies, status, created_at) VALUES (:t, :o, 1, 2, '[]', '[]', 'review', '[]', 'review', :at)"
        )
        conn.execute(insert_update, {"t": tenant, "o": order, "at": AT})
    with pytest.raises(IntegrityError), engine.begin() as conn:  # one update per order version
        conn.execute(insert_update, {"t": tenant, "o": order, "at": AT})
    migrate(engine, "downgrade", "0017")
    with engine.connect() as conn:
        assert "order_updates" not in inspect(conn).get_table_names()
        assert {"action", "amends_id"}.isdisjoint(c["name"] for c in inspect(conn).get_columns("postings"))
        assert conn.execute(text("SELECT count(*) FROM postings")).scalar_one() == 2
    migrate(engine, "upgrade", "head")
