"""REST-shaped edits of an order dict (the control routes' and tests' way to change the store).

Conveniences beyond REST: ``shipping_method`` (one shipping line with that code and title) and
``tags`` as a list. Line defaults are filled in, and totals recomputed when lines or shipping
change, unless given.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from orderbridge.sandboxes.shopify.generator import CENT, hash_sku


def apply_changes(order: dict[str, Any], changes: dict[str, Any]) -> None:
    """Apply REST-shaped changes to an order dict, filling line defaults and recomputing totals.

    Conveniences beyond REST: ``shipping_method`` (one shipping line with that code and title) and
    ``tags`` as a list. Totals are recomputed when lines or shipping change, unless given.
    """
    changes = dict(changes)
    recompute = False
    if "shipping_method" in changes:
        method = changes.pop("shipping_method")
        changes["shipping_lines"] = (
            []
            if method is None
            else [
                {
                    "id": order["id"] * 100 + 91,
                    "title": method,
                    "code": method,
                    "price": "5.00",
                    "source": "shopify",
                }
            ]
        )
    if isinstance(changes.get("tags"), list | tuple):
        changes["tags"] = ", ".join(changes["tags"])
    if "line_items" in changes:
        changes["line_items"] = [line_defaults(order["id"], k, li) for k, li in enumerate(changes["line_items"])]
        recompute = True
    if "shipping_lines" in changes:
        recompute = True
    if changes.get("fulfillment_status") == "fulfilled":
        for li in changes.get("line_items", order.get("line_items", [])):
            li["fulfillable_quantity"], li["fulfillment_status"] = 0, "fulfilled"
    order.update(changes)
    if recompute:
        recompute_totals(order, explicit=set(changes))


def line_defaults(order_id: int, k: int, given: dict[str, Any]) -> dict[str, Any]:
    line_id = given.get("id") or order_id * 100 + k + 1
    sku = given.get("sku")
    variant = given.get("variant_id", 40_000_000_000 + hash_sku(sku) % 1_000_000)
    qty = int(given.get("quantity", 1))
    title = given.get("title") or (sku or "Custom item")
    line = {
        "id": line_id,
        "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
        "sku": sku,
        "variant_id": variant,
        "product_id": given.get("product_id", 8_000_000_000 + (variant or 0) % 100_000),
        "quantity": qty,
        "fulfillable_quantity": qty,
        "price": str(given.get("price", "10.00")),
        "title": title,
        "name": given.get("name", title),
        "fulfillment_status": None,
        "requires_shipping": True,
        "properties": [],
    }
    line.update({k: v for k, v in given.items() if k not in ("id",)})
    return line


def recompute_totals(order: dict[str, Any], explicit: set[str]) -> None:
    try:
        items = sum((Decimal(str(li["price"])) * int(li["quantity"]) for li in order["line_items"]), Decimal(0))
        discount = Decimal(str(order.get("total_discounts") or "0"))
        shipping = sum((Decimal(str(s.get("price") or 0)) for s in order.get("shipping_lines", [])), Decimal(0))
        rate = Decimal(str((order.get("tax_lines") or [{}])[0].get("rate", 0)))
        tax = ((items - discount) * rate).quantize(CENT)
        values = {
            "total_line_items_price": items,
            "subtotal_price": items - discount,
            "total_tax": tax,
            "total_price": items - discount + shipping + tax,
        }
        # an amount too large to round to cents (a price of 1e308) is as malformed as one in words
        rounded = {key: str(value.quantize(CENT)) for key, value in values.items() if key not in explicit}
    except (ArithmeticError, ValueError, KeyError, TypeError):
        return  # deliberately malformed orders keep what the caller gave
    order.update(rounded)
    if "tax_lines" not in explicit and order.get("tax_lines"):
        order["tax_lines"][0]["price"] = order["total_tax"]
