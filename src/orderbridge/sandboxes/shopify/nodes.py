"""REST order dict → GraphQL ``Order`` node dict (the data the compact executor projects).

One source of truth per order (the REST dict from :mod:`.generator`, or its overlay once changed);
the GraphQL view is derived from it so REST and GraphQL always agree. Expensive and rarely asked
parts (fulfillment orders, fulfillments) are callables the projector evaluates only when selected.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

_FULFILMENT_DISPLAY = {
    None: "UNFULFILLED",
    "partial": "PARTIALLY_FULFILLED",
    "fulfilled": "FULFILLED",
    "restocked": "RESTOCKED",
}


@lru_cache(maxsize=65536)
def utc_iso(value: str | None) -> str | None:
    """Shopify GraphQL DateTime: UTC with a ``Z`` suffix, second precision."""
    if value is None:
        return None
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@lru_cache(maxsize=8192)
def money_bag(amount: Any, currency: str) -> dict[str, Any]:
    """Shared (read-only) MoneyBag dicts: a store has few distinct prices, and the projector copies."""
    money = {"amount": amount if amount is not None else "0.00", "currencyCode": currency}
    return {"shopMoney": money, "presentmentMoney": money}


def _address(a: dict[str, Any] | None) -> dict[str, Any] | None:
    if not a:
        return None
    return {
        "name": a.get("name"),
        "firstName": a.get("first_name"),
        "lastName": a.get("last_name"),
        "company": a.get("company"),
        "address1": a.get("address1"),
        "address2": a.get("address2"),
        "city": a.get("city"),
        "zip": a.get("zip"),
        "province": a.get("province"),
        "provinceCode": a.get("province_code"),
        "country": a.get("country"),
        "countryCodeV2": a.get("country_code"),
        "phone": a.get("phone"),
    }


@lru_cache(maxsize=4096)
def _variant(variant_id: int, sku: str | None, title: str | None) -> dict[str, Any]:
    return {
        "id": f"gid://shopify/ProductVariant/{variant_id}",
        "legacyResourceId": str(variant_id),
        "sku": sku,
        "title": title,
    }


@lru_cache(maxsize=4096)
def _product(product_id: int, title: str | None) -> dict[str, Any]:
    return {"id": f"gid://shopify/Product/{product_id}", "legacyResourceId": str(product_id), "title": title}


def fulfillment_order_lines(order: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "id": f"gid://shopify/FulfillmentOrderLineItem/{li['id']}",
            "totalQuantity": li.get("quantity", 0),
            "remainingQuantity": li.get("fulfillable_quantity", 0),
            "line_item_id": li["id"],
        }
        for li in order.get("line_items", [])
    ]


def fulfillment_order_status(order: dict[str, Any]) -> str:
    lines = order.get("line_items", [])
    if order.get("cancelled_at"):
        return "CLOSED"
    remaining = sum(li.get("fulfillable_quantity", 0) for li in lines)
    total = sum(li.get("quantity", 0) for li in lines)
    if remaining == 0:
        return "CLOSED"
    return "IN_PROGRESS" if remaining < total else "OPEN"


def fulfillment_node(f: dict[str, Any], line_nodes: dict[int, dict[str, Any]] | None = None) -> dict[str, Any]:
    """A REST fulfillment as a GraphQL ``Fulfillment``; ``line_nodes`` (the order's ``LineItem`` nodes by
    id) resolves each fulfilled line's ``lineItem`` — without them only its id is known."""
    by_id = line_nodes or {}
    numbers = f.get("tracking_numbers") or ([f["tracking_number"]] if f.get("tracking_number") else [])
    urls = f.get("tracking_urls") or ([f["tracking_url"]] if f.get("tracking_url") else [])
    return {
        "id": f"gid://shopify/Fulfillment/{f['id']}",
        "legacyResourceId": str(f["id"]),
        "status": str(f.get("status", "success")).upper(),
        "createdAt": utc_iso(f.get("created_at")),
        "updatedAt": utc_iso(f.get("updated_at") or f.get("created_at")),
        "trackingInfo": [
            {"number": n, "company": f.get("tracking_company"), "url": urls[i] if i < len(urls) else None}
            for i, n in enumerate(numbers)
        ],
        "fulfillmentLineItems": [
            {
                "id": f"gid://shopify/FulfillmentLineItem/{f['id'] * 100 + k}",
                "quantity": li.get("quantity"),
                "lineItem": by_id.get(li["id"]) or {"id": f"gid://shopify/LineItem/{li['id']}"},
            }
            for k, li in enumerate(f.get("line_items") or [])
        ],
    }


