"""pushes through the channel's rules (issue #16)

- ``fulfilment_pushes.status`` may be ``waiting``: the push planner sent what it could and waits
  for the channel to move the order on by itself (Mirakl's debit); planned again by each run.
- ``channel_intents``: what a user, or a channel's auto-accept policy, asked of an order at its
  channel — cancel (the whole order or lines), refund (up to a total), accept, refuse — with its
  push state (the states of a shipment's push), its hold reason and every call made for it
  (decision 191).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orderbridge.storage.types import UTCDateTime

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_OLD = ("pending", "pushed", "unknown", "retry", "held", "recheck", "voided")
_NEW = (*_OLD, "waiting")


def _check(states: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in states) + ")"


def upgrade() -> None:
    with op.batch_alter_table("fulfilment_pushes") as batch:
        batch.drop_constraint(op.f("ck_fulfilment_pushes_status"), type_="check")
        batch.create_check_constraint(op.f("ck_fulfilment_pushes_status"), _check(_NEW))
    op.create_table(
        "channel_intents",
        sa.Column("id", _ID, primary_key=True),
        sa.Column(
            "tenant_id", _ID, sa.ForeignKey("tenants.id", name=op.f("fk_channel_intents_tenant_id_tenants")),
            nullable=False,
        ),
        sa.Column(
            "order_id", _ID, sa.ForeignKey("orders.id", name=op.f("fk_channel_intents_order_id_orders")),
            nullable=False,
        ),
        sa.Column(
            "channel_id", _ID,
            sa.ForeignKey("connections.id", name=op.f("fk_channel_intents_channel_id_connections")),
            nullable=False,
        ),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("lines", sa.JSON(), nullable=False),
        sa.Column("refund_total", sa.String(40)),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("reason_code", sa.String(60)),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("reason", sa.JSON()),
        sa.Column("calls", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(300), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_intents")),
        sa.CheckConstraint(_check(_NEW), name=op.f("ck_channel_intents_status")),
    )  # fmt: skip
    op.create_index("ix_channel_intents_status", "channel_intents", ["channel_id", "status"])
    op.create_index("ix_channel_intents_order", "channel_intents", ["order_id"])


def downgrade() -> None:
    op.drop_index("ix_channel_intents_order", table_name="channel_intents")
    op.drop_index("ix_channel_intents_status", table_name="channel_intents")
    op.drop_table("channel_intents")
    # a waiting push is planned again from what the channel holds
    op.execute("UPDATE fulfilment_pushes SET status = 'recheck' WHERE status = 'waiting'")
    with op.batch_alter_table("fulfilment_pushes") as batch:
        batch.drop_constraint(op.f("ck_fulfilment_pushes_status"), type_="check")
        batch.create_check_constraint(op.f("ck_fulfilment_pushes_status"), _check(_OLD))
