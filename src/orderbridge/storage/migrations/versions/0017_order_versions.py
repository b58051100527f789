"""Every version of an order stays: ``order_versions`` (issue #15, decision 150)

- ``order_versions``: one row per (order, version) — its tenant, the version's canonical JSON (null:
  unreadable), content hash, the channel's ``updated_at`` and when the hub recorded it. Appended by
  the orders writer with every version it writes; the diff between any two is computed from them
  (``domain/changes.py``).
- Backfill: each stored order's current version (earlier ones were overwritten and are gone; the
  event log still names their changed fields).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 20:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orderbridge.storage.types import UTCDateTime

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "order_versions",
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("order_id", _ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("canonical", sa.JSON()),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("updated_at", UTCDateTime()),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "version", name=op.f("pk_order_versions")),
        sqlite_with_rowid=False,
    )
    op.execute(
        "INSERT INTO order_versions"
        " (tenant_id, order_id, version, canonical, content_hash, updated_at, recorded_at)"
        " SELECT tenant_id, id, version, canonical, content_hash, channel_updated_at, updated_at FROM orders"
    )


def downgrade() -> None:
    op.drop_table("order_versions")
