"""The store's order as Shopify's REST ``order`` resource: every field the REST Admin API documents.

The store keeps a compact REST dict per order (:mod:`.generator`); what a REST client reads is that
dict completed with the rest of Shopify's REST order fields, derived by the same rules as the
GraphQL view (:mod:`.nodes`, :mod:`.model`) so both APIs tell one story: ``*_set`` money bags of the
plain amounts, ``current_*`` totals equal to the original ones (no order was edited), the
transactions' sums for ``total_outstanding`` and ``refunds``, discount allocations and per-line tax
lines spread as in GraphQL, and null for what the store does not model (browser IP, cart token,
landing site …). A key the compact dict already has wins, so an order a test stored with odd
values is served with those values. Serialised once per order version (``ShopifyState.rest_json``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from orderbridge.sandboxes.shopify.generator import CENT
from orderbridge.sandboxes.shopify.nodes import (
    COUNTRIES,
    OrderContext,
    line_allocations,
    line_tax_lines,
    order_refunds,
    order_transactions,
)
from orderbridge.sandboxes.shopify.webhooks import SHOP_DOMAIN


def _dec(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value is not None else "0"))
    except ArithmeticError:
        return Decimal(0)


def price_set(amount: Any, currency: str) -> dict[str, Any]:
    money = {"amount": None if amount is None else str(amount), "currency_code": currency}
    return {"shop_money": money, "presentment_money": money}


def _address(a: dict[str, Any] | None) -> dict[str, Any] | None:
    if not a:
        return a
    code = a.get("country_code")
    return {
        "first_name": None,
        "last_name": None,
        "name": None,
        "company": None,
        "address1": None,
        "address2": None,
        "city": None,
        "province": None,
        "province_code": None,
        "zip": None,
        "country": COUNTRIES.get(code or ""),
        "country_code": code,
        "phone": None,
        "latitude": None,
        "longitude": None,
        **a,
    }


def full_order(o: dict[str, Any]) -> dict[str, Any]:
    """``o`` with every REST order field Shopify documents (``o``'s own keys win)."""
    try:
        return _full(o)
    except (ArithmeticError, ValueError, KeyError, TypeError, AttributeError):
        return o  # a deliberately malformed order (adversarial tests) is served as stored


def _full(o: dict[str, Any]) -> dict[str, Any]:
    cur = o.get("currency") or "USD"
    ctx = OrderContext(o, None, cur)
    node = {"_ctx": ctx}
    txs = order_transactions(node)
    received = sum(
        (_dec(t["amountSet"]["shopMoney"]["amount"]) for t in txs if t["kind"] in ("SALE", "CAPTURE")), Decimal(0)
    )
    total = _dec(o.get("total_price"))
    outstanding = Decimal(0) if o.get("cancelled_at") else max(Decimal(0), total - received)
    lines = o.get("line_items") or []
    allocations = line_allocations(ctx) if lines else []
    taxes = line_tax_lines(ctx) if lines else []
    oid = o.get("id")
    full_lines = []
    for k, li in enumerate(lines):
        if not isinstance(li, dict):
            full_lines.append(li)
            continue
        full_lines.append(
            {
                "admin_graphql_api_id": f"gid://shopify/LineItem/{li.get('id')}",
                "attributed_staffs": [],
                "current_quantity": li.get("quantity"),
                "fulfillment_service": "manual",
                "gift_card": False,
                "grams": 0,
                "price_set": price_set(li.get("price"), cur),
                "product_exists": li.get("product_id") is not None,
                "taxable": True,
                "total_discount": "0.00",
                "total_discount_set": price_set("0.00", cur),
                "variant_inventory_management": "shopify",
                "variant_title": None,
                "vendor": None,
                "tax_lines": [
                    {
                        "title": t["title"],
                        "price": t["priceSet"]["shopMoney"]["amount"],
                        "rate": t["rate"],
                        "channel_liable": False,
                        "price_set": price_set(t["priceSet"]["shopMoney"]["amount"], cur),
                    }
                    for t in taxes[k]
                ],
                "duties": [],
                "discount_allocations": [
                    {
                        "amount": a["allocatedAmountSet"]["shopMoney"]["amount"],
                        "amount_set": price_set(a["allocatedAmountSet"]["shopMoney"]["amount"], cur),
                        "discount_application_index": a["discountApplication"]["index"],
                    }
                    for a in allocations[k]
                ],
                **li,
            }
        )
    codes = o.get("discount_codes") or []
    applications = [
        {
            "target_type": "line_item",
            "type": "discount_code",
            "value": str(_dec(c.get("amount")).quantize(CENT)),
            "value_type": "fixed_amount" if c.get("type") != "percentage" else "percentage",
            "allocation_method": "across",
            "target_selection": "all",
            "code": c.get("code"),
        }
        for c in codes
        if isinstance(c, dict)
    ]
    refunds = [
        {
            "id": int(r["legacyResourceId"]),
            "admin_graphql_api_id": r["id"],
            "order_id": oid,
            "created_at": o.get("updated_at"),
            "processed_at": o.get("updated_at"),
            "note": None,
            "restock": False,
            "user_id": None,
            "refund_line_items": [],
            "order_adjustments": [],
            "duties": [],
            "transactions": [
                {
                    "id": int(t["id"].rsplit("/", 1)[-1]),
                    "admin_graphql_api_id": t["id"],
                    "order_id": oid,
                    "kind": "refund",
                    "status": "success",
                    "gateway": "manual",
                    "amount": t["amountSet"]["shopMoney"]["amount"],
                    "currency": cur,
                    "created_at": o.get("updated_at"),
                    "processed_at": o.get("updated_at"),
                    "test": bool(o.get("test")),
                }
                for t in r["transactions"]
            ],
        }
        for r in order_refunds(node)
    ]
    shipping_total = sum(
        (_dec(s.get("price")) for s in o.get("shipping_lines") or [] if isinstance(s, dict)), Decimal(0)
    )
    derived: dict[str, Any] = {
        "admin_graphql_api_id": f"gid://shopify/Order/{oid}",
        "app_id": 580111,
        "browser_ip": None,
        "buyer_accepts_marketing": False,
        "cart_token": None,
        "checkout_id": None,
        "checkout_token": None,
        "client_details": None,
        "company": None,
        "confirmation_number": None,
        "confirmed": True,
        "contact_email": o.get("email"),
        "current_subtotal_price": o.get("subtotal_price"),
        "current_subtotal_price_set": price_set(o.get("subtotal_price"), cur),
        "current_total_additional_fees_set": None,
        "current_total_discounts": o.get("total_discounts"),
        "current_total_discounts_set": price_set(o.get("total_discounts"), cur),
        "current_total_duties_set": None,
        "current_total_price": o.get("total_price"),
        "current_total_price_set": price_set(o.get("total_price"), cur),
        "current_total_tax": o.get("total_tax"),
        "current_total_tax_set": price_set(o.get("total_tax"), cur),
        "customer_locale": None,
        "device_id": None,
        "discount_applications": applications,
        "duties_included": False,
        "estimated_taxes": False,
        "gateway": "manual" if txs else None,
        "landing_site": None,
        "landing_site_ref": None,
        "location_id": None,
        "merchant_of_record_app_id": None,
        "order_status_url": f"https://{SHOP_DOMAIN}/{oid}/orders/{(oid or 0):x}/authenticate",
        "original_total_additional_fees_set": None,
        "original_total_duties_set": None,
        "payment_gateway_names": ["manual"] if txs else [],
        "payment_terms": None,
        "phone": None,
        "po_number": None,
        "presentment_currency": cur,
        "reference": None,
        "referring_site": None,
        "refunds": refunds,
        "source_identifier": None,
        "source_name": "web",
        "source_url": None,
        "subtotal_price_set": price_set(o.get("subtotal_price"), cur),
        "tax_exempt": False,
        "taxes_included": False,
        "token": f"{(oid or 0):x}",
        "total_discounts_set": price_set(o.get("total_discounts"), cur),
        "total_line_items_price_set": price_set(o.get("total_line_items_price"), cur),
        "total_outstanding": str(outstanding.quantize(CENT)),
        "total_price_set": price_set(o.get("total_price"), cur),
        "total_shipping_price_set": price_set(str(shipping_total.quantize(CENT)), cur),
        "total_tax_set": price_set(o.get("total_tax"), cur),
        "total_tip_received": "0.00",
        "total_weight": 0,
        "user_id": None,
    }
    out = {**derived, **o}
    out["line_items"] = full_lines
    out["shipping_address"] = _address(o.get("shipping_address"))
    out["billing_address"] = _address(o.get("billing_address"))
    out["shipping_lines"] = [
        {
            "carrier_identifier": None,
            "discounted_price": s.get("price"),
            "discounted_price_set": price_set(s.get("price"), cur),
            "is_removed": False,
            "phone": None,
            "price_set": price_set(s.get("price"), cur),
            "requested_fulfillment_service_id": None,
            "delivery_category": None,
            "discount_allocations": [],
            "tax_lines": [],
            **s,
        }
        if isinstance(s, dict)
        else s
        for s in o.get("shipping_lines") or []
    ]
    return out
