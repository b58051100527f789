"""the holds grouping and the narrow inbox filters at a million orders on PostgreSQL

- ``reason_tallies``: how many open reasons each cause — (tenant, kind, code, value) — has, as
  signed deltas appended by the reasons' writer (``storage/repos/order_reasons.py``) in the
  transaction that opens or releases them, summed by the holds grouping and folded together by the
  housekeeping (decision 147). Grouping 27,000 open reasons on every dashboard view took ~25 ms
  on PostgreSQL at a million orders; summing a few rows per cause takes well under one.
  This revision counts the open reasons already in the ledger.
- ``ix_orders_keys`` (PostgreSQL only): ``orders (id) INCLUDE (tenant_id, placed_at)``, so the
  inbox sorts the orders a narrow filter found from the index alone, not from a random heap page
  per order (decision 148).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reason_tallies",
        sa.Column("id", _ID, primary_key=True),
        sa.Column(
            "tenant_id",
            _ID,
            sa.ForeignKey("tenants.id", name=op.f("fk_reason_tallies_tenant_id_tenants")),
            nullable=False,
        ),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("code", sa.String(60), nullable=False),
        sa.Column("value", sa.String(300), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reason_tallies")),
    )
    op.create_index("ix_reason_tallies_cause", "reason_tallies", ["tenant_id", "kind", "code", "value"])
    op.execute(
        "INSERT INTO reason_tallies (tenant_id, kind, code, value, n) SELECT tenant_id, kind, code, value, count(*)"
        " FROM order_reasons WHERE released_at IS NULL GROUP BY tenant_id, kind, code, value"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.create_index("ix_orders_keys", "orders", ["id"], postgresql_include=["tenant_id", "placed_at"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_orders_keys", table_name="orders")
    op.drop_index("ix_reason_tallies_cause", table_name="reason_tallies")
    op.drop_table("reason_tallies")
