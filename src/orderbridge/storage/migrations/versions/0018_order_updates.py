"""Order updates: amendment postings and the updates awaiting review (issue #15)

- ``postings.action``: what the posting does — ``post`` (the first document of an order at a
  destination; every posting before 0018), ``update`` (in place), ``void`` or ``adjust``;
  ``postings.amends_id``: the posting whose document it amends (null for a first post). An
  amendment's idempotency key is ``<order>:<destination>:v<version>:<action>``, unique like every
  posting's, so a repeated amendment finds its first row.
- ``order_updates``: one row per later version of an order some destination already holds — the
  version the destinations hold and the new one, the change classes and field changes, the policy
  decided and why, its status (``review`` → ``applying`` → ``applied``; ``ignored``, ``cancelled``,
  ``superseded`` by a newer version's update) and who decided it, when (decisions 160–169).

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 20:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from orderbridge.storage.types import UTCDateTime

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # ADD COLUMN on both dialects (no table rebuild: the postings keep their rows and indexes)
    op.add_column("postings", sa.Column("action", sa.String(10), nullable=False, server_default="post"))
    if op.get_bind().dialect.name == "sqlite":
        # SQLite's ADD COLUMN takes the reference inline (alembic cannot ALTER a constraint there)
        op.execute("ALTER TABLE postings ADD COLUMN amends_id INTEGER REFERENCES postings (id)")
    else:
        op.add_column("postings", sa.Column("amends_id", _ID, nullable=True))
        op.create_foreign_key(op.f("fk_postings_amends_id_postings"), "postings", "postings", ["amends_id"], ["id"])
    op.create_table(
        "order_updates",
        sa.Column("id", _ID, primary_key=True),
        sa.Column(
            "tenant_id",
            _ID,
            sa.ForeignKey("tenants.id", name=op.f("fk_order_updates_tenant_id_tenants")),
            nullable=False,
        ),
        sa.Column(
            "order_id", _ID, sa.ForeignKey("orders.id", name=op.f("fk_order_updates_order_id_orders")), nullable=False
        ),
        sa.Column("from_version", sa.Integer(), nullable=False),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("classes", sa.JSON(), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("policy", sa.String(10), nullable=False),
        sa.Column("policies", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("cancel", sa.Boolean(), nullable=False, server_default=sa.text("false")),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("decided_at", UTCDateTime()),
        sa.Column("decided_by", sa.String(300)),
        sa.Column("applied_at", UTCDateTime()),
        sa.UniqueConstraint("order_id", "to_version", name=op.f("uq_order_updates_order_id")),
    )
    op.create_index("ix_order_updates_status", "order_updates", ["tenant_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_order_updates_status", table_name="order_updates")
    op.drop_table("order_updates")
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot drop a column a foreign key names: the table is rebuilt without both
        with op.batch_alter_table("postings", recreate="always") as batch:
            batch.drop_column("amends_id")
            batch.drop_column("action")
    else:
        op.drop_column("postings", "amends_id")
        op.drop_column("postings", "action")
