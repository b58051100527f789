"""REST order dict → GraphQL ``Order`` node dict (the data the compact executor projects).

One source of truth per order (the REST dict from :mod:`.generator`, or its overlay once changed);
the GraphQL view is derived from it so REST and GraphQL always agree. Expensive and rarely asked
parts (fulfillment orders, fulfillments, transactions, refunds, discount allocations, line tax
lines) are callables the projector evaluates only when selected, over an :class:`OrderContext`
that every node of one order shares (it holds the seed or the REST dict, never a node, so no
reference cycle keeps a node alive). What :mod:`.model` answers beyond these keys is computed
from them by its rules.

Rules of the generated money (documented in docs/connectors/shopify.md): payments go through the
``manual`` gateway, one transaction per step — ``pending``: none; ``authorized``: an
AUTHORIZATION of the total; ``partially_paid``: a SALE of half the total; ``paid``: a SALE of the
total; ``partially_refunded``: that SALE and a REFUND of half the total; ``refunded``: the SALE
and a REFUND of the total; ``voided``: the AUTHORIZATION and a VOID. Each REFUND is one
``Refund`` (money back, no refunded lines). A discount code is one ``DiscountCodeApplication``
allocated across the lines in proportion to their totals (the last line takes the rounding
remainder, so the allocations add up to ``total_discounts``); the order's tax lines are spread
over the lines the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from orderbridge.sandboxes.shopify.generator import CENT, OrderSeed, expand

COUNTRIES = {
    "US": "United States",
    "CA": "Canada",
    "GB": "United Kingdom",
    "DE": "Germany",
    "FR": "France",
    "NL": "Netherlands",
    "IE": "Ireland",
    "ES": "Spain",
    "IT": "Italy",
    "AU": "Australia",
    "JP": "Japan",
    "CH": "Switzerland",
    "SE": "Sweden",
    "NZ": "New Zealand",
}


class OrderContext:
    """What every node of one order shares: the way back to its REST dict, and lazily built parts."""

    __slots__ = ("cache", "currency", "rest", "seed")

    def __init__(self, rest: dict[str, Any] | None, seed: OrderSeed | None, currency: str) -> None:
        self.rest = rest
        self.seed = seed
        self.currency = currency
        self.cache: dict[str, Any] = {}

    def order(self) -> dict[str, Any]:
        if self.rest is not None:
            return self.rest
        assert self.seed is not None
        return expand(self.seed)


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


def _address(a: dict[str, Any] | None, address_id: str) -> dict[str, Any] | None:
    if not a:
        return None
    return {
        "id": address_id,
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
        "country": a.get("country") or COUNTRIES.get(a.get("country_code") or ""),
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


def fulfillment_node(
    f: dict[str, Any],
    line_nodes: dict[int, dict[str, Any]] | None = None,
    ctx: OrderContext | None = None,
) -> dict[str, Any]:
    """A REST fulfillment as a GraphQL ``Fulfillment``; ``line_nodes`` (the order's ``LineItem`` nodes by
    id) resolves each fulfilled line's ``lineItem`` — without them only its id is known."""
    by_id = line_nodes or {}
    numbers = f.get("tracking_numbers") or ([f["tracking_number"]] if f.get("tracking_number") else [])
    urls = f.get("tracking_urls") or ([f["tracking_url"]] if f.get("tracking_url") else [])
    cur = ctx.currency if ctx is not None else "USD"
    items = []
    for k, li in enumerate(f.get("line_items") or []):
        line = by_id.get(li["id"]) or {"id": f"gid://shopify/LineItem/{li['id']}"}
        price = ((line.get("originalUnitPriceSet") or {}).get("shopMoney") or {}).get("amount") or "0.00"
        total = (Decimal(str(price)) * int(li.get("quantity") or 0)).quantize(CENT)
        items.append(
            {
                "id": f"gid://shopify/FulfillmentLineItem/{f['id'] * 100 + k}",
                "quantity": li.get("quantity"),
                "lineItem": line,
                "originalTotalSet": money_bag(str(total), cur),
            }
        )
    order_id = f.get("order_id")
    name = f.get("name")
    if name is None and ctx is not None:
        position = next((i for i, g in enumerate(ctx.order().get("fulfillments") or []) if g.get("id") == f["id"]), 0)
        name = f"{ctx.order().get('name')}.{position + 1}"
    return {
        "id": f"gid://shopify/Fulfillment/{f['id']}",
        "legacyResourceId": str(f["id"]),
        "name": name or f"#{order_id}.1",
        "status": str(f.get("status", "success")).upper(),
        "createdAt": utc_iso(f.get("created_at")),
        "updatedAt": utc_iso(f.get("updated_at") or f.get("created_at")),
        "trackingInfo": [
            {"number": n, "company": f.get("tracking_company"), "url": urls[i] if i < len(urls) else None}
            for i, n in enumerate(numbers)
        ],
        "fulfillmentLineItems": items,
        "fulfillmentOrders": (lambda _a: fulfillment_orders_of(ctx)) if ctx is not None else [],
        "order": (lambda _a: order_node(ctx.order(), ctx.seed)) if ctx is not None else None,
        "_cur": cur,
    }


