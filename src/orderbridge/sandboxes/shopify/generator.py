"""A deterministic, realistic Shopify store: compact order seeds expanded into REST-shaped dicts.

Why two steps: a benchmark store holds 100,000 orders. Holding each as a full REST dict (nested
line items, addresses, customer …) costs ~5 KB of Python objects per order; an :class:`OrderSeed`
(a ``__slots__`` record of ints, short strings and references into the shared catalog) costs a few
hundred bytes and is generated at several hundred thousand per second. :func:`expand` turns a seed
into the Shopify REST ``order`` dict deterministically (everything it needs is on the seed), so the
sandbox expands orders only when it serves them and keeps a full dict only for orders that were
changed after generation (``seed.overlay``).

``realistic=True`` mixes what a real store sends (payment and fulfilment states, test, closed and
cancelled orders, SKUs a 3PL has not mapped, rare shipping methods, several currencies, a line with
no SKU); ``realistic=False`` makes every order paid, unfulfilled, mapped and shipped "Standard",
for benchmarks.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Any

#: (sku, title, unit price) of the products a 3PL stocks (the demo maps every one of them)
CATALOG: list[tuple[str, str, str]] = [
    ("TEE-BLK-S", "Classic Tee - Black / S", "24.00"),
    ("TEE-BLK-M", "Classic Tee - Black / M", "24.00"),
    ("TEE-BLK-L", "Classic Tee - Black / L", "24.00"),
    ("TEE-WHT-M", "Classic Tee - White / M", "24.00"),
    ("HOOD-GRY-M", "Everyday Hoodie - Grey / M", "59.00"),
    ("HOOD-GRY-L", "Everyday Hoodie - Grey / L", "59.00"),
    ("CAP-NVY", "Dad Cap - Navy", "19.50"),
    ("SOCK-3PK", "Crew Socks 3-Pack", "14.99"),
    ("MUG-12OZ", "Enamel Mug 12oz", "16.00"),
    ("BOTTLE-750", "Steel Bottle 750ml", "29.95"),
    ("TOTE-NAT", "Canvas Tote - Natural", "18.00"),
    ("BEANIE-BLK", "Rib Beanie - Black", "22.00"),
    ("STICKER-5", "Sticker Pack (5)", "6.50"),
    ("NOTE-A5", "Dot Grid Notebook A5", "12.00"),
    ("PIN-LOGO", "Enamel Pin - Logo", "9.00"),
    ("JACKET-OLV-M", "Field Jacket - Olive / M", "129.00"),
]

#: SKUs that show up in orders but that a 3PL would not have mapped (orders with them are held)
UNSTOCKED_SKUS: tuple[str, ...] = ("PRINT-LTD-01", "GIFT-WRAP", "PREORDER-BOOT-42")
_UNSTOCKED_ITEMS: list[tuple[str, str, str]] = [
    ("PRINT-LTD-01", "Limited Art Print #1", "45.00"),
    ("GIFT-WRAP", "Gift Wrapping", "4.00"),
    ("PREORDER-BOOT-42", "Trail Boot (pre-order) / 42", "149.00"),
]
_NO_SKU_ITEM: tuple[str | None, str, str] = (None, "Custom Embroidery", "10.00")

#: shipping method codes a 3PL usually maps (code == title, as Shopify custom rates send them)
SHIPPING_METHODS: tuple[str, ...] = ("Standard", "Express", "Overnight")
#: rarer methods a fresh mapping will not know yet (orders with them are held)
UNKNOWN_SHIPPING_METHODS: tuple[str, ...] = ("Local Pickup", "Freight Economy")
_SHIPPING_PRICES = {
    "Standard": "5.00",
    "Express": "12.00",
    "Overnight": "29.00",
    "Local Pickup": "0.00",
    "Freight Economy": "49.00",
}

CURRENCIES: tuple[str, ...] = ("USD", "EUR", "GBP", "CAD")
_CURRENCY_WEIGHTS = (70, 12, 10, 8)
_TAX = {"USD": ("State Tax", "0.08"), "EUR": ("VAT", "0.2"), "GBP": ("VAT", "0.2"), "CAD": ("GST", "0.05")}
_PLACES = {
    "USD": [
        ("New York", "NY", "10001", "US"),
        ("Austin", "TX", "73301", "US"),
        ("Portland", "OR", "97201", "US"),
        ("Chicago", "IL", "60601", "US"),
    ],
    "EUR": [("Berlin", "BE", "10115", "DE"), ("Paris", "", "75001", "FR"), ("Amsterdam", "NH", "1011", "NL")],
    "GBP": [("London", "ENG", "SW1A 1AA", "GB"), ("Manchester", "ENG", "M1 1AE", "GB")],
    "CAD": [("Toronto", "ON", "M5H 2N2", "CA"), ("Vancouver", "BC", "V6B 1A1", "CA")],
}
_FIRST = ("Ava", "Liam", "Mia", "Noah", "Emma", "Lucas", "Sofia", "Ethan", "Chloe", "Leo", "Zoe", "Omar")
_LAST = ("Smith", "Garcia", "Müller", "Dubois", "Khan", "Nguyen", "Rossi", "Brown", "Okafor", "Silva")
_STREETS = ("Main St", "Oak Ave", "Market St", "High St", "King St", "Elm Rd", "Harbour Way")
_TAGS = ("", "", "", "vip", "wholesale", "gift", "repeat-customer")
_NOTES = ("", "", "", "", "Please leave at the door", "Gift - no invoice please")

#: the shop's timezone: REST timestamps carry its offset, GraphQL ones are UTC ("Z")
SHOP_TZ = timezone(timedelta(hours=-5))
FIRST_ORDER_ID = 5_100_000_000
FIRST_NUMBER = 1001
CENT = Decimal("0.01")


class OrderSeed:
    """Everything needed to expand one order, plus the filter facts the sandbox indexes.

    The filter facts (timestamps, statuses) stay authoritative after a change: the sandbox updates
    them together with ``overlay`` (the full REST dict of a changed order).
    """

    __slots__ = (
        "cancelled",
        "closed",
        "created",
        "currency",
        "customer",
        "discount",
        "financial",
        "fulfillment",
        "id",
        "lines",
        "number",
        "overlay",
        "shipping",
        "tag",
        "test",
        "updated",
    )

    def __init__(
        self,
        id: int,
        number: int,
        created: int,
        updated: int,
        financial: str,
        fulfillment: str | None,
        currency: str,
        lines: tuple[tuple[tuple[str | None, str, str], int], ...],
        shipping: str,
        customer: int,
        *,
        cancelled: bool = False,
        closed: bool = False,
        test: bool = False,
        discount: bool = False,
        tag: int = 0,
    ) -> None:
        self.id = id
        self.number = number
        self.created = created
        self.updated = updated
        self.financial = financial
        self.fulfillment = fulfillment
        self.currency = currency
        self.lines = lines
        self.shipping = shipping
        self.customer = customer
        self.cancelled = cancelled
        self.closed = closed
        self.test = test
        self.discount = discount
        self.tag = tag
        self.overlay: dict[str, Any] | None = None


def generate(
    count: int,
    *,
    seed: int = 1,
    lines_per_order: int | None = None,
    realistic: bool = True,
    now: datetime | None = None,
    days: int = 50,
    first_id: int = FIRST_ORDER_ID,
    first_number: int = FIRST_NUMBER,
) -> list[OrderSeed]:
    """``count`` order seeds created over the last ``days`` days, oldest (lowest id) first."""
    rng = random.Random(seed)
    end = int((now or datetime.now(UTC)).timestamp())
    span = days * 86400
    start = end - span
    step = span / max(count, 1)
    out: list[OrderSeed] = []
    for i in range(count):
        created = start + int((i + rng.random()) * step)
        out.append(
            make_seed(
                rng,
                first_id + i,
                first_number + i,
                created,
                end,
                lines_per_order=lines_per_order,
                realistic=realistic,
            )
        )
    return out


def make_seed(
    rng: random.Random,
    order_id: int,
    number: int,
    created: int,
    now: int,
    *,
    lines_per_order: int | None = None,
    realistic: bool = True,
) -> OrderSeed:
    """One order seed; ``now`` (epoch seconds) caps ``updated``."""
    n_lines = lines_per_order if lines_per_order is not None else 1 + int(rng.random() ** 2 * 4)
    catalog = CATALOG
    lines: tuple[tuple[tuple[str | None, str, str], int], ...] = tuple(
        (catalog[rng.randrange(len(catalog))], 1 + int(rng.random() ** 3 * 3)) for _ in range(n_lines)
    )
    if not realistic:
        return OrderSeed(
            order_id, number, created, created, "paid", None, "USD", lines, "Standard", rng.randrange(1 << 30)
        )
    r = rng.random()
    currency = rng.choices(CURRENCIES, _CURRENCY_WEIGHTS)[0] if r < 0.3 else "USD"
    financial, fulfillment = "paid", None
    closed = cancelled = False
    r = rng.random()
    if r < 0.04:
        financial = "pending"
    elif r < 0.07:
        financial = "authorized"
    elif r < 0.09:
        financial = "refunded"
    elif r < 0.10:
        financial = "partially_refunded"
    elif r < 0.11:
        financial = "partially_paid"
    elif r < 0.16:
        fulfillment = "fulfilled"
        closed = rng.random() < 0.6
    elif r < 0.18:
        fulfillment = "partial" if n_lines > 1 else "fulfilled"
    if rng.random() < 0.015:
        cancelled, closed, financial, fulfillment = True, True, rng.choice(("voided", "refunded")), None
    if rng.random() < 0.03:
        item = _UNSTOCKED_ITEMS[rng.randrange(len(_UNSTOCKED_ITEMS))]
        lines = ((item, 1), *lines[1:])
    if rng.random() < 0.005:
        lines = (*lines, (_NO_SKU_ITEM, 1))
    r = rng.random()
    if r < 0.03:
        shipping = UNKNOWN_SHIPPING_METHODS[rng.randrange(len(UNKNOWN_SHIPPING_METHODS))]
    elif r < 0.18:
        shipping = "Express"
    elif r < 0.22:
        shipping = "Overnight"
    else:
        shipping = "Standard"
    updated = created
    if fulfillment or closed or cancelled or rng.random() < 0.3:
        updated = min(now, created + rng.randrange(60, 3 * 86400))
    return OrderSeed(
        order_id,
        number,
        created,
        updated,
        financial,
        fulfillment,
        currency,
        lines,
        shipping,
        rng.randrange(1 << 30),
        cancelled=cancelled,
        closed=closed,
        test=rng.random() < 0.02,
        discount=rng.random() < 0.08,
        tag=rng.randrange(len(_TAGS)),
    )


def iso_local(epoch: int) -> str:
    """Shopify REST timestamp: shop-local time with its offset, second precision."""
    return datetime.fromtimestamp(epoch, SHOP_TZ).isoformat()


def money(value: Decimal) -> str:
    return str(value.quantize(CENT))


def expand(seed: OrderSeed) -> dict[str, Any]:
    """The REST ``order`` dict for a seed (or its overlay when the order changed)."""
    if seed.overlay is not None:
        return seed.overlay
    oid = seed.id
    cur = seed.currency
    c = seed.customer
    first, last = _FIRST[c % len(_FIRST)], _LAST[(c >> 4) % len(_LAST)]
    city, province, zip_code, country = (places := _PLACES[cur])[(c >> 8) % len(places)]
    email = f"{first.lower()}.{last.lower()}{c % 997}@example.com".replace("ü", "u")
    address = {
        "first_name": first,
        "last_name": last,
        "name": f"{first} {last}",
        "company": "Acme Corp" if c % 11 == 0 else None,
        "address1": f"{(c >> 12) % 900 + 1} {_STREETS[(c >> 3) % len(_STREETS)]}",
        "address2": "Apt 4" if c % 7 == 0 else "",
        "city": city,
        "province_code": province or None,
        "zip": zip_code,
        "country_code": country,
        "phone": f"+1555{c % 10_000_000:07d}" if c % 3 == 0 else None,
    }
    fulfilled_all = seed.fulfillment == "fulfilled"
    line_items = []
    shipped: list[dict[str, int]] = []
    subtotal = Decimal(0)
    for k, ((sku, title, price), qty) in enumerate(seed.lines):
        line_id = oid * 100 + k + 1
        # a partly fulfilled order: its first line shipped, all of it when it is one unit, else all
        # but one unit (so both a closed line and an open remainder within a line occur)
        done = qty if fulfilled_all else (qty - 1 or 1) if seed.fulfillment == "partial" and k == 0 else 0
        if done:
            shipped.append({"id": line_id, "quantity": done})
        subtotal += Decimal(price) * qty
        variant = 40_000_000_000 + (hash_sku(sku) % 1_000_000)
        line_items.append(
            {
                "id": line_id,
                "admin_graphql_api_id": f"gid://shopify/LineItem/{line_id}",
                "sku": sku,
                "variant_id": variant,
                "product_id": 8_000_000_000 + (variant % 100_000),
                "quantity": qty,
                "fulfillable_quantity": qty - done,
                "price": price,
                "title": title.split(" - ")[0],
                "name": title,
                "fulfillment_status": "fulfilled" if done == qty else "partial" if done else None,
                "requires_shipping": True,
                "properties": [{"name": "Gift message", "value": "Happy birthday!"}] if k == 0 and c % 13 == 0 else [],
            }
        )
    discount = (subtotal * Decimal("0.1")).quantize(CENT) if seed.discount else Decimal(0)
    ship_price = Decimal(_SHIPPING_PRICES.get(seed.shipping, "7.00"))
    tax_title, rate = _TAX[cur]
    taxable = subtotal - discount
    tax = (taxable * Decimal(rate)).quantize(CENT)
    total = taxable + ship_price + tax
    created = iso_local(seed.created)
    updated = iso_local(seed.updated)
    tag = _TAGS[seed.tag]
    note = _NOTES[c % len(_NOTES)]
    return {
        "id": oid,
        "admin_graphql_api_id": f"gid://shopify/Order/{oid}",
        "name": f"#{seed.number}",
        "order_number": seed.number,
        "number": seed.number - 1000,
        "email": email,
        "contact_email": email,
        "created_at": created,
        "updated_at": updated,
        "processed_at": created,
        "cancelled_at": updated if seed.cancelled else None,
        "cancel_reason": "customer" if seed.cancelled else None,
        "closed_at": updated if seed.closed else None,
        "financial_status": seed.financial,
        "fulfillment_status": seed.fulfillment,
        "confirmed": True,
        "currency": cur,
        "presentment_currency": cur,
        "subtotal_price": money(taxable),
        "total_line_items_price": money(subtotal),
        "total_discounts": money(discount),
        "total_tax": money(tax),
        "total_price": money(total),
        "taxes_included": False,
        "source_name": "web",
        "test": seed.test,
        "tags": tag,
        "note": note or None,
        "note_attributes": [{"name": "delivery_window", "value": "evening"}] if c % 17 == 0 else [],
        "discount_codes": (
            [{"code": "WELCOME10", "amount": money(discount), "type": "percentage"}] if seed.discount else []
        ),
        "tax_lines": [{"title": tax_title, "price": money(tax), "rate": float(rate)}],
        "line_items": line_items,
        "shipping_lines": [
            {
                "id": oid * 100 + 91,
                "title": seed.shipping,
                "code": seed.shipping,
                "price": money(ship_price),
                "source": "shopify",
            }
        ],
        "shipping_address": address,
        "billing_address": dict(address),
        "customer": {
            "id": 7_000_000_000 + c % 500_000,
            "email": email,
            "first_name": first,
            "last_name": last,
        },
        "fulfillments": [_generated_fulfillment(oid, updated, shipped)] if shipped else [],
    }


def _generated_fulfillment(order_id: int, at: str, lines: list[dict[str, int]]) -> dict[str, Any]:
    """The fulfilment a merchant made before any app saw the order (the admin's "Mark as fulfilled"),
    so a generated partly fulfilled order has the fulfilment its lines' remaining quantities imply —
    in REST, GraphQL, bulk exports and webhooks alike. Not in the ledger: no API call made it."""
    fid = order_id * 10 + 1  # unique, and apart from the ids fulfillmentCreate hands out
    return {
        "id": fid,
        "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fid}",
        "order_id": order_id,
        "status": "success",
        "created_at": at,
        "updated_at": at,
        "tracking_company": "Other",
        "tracking_number": f"MERCHANT-{order_id}",
        "tracking_numbers": [f"MERCHANT-{order_id}"],
        "tracking_url": None,
        "tracking_urls": [],
        "notify_customer": False,
        "line_items": lines,
    }


@lru_cache(maxsize=4096)
def hash_sku(sku: str | None) -> int:
    """A stable (not ``hash()``-randomised) small integer for a SKU: variant ids stay stable."""
    value = 17
    for ch in sku or "-":
        value = (value * 31 + ord(ch)) & 0xFFFFFFFF
    return value
