"""The import file's format, declared once: its columns, encodings, separators and limits.

The documentation (``docs/manual-orders.md``, "Import from CSV"), the downloadable template and
the reader are all made from :data:`COLUMNS`, so what the page says is what the reader accepts.

One row per line item. Rows are grouped into orders by ``order_number``; the rows of one order are
adjacent (sorted by order number is enough). Order-level values (currency, customer, address,
shipping, totals, notes, tags, ``custom.<name>``) may be repeated on every row of the order or
given only on its first row; repeated, they must agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """How a cell is read (``values.py``)."""

    TEXT = "text"
    MONEY = "money"  # a decimal amount, "19.99" (or "19,99"); the currency is its own column
    QUANTITY = "quantity"  # a whole number of at least 1
    DATE = "date"  # ISO 8601: 2026-11-30 or 2026-11-30T14:05:00+01:00; converted to UTC
    COUNTRY = "country"  # ISO 3166-1 alpha-2: US, FR, DE
    CURRENCY = "currency"  # ISO 4217: USD, EUR
    EMAIL = "email"
    TAGS = "tags"  # comma-separated inside the cell


class Level(StrEnum):
    ORDER = "order"
    LINE = "line"


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    level: Level
    required: bool
    description: str
    example: str


def _c(name: str, kind: Kind, level: Level, description: str, example: str, *, required: bool = False) -> Column:
    return Column(name, kind, level, required, description, example)


_O, _L = Level.ORDER, Level.LINE

COLUMNS: tuple[Column, ...] = (
    _c(
        "order_number", Kind.TEXT, _O, "The order's number; its identity in the manual channel", "W-1001", required=True
    ),
    _c("currency", Kind.CURRENCY, _O, "ISO 4217 code of every amount of the order", "EUR", required=True),
    _c("sku", Kind.TEXT, _L, "The line's SKU, as the tenant's mappings know it", "MUG-RED", required=True),
    _c("quantity", Kind.QUANTITY, _L, "Units ordered: a whole number, at least 1", "2", required=True),
    _c("unit_price", Kind.MONEY, _L, "Price of one unit, without currency symbol", "12.50", required=True),
    _c("title", Kind.TEXT, _L, "The line's product title (the SKU when empty)", "Red mug"),
    _c("placed_at", Kind.DATE, _O, "When the order was placed, ISO 8601 (UTC when no offset is given)", "2026-11-30"),
    _c("customer_email", Kind.EMAIL, _O, "The customer's e-mail address", "ana@example.com"),
    _c("customer_name", Kind.TEXT, _O, "The customer's name", "Ana Lima"),
    _c("ship_name", Kind.TEXT, _O, "Shipping address: recipient", "Ana Lima"),
    _c("ship_company", Kind.TEXT, _O, "Shipping address: company", ""),
    _c("ship_address1", Kind.TEXT, _O, "Shipping address: street and number", "12 rue des Lilas"),
    _c("ship_address2", Kind.TEXT, _O, "Shipping address: second line", ""),
    _c("ship_city", Kind.TEXT, _O, "Shipping address: city", "Lyon"),
    _c("ship_province", Kind.TEXT, _O, "Shipping address: state or province code", ""),
    _c("ship_postal_code", Kind.TEXT, _O, "Shipping address: postal code", "69003"),
    _c("ship_country", Kind.COUNTRY, _O, "Shipping address: ISO 3166-1 alpha-2 country code", "FR"),
    _c("ship_phone", Kind.TEXT, _O, "Shipping address: phone", ""),
    _c("shipping_method", Kind.TEXT, _O, "Shipping method, as the tenant's mappings know it", "standard"),
    _c("shipping_price", Kind.MONEY, _O, "Shipping charged to the customer", "4.90"),
    _c("tax", Kind.MONEY, _O, "Total tax of the order", "0"),
    _c("discount", Kind.MONEY, _O, "Total discount of the order", "0"),
    _c("discount_code", Kind.TEXT, _O, "The discount's code", ""),
    _c("payment_status", Kind.TEXT, _O, "paid (when empty), pending, authorized, partially_paid …", "paid"),
    _c("note", Kind.TEXT, _O, "A note for the warehouse", ""),
    _c("tags", Kind.TAGS, _O, "Tags, separated by commas inside the cell", "wholesale"),
)
BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
REQUIRED: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.required)
#: a column named ``custom.<name>`` is the order's custom field ``<name>`` (order-level text)
CUSTOM_PREFIX = "custom."

# --- encodings and separators ----------------------------------------------------------------------------


class Encoding(StrEnum):
    """The encodings read. UTF-8 is read with or without its byte-order mark."""

    UTF8 = "utf-8"
    WINDOWS_1252 = "windows-1252"

    @property
    def codec(self) -> str:
        return "utf-8-sig" if self is Encoding.UTF8 else "cp1252"

    @property
    def other(self) -> Encoding:
        return Encoding.WINDOWS_1252 if self is Encoding.UTF8 else Encoding.UTF8


class Delimiter(StrEnum):
    COMMA = ","
    SEMICOLON = ";"

    @property
    def label(self) -> str:
        return "comma" if self is Delimiter.COMMA else "semicolon"


def parse_encoding(text: str | None) -> Encoding | None:
    """A user's choice: ``None``/``"auto"`` (detect), or an encoding by any of its usual names."""
    if text is None or text.strip().lower() in ("", "auto"):
        return None
    key = text.strip().lower().replace("_", "-")
    if key in ("utf-8", "utf8", "utf-8-sig"):
        return Encoding.UTF8
    if key in ("windows-1252", "cp1252", "1252", "latin-1", "latin1", "iso-8859-1"):
        return Encoding.WINDOWS_1252
    raise ValueError(f"unknown encoding {text!r}: choose auto, utf-8 or windows-1252")


