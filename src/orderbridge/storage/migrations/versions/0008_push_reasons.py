"""pushes first-class: a held fulfilment push has reasons like a held order, and declared states

- ``order_reasons.push_id`` (nullable; a partial index on the rows that have one): the reasons of
  a held fulfilment push are rows of ``order_reasons`` with ``kind = 'push'`` — code, value,
  message and fix, as an order's — so ``holds``, the digest and hold alerts show them with held
  orders (decision 78).
- ``fulfilment_pushes.status`` gets a CHECK naming the states of ``domain.states.PushState``.
- Pushes held before this revision have a code and a message but no fix: they become ``recheck``
  (a move the push state machine allows), so the next push run validates each again and holds it
  with its full reasons — or, when what held it is gone, pushes it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_STATES = ("pending", "pushed", "unknown", "retry", "held", "recheck", "voided")
_CHECK = "status IN (" + ", ".join(f"'{s}'" for s in _STATES) + ")"


def upgrade() -> None:
    op.execute("UPDATE fulfilment_pushes SET status = 'recheck' WHERE status = 'held'")
    with op.batch_alter_table("fulfilment_pushes") as batch:
        batch.create_check_constraint(op.f("ck_fulfilment_pushes_status"), _CHECK)
    with op.batch_alter_table("order_reasons") as batch:
        batch.add_column(sa.Column("push_id", _ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_order_reasons_push_id_fulfilment_pushes"), "fulfilment_pushes", ["push_id"], ["id"]
        )
        # partial: an order's own reasons (push_id null) are not in it
        batch.create_index(
            op.f("ix_order_reasons_push"),
            ["push_id"],
            sqlite_where=sa.text("push_id IS NOT NULL"),
            postgresql_where=sa.text("push_id IS NOT NULL"),
        )


def downgrade() -> None:
    # a held push's reasons go with the column; the push is validated again by the next run
    op.execute("UPDATE fulfilment_pushes SET status = 'recheck' WHERE status = 'held'")
    op.execute("DELETE FROM order_reasons WHERE push_id IS NOT NULL")
    with op.batch_alter_table("order_reasons") as batch:
        batch.drop_index(op.f("ix_order_reasons_push"))
        batch.drop_constraint(op.f("fk_order_reasons_push_id_fulfilment_pushes"), type_="foreignkey")
        batch.drop_column("push_id")
    with op.batch_alter_table("fulfilment_pushes") as batch:
        batch.drop_constraint(op.f("ck_fulfilment_pushes_status"), type_="check")
