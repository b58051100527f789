"""The canonical JSON form of an order, and the content hash computed from it.

Used for the ``orders.canonical`` column and for :func:`content_hash`, so the stored form and the
hash can never disagree. Hand-written rather than ``dataclasses.asdict`` + a generic decoder
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


def _line_json(li: OrderLine) -> dict[str, Any]:
    discount, tax = li.discount, li.tax
    out: dict[str, Any] = {
        "external_id": li.external_id,
        "sku": li.sku,
        "title": li.title,
        "quantity": li.quantity,
        "unit_price": str(li.unit_price.amount),
        "product_id": li.product_id,
        "variant_id": li.variant_id,
        "discount": None if discount is None else str(discount.amount),
        "tax": None if tax is None else str(tax.amount),
        "properties": [list(p) for p in li.properties] if li.properties else [],
        "fulfilment_ref": li.fulfilment_ref,
    }
    if li.fulfillable_quantity is not None:  # only when part is fulfilled: an open line hashes as before
        out["fulfillable_quantity"] = li.fulfillable_quantity
    return out


def order_to_json(o: Order) -> dict[str, Any]:
    out = {
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
        "subtotal": str(o.subtotal.amount),
        "total_tax": str(o.total_tax.amount),
        "total": str(o.total.amount),
        "lines": [_line_json(li) for li in o.lines],
        "shipping_lines": [
            {"title": s.title, "code": s.code, "price": str(s.price.amount), "source": s.source}
            for s in o.shipping_lines
        ],
        "discounts": [{"code": d.code, "amount": str(d.amount.amount), "kind": d.kind} for d in o.discounts],
        "taxes": [{"title": t.title, "rate": str(t.rate), "amount": str(t.amount.amount)} for t in o.taxes],
        "shipping_address": _addr(o.shipping_address),
        "billing_address": _addr(o.billing_address),
        "tags": list(o.tags),
        "note": o.note,
        "custom_fields": [list(p) for p in o.custom_fields],
    }
    if o.unknown_values:  # only when present: the canonical form (and hash) of every other order is unchanged
        out["unknown_values"] = [list(p) for p in o.unknown_values]
    if o.refunded is not None:  # likewise: only when the channel said how much was refunded
        out["refunded"] = str(o.refunded.amount)
    if o.channel_state:  # likewise (issue #16): only for channels that have their own order states
        out["channel_state"] = o.channel_state
    if o.deadlines:
        out["deadlines"] = {name: due.isoformat() for name, due in o.deadlines}
    return out


_ZERO = Decimal(0)
_PAYMENT = {p.value: p for p in PaymentStatus}
_FULFILMENT = {f.value: f for f in FulfilmentStatus}


def _money(value: str | None, cur: str) -> Money:
    return Money(Decimal(value) if value is not None else _ZERO, cur)


def _opt_money(value: str | None, cur: str) -> Money | None:
    return Money(Decimal(value), cur) if value is not None else None


def _address(a: dict[str, str] | None) -> Address | None:
    return Address(**a) if a is not None else None


def _pairs(items: list[list[Any]] | None) -> tuple[tuple[str, str], ...]:
    return tuple([(str(k), str(v)) for k, v in items]) if items else ()


def _line(li: dict[str, Any], cur: str) -> OrderLine:
    get = li.get
    discount, tax = get("discount"), get("tax")
    return OrderLine(
        external_id=li["external_id"],
        sku=li["sku"],
        title=li["title"],
        quantity=int(li["quantity"]),
        unit_price=_money(li["unit_price"], cur),
        product_id=get("product_id"),
        variant_id=get("variant_id"),
        discount=None if discount is None else Money(Decimal(discount), cur),
        tax=None if tax is None else Money(Decimal(tax), cur),
        properties=_pairs(get("properties")),
        fulfilment_ref=get("fulfilment_ref"),
        fulfillable_quantity=get("fulfillable_quantity"),
    )


def _deadlines(d: dict[str, str] | None) -> tuple[tuple[str, datetime], ...]:
    if not d:
        return ()
    out = []
    for name, due in sorted(d.items()):
        when = _pdt(due)
        if when is not None:
            out.append((str(name), when))
    return tuple(out)


def order_from_json(d: dict[str, Any], raw: dict[str, Any] | None = None) -> Order:
    cur = d["currency"]

    if not (len(cur) == 3 and cur.isalpha() and cur.isupper()):
        raise ValueError(f"stored order has an invalid currency {cur!r}")
    get = d.get
    created = _pdt(d["created_at"])
    updated = _pdt(d["updated_at"])
    assert created is not None and updated is not None
    return Order(
        external_id=d["external_id"],
        number=d["number"],
        currency=cur,
        created_at=created,
        updated_at=updated,
        processed_at=_pdt(get("processed_at")),
        cancelled_at=_pdt(get("cancelled_at")),
        closed_at=_pdt(get("closed_at")),
        payment_status=_PAYMENT.get(d["payment_status"]) or PaymentStatus(d["payment_status"]),
        fulfilment_status=_FULFILMENT.get(d["fulfilment_status"]) or FulfilmentStatus(d["fulfilment_status"]),
        test=bool(get("test", False)),
        email=get("email", ""),
        customer_name=get("customer_name", ""),
        subtotal=_money(d["subtotal"], cur),
        total_tax=_money(d["total_tax"], cur),
        total=_money(d["total"], cur),
        lines=tuple([_line(li, cur) for li in d["lines"]]),
        shipping_lines=tuple(
            [
                ShippingLine(s["title"], s.get("code"), _money(s["price"], cur), s.get("source"))
                for s in get("shipping_lines") or ()
            ]
        ),
        discounts=tuple(
            [Discount(x["code"], _money(x["amount"], cur), x.get("kind", "")) for x in get("discounts") or ()]
        ),
        taxes=tuple([TaxLine(t["title"], Decimal(t["rate"]), _money(t["amount"], cur)) for t in get("taxes") or ()]),
        shipping_address=_address(get("shipping_address")),
        billing_address=_address(get("billing_address")),
        tags=tuple(get("tags") or ()),
        note=get("note", ""),
        custom_fields=_pairs(get("custom_fields")),
        unknown_values=_pairs(get("unknown_values")),
        refunded=_opt_money(get("refunded"), cur),
        channel_state=get("channel_state", ""),
        deadlines=_deadlines(get("deadlines")),
        raw=raw or {},
    )


def canonical_hash(canonical: dict[str, Any]) -> str:
    """SHA-256 of the canonical content, excluding ``updated_at`` (a touch is not a change)."""
    content = {k: v for k, v in canonical.items() if k != "updated_at"}
    return hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()


def content_hash(order: Order) -> str:
    """SHA-256 of the order's canonical content (no raw payload, no ``updated_at``)."""
    return canonical_hash(order_to_json(order))
