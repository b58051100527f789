"""what was sent: each posting attempt keeps the document the destination was sent; the order
page's reads are indexed

- ``posting_attempts.sent`` (JSON, nullable): the body the connector sent for that order in that
  attempt, as the connector reports it (``PostResult.sent``); null for attempts made before this
  revision and for connectors that do not say. The order page shows it beside the channel's raw
  payload (decision 108): the ledger keeps only an order's current version and mappings change, so
  what went out cannot be rebuilt afterwards — a rejected attempt's body is what a person needs to
  read to understand the rejection.

- ``ix_posting_attempts_posting`` and ``ix_shipments_order``: the order page reads an order's
  attempts and shipments; without them each read scans the table (a million orders' attempts).

``ALTER TABLE … ADD COLUMN`` (not a batch copy): ``posting_attempts`` is append-only by triggers
that a SQLite table copy would drop.

Revision ID: 0011
Revises: 0009 (the head on main when written; the lead renumbers at merge if 0010 lands first)
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("posting_attempts", sa.Column("sent", sa.JSON(), nullable=True))
    op.create_index("ix_posting_attempts_posting", "posting_attempts", ["posting_id"])
    op.create_index("ix_shipments_order", "shipments", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_shipments_order", table_name="shipments")
    op.drop_index("ix_posting_attempts_posting", table_name="posting_attempts")
    if op.get_bind().dialect.name == "sqlite":
        # DROP COLUMN on SQLite (3.35+) keeps the table and its append-only triggers
        op.execute("ALTER TABLE posting_attempts DROP COLUMN sent")
    else:
        op.drop_column("posting_attempts", "sent")