def order_node(o: dict[str, Any]) -> dict[str, Any]:
    cur = o.get("currency") or "USD"
    oid = o["id"]
    line_nodes = []
    for li in o.get("line_items", []):
        variant_id = li.get("variant_id")
        product_id = li.get("product_id")
        line_nodes.append(
            {
                "id": f"gid://shopify/LineItem/{li['id']}",
                "sku": li.get("sku"),
                "name": li.get("name") or li.get("title"),
                "title": li.get("title"),
                "quantity": li.get("quantity"),
                "currentQuantity": li.get("quantity"),
                "unfulfilledQuantity": li.get("fulfillable_quantity", 0),
                "requiresShipping": li.get("requires_shipping", True),
                "variant": _variant(variant_id, li.get("sku"), li.get("variant_title")) if variant_id else None,
                "product": _product(product_id, li.get("title")) if product_id else None,
                "originalUnitPriceSet": money_bag(li.get("price"), cur),
                "customAttributes": [
                    {"key": p.get("name"), "value": p.get("value")} for p in li.get("properties") or []
                ],
            }
        )
    by_line = {n["id"]: n for n in line_nodes}
    shipping_total = sum((Decimal(str(s.get("price") or 0)) for s in o.get("shipping_lines", [])), Decimal(0))
    tags = o.get("tags") or ""
    customer = o.get("customer")

    def fulfillment_orders(_: Any) -> list[dict[str, Any]]:
        lines = fulfillment_order_lines(o)
        for line in lines:
            line["lineItem"] = by_line.get(f"gid://shopify/LineItem/{line['line_item_id']}")
        return [
            {
                "id": f"gid://shopify/FulfillmentOrder/{oid}",
                "status": fulfillment_order_status(o),
                "lineItems": lines,
            }
        ]

    def fulfillments(_: Any) -> list[dict[str, Any]]:
        lines = {int(n["id"].rsplit("/", 1)[-1]): n for n in line_nodes}
        return [fulfillment_node(f, lines) for f in o.get("fulfillments", [])]

    return {
        "id": f"gid://shopify/Order/{oid}",
        "legacyResourceId": str(oid),
        "name": o.get("name"),
        "email": o.get("email"),
        "createdAt": utc_iso(o.get("created_at")),
        "updatedAt": utc_iso(o.get("updated_at")),
        "processedAt": utc_iso(o.get("processed_at") or o.get("created_at")),
        "cancelledAt": utc_iso(o.get("cancelled_at")),
        "cancelReason": (o.get("cancel_reason") or "").upper() or None,
        "closedAt": utc_iso(o.get("closed_at")),
        "closed": o.get("closed_at") is not None,
        "test": bool(o.get("test")),
        "displayFinancialStatus": (o.get("financial_status") or "pending").upper(),
        # a value Shopify may add later passes through, as the financial status's does
        "displayFulfillmentStatus": _FULFILMENT_DISPLAY.get(o.get("fulfillment_status"))
        or str(o.get("fulfillment_status")).upper(),
        "currencyCode": cur,
        "subtotalPriceSet": money_bag(o.get("subtotal_price"), cur),
        "totalPriceSet": money_bag(o.get("total_price"), cur),
        "totalTaxSet": money_bag(o.get("total_tax"), cur),
        "totalShippingPriceSet": money_bag(str(shipping_total.quantize(Decimal("0.01"))), cur),
        "totalDiscountsSet": money_bag(o.get("total_discounts"), cur),
        "tags": [t.strip() for t in tags.split(",") if t.strip()] if isinstance(tags, str) else list(tags),
        "note": o.get("note"),
        "customAttributes": [{"key": a.get("name"), "value": a.get("value")} for a in o.get("note_attributes") or []],
        "discountCodes": [d.get("code") for d in o.get("discount_codes") or []],
        "shippingAddress": _address(o.get("shipping_address")),
        "billingAddress": _address(o.get("billing_address")),
        "customer": (
            {
                "id": f"gid://shopify/Customer/{customer['id']}",
                "legacyResourceId": str(customer["id"]),
                "email": customer.get("email"),
                "firstName": customer.get("first_name"),
                "lastName": customer.get("last_name"),
                "displayName": f"{customer.get('first_name') or ''} {customer.get('last_name') or ''}".strip(),
            }
            if customer
            else None
        ),
        "taxLines": [
            {
                "title": t.get("title"),
                "rate": t.get("rate"),
                "ratePercentage": (t.get("rate") or 0) * 100,
                "priceSet": money_bag(t.get("price"), cur),
            }
            for t in o.get("tax_lines") or []
        ],
        "shippingLines": [
            {
                "id": f"gid://shopify/ShippingLine/{s['id']}" if s.get("id") else None,
                "title": s.get("title"),
                "code": s.get("code"),
                "source": s.get("source"),
                "originalPriceSet": money_bag(s.get("price"), cur),
                "discountedPriceSet": money_bag(s.get("price"), cur),
            }
            for s in o.get("shipping_lines") or []
        ],
        "lineItems": line_nodes,
        "fulfillmentOrders": fulfillment_orders,
        "fulfillments": fulfillments,
    }