def parse_delimiter(text: str | None) -> Delimiter | None:
    """A user's choice: ``None``/``"auto"`` (detect), ``","``/``"comma"`` or ``";"``/``"semicolon"``."""
    if text is None or text.strip().lower() in ("", "auto"):
        return None
    key = text.strip().lower()
    if key in (",", "comma"):
        return Delimiter.COMMA
    if key in (";", "semicolon"):
        return Delimiter.SEMICOLON
    raise ValueError(f"unknown separator {text!r}: choose auto, comma or semicolon")


# --- limits ----------------------------------------------------------------------------------------------

MIB = 1024 * 1024
#: the largest file accepted: 32 MiB is about 150,000 rows of every column filled
MAX_FILE_BYTES = 32 * MIB
#: the longest physical line (a row is usually a few hundred bytes)
MAX_LINE_BYTES = 1 * MIB
#: the longest cell (the csv module's own default limit)
MAX_CELL_CHARS = 131_072
#: how much of the file's start is looked at to detect binary content, the encoding and the separator
HEAD_BYTES = 64 * 1024
#: warnings kept per file (each kind is counted beyond it)
MAX_WARNINGS = 100


def describe_bytes(n: int) -> str:
    """``33554432`` → ``"32 MiB"``; used in limits' messages."""
    if n % MIB == 0:
        return f"{n // MIB} MiB"
    return f"{n:,} bytes"


# --- the template and the documented example ----------------------------------------------------------------

#: the example of the documentation and of the downloadable example file: two orders, one of two lines
EXAMPLE_ROWS: tuple[dict[str, str], ...] = (
    {
        "order_number": "W-1001",
        "currency": "EUR",
        "sku": "MUG-RED",
        "quantity": "2",
        "unit_price": "12.50",
        "title": "Red mug",
        "placed_at": "2026-11-30T14:05:00+01:00",
        "customer_email": "ana@example.com",
        "customer_name": "Ana Lima",
        "ship_name": "Ana Lima",
        "ship_address1": "12 rue des Lilas",
        "ship_city": "Lyon",
        "ship_postal_code": "69003",
        "ship_country": "FR",
        "shipping_method": "standard",
        "shipping_price": "4.90",
        "tags": "wholesale, phone",
    },
    {"order_number": "W-1001", "sku": "PLATE-10", "quantity": "1", "unit_price": "8", "title": "Plate, 10 in"},
    {
        "order_number": "W-1002",
        "currency": "USD",
        "sku": "BOWL-S",
        "quantity": "6",
        "unit_price": "3.25",
        "title": "Small bowl",
        "placed_at": "2026-12-01",
        "customer_email": "bo@example.com",
        "ship_name": "Bo Chen",
        "ship_address1": "1 Main St",
        "ship_city": "Springfield",
        "ship_province": "IL",
        "ship_postal_code": "62701",
        "ship_country": "US",
        "shipping_method": "standard",
        "note": "Leave at the back door",
    },
)


def template_rows(*, example: bool) -> list[list[str]]:
    """The header (every documented column), and the example's rows when ``example``."""
    header = [c.name for c in COLUMNS]
    rows = [header]
    if example:
        rows.extend([r.get(name, "") for name in header] for r in EXAMPLE_ROWS)
    return rows
