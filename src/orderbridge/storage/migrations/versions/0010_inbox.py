"""the orders inbox: what every filter, search and sort of the portal's inbox reads through an index

- ``orders.placed_at``: when the order counts as placed, the inbox's default sort and its date
  range — the channel's creation time, else (an unreadable order) when the hub received it, so
  never null and a plain column the indexes below can carry (SQLite cannot read an expression
  index alone, PostgreSQL not as an index-only scan).
- ``orders.email``: the customer's e-mail trimmed and lower-cased (search is exact and
  case-insensitive). Both are written with the order's content by its one writer
  (``storage/repos/orders.py``) and backfilled here, from ``orders.canonical`` in Python (SQLite's
  ``lower()`` folds ASCII only): one ``UPDATE`` per order, so PostgreSQL rewrites each row once.
- ``order_skus (tenant_id, sku, order_id)``: each distinct SKU of an order's current version
  (search by SKU), one b-tree without foreign keys, written by the same writer on insert and on
  every new version; backfilled here by SQL
  from ``canonical`` (``json_each`` / ``json_array_elements``) — on PostgreSQL except for the
  documents holding ``\\u0000``, which its JSON operators refuse: those are read in Python.
- Indexes on ``orders`` that lead with ``tenant_id`` (every query is one tenant's) and end with a
  sort key and ``id`` (keyset pagination walks them): ``placed_at`` alone and within a state (with
  the connection after it: a walk by state and connection reads only the index), the last update,
  the number (``COLLATE "C"`` on PostgreSQL, so its order is SQLite's and a prefix is a range
  under any database collation), the total (``CAST(… AS DOUBLE PRECISION)``: SQLite stores
  amounts as text; none sorts below every amount), and the e-mail. ``ix_orders_tenant_state``
  stays: the poster reads ready orders by id through it.
- (The inbox's "held for" filter reads ``ix_order_reasons_open``, which 0014 makes partial on open
  reasons with their orders.)

Decision 96 says why these and not others; the figures are in docs/benchmarks.md.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

import orderbridge.storage.types

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TOTAL = "coalesce(CAST(total AS DOUBLE PRECISION), -1e300)"
_BATCH = 20_000


_NUL = "\\u0000"  # as JSON text holds an escaped NUL (PostgreSQL's JSON operators refuse it)


def _skus_by_sql(dialect: str) -> str:
    """``INSERT … SELECT`` of the distinct SKUs of the orders with ids in [:lo, :hi)."""
    if dialect == "postgresql":
        lines = (
            "json_array_elements(CASE WHEN json_typeof(o.canonical -> 'lines') = 'array'"
            " THEN o.canonical -> 'lines' ELSE '[]'::json END) AS l(line)"
        )
        sku = "CASE WHEN json_typeof(l.line) = 'object' THEN l.line ->> 'sku' END"
        readable = f" AND strpos(o.canonical::text, '{_NUL}') = 0"
    else:
        lines = "json_each(o.canonical, '$.lines') AS l"
        sku = "CASE WHEN json_type(l.value) = 'object' THEN json_extract(l.value, '$.sku') END"
        readable = ""
    return (
        f"INSERT INTO order_skus (order_id, tenant_id, sku) SELECT DISTINCT o.id, o.tenant_id, {sku}"
        f" FROM orders o CROSS JOIN {lines}"
        f" WHERE o.id >= :lo AND o.id < :hi AND o.canonical IS NOT NULL{readable}"
        f" AND {sku} IS NOT NULL AND {sku} <> ''"
    )


def _refused_in_python(bind: sa.Connection, bounds: dict[str, int]) -> None:
    """PostgreSQL: the e-mail and SKUs of the documents its JSON operators refuse, read in Python."""
    rows = bind.execute(
        sa.text(
            "SELECT id, tenant_id, canonical::text FROM orders WHERE id >= :lo AND id < :hi"
            f" AND canonical IS NOT NULL AND strpos(canonical::text, '{_NUL}') > 0"
        ),
        bounds,
    ).all()
    found, keyed = [], []
    for oid, tenant_id, canonical in rows:
        document = json.loads(canonical)
        if not isinstance(document, dict):
            continue
        email = document.get("email")
        if isinstance(email, str) and email.strip():
            keyed.append({"i": oid, "e": email.strip().lower()})
        lines = document.get("lines")
        skus = dict.fromkeys(
            li["sku"] for li in (lines if isinstance(lines, list) else []) if isinstance(li, dict) and li.get("sku")
        )
        found += [{"o": oid, "t": tenant_id, "s": sku} for sku in skus if isinstance(sku, str)]
    if found:
        bind.execute(sa.text("INSERT INTO order_skus (order_id, tenant_id, sku) VALUES (:o, :t, :s)"), found)
    if keyed:
        bind.execute(sa.text("UPDATE orders SET email = :e WHERE id = :i"), keyed)


def upgrade() -> None:
    bind = op.get_bind()
    dialect = bind.dialect.name
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("email", sa.Text(), nullable=True))
        batch.add_column(sa.Column("placed_at", orderbridge.storage.types.UTCDateTime(timezone=True), nullable=True))
    op.create_table(  # no foreign keys: derived rows, written with their order (decision 96)
        "order_skus",
        sa.Column("tenant_id", _ID, nullable=False),
        sa.Column("sku", sa.Text(), nullable=False),
        sa.Column("order_id", _ID, nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "sku", "order_id", name="pk_order_skus"),
        sqlite_with_rowid=False,
    )
    # backfill in id ranges: a large ledger's transaction log stays bounded per statement
    if dialect == "postgresql":
        email = f"CASE WHEN strpos(canonical::text, '{_NUL}') = 0 THEN canonical ->> 'email' END"
    else:
        email = "json_extract(canonical, '$.email')"
    top = int(bind.execute(sa.text("SELECT coalesce(max(id), 0) FROM orders")).scalar_one())
    for start in range(0, top + 1, _BATCH):
        bounds = {"lo": start, "hi": start + _BATCH}
        found = bind.execute(
            sa.text(
                f"SELECT id, CASE WHEN canonical IS NOT NULL THEN {email} END FROM orders WHERE id >= :lo AND id < :hi"
            ),
            bounds,
        ).all()
        if found:
            bind.execute(
                sa.text(
                    "UPDATE orders SET email = :e, placed_at = coalesce(channel_created_at, received_at) WHERE id = :i"
                ),
                [{"i": oid, "e": e.strip().lower() if isinstance(e, str) and e.strip() else None} for oid, e in found],
            )
        bind.execute(sa.text(_skus_by_sql(dialect)), bounds)
        if dialect == "postgresql":
            _refused_in_python(bind, bounds)
    number = 'number COLLATE "C"' if dialect == "postgresql" else "number"
    indexes: tuple[tuple[str, list[str | sa.TextClause]], ...] = (
        ("ix_orders_inbox_created", ["tenant_id", "placed_at", "id"]),
        ("ix_orders_inbox_state", ["tenant_id", "state", "placed_at", "id", "connection_id"]),
        ("ix_orders_inbox_updated", ["tenant_id", "updated_at", "id"]),
        ("ix_orders_inbox_number", ["tenant_id", sa.text(number), "id"]),
        ("ix_orders_inbox_total", ["tenant_id", sa.text(TOTAL), "id"]),
        ("ix_orders_inbox_email", ["tenant_id", "email"]),
    )
    for name, columns in indexes:
        op.create_index(name, "orders", columns)


def downgrade() -> None:
    for name in (
        "ix_orders_inbox_email",
        "ix_orders_inbox_total",
        "ix_orders_inbox_number",
        "ix_orders_inbox_updated",
        "ix_orders_inbox_state",
        "ix_orders_inbox_created",
    ):
        op.drop_index(name, table_name="orders")
    op.drop_table("order_skus")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("placed_at")
        batch.drop_column("email")
