"""pending re-reads: ties on updated_at the channel could not settle yet, retried by every sync

An order whose ``tie_unsettled`` event has no later ``version_changed`` event may still hold the
older of two same-second versions; each becomes a pending re-read. (One that was settled without a
change is re-read once more and found unchanged: harmless.)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import orderbridge.storage.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pending_rereads",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("connection_id", _ID, nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=False),
        sa.Column("since", orderbridge.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", orderbridge.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"], ["connections.id"], name=op.f("fk_pending_rereads_connection_id_connections")
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_pending_rereads_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_rereads")),
        sa.UniqueConstraint("connection_id", "external_id", name="uq_pending_rereads_connection_external"),
    )
    op.execute(
        "INSERT INTO pending_rereads (tenant_id, connection_id, external_id, since, attempts, last_attempt_at,"
        " last_error)"
        " SELECT o.tenant_id, o.connection_id, o.external_id, MIN(e.at), COUNT(*), MAX(e.at),"
        " 'recorded before this release: see the order''s timeline'"
        " FROM events e JOIN orders o ON o.id = e.order_id"
        " WHERE e.kind = 'tie_unsettled' AND NOT EXISTS ("
        "  SELECT 1 FROM events v WHERE v.order_id = e.order_id AND v.kind = 'version_changed' AND v.id > e.id)"
        " GROUP BY o.tenant_id, o.connection_id, o.external_id"
    )


def downgrade() -> None:
    op.drop_table("pending_rereads")
