"""ingest failures: records the database refused to store as sent (poison-pill isolation)

One row per channel order the database would not take as sent — stored in a minimal form and
held, an already-posted order's new version whose raw payload is kept, or quarantined here alone
with its raw bytes — open until a later version of that order is stored whole. Health reads it.
Nothing existing is rewritten.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 19:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import orderbridge.storage.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ingest_failures",
        sa.Column("id", _ID, nullable=False),
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("connection_id", _ID, nullable=False),
        sa.Column("external_id", sa.String(length=300), nullable=False),
        sa.Column("number", sa.String(length=300), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("order_id", _ID, nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("channel_updated_at", orderbridge.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_at", orderbridge.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", orderbridge.storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", orderbridge.storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["connection_id"], ["connections.id"], name=op.f("fk_ingest_failures_connection_id_connections")
        ),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name=op.f("fk_ingest_failures_order_id_orders")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_ingest_failures_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_failures")),
        sa.UniqueConstraint("connection_id", "external_id", name="uq_ingest_failures_connection_external"),
    )


def downgrade() -> None:
    op.drop_table("ingest_failures")
