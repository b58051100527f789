"""The ``order_versions`` table: every version of an order, one row each (decision 150).

Written only by the orders writer (``storage/repos/orders.py``), in the transaction that writes the
version into ``orders``: a new order's first version with its insert (one executemany per batch, as
the orders themselves), each later one with
:func:`~orderbridge.storage.repos.orders.write_version`. A version's row holds its content hash and
times from the start, and its canonical JSON from the moment a later version replaces it in the
order row (:func:`supersede`): until then its content *is* the order row's, and writing it twice
would cost every ingested order a second copy of its largest column (about 12% of a first sync,
measured) for versions that, for most orders, are never replaced. So no version is ever lost — the
current one is in ``orders``, every earlier one here — and :func:`versions_of` reads them as one
list. A row whose content is null and is not the current version was unreadable (or refused by the
database) when it was written.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, select, update

from orderbridge.domain.canonical import canonical_hash
from orderbridge.storage.db import insert_rows
from orderbridge.storage.tables import order_versions, orders

#: the columns of a row, in the order :func:`record` takes them
COLUMNS = ("tenant_id", "order_id", "version", "canonical", "content_hash", "updated_at", "recorded_at")


class VersionRow(NamedTuple):
    version: int
    #: the version's canonical JSON; None when it could not be read
    canonical: dict[str, Any] | None
    content_hash: str
    updated_at: datetime | None
    recorded_at: datetime


def record(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    """Append versions (tuples in :data:`COLUMNS` order; ``canonical`` None for a current version,
    whose content is the order row's) — one driver executemany."""
    insert_rows(conn, order_versions, COLUMNS, rows)


def supersede(conn: Connection, row: Sequence[Any]) -> None:
    """Keep a replaced version's content in its row (``row`` in :data:`COLUMNS` order; its
    ``recorded_at`` is used only for a version that has no row yet — one stored before 0017's
    backfill or loaded around the writer — as the latest it can have been recorded)."""
    tenant_id, order_id, version, canonical, content_hash, updated_at, recorded_at = row
    done = conn.execute(
        update(order_versions)
        .where(order_versions.c.order_id == order_id, order_versions.c.version == version)
        .values(canonical=canonical)
    ).rowcount
    if not done:
        record(conn, [(tenant_id, order_id, version, canonical, content_hash, updated_at, recorded_at)])


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
    """Every version of an order, oldest first, each with its content (none for an order of
    another tenant)."""
    current = conn.execute(
        select(orders.c.version, orders.c.canonical, orders.c.content_hash).where(
            orders.c.id == order_id, orders.c.tenant_id == tenant_id
        )
    ).first()
    if current is None:
        return []
    rows = conn.execute(
        select(*_SELECTED)
        .where(order_versions.c.order_id == order_id, order_versions.c.tenant_id == tenant_id)
        .order_by(order_versions.c.version)
    )
    out = []
    for r in rows:
        canonical = _loaded(r.canonical)
        if canonical is None and r.version == current.version:
            canonical = _current(current)
        out.append(VersionRow(int(r.version), canonical, r.content_hash, r.updated_at, r.recorded_at))
    return out


def _current(row: Any) -> dict[str, Any] | None:
    """The order row's content as its current version's — unless it is not that version's: a version
    the database refused to store keeps the order's earlier content beside the new hash, and is
    unreadable as a version."""
    canonical = _loaded(row.canonical)
    if canonical is None or canonical_hash(canonical) != row.content_hash:
        return None
    return canonical


def version_of(conn: Connection, tenant_id: int, order_id: int, version: int) -> VersionRow | None:
    return next((v for v in versions_of(conn, tenant_id, order_id) if v.version == version), None)
