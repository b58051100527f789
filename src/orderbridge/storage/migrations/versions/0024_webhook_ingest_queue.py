"""webhook deliveries ingested by a worker job: the verified delivery kept until then

Under the procrastinate engine (``webhook_ingest=job``, the default there; docs/scaling.md,
decision 241) the receiver checks the signature and reads the delivery, then stores it
``queued`` — its raw body and the headers its adapter reads — and defers the connection's
``ingest`` job in the same transaction. The job ingests every queued delivery of the connection as
one batch and clears ``body``/``headers``. ``ix_webhook_deliveries_queued`` (partial: only queued
rows) is how the job, and the periodic sweep that re-defers a job nobody ran, find them.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03 13:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("body", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("headers", sa.JSON(), nullable=True))
    op.create_index(
        "ix_webhook_deliveries_queued",
        "webhook_deliveries",
        ["tenant_id", "connection_id", "id"],
        sqlite_where=sa.text("outcome = 'queued'"),
        postgresql_where=sa.text("outcome = 'queued'"),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_queued", table_name="webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("headers")
        batch.drop_column("body")
