"""The canonical JSON form of an order, and the content hash computed from it.

Used for the ``orders.canonical`` column and for :meth:`Order.content_hash`, so the stored form and
the hash can never disagree. Hand-written rather than ``dataclasses.asdict`` + a generic decoder
because it runs on the ingest hot path for every order and must round-trip exactly: amounts as
strings (``Decimal`` exact), datetimes as ISO 8601 with offset, enums by value. Pure: no I/O; the
hash serialises with orjson (C, deterministic with sorted keys), the ingest hot path's largest saving.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from orderbridge.domain.money import Money
from orderbridge.domain.order import (
    Address,
    Discount,
    FulfilmentStatus,
    Order,
    OrderLine,
    PaymentStatus,
    ShippingLine,
    TaxLine,
)


def _dt(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _pdt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _m(value: Money | None) -> str | None:
    return str(value.amount) if value is not None else None


def _addr(a: Address | None) -> dict[str, str] | None:
    if a is None:
        return None
    return {
        "name": a.name,
        "company": a.company,
        "address1": a.address1,
        "address2": a.address2,
        "city": a.city,
        "province_code": a.province_code,
        "postal_code": a.postal_code,
        "country_code": a.country_code,
        "phone": a.phone,
    }


def order_to_json(o: Order) -> dict[str, Any]:
    return {
        "external_id": o.external_id,
        "number": o.number,
        "currency": o.currency,
        "created_at": _dt(o.created_at),
        "updated_at": _dt(o.updated_at),
        "processed_at": _dt(o.processed_at),
        "cancelled_at": _dt(o.cancelled_at),
        "closed_at": _dt(o.closed_at),
        "payment_status": o.payment_status.value,
        "fulfilment_status": o.fulfilment_status.value,
        "test": o.test,
        "email": o.email,
        "customer_name": o.customer_name,
        "subtotal": _m(o.subtotal),
        "total_tax": _m(o.total_tax),
        "total": _m(o.total),
        "lines": [
            {
                "external_id": li.external_id,
                "sku": li.sku,
                "title": li.title,
                "quantity": li.quantity,
                "unit_price": _m(li.unit_price),
                "product_id": li.product_id,
                "variant_id": li.variant_id,
                "discount": _m(li.discount),
                "tax": _m(li.tax),
                "properties": [list(p) for p in li.properties],
                "fulfilment_ref": li.fulfilment_ref,
            }
            for li in o.lines
        ],
        "shipping_lines": [
            {"title": s.title, "code": s.code, "price": _m(s.price), "source": s.source} for s in o.shipping_lines
        ],
        "discounts": [{"code": d.code, "amount": _m(d.amount), "kind": d.kind} for d in o.discounts],
        "taxes": [{"title": t.title, "rate": str(t.rate), "amount": _m(t.amount)} for t in o.taxes],
        "shipping_address": _addr(o.shipping_address),
        "billing_address": _addr(o.billing_address),
        "tags": list(o.tags),
        "note": o.note,
        "custom_fields": [list(p) for p in o.custom_fields],
    }


def order_from_json(d: dict[str, Any], raw: dict[str, Any] | None = None) -> Order:
    cur = d["currency"]

    if not (len(cur) == 3 and cur.isalpha() and cur.isupper()):
        raise ValueError(f"stored order has an invalid currency {cur!r}")
    trusted = Money.trusted

    def money(value: str | None) -> Money:
        return trusted(Decimal(value) if value is not None else Decimal(0), cur)

    def opt_money(value: str | None) -> Money | None:
        return trusted(Decimal(value), cur) if value is not None else None

    def addr(a: dict[str, str] | None) -> Address | None:
        return Address(**a) if a is not None else None

    created = _pdt(d["created_at"])
    updated = _pdt(d["updated_at"])
    assert created is not None and updated is not None
    return Order(
        external_id=d["external_id"],
        number=d["number"],
        currency=cur,
        created_at=created,
        updated_at=updated,
        processed_at=_pdt(d.get("processed_at")),
        cancelled_at=_pdt(d.get("cancelled_at")),
        closed_at=_pdt(d.get("closed_at")),
        payment_status=PaymentStatus(d["payment_status"]),
        fulfilment_status=FulfilmentStatus(d["fulfilment_status"]),
        test=bool(d.get("test", False)),
        email=d.get("email", ""),
        customer_name=d.get("customer_name", ""),
        subtotal=money(d["subtotal"]),
        total_tax=money(d["total_tax"]),
        total=money(d["total"]),
        lines=tuple(
            OrderLine(
                external_id=li["external_id"],
                sku=li["sku"],
                title=li["title"],
                quantity=int(li["quantity"]),
                unit_price=money(li["unit_price"]),
                product_id=li.get("product_id"),
                variant_id=li.get("variant_id"),
                discount=opt_money(li.get("discount")),
                tax=opt_money(li.get("tax")),
                properties=tuple((str(k), str(v)) for k, v in li.get("properties", [])),
                fulfilment_ref=li.get("fulfilment_ref"),
            )
            for li in d["lines"]
        ),
        shipping_lines=tuple(
            ShippingLine(s["title"], s.get("code"), money(s["price"]), s.get("source"))
            for s in d.get("shipping_lines", [])
        ),
        discounts=tuple(Discount(x["code"], money(x["amount"]), x.get("kind", "")) for x in d.get("discounts", [])),
        taxes=tuple(TaxLine(t["title"], Decimal(t["rate"]), money(t["amount"])) for t in d.get("taxes", [])),
        shipping_address=addr(d.get("shipping_address")),
        billing_address=addr(d.get("billing_address")),
        tags=tuple(d.get("tags", [])),
        note=d.get("note", ""),
        custom_fields=tuple((str(k), str(v)) for k, v in d.get("custom_fields", [])),
        raw=raw or {},
    )


def canonical_hash(canonical: dict[str, Any]) -> str:
    """SHA-256 of the canonical content, excluding ``updated_at`` (a touch is not a change)."""
    content = {k: v for k, v in canonical.items() if k != "updated_at"}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()