def fulfillment_orders_of(ctx: OrderContext) -> list[dict[str, Any]]:
    """The order's one fulfilment order (the sandbox's store ships from one location)."""
    return order_node(ctx.order(), ctx.seed)["fulfillmentOrders"]({})  # type: ignore[no-any-return]


def order_node(o: dict[str, Any], seed: OrderSeed | None = None) -> dict[str, Any]:
    """The GraphQL ``Order`` node of the REST order ``o``; ``seed`` (when ``o`` was expanded from it
    and not changed since) lets the rarely selected parts re-expand the order instead of keeping ``o``
    alive with the node."""
    cur = o.get("currency") or "USD"
    oid = o["id"]
    ctx = OrderContext(o if seed is None or seed.overlay is not None else None, seed, cur)
    line_nodes = []
    for k, li in enumerate(o.get("line_items", [])):
        variant_id = li.get("variant_id")
        product_id = li.get("product_id")
        line_nodes.append(
            {
                "id": f"gid://shopify/LineItem/{li['id']}",
                "sku": li.get("sku"),
                "name": li.get("name") or li.get("title"),
                "title": li.get("title"),
                "variantTitle": li.get("variant_title"),
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
                # discountAllocations and taxLines: model rules over the order context (line k)
                "_fulfillment_status": li.get("fulfillment_status"),
                "_ctx": ctx,
                "_k": k,
                "_cur": cur,
            }
        )
    by_line = {n["id"]: n for n in line_nodes}
    shipping_total = sum((Decimal(str(s.get("price") or 0)) for s in o.get("shipping_lines", [])), Decimal(0))
    tags = o.get("tags") or ""
    customer = o.get("customer")
    gid = f"gid://shopify/Order/{oid}"
    created, updated = utc_iso(o.get("created_at")), utc_iso(o.get("updated_at"))
    processed = utc_iso(o.get("processed_at") or o.get("created_at"))
    shipping = _address(o.get("shipping_address"), f"gid://shopify/MailingAddress/{oid}1?model_name=Address")
    billing = _address(o.get("billing_address"), f"gid://shopify/MailingAddress/{oid}2?model_name=Address")

    def fulfillments(_: Any) -> list[dict[str, Any]]:
        lines = {int(n["id"].rsplit("/", 1)[-1]): n for n in line_nodes}
        return [fulfillment_node(f, lines, ctx) for f in o.get("fulfillments", [])]

    def fulfillment_orders(_: Any) -> list[dict[str, Any]]:
        lines = fulfillment_order_lines(o)
        for line in lines:
            node = by_line.get(f"gid://shopify/LineItem/{line['line_item_id']}") or {}
            line["lineItem"] = node or None
            line["originalUnitPriceSet"] = node.get("originalUnitPriceSet")
            line["productTitle"] = node.get("title")
            line["requiresShipping"] = node.get("requiresShipping", True)
            line["sku"] = node.get("sku")
            line["variant"] = node.get("variant")
            line["variantTitle"] = node.get("variantTitle")
        return [
            {
                "id": f"gid://shopify/FulfillmentOrder/{oid}",
                "status": fulfillment_order_status(o),
                "lineItems": lines,
                "createdAt": created,
                "updatedAt": updated,
                "orderId": gid,
                "orderName": o.get("name"),
                "orderProcessedAt": processed,
                "order": lambda _a: order_node(ctx.order(), ctx.seed),
                "fulfillments": fulfillments,
            }
        ]

    return {
        "id": gid,
        "legacyResourceId": str(oid),
        "name": o.get("name"),
        "email": o.get("email"),
        "createdAt": created,
        "updatedAt": updated,
        "processedAt": processed,
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
        "shippingAddress": shipping,
        "billingAddress": billing,
        "customer": (
            {
                "id": f"gid://shopify/Customer/{customer['id']}",
                "legacyResourceId": str(customer["id"]),
                "email": customer.get("email"),
                "firstName": customer.get("first_name"),
                "lastName": customer.get("last_name"),
                "displayName": f"{customer.get('first_name') or ''} {customer.get('last_name') or ''}".strip(),
                "createdAt": created,
                "updatedAt": updated,
                "_address": shipping or billing,
                "_cur": cur,
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
                "_cur": cur,
            }
            for s in o.get("shipping_lines") or []
        ],
        "lineItems": line_nodes,
        "fulfillmentOrders": fulfillment_orders,
        "fulfillments": fulfillments,
        "_ctx": ctx,
        "_cur": cur,
    }


