"""The input limits, declared once: type, range and size of every value that enters from outside.

Every channel, webhook, file and API feeds the same canonical order, so the limits are stated here
on the canonical fields (not per connector) and :mod:`orderbridge.domain.validation` checks an
order against them. Two kinds of limit, kept apart on purpose:

- **column limits** (``column`` set): the value is stored in a bounded database column, so the
  limit *is* the column's size; ``tests/domain/test_limits.py`` compares each with
  ``storage/tables.py`` so the two can never drift. A value over a column limit can only be stored
  shortened (:func:`shorten`), which is why there are few of them: identifiers (which cannot be
  shortened at all — an id that does not fit is not a usable id), and the values a hold or a
  mapping is keyed by (a SKU, a shipping method: ``order_reasons.value`` and
  ``mappings.source_value``). Free text that used to sit in a bounded column (the order number,
  shipment tracking fields) is unbounded since migration 0005: a limit there would only lose data.
- **sanity limits** (``column`` ``None``): the value is stored whole (canonical JSON, raw payload),
  but beyond the limit it is not something a warehouse can act on (a 50,000-character title, a
  quantity of ten million), so the order is held naming the field.

Pure data and two pure helpers; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class TextLimit:
    """At most ``max_chars`` characters; ``column`` (``table.column``) is where it must fit."""

    field: str
    max_chars: int
    column: str | None = None


# --- identity (an id that does not fit is refused, never shortened) -------------------------------
EXTERNAL_ID = TextLimit("external_id", 100, "orders.external_id")
LINE_ID = TextLimit("lines.external_id", 100)

# --- values holds and mappings are keyed by ----------------------------------------------------------
REASON_VALUE = TextLimit("reason value", 300, "order_reasons.value")
MAPPING_SOURCE = TextLimit("mapping source value", 300, "mappings.source_value")
MAPPING_TARGET = TextLimit("mapping target value", 300, "mappings.target_value")
SKU = TextLimit("lines.sku", 300, "mappings.source_value")
SHIPPING_METHOD = TextLimit("shipping_lines.code", 300, "mappings.source_value")

# --- webhook headers stored with each delivery ------------------------------------------------------
WEBHOOK_ID = TextLimit("webhook id", 120, "webhook_deliveries.webhook_id")
WEBHOOK_TOPIC = TextLimit("webhook topic", 60, "webhook_deliveries.topic")

# --- sanity limits on free text (stored whole; beyond these the order is held) ----------------------
NUMBER = TextLimit("number", 500)
EMAIL = TextLimit("email", 320)  # RFC 5321: 64 + "@" + 255
NAME = TextLimit("customer_name", 500)
TITLE = TextLimit("title", 1_000)  # line, shipping line, tax line titles; discount codes
ADDRESS_FIELD = TextLimit("address", 500)
TAG = TextLimit("tags", 255)  # Shopify's own limit per tag
NOTE = TextLimit("note", 10_000)
ATTRIBUTE = TextLimit("custom attribute", 10_000)  # order custom fields and line properties

#: every text limit, for the documentation and the drift test
TEXT_LIMITS: tuple[TextLimit, ...] = (
    EXTERNAL_ID,
    LINE_ID,
    REASON_VALUE,
    MAPPING_SOURCE,
    MAPPING_TARGET,
    SKU,
    SHIPPING_METHOD,
    WEBHOOK_ID,
    WEBHOOK_TOPIC,
    NUMBER,
    EMAIL,
    NAME,
    TITLE,
    ADDRESS_FIELD,
    TAG,
    NOTE,
    ATTRIBUTE,
)

# --- counts and ranges ------------------------------------------------------------------------------
MAX_LINES = 1_000  # lines per order (Shopify's checkout caps far lower)
MAX_SHIPPING_LINES = 50
MAX_TAGS = 250  # Shopify's own limit
MAX_ATTRIBUTES = 250  # custom fields per order, properties per line
MIN_QUANTITY = 1  # a line ships at least one unit; zero or negative is not a line
MAX_QUANTITY = 1_000_000

# --- money ----------------------------------------------------------------------------------------------
#: ``orders.total`` is NUMERIC(24, 6): 18 digits before the point, 6 after
MONEY_INTEGER_DIGITS = 18
MONEY_DECIMAL_PLACES = 6
MONEY_COLUMN = "orders.total"
#: the largest amount accepted anywhere in an order (well inside the column)
MAX_AMOUNT = Decimal("1e15")
#: totals may differ from the sum of their parts by a cent per rounded part, plus this
TOTAL_TOLERANCE = Decimal("0.01")

#: how much of an offending value a reason or a log line quotes
QUOTE_CHARS = 60


def shorten(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters, saying so (``"abc… (301 chars)"``)."""
    if len(text) <= max_chars:
        return text
    suffix = f"… ({len(text)} chars)"
    if max_chars <= len(suffix):
        return text[:max_chars]
    return text[: max_chars - len(suffix)] + suffix


def storable(text: str) -> str:
    """``text`` without what no database text column can hold: NUL characters (PostgreSQL refuses
    them) and lone surrogates (not UTF-8), each replaced by U+FFFD."""
    if "\x00" not in text and text.isascii():
        return text
    text = text.replace("\x00", "\ufffd")
    if not _has_surrogate(text):
        return text
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def fits_column(amount: Decimal) -> bool:
    """Can ``amount`` be stored in a money column exactly (NUMERIC(24, 6))?"""
    if not amount.is_finite():
        return False
    exponent = amount.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > MONEY_DECIMAL_PLACES:
        return False
    return abs(amount) < Decimal(10) ** MONEY_INTEGER_DIGITS
