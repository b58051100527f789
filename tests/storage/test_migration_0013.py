"""Migration 0013 (alert acknowledgements) carries the alerts of a live ledger forward unacknowledged."""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

from tests.storage.test_migrations import AT, engine, migrate

__all__ = ["engine"]  # the fixture: one empty database per backend


def test_0013_lets_alerts_be_acknowledged_and_leaves_existing_ones_unacknowledged(engine: Engine) -> None:
    migrate(engine, "upgrade", "0009")
    with engine.begin() as conn:
        tenant_id = conn.execute(text("SELECT id FROM tenants WHERE slug = 'default'")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO alerts (tenant_id, key, kind, subject, body, fixes, state, generation, occurrences,"
                " first_at, last_at) VALUES (:t, 'k', 'connection_failing', 's', 'b', '[]', 'open', 1, 1, :at, :at)"
            ),
            {"t": tenant_id, "at": AT},
        )
    migrate(engine, "upgrade", "0013")
    with engine.begin() as conn:
        assert {"acknowledged_at", "acknowledged_by"} <= {c["name"] for c in inspect(conn).get_columns("alerts")}
        assert conn.execute(text("SELECT acknowledged_at, acknowledged_by FROM alerts")).one() == (None, None)
        conn.execute(text("UPDATE alerts SET acknowledged_at = :at, acknowledged_by = 'Olga'"), {"at": AT})
    migrate(engine, "downgrade", "0009")
    with engine.connect() as conn:
        assert "acknowledged_by" not in {c["name"] for c in inspect(conn).get_columns("alerts")}
        assert conn.execute(text("SELECT key FROM alerts")).scalar_one() == "k"
