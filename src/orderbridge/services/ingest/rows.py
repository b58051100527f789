"""An order's ledger row from a channel record (the columns are the orders repository's:
:data:`~orderbridge.storage.repos.orders.VALUE_COLUMNS`, :data:`~orderbridge.storage.repos.orders.ORDER_COLUMNS`)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson

from orderbridge.connectors.base import ChannelRecord, UnreadableOrder
from orderbridge.domain import limits
from orderbridge.domain.canonical import canonical_hash, order_to_json
from orderbridge.domain.order import RawJson
from orderbridge.storage.db import JsonText, dump_json
from orderbridge.storage.repos.orders import ORDER_COLUMNS, VALUE_COLUMNS, email_key, skus_of_lines

__all__ = ["ORDER_COLUMNS", "VALUE_COLUMNS", "changed_fields", "loaded", "raw_hash", "row_values"]


def row_values(record: ChannelRecord) -> dict[str, Any]:
    """The order's content columns, keyed and ordered as :data:`VALUE_COLUMNS`, and its ``skus``
    (for ``order_skus``, which the orders writer keeps with the content). Bounded columns
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
            "email": None,
            "skus": (),
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
        "email": email_key(record.email),
        # not a column: the order's rows of order_skus (the orders writer stores them)
        "skus": skus_of_lines([li.sku for li in record.lines]),
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
