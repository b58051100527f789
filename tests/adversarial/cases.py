"""The hand-written hostile orders, as a careless or hostile Shopify store would hold them.

Each :class:`StoreCase` is placed in the Shopify sandbox (``add_order`` with REST-shaped overrides,
then an optional edit), so the same value reaches the hub by every road a store's data takes:
GraphQL pages, the bulk export and the REST webhook body. Each names the one outcome it expects
(:mod:`tests.adversarial.harness`), and where the roads differ by design — the webhook receiver's
JSON gate refuses what a GraphQL page can only carry as a value — the webhook's own expectation.

The list covers every failure issue #10 names, then goes on: sizes (UTF-16 units as ShipStation
counts them, characters as the ledger does), encodings and unicode (combining marks, astral
characters, bidi and zero-width controls), control characters and terminal escapes, HTML and Rich
markup, SQL-looking text, ids, wrong types, extreme numbers, unknown enums, line counts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orderbridge.sandboxes.shopify.state import ShopifyState
from tests.adversarial.harness import Expect, held, posted, refused, skipped

LINE = {"sku": "TEE-BLK-M", "quantity": 2, "price": "24.00"}
CAP = {"sku": "CAP-NVY", "quantity": 1, "price": "19.50"}

Edit = Callable[[ShopifyState, dict[str, Any]], None]


@dataclass(frozen=True)
class StoreCase:
    name: str
    overrides: dict[str, Any]
    expect: Expect
    #: what the webhook road answers when it differs on purpose (the JSON gate), else ``expect``
    webhook: Expect | None = None
    #: run after ``add_order`` (partial fulfilments, edits the REST overrides cannot express)
    then: Edit | None = None
    #: hostile SKUs the operator has mapped (to a clean destination SKU) before the sync
    maps: tuple[str, ...] = ()
    #: what the 3PL's document must hold (SKU sent → quantity), when that is the point of the case
    items: dict[str, int] | None = None


def _with_lines(**line: Any) -> dict[str, Any]:
    return {"line_items": [LINE, {**CAP, **line}]}


def _named(name: str) -> dict[str, Any]:
    return {"name": name, "line_items": [LINE]}


def _address(**fields: Any) -> Edit:
    def edit(shop: ShopifyState, order: dict[str, Any]) -> None:
        shop.update_order(order["id"], shipping_address={**order["shipping_address"], **fields})

    return edit


def _fulfil(quantities: list[int]) -> Edit:
    """Fulfil the first lines in Shopify (before the hub sees the order): ``quantities[k]`` of line k."""

    def edit(shop: ShopifyState, order: dict[str, Any]) -> None:
        items = [
            {"id": f"gid://shopify/FulfillmentOrderLineItem/{li['id']}", "quantity": q}
            for li, q in zip(order["line_items"], quantities, strict=False)
            if q
        ]
        group = {
            "fulfillmentOrderId": f"gid://shopify/FulfillmentOrder/{order['id']}",
            "fulfillmentOrderLineItems": items,
        }
        made, errors = shop.create_fulfillment([group], {"number": "1ZPRIOR", "company": "UPS"})
        assert made is not None, errors

    return edit


def _overlay(change: Callable[[dict[str, Any]], None]) -> Edit:
    """Change the stored order in ways the REST overrides normalise away (a line's id)."""

    def edit(shop: ShopifyState, order: dict[str, Any]) -> None:
        with shop.lock:
            seed = shop.orders[order["id"]]
            assert seed.overlay is not None
            change(seed.overlay)
            shop._reindex(seed, seed.created, seed.updated)  # drop the cached REST, node and bulk forms

    return edit


def _duplicate_line_id(order: dict[str, Any]) -> None:
    order["line_items"][1]["id"] = order["line_items"][0]["id"]
    order["line_items"][1]["admin_graphql_api_id"] = order["line_items"][0]["admin_graphql_api_id"]


def _no_shipping_id(order: dict[str, Any]) -> None:
    order["shipping_lines"][0]["id"] = None


ASTRAL_50 = "#" + "🦄" * 24 + "x"  # 50 UTF-16 units: ShipStation's limit exactly
ASTRAL_51 = "#" + "🦄" * 25  # 26 characters, 51 UTF-16 units
ZALGO = "#Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇"
MARKUP_SKU = "[link=https://evil.example]SKU[/link]"
ESCAPE_SKU = "SKU\x1b]0;owned\x07\x1b[2J"
MAPPED_HTML_SKU = "<b>SKU</b>'; DROP TABLE mappings; --"
MAPPED_UNICODE_SKU = "ŞKÜ-ñ-日本-🦄-\u202e"

STORE_CASES: tuple[StoreCase, ...] = (
    # --- order names: every hostile text that fits is posted as is ---
    StoreCase("name with a script tag", _named("#<script>alert(1)</script>"), posted()),
    StoreCase("name with an img onerror", _named('#"><img src=x onerror=alert(1)>'), posted()),
    StoreCase("name with Rich link markup", _named("#[link=https://evil.example]x[/link]"), posted()),
    StoreCase("name with Rich style markup", _named("#[bold red]X[/] [/]"), posted()),
    StoreCase("name that clears the screen", _named("#1\x1b[2J\x1b[H"), posted()),
    StoreCase("name that sets the window title", _named("#1\x1b]0;pwned\x07"), posted()),
    StoreCase("name with an OSC 8 hyperlink", _named("#\x1b]8;;http://e\x1b\\x\x1b]8;;\x1b\\"), posted()),
    StoreCase("name with C1 controls", _named("#1\x9b2J\x85\x90"), posted()),
    StoreCase("name with BEL and DEL", _named("#1\x07\x7f"), posted()),
    StoreCase("name with a right-to-left override", _named("#\u202e1001\u202c"), posted()),
    StoreCase("name with bidi isolates", _named("#\u2066abc\u2069\u2067"), posted()),
    StoreCase("name with zero-width characters", _named("#10\u200b01\u200d\ufeff\u2060"), posted()),
    StoreCase("name with combining marks", _named(ZALGO), posted()),
    StoreCase("name with astral characters", _named("#🦄🏳️‍🌈𝕳𝖊𝖑𝖑𝖔"), posted()),
    StoreCase("name of exactly 50 UTF-16 units", _named(ASTRAL_50), posted()),
    StoreCase("name in CJK", _named("#日本語の注文"), posted()),
    StoreCase("name that looks like SQL", _named("#1'; DROP TABLE orders; --"), posted()),
    StoreCase("name that looks like a SQL tautology", _named('#1" OR 1=1 /*'), posted()),
    StoreCase("name with format strings", _named("#%00%0d%0a%s%n{0}${x}"), posted()),
    StoreCase("name with CR LF and tab", _named("#10\r\n01\tX"), posted()),
    StoreCase("name with escaped-looking text", _named("#\\u0000\\x1b\\n"), posted()),
    StoreCase("name of one space", _named(" "), held("destination_rejected", "orderNumber")),
    StoreCase("empty name", _named(""), held("destination_rejected", "orderNumber")),
    # --- order names the 3PL or the ledger cannot take ---
    StoreCase(
        "name of 301 characters (the corpus case)",
        _named("#" + "N" * 300),
        held("destination_field_too_long", "orderNumber"),
    ),
    StoreCase(
        "name of 51 UTF-16 units in 26 characters", _named(ASTRAL_51), held("destination_field_too_long", "orderNumber")
    ),
    StoreCase("name over 500 characters", _named("#" + "x" * 600), held("value_too_long", "number")),
    StoreCase("name with a NUL character", _named("#10\x0001"), held("invalid_text", "number")),
    # --- SKUs ---
    StoreCase("unmapped SKU with link markup", _with_lines(sku=MARKUP_SKU), held("sku_unmapped", MARKUP_SKU)),
    StoreCase("unmapped SKU with escape sequences", _with_lines(sku=ESCAPE_SKU), held("sku_unmapped", ESCAPE_SKU)),
    StoreCase(
        "mapped SKU with HTML and SQL",
        _with_lines(sku=MAPPED_HTML_SKU),
        posted(),
        maps=(MAPPED_HTML_SKU,),
        items={"TEE-BLK-M": 2, "W-MAPPED": 1},
    ),
    StoreCase("mapped SKU in many scripts", _with_lines(sku=MAPPED_UNICODE_SKU), posted(), maps=(MAPPED_UNICODE_SKU,)),
    StoreCase("SKU of 301 characters", _with_lines(sku="S" * 301), held("value_too_long", "lines.sku")),
    StoreCase("SKU with a NUL character", _with_lines(sku="CAP\x00NVY"), held("invalid_text", "lines.sku")),
    StoreCase("line without a SKU", _with_lines(sku=None), held("sku_missing")),
    StoreCase("line with an empty SKU", _with_lines(sku=""), held("sku_missing")),
    # --- quantities ---
    StoreCase("quantity 0", _with_lines(quantity=0), held("invalid_quantity")),
    StoreCase("negative quantity", _with_lines(quantity=-3), held("invalid_quantity")),
    StoreCase("quantity of ten million", _with_lines(quantity=10_000_000), held("invalid_quantity")),
    StoreCase(
        "quantity of 2^63", _with_lines(quantity=2**63), held("invalid_quantity"), webhook=refused(422, "64 bits")
    ),
    StoreCase("quantity of a million (the limit)", _with_lines(quantity=1_000_000), posted()),
    # --- prices and totals ---
    StoreCase(
        "negative unit price (a refund as a line)", _with_lines(price="-19.50"), held("invalid_amount", "unit price")
    ),
    StoreCase("free line", _with_lines(price="0.00"), posted()),
    StoreCase("price with six decimals", _with_lines(price="19.123456"), posted()),
    StoreCase("price with nine decimals", _with_lines(price="19.123456789"), held("invalid_amount", "unit price")),
    StoreCase("price of 1e308", _with_lines(price="1e308"), held("invalid_amount", "unit price")),
    StoreCase("price of 2^63", _with_lines(price=str(2**63)), held("invalid_amount", "unit price")),
    StoreCase("price NaN", _with_lines(price="NaN"), held("invalid_order")),
    StoreCase("price Infinity", _with_lines(price="Infinity"), held("invalid_order")),
    StoreCase("price in words", _with_lines(price="ten dollars"), held("invalid_order")),
    StoreCase(
        "total far below the subtotal",
        {"line_items": [LINE], "total_price": "0.01"},
        held("totals_inconsistent", "total"),
    ),
    StoreCase(
        "subtotal above the lines",
        {"line_items": [LINE], "subtotal_price": "900.00", "total_price": "905.00"},
        held("totals_inconsistent", "subtotal"),
    ),
    # --- statuses and rules ---
    StoreCase(
        "unknown financial status",
        {"line_items": [LINE], "financial_status": "under_review"},
        held("unknown_status", "financial_status=under_review"),
    ),
    StoreCase(
        "financial status with an escape",
        {"line_items": [LINE], "financial_status": "\x1b[31mpaid"},
        held("unknown_status", "financial_status"),
    ),
    StoreCase(
        "pending payment",
        {"line_items": [LINE], "financial_status": "pending"},
        skipped("financial_status_not_downloaded"),
    ),
    StoreCase(
        "refunded", {"line_items": [LINE], "financial_status": "refunded"}, skipped("financial_status_not_downloaded")
    ),
    StoreCase(
        "voided", {"line_items": [LINE], "financial_status": "voided"}, skipped("financial_status_not_downloaded")
    ),
    StoreCase(
        "unknown fulfilment status",
        {"line_items": [LINE], "fulfillment_status": "teleported"},
        held("unknown_status", "fulfillment_status=teleported"),
    ),
    StoreCase("test order", {"line_items": [LINE], "test": True}, skipped("test_order")),
    StoreCase(
        "test order with quantity 0 and a long name",
        {"name": "#" + "T" * 300, "line_items": [{**LINE, "quantity": 0}], "test": True},
        skipped("test_order"),
    ),
    StoreCase(
        "cancelled order",
        {"line_items": [LINE], "cancelled_at": "2026-01-01T00:00:00Z", "cancel_reason": "customer"},
        skipped("cancelled_order"),
    ),
    StoreCase(
        "cancelled order with a negative price",
        {"line_items": [{**LINE, "price": "-5.00"}], "cancelled_at": "2026-01-01T00:00:00Z", "cancel_reason": "fraud"},
        skipped("cancelled_order"),
    ),
    StoreCase("closed order", {"line_items": [LINE], "closed_at": "2026-01-01T00:00:00Z"}, skipped("closed_order")),
    # --- ids and lines ---
    StoreCase("order without an id", {"line_items": [LINE], "id": None}, refused(), webhook=refused(400)),
    StoreCase(
        "two lines with one id",
        {"line_items": [LINE, CAP]},
        held("invalid_order", "lines.external_id"),
        then=_overlay(_duplicate_line_id),
    ),
    StoreCase("shipping line without an id", {"line_items": [LINE]}, posted(), then=_overlay(_no_shipping_id)),
    StoreCase(
        "test order whose shipping line has no id",
        {"line_items": [LINE], "test": True},
        skipped("test_order"),
        then=_overlay(_no_shipping_id),
    ),
    StoreCase("order without lines", {"line_items": []}, held("invalid_order")),
    StoreCase("order of 200 lines", {"line_items": [LINE] * 200}, posted()),
    StoreCase("order of 1,001 lines", {"line_items": [CAP] * 1001}, held("too_many_values", "lines")),
    # --- partly fulfilled in Shopify before the hub saw it: only what is left is posted ---
    StoreCase(
        "first line partly fulfilled",
        {"line_items": [{**LINE, "quantity": 3}, CAP]},
        posted(),
        then=_fulfil([2]),
        items={"TEE-BLK-M": 1, "CAP-NVY": 1},
    ),
    StoreCase(
        "first line wholly fulfilled",
        {"line_items": [{**LINE, "quantity": 3}, CAP]},
        posted(),
        then=_fulfil([3]),
        items={"CAP-NVY": 1},
    ),
    StoreCase(
        "every line fulfilled",
        {"line_items": [LINE, CAP]},
        skipped("fulfillment_status_not_downloaded"),
        then=_fulfil([2, 1]),
    ),
    # --- shipping, customer, address, free text ---
    StoreCase(
        "shipping title with markup and escapes",
        {"line_items": [LINE], "shipping_method": "[link=x]Ship\x1b[2J"},
        posted(),
    ),
    StoreCase("no shipping line (the default mapping)", {"line_items": [LINE], "shipping_method": None}, posted()),
    StoreCase(
        "shipping code of 301 characters",
        {"line_items": [LINE], "shipping_method": "C" * 301},
        held("value_too_long", "shipping_lines.code"),
    ),
    StoreCase("e-mail with a script tag", {"line_items": [LINE], "email": "<script>@evil.example"}, posted()),
    StoreCase(
        "e-mail of 400 characters",
        {"line_items": [LINE], "email": "e" * 390 + "@x.example"},
        held("value_too_long", "email"),
    ),
    StoreCase("note of 5,000 characters", {"line_items": [LINE], "note": "n" * 5000}, posted()),
    StoreCase(
        "note of 20,000 characters", {"line_items": [LINE], "note": "n" * 20_000}, held("value_too_long", "note")
    ),
    StoreCase(
        "note with every hostile text",
        {"line_items": [LINE], "note": "<script>x</script>[link=y]z[/link]\x1b[2J\u202e"},
        posted(),
    ),
    StoreCase(
        "300 tags", {"line_items": [LINE], "tags": [f"t{i}" for i in range(300)]}, held("too_many_values", "tags")
    ),
    StoreCase(
        "a tag of 300 characters", {"line_items": [LINE], "tags": ["vip", "t" * 300]}, held("value_too_long", "tags")
    ),
    StoreCase(
        "street of 150 characters",
        {"line_items": [LINE]},
        held("destination_field_too_long", "shipTo.street1"),
        then=_address(address1="S" * 150),
    ),
    StoreCase(
        "country of three letters",
        {"line_items": [LINE]},
        held("destination_field_too_long", "shipTo.country"),
        then=_address(country_code="USA"),
    ),
    StoreCase("recipient name of 150 characters", {"line_items": [LINE]}, posted(), then=_address(name="R" * 150)),
    StoreCase(
        "street with a NUL character",
        {"line_items": [LINE]},
        held("invalid_text", "shipping_address"),
        then=_address(address1="1 Main\x00St"),
    ),
    StoreCase(
        "address with markup and bidi",
        {"line_items": [LINE]},
        posted(),
        then=_address(address1="[b]1[/b] \u202eMain", city="<i>Town</i>"),
    ),
    StoreCase("unknown currency", {"line_items": [LINE], "currency": "ZZZ"}, posted()),
)