# --- the rarely selected parts, built once per order context ----------------------------------------


def line_discount_allocations(line: dict[str, Any]) -> list[dict[str, Any]]:
    """A line node's discount allocations (its share of each discount code)."""
    ctx: OrderContext | None = line.get("_ctx")
    return [] if ctx is None else line_allocations(ctx)[line["_k"]]


def line_taxes(line: dict[str, Any]) -> list[dict[str, Any]]:
    """A line node's tax lines (its share of each of the order's)."""
    ctx: OrderContext | None = line.get("_ctx")
    return [] if ctx is None else line_tax_lines(ctx)[line["_k"]]


def rest_order(node: dict[str, Any]) -> dict[str, Any]:
    """The REST order a node was built from (re-expanded from its seed when needed)."""
    ctx: OrderContext | None = node.get("_ctx")
    return ctx.order() if ctx is not None else {}


def _cached(ctx: OrderContext, key: str, build: Any) -> Any:
    found = ctx.cache.get(key)
    if found is None:
        found = ctx.cache[key] = build()
    return found


def _d(value: Any) -> Decimal:
    try:
        return Decimal(str(value if value is not None else "0"))
    except ArithmeticError:
        return Decimal(0)


def _spread(total: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """``total`` split in proportion to ``weights`` in cents; the last share takes the remainder."""
    whole = sum(weights, Decimal(0))
    if not weights:
        return []
    if whole == 0:
        return [Decimal(0)] * (len(weights) - 1) + [total]
    shares = [(total * w / whole).quantize(CENT) for w in weights[:-1]]
    return [*shares, total - sum(shares, Decimal(0))]


def discount_applications(node: dict[str, Any]) -> list[dict[str, Any]]:
    ctx: OrderContext = node["_ctx"]
    return _cached(ctx, "apps", lambda: _applications(ctx))  # type: ignore[no-any-return]


def _applications(ctx: OrderContext) -> list[dict[str, Any]]:
    o = ctx.order()
    lines_total = sum(
        (_d(li.get("price")) * int(li.get("quantity") or 0) for li in o.get("line_items") or []), Decimal(0)
    )
    out = []
    for index, code in enumerate(o.get("discount_codes") or []):
        amount = _d(code.get("amount"))
        if code.get("type") == "percentage" and lines_total > 0:
            value: dict[str, Any] = {
                "__typename": "PricingPercentageValue",
                "percentage": float((amount * 100 / lines_total).quantize(CENT)),
            }
        else:
            value = {"__typename": "MoneyV2", "amount": str(amount.quantize(CENT)), "currencyCode": ctx.currency}
        out.append(
            {
                "__typename": "DiscountCodeApplication",
                "code": code.get("code"),
                "index": index,
                "allocationMethod": "ACROSS",
                "targetSelection": "ALL",
                "targetType": "LINE_ITEM",
                "value": value,
                "_amount": amount,
            }
        )
    return out


def line_allocations(ctx: OrderContext) -> list[list[dict[str, Any]]]:
    """Per line (in order), its discount allocations: each code's amount spread over the lines."""

    def build() -> list[list[dict[str, Any]]]:
        o = ctx.order()
        lines = o.get("line_items") or []
        weights = [_d(li.get("price")) * int(li.get("quantity") or 0) for li in lines]
        out: list[list[dict[str, Any]]] = [[] for _ in lines]
        for app in _cached(ctx, "apps", lambda: _applications(ctx)):
            for k, share in enumerate(_spread(app["_amount"], weights)):
                bag = money_bag(str(share.quantize(CENT)), ctx.currency)
                out[k].append(
                    {"allocatedAmountSet": bag, "allocatedAmount": bag["shopMoney"], "discountApplication": app}
                )
        return out

    return _cached(ctx, "alloc", build)  # type: ignore[no-any-return]


def line_tax_lines(ctx: OrderContext) -> list[list[dict[str, Any]]]:
    """Per line, its share of each of the order's tax lines (by discounted line total)."""

    def build() -> list[list[dict[str, Any]]]:
        o = ctx.order()
        lines = o.get("line_items") or []
        allocations = line_allocations(ctx)
        weights = [
            _d(li.get("price")) * int(li.get("quantity") or 0)
            - sum((_d(a["allocatedAmountSet"]["shopMoney"]["amount"]) for a in allocations[k]), Decimal(0))
            for k, li in enumerate(lines)
        ]
        out: list[list[dict[str, Any]]] = [[] for _ in lines]
        for t in o.get("tax_lines") or []:
            for k, share in enumerate(_spread(_d(t.get("price")), weights)):
                out[k].append(
                    {
                        "title": t.get("title"),
                        "rate": t.get("rate"),
                        "ratePercentage": (t.get("rate") or 0) * 100,
                        "priceSet": money_bag(str(share.quantize(CENT)), ctx.currency),
                    }
                )
        return out

    return _cached(ctx, "taxes", build)  # type: ignore[no-any-return]


_TRANSACTIONS = {
    "authorized": (("AUTHORIZATION", 1),),
    "partially_paid": (("SALE", 2),),
    "paid": (("SALE", 1),),
    "partially_refunded": (("SALE", 1), ("REFUND", 2)),
    "refunded": (("SALE", 1), ("REFUND", 1)),
    "voided": (("AUTHORIZATION", 1), ("VOID", 1)),
}


def order_transactions(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The order's ``OrderTransaction`` nodes by the module's rules (the divisor: 1 = the total, 2 = half)."""
    ctx: OrderContext = node["_ctx"]

    def build() -> list[dict[str, Any]]:
        o = ctx.order()
        # a hostile store's order may have no id (or not a number): its transactions still get ids
        oid = o["id"] if isinstance(o["id"], int) and not isinstance(o["id"], bool) else 0
        total = _d(o.get("total_price"))
        out: list[dict[str, Any]] = []
        parent: dict[str, Any] | None = None
        for k, (kind, divisor) in enumerate(_TRANSACTIONS.get(str(o.get("financial_status")), ())):
            at = o.get("processed_at") or o.get("created_at") if k == 0 else o.get("updated_at")
            amount = (total / divisor).quantize(CENT)
            tx = {
                "id": f"gid://shopify/OrderTransaction/{oid * 10 + k + 1}",
                "kind": kind,
                "status": "SUCCESS",
                "amountSet": money_bag(str(amount), ctx.currency),
                "createdAt": utc_iso(at),
                "processedAt": utc_iso(at),
                "paymentId": f"{o.get('name')}.{k + 1}",
                "test": bool(o.get("test")),
                "parentTransaction": parent if kind in ("CAPTURE", "REFUND", "VOID") else None,
                "order": lambda _a: order_node(ctx.order(), ctx.seed),
                "_capturable": kind == "AUTHORIZATION" and str(o.get("financial_status")) == "authorized",
                "_cur": ctx.currency,
            }
            out.append(tx)
            if kind in ("SALE", "AUTHORIZATION"):
                parent = tx
        return out

    return _cached(ctx, "txs", build)  # type: ignore[no-any-return]


def order_refunds(node: dict[str, Any]) -> list[dict[str, Any]]:
    """One ``Refund`` per REFUND transaction: the money back, with that transaction."""
    ctx: OrderContext = node["_ctx"]

    def build() -> list[dict[str, Any]]:
        o = ctx.order()
        out = []
        for k, tx in enumerate(t for t in order_transactions(node) if t["kind"] == "REFUND"):
            refund_id = o["id"] * 10 + 5 + k
            out.append(
                {
                    "id": f"gid://shopify/Refund/{refund_id}",
                    "legacyResourceId": str(refund_id),
                    "createdAt": tx["createdAt"],
                    "processedAt": tx["processedAt"],
                    "updatedAt": tx["processedAt"],
                    "totalRefundedSet": tx["amountSet"],
                    "transactions": [tx],
                    "order": tx["order"],
                    "_cur": ctx.currency,
                }
            )
        return out

    return _cached(ctx, "refunds", build)  # type: ignore[no-any-return]
