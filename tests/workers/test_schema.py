"""Migration 0023: procrastinate's schema on PostgreSQL (and its downgrade), nothing on SQLite."""

from __future__ import annotations

import uuid

import psycopg
from alembic import command
from sqlalchemy import inspect

from orderbridge.services.hub import Hub
from orderbridge.storage.db import Database
from orderbridge.storage.migrate import alembic_config
from tests.conftest import PG_ADMIN

TABLES = {"procrastinate_jobs", "procrastinate_workers", "procrastinate_events", "procrastinate_periodic_defers"}


def test_the_job_tables_exist_on_postgresql_only(hub: Hub) -> None:
    with hub.db.read() as conn:
        names = set(inspect(conn).get_table_names())
    assert (names >= TABLES) is (hub.db.dialect == "postgresql")


def test_the_migration_goes_down_and_up_again_on_postgresql(pg_url: str) -> None:  # pg_url: skip without PG
    name = f"ob_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    db = Database(url)
    try:
        db.migrate()
        cfg = alembic_config()
        with db.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0019")
        with psycopg.connect(url) as conn:
            left = conn.execute(
                "SELECT (SELECT count(*) FROM pg_tables WHERE tablename LIKE 'procrastinate%'),"
                " (SELECT count(*) FROM pg_proc WHERE proname LIKE 'procrastinate%'),"
                " (SELECT count(*) FROM pg_type WHERE typname LIKE 'procrastinate%')"
            ).fetchone()
        assert left == (0, 0, 0), "the downgrade leaves nothing of procrastinate"
        db.migrate()
        with db.read() as conn:
            assert set(inspect(conn).get_table_names()) >= TABLES
    finally:
        db.dispose()
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
