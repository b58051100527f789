"""The ``order_versions`` table: every version of an order's content, as written (decision 150).

Appended only, and only by the orders writer (``storage/repos/orders.py``) in the transaction that
writes the version into ``orders``: a new order's first version with its insert (one executemany
per batch, as the orders themselves), each later one with :func:`~orderbridge.storage.repos.orders.write_version`.
So the latest row of an order is always its current content. The reads serve the versions list and
the diff between any two (``services/order_versions.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, select

from orderbridge.storage.db import insert_rows
from orderbridge.storage.tables import order_versions

#: the columns of a row, in the order :func:`record` takes them
COLUMNS = ("tenant_id", "order_id", "version", "canonical", "content_hash", "updated_at", "recorded_at")


class VersionRow(NamedTuple):
    version: int
    canonical: dict[str, Any] | None
    content_hash: str
    updated_at: datetime | None
    recorded_at: datetime


def record(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Append versions (tuples in :data:`COLUMNS` order; ``canonical`` a dict, its JSON text as
    ingest serialised it, or None) — one driver executemany."""
    insert_rows(conn, order_versions, COLUMNS, rows)


def _loaded(value: Any) -> dict[str, Any] | None:
    loaded = orjson.loads(str(value)) if isinstance(value, str) else value
    return loaded if isinstance(loaded, dict) else None


_SELECTED = (
    order_versions.c.version,
    order_versions.c.canonical,
    order_versions.c.content_hash,
    order_versions.c.updated_at,
    order_versions.c.recorded_at,
)


def versions_of(conn: Connection, tenant_id: int, order_id: int) -> list[VersionRow]:
    """Every version of an order, oldest first (none for an order of another tenant)."""
    rows = conn.execute(
        select(*_SELECTED)
        .where(order_versions.c.order_id == order_id, order_versions.c.tenant_id == tenant_id)
        .order_by(order_versions.c.version)
    )
    return [VersionRow(int(r.version), _loaded(r.canonical), r.content_hash, r.updated_at, r.recorded_at) for r in rows]


def version_of(conn: Connection, tenant_id: int, order_id: int, version: int) -> VersionRow | None:
    r = conn.execute(
        select(*_SELECTED).where(
            order_versions.c.order_id == order_id,
            order_versions.c.version == version,
            order_versions.c.tenant_id == tenant_id,
        )
    ).first()
    if r is None:
        return None
    return VersionRow(int(r.version), _loaded(r.canonical), r.content_hash, r.updated_at, r.recorded_at)
