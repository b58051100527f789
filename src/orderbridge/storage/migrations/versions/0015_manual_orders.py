"""manual orders: idempotency keys and the automatic order numbers

- ``idempotency_keys``: the answer given to each key a tenant sent with a request that changes
  something (``POST /api/v1/orders``'s ``Idempotency-Key``, the place-order form's hidden token),
  unique per (tenant, scope, key); the same key with the same request is answered from here
  (decision 131).
- ``manual_numbers``: per tenant, the last ``M-<n>`` number given to a manual order placed without
  one (decision 129).

The manual channel itself needs no schema: it is a connection of kind ``manual``, created on first
use (``services/manual_orders.py``).

Revision ID: 0015
Revises: 0013 (the head when this was written)
Create Date: 2026-12-02 17:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orderbridge.storage.types import UTCDateTime

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("id", _ID, primary_key=True),
        sa.Column(
            "tenant_id",
            _ID,
            sa.ForeignKey("tenants.id", name=op.f("fk_idempotency_keys_tenant_id_tenants")),
            nullable=False,
        ),
        sa.Column("scope", sa.String(40), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response", sa.JSON(), nullable=True),
        sa.Column(
            "order_id", _ID, sa.ForeignKey("orders.id", name=op.f("fk_idempotency_keys_order_id_orders")), nullable=True
        ),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint("tenant_id", "scope", "key", name="uq_idempotency_keys_tenant_scope_key"),
    )
    op.create_table(
        "manual_numbers",
        sa.Column(
            "tenant_id",
            _ID,
            sa.ForeignKey("tenants.id", name=op.f("fk_manual_numbers_tenant_id_tenants")),
            nullable=False,
        ),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_manual_numbers")),
    )


def downgrade() -> None:
    op.drop_table("manual_numbers")
    op.drop_table("idempotency_keys")
