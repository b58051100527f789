"""input limits: free text unbounded where a limit would only lose data; Shopify order ids in one form

- ``orders.number`` and the tracking fields of ``shipments`` (``tracking_number``, ``carrier``,
  ``service``, ``tracking_url``) become TEXT: they are shown and forwarded, never keyed by, and a
  value longer than the old VARCHAR made PostgreSQL refuse the whole batch it came in (SQLite never
  enforced the lengths, so nothing changes there).
- Shopify orders stored under their GraphQL gid (``gid://shopify/Order/N``, from a webhook that
  sent it where the number belongs) are re-keyed to the number, the one form ids now have —
  unless the same order is also stored under its number: then both rows stay as they are (each
  may have been posted; merging them is a person's decision) and the next read of the order
  updates the numeric one.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_UNBOUNDED = (
    ("orders", "number", 100),
    ("shipments", "tracking_number", 200),
    ("shipments", "carrier", 100),
    ("shipments", "service", 100),
    ("shipments", "tracking_url", 500),
)
_GID = "gid://shopify/Order/"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column, length in _UNBOUNDED:
            op.alter_column(table, column, type_=sa.Text(), existing_type=sa.String(length))
    op.execute(
        f"UPDATE orders SET external_id = substr(external_id, {len(_GID) + 1})"
        f" WHERE external_id LIKE '{_GID}%'"
        " AND connection_id IN (SELECT id FROM connections WHERE kind = 'shopify')"
        " AND NOT EXISTS (SELECT 1 FROM orders o2 WHERE o2.connection_id = orders.connection_id"
        f"  AND o2.external_id = substr(orders.external_id, {len(_GID) + 1}))"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column, length in _UNBOUNDED:
            op.alter_column(
                table,
                column,
                type_=sa.String(length),
                existing_type=sa.Text(),
                postgresql_using=f"left({column}, {length})",
            )
