"""procrastinate's schema, on PostgreSQL only (the job engine of ``orderbridge worker``)

The job engine (``job_engine=procrastinate``: docs/scaling.md, decision 231) keeps its jobs,
workers, events and periodic defers in tables of its own in the hub's PostgreSQL database, so a
job row can be written in the same transaction as the order that needs it. This revision applies
the schema of the procrastinate version the hub pins (``procrastinate>=3.10,<3.11`` in
pyproject.toml) through procrastinate's own ``SchemaManager.get_schema()``: one migration chain for
everything the hub's database holds, so ``orderbridge init`` (and every test database) gets it. A
later procrastinate release that changes its schema comes with its own migration files
(``SchemaManager.get_migrations_path()``); bumping the pin means a new revision here applying them.

On SQLite it does nothing: the embedded runtime runs its jobs in threads and needs no table.

Revision ID: 0023
Revises: 0019
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

from typing import Any

from alembic import op

revision = "0023"
down_revision = "0019"
branch_labels = None
depends_on = None


def _driver(bind: Any) -> Any:
    raw = bind.connection.driver_connection
    assert raw is not None
    return raw


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    from procrastinate.schema import SchemaManager

    # the psycopg connection itself: the schema is many statements, with % signs, and no parameters
    _driver(bind).execute(SchemaManager.get_schema())


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    _driver(bind).execute(
        """
        DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,
            procrastinate_workers CASCADE;
        DO $$
        DECLARE f record;
        BEGIN
            FOR f IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
                     WHERE p.proname LIKE 'procrastinate\\_%' LOOP
                EXECUTE 'DROP FUNCTION IF EXISTS ' || f.sig || ' CASCADE';
            END LOOP;
        END $$;
        DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type,
            procrastinate_job_status CASCADE;
        """
    )
