"""alerts can be acknowledged: who took an open episode in hand, and when

- ``alerts.acknowledged_at`` and ``alerts.acknowledged_by`` (both nullable): an operator's "I am on
  it" for the alert's current episode (decision 121). Raising a resolved cause again opens a new
  episode and clears them; acknowledging never resolves an alert and never stops its delivery.
  Existing alerts start unacknowledged.

Revision ID: 0013
Revises: 0014 (written on 0009; chained after 0011 and 0014 at merge)
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import orderbridge.storage.types

revision = "0013"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(
            sa.Column("acknowledged_at", orderbridge.storage.types.UTCDateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("acknowledged_by", sa.String(300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("acknowledged_by")
        batch.drop_column("acknowledged_at")
