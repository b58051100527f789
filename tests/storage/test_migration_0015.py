"""Migration 0015 (manual orders) adds the idempotency keys and the manual number counter, and takes
them away again, leaving the ledger as it was."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from tests.storage.test_migrations import AT, engine, migrate

__all__ = ["engine"]  # the fixture: one empty database per backend


def test_0015_adds_unique_idempotency_keys_and_a_number_counter_per_tenant_and_drops_them_again(
    engine: Engine,
) -> None:
    migrate(engine, "upgrade", "0013")
    with engine.begin() as conn:
        tenant_id = conn.execute(text("SELECT id FROM tenants WHERE slug = 'default'")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO tenant_settings (tenant_id, key, value, updated_at, updated_by)"
                " VALUES (:t, 'k', '1', :at, 'x')"
            ),
            {"t": tenant_id, "at": AT},
        )
    migrate(engine, "upgrade", "0015")
    with engine.begin() as conn:
        names = set(inspect(conn).get_table_names())
        assert {"idempotency_keys", "manual_numbers"} <= names
        insert_key = text(
            "INSERT INTO idempotency_keys (tenant_id, scope, key, request_hash, created_at)"
            " VALUES (:t, 'place_order', 'k-1', 'h', :at)"
        )
        conn.execute(insert_key, {"t": tenant_id, "at": AT})
        conn.execute(text("INSERT INTO manual_numbers (tenant_id, last) VALUES (:t, 7)"), {"t": tenant_id})
    with pytest.raises(IntegrityError), engine.begin() as conn:  # one answer per (tenant, scope, key)
        conn.execute(insert_key, {"t": tenant_id, "at": AT})
    with pytest.raises(IntegrityError), engine.begin() as conn:  # one counter per tenant
        conn.execute(text("INSERT INTO manual_numbers (tenant_id, last) VALUES (:t, 1)"), {"t": tenant_id})
    migrate(engine, "downgrade", "0013")
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
        assert not {"idempotency_keys", "manual_numbers"} & names
        assert conn.execute(text("SELECT key FROM tenant_settings")).scalar_one() == "k"
