"""the dashboard at a million orders: order tallies, open causes indexed, the last sync found

- ``order_tallies``: how many of a tenant's orders are in each state, by the hour they were received
  in (``hour`` null: "earlier", more than :data:`~orderbridge.storage.repos.orders.TALLY_HOURS`
  before the write) — signed deltas appended by the order writer (``storage/repos/orders.py``) in
  the transaction that changes an order's state, summed by the dashboard and folded together by
  the housekeeping (decision 110). Counting a million rows per state took 100–200 ms on each
  database; summing the tallies takes well under one.
  This revision counts the orders already in the ledger: those received in the last 48 hours (by
  the database's clock) by their hour, the rest as earlier.
- ``ix_order_reasons_open`` becomes the open reasons by cause — (tenant, code, value, kind, order),
  partial on ``released_at IS NULL`` — instead of (tenant, code, value, released_at) over every
  reason ever released: every lookup by cause (the holds grouping, a mapping's release, the
  unmapped values) reads open reasons only. With the old one SQLite's planner, told by ANALYZE that
  ``released_at`` is nearly unique, skip-scanned it for ``released_at IS NULL``: grouping 30,000
  held orders took 100–300 ms instead of ~10 (decision 111).
- ``ix_sync_runs_connection``: a connection's runs by kind, newest last (its last sync is one seek,
  not a scan of every run the ledger kept).

Revision ID: 0014
Revises: 0009 (the newest on main when this was written; renumbered at merge)
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orderbridge.storage.types import UTCDateTime

revision = "0014"
down_revision = "0011"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "order_tallies",
        sa.Column("id", _ID, primary_key=True),
        sa.Column(
            "tenant_id",
            _ID,
            sa.ForeignKey("tenants.id", name=op.f("fk_order_tallies_tenant_id_tenants")),
            nullable=False,
        ),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("hour", UTCDateTime(), nullable=True),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_tallies")),
    )
    op.create_index(op.f("ix_order_tallies_tenant_id"), "order_tallies", ["tenant_id", "hour"])
    if op.get_bind().dialect.name == "postgresql":
        recent = "received_at >= now() - interval '48 hours'"
        bucket = f"CASE WHEN {recent} THEN date_trunc('hour', received_at) END"
    else:  # SQLite stores 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC): text order is time order
        recent = "received_at >= strftime('%Y-%m-%d %H:%M:%f', 'now', '-48 hours')"
        bucket = f"CASE WHEN {recent} THEN substr(received_at, 1, 13) || ':00:00.000000' END"
    op.execute(
        f"INSERT INTO order_tallies (tenant_id, state, hour, n) SELECT tenant_id, state, {bucket}, count(*)"
        f" FROM orders GROUP BY tenant_id, state, {bucket}"
    )
    op.drop_index("ix_order_reasons_open", table_name="order_reasons")
    op.create_index(
        "ix_order_reasons_open",
        "order_reasons",
        ["tenant_id", "code", "value", "kind", "order_id"],
        sqlite_where=sa.text("released_at IS NULL"),
        postgresql_where=sa.text("released_at IS NULL"),
    )
    op.create_index(op.f("ix_sync_runs_connection"), "sync_runs", ["connection_id", "kind", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_sync_runs_connection"), table_name="sync_runs")
    op.drop_index("ix_order_reasons_open", table_name="order_reasons")
    op.create_index("ix_order_reasons_open", "order_reasons", ["tenant_id", "code", "value", "released_at"])
    op.drop_index(op.f("ix_order_tallies_tenant_id"), table_name="order_tallies")
    op.drop_table("order_tallies")
