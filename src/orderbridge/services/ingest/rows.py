"""An order's ledger row from a channel record, and the ledger's current versions of a batch's orders."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson
from sqlalchemy import Connection, select

from orderbridge.connectors.base import ChannelRecord, UnreadableOrder
from orderbridge.domain import limits
from orderbridge.domain.canonical import canonical_hash, order_to_json
from orderbridge.domain.order import RawJson
from orderbridge.storage.db import JsonText, dump_json
from orderbridge.storage.tables import orders

#: the columns :func:`row_values` fills, in its order
VALUE_COLUMNS = (
    "number",
    "content_hash",
    "channel_created_at",
    "channel_updated_at",
    "currency",
    "total",
    "canonical",
    "raw",
)


#: the columns of a new order row, in the order :func:`ingest_records` (and the benchmark) insert them
ORDER_COLUMNS = (
    "tenant_id",
    "connection_id",
    "external_id",
    "state",
    "version",
    "received_at",
    "updated_at",
    *VALUE_COLUMNS,
)


def row_values(record: ChannelRecord) -> dict[str, Any]:
    """The order's content columns, keyed and ordered as :data:`VALUE_COLUMNS`. Bounded columns
    get what fits (domain/limits.py): the number without NULs, a total the column cannot hold
    exactly left empty — the canonical form and the raw payload keep every value whole, and the
    pipeline holds the order naming what did not fit."""
    if isinstance(record, UnreadableOrder):
        raw = dict(record.raw)
        return {
            "number": limits.storable(record.number or record.external_id),
            "content_hash": raw_hash(raw),
            "channel_created_at": None,
            "channel_updated_at": record.updated_at,
            "currency": None,
            "total": None,
            "canonical": None,
            "raw": dump_json(raw),
        }
    canonical = order_to_json(record)
    total = record.total.amount
    return {
        "number": limits.storable(record.number),
        "content_hash": canonical_hash(canonical),
        "channel_created_at": record.created_at,
        "channel_updated_at": record.updated_at,
        "currency": record.currency,
        "total": total if limits.fits_column(total) else None,
        # JSON serialised now, once: the dicts die young and nothing holds them (see JsonText)
        "canonical": dump_json(canonical),
        "raw": JsonText(record.raw.decode()) if isinstance(record.raw, RawJson) else dump_json(record.raw),
    }


def loaded(values: dict[str, Any]) -> dict[str, Any]:
    """Column values from :func:`row_values` as Core expects them (pre-serialised JSON decoded)."""
    return {k: orjson.loads(str(v)) if isinstance(v, JsonText) else v for k, v in values.items()}


def raw_hash(raw: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()


def changed_fields(old: dict[str, Any] | None, new: dict[str, Any] | None) -> list[str]:
    if old is None or new is None:
        return ["*"]
    return sorted(k for k in set(old) | set(new) if k != "updated_at" and old.get(k) != new.get(k))


def existing_versions(conn: Connection, connection_id: int, external_ids: list[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for i in range(0, len(external_ids), 500):
        chunk = external_ids[i : i + 500]
        for row in conn.execute(
            select(
                orders.c.id,
                orders.c.external_id,
                orders.c.content_hash,
                orders.c.version,
                orders.c.state,
                orders.c.channel_updated_at,
            ).where(orders.c.connection_id == connection_id, orders.c.external_id.in_(chunk))
        ):
            found[row.external_id] = dict(row._mapping)
    return found
