"""The validation layer: a canonical order checked against the declared input limits.

:func:`check` is pure and total: it returns every problem as a typed hold reason naming the field,
the value (shortened) and the fix — never raises, never repairs. It runs in the pipeline
(:func:`orderbridge.domain.pipeline.evaluate`) after the download rules, so a test or cancelled
order is still *skipped*, whatever is wrong with it; for every other order the problems are holds.

It runs on the canonical order, not on a channel's payload, for two reasons: every channel (poll,
webhook, file, API) reaches the ledger through one canonical form, so one check covers them all;
and the canonical form stored in the ledger keeps every value whole (JSON is unbounded), so
re-evaluating a held order after a mapping change finds the same problems again — a hold is
never released by forgetting why it was made. Only what goes into a *bounded* column is shortened,
and that is the ingest's business (:func:`orderbridge.domain.limits.shorten`).

The totals rule is two inequalities rather than an equation, because the canonical order carries
the amounts every channel sends but not every way they combine: prices may include tax (the total
is then subtotal + shipping), a shipping discount lowers the total below subtotal + shipping + tax,
and tips, duties and additional fees — which the canonical order does not carry — raise it above.
What no valid order does is have a subtotal (after discounts) above the sum of its lines, or a
total below its subtotal; each is checked within a cent per rounded part
(:data:`~orderbridge.domain.limits.TOTAL_TOLERANCE`). Every amount must also be non-negative,
below :data:`~orderbridge.domain.limits.MAX_AMOUNT` and exact in the money column.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from decimal import Decimal

import msgspec

from orderbridge.domain import limits, reasons
from orderbridge.domain.limits import TextLimit
from orderbridge.domain.money import Money
from orderbridge.domain.order import Address, FulfilmentStatus, Order, PaymentStatus
from orderbridge.domain.reasons import Reason

KNOWN_PAYMENT = frozenset(p.value for p in PaymentStatus if p is not PaymentStatus.UNKNOWN)
KNOWN_FULFILMENT = frozenset(f.value for f in FulfilmentStatus if f is not FulfilmentStatus.UNKNOWN)
_ZERO = Decimal(0)


class _Found:
    """Reasons collected once per (code, field): one bad SKU on 500 lines is one reason, not 500."""

    __slots__ = ("_seen", "reasons")

    def __init__(self) -> None:
        self.reasons: list[Reason] = []
        self._seen: set[tuple[str, str]] = set()

    def add(self, key: str, reason: Reason) -> None:
        k = (reason.code, key)
        if k not in self._seen:
            self._seen.add(k)
            self.reasons.append(reason)


def _bad_text(text: str) -> bool:
    if text.isascii():
        return "\x00" in text
    return limits.storable(text) != text


def _text(found: _Found, limit: TextLimit, value: str | None, field: str | None = None) -> None:
    if not value:
        return
    name = field or limit.field
    if len(value) > limit.max_chars:
        found.add(name, reasons.value_too_long(name, value, limit.max_chars))
    if _bad_text(value):
        found.add(name, reasons.invalid_text(name, value))


def _count(found: _Found, field: str, items: Iterable[object], maximum: int) -> None:
    n = sum(1 for _ in items)
    if n > maximum:
        found.add(field, reasons.too_many_values(field, n, maximum))


def _amount(found: _Found, field: str, money: Money | None, *, key: str | None = None) -> bool:
    """Whether ``money`` is a usable non-negative amount (a reason is added when it is not)."""
    if money is None:
        return True
    amount = money.amount
    problem = ""
    if amount < _ZERO:
        problem = "an amount in an order cannot be negative"
    elif amount > limits.MAX_AMOUNT:
        problem = f"more than {limits.MAX_AMOUNT:,.0f}, the largest amount OrderBridge accepts"
    elif not limits.fits_column(amount):
        problem = f"more than {limits.MONEY_DECIMAL_PLACES} decimal places"
    if problem:
        found.add(key or field, reasons.invalid_amount(field, amount, problem))
        return False
    return True


def _address(found: _Found, which: str, a: Address | None) -> None:
    if a is None:
        return
    for attr in Address.__struct_fields__:
        _text(found, limits.ADDRESS_FIELD, getattr(a, attr), f"{which}.{attr}")


def _pairs(found: _Found, field: str, pairs: tuple[tuple[str, str], ...]) -> None:
    _count(found, field, pairs, limits.MAX_ATTRIBUTES)
    for k, v in pairs:
        _text(found, limits.ATTRIBUTE, k, field)
        _text(found, limits.ATTRIBUTE, v, field)


def _unknown(order: Order, field: str) -> str:
    return next((v for f, v in order.unknown_values if f == field), "")


def check(order: Order) -> list[Reason]:
    """Every way ``order`` breaks the declared limits (see the module docstring); empty when it fits.

    Runs on the ingest hot path for every order, so an order that plainly fits is recognised by
    :func:`_plainly_fits` (a few comparisons and one pass over its text, ~5 µs); only an order that
    might not is walked field by field to name each problem."""
    if _plainly_fits(order):
        return []
    return _problems(order)


_Q = limits.MAX_QUANTITY
_MAX_AMOUNT = limits.MAX_AMOUNT
_PLACES = -limits.MONEY_DECIMAL_PLACES
_astuple = msgspec.structs.astuple


def _plainly_fits(o: Order) -> bool:
    """A conservative fast path: True only when :func:`_problems` would find nothing (anything
    unusual — line discounts or taxes, a long value, an unknown status — goes the slow way)."""
    lines = o.lines
    if (
        not lines
        or len(lines) > limits.MAX_LINES
        or len(o.shipping_lines) > limits.MAX_SHIPPING_LINES
        or len(o.tags) > limits.MAX_TAGS
        or len(o.custom_fields) > limits.MAX_ATTRIBUTES
        or o.payment_status is PaymentStatus.UNKNOWN
        or o.fulfilment_status is FulfilmentStatus.UNKNOWN
        or len(o.number) > limits.NUMBER.max_chars
        or len(o.email) > limits.EMAIL.max_chars
        or len(o.customer_name) > limits.NAME.max_chars
        or len(o.note) > limits.NOTE.max_chars
    ):
        return False
    texts = [o.number, o.email, o.customer_name, o.note, *o.tags]
    if o.custom_fields and not _pairs_fit(o.custom_fields, texts):
        return False
    if o.tags and max(map(len, o.tags)) > limits.TAG.max_chars:
        return False
    for a in (o.shipping_address, o.billing_address):
        if a is not None:
            parts = _astuple(a)
            if max(map(len, parts)) > limits.ADDRESS_FIELD.max_chars:
                return False
            texts.extend(parts)
    if len(lines) > 1 and len({li.external_id for li in lines}) != len(lines):
        return False
    amounts = [o.subtotal.amount, o.total_tax.amount, o.total.amount]
    lines_sum = _ZERO
    for li in lines:
        q, sku, price = li.quantity, li.sku or "", li.unit_price.amount
        if (
            not 1 <= q <= _Q
            or (li.properties and not _pairs_fit(li.properties, texts))
            or li.discount is not None
            or li.tax is not None
            or len(sku) > limits.SKU.max_chars
            or len(li.external_id) > limits.LINE_ID.max_chars
            or len(li.title) > limits.TITLE.max_chars
        ):
            return False
        texts += (li.external_id, sku, li.title)
        amounts.append(price)
        lines_sum += price * q
    for s in o.shipping_lines:
        code = s.code or ""
        if len(s.title) > limits.SHIPPING_METHOD.max_chars or len(code) > limits.SHIPPING_METHOD.max_chars:
            return False
        texts += (s.title, code)
        amounts.append(s.price.amount)
    for d in o.discounts:
        if len(d.code) > limits.TITLE.max_chars:
            return False
        texts.append(d.code)
        amounts.append(d.amount.amount)
    for t in o.taxes:
        if len(t.title) > limits.TITLE.max_chars:
            return False
        texts.append(t.title)
        amounts.append(t.amount.amount)
    if min(amounts) < _ZERO or max(amounts) > _MAX_AMOUNT:
        return False
    # exact sums keep the finest exponent of their terms: one look says whether any has too many places
    exponent = sum(amounts, _ZERO).as_tuple().exponent
    if not isinstance(exponent, int) or exponent < _PLACES:
        return False
    blob = "".join(texts)
    if not blob.isascii() and _bad_text(blob):
        return False
    if "\x00" in blob:
        return False
    tolerance = limits.TOTAL_TOLERANCE * (1 + len(lines) + len(o.shipping_lines) + len(o.taxes))
    subtotal = o.subtotal.amount
    return subtotal <= lines_sum + tolerance and o.total.amount >= subtotal - tolerance


def _pairs_fit(pairs: tuple[tuple[str, str], ...], texts: list[str]) -> bool:
    if len(pairs) > limits.MAX_ATTRIBUTES:
        return False
    for k, v in pairs:
        if len(k) > limits.ATTRIBUTE.max_chars or len(v) > limits.ATTRIBUTE.max_chars:
            return False
        texts += (k, v)
    return True


def _problems(order: Order) -> list[Reason]:
    found = _Found()
    _text(found, limits.NUMBER, order.number)
    _text(found, limits.EMAIL, order.email)
    _text(found, limits.NAME, order.customer_name)
    _text(found, limits.NOTE, order.note)
    _count(found, "lines", order.lines, limits.MAX_LINES)
    _count(found, "shipping lines", order.shipping_lines, limits.MAX_SHIPPING_LINES)
    _count(found, "tags", order.tags, limits.MAX_TAGS)
    for tag in order.tags:
        _text(found, limits.TAG, tag)
    _pairs(found, "custom_fields", order.custom_fields)
    _address(found, "shipping_address", order.shipping_address)
    _address(found, "billing_address", order.billing_address)

    ids = Counter(line.external_id for line in order.lines)
    for line_id, n in ids.items():
        if n > 1:
            found.add(f"line id {line_id}", reasons.duplicate_line_id(line_id, n))

    amounts_ok = True
    lines_sum = _ZERO
    for line in order.lines:
        _text(found, limits.LINE_ID, line.external_id)
        _text(found, limits.SKU, line.sku)
        _text(found, limits.TITLE, line.title, "lines.title")
        _pairs(found, "lines.properties", line.properties)
        if not limits.MIN_QUANTITY <= line.quantity <= limits.MAX_QUANTITY:
            found.add(f"quantity {line.external_id}", reasons.invalid_quantity(line.external_id, line.quantity))
            amounts_ok = False
        field = f"line {line.external_id} unit price"
        if not _amount(found, field, line.unit_price, key="line unit price"):
            amounts_ok = False
        else:
            lines_sum += line.unit_price.amount * line.quantity
        _amount(found, f"line {line.external_id} discount", line.discount, key="line discount")
        _amount(found, f"line {line.external_id} tax", line.tax, key="line tax")
    for s in order.shipping_lines:
        _text(found, limits.TITLE, s.title, "shipping_lines.title")
        _text(found, limits.SHIPPING_METHOD, s.code)
        if not s.code:  # the title is then the value a shipping mapping is keyed by
            _text(found, limits.SHIPPING_METHOD, s.title, "shipping_lines.title")
        amounts_ok = _amount(found, "shipping price", s.price) and amounts_ok
    for d in order.discounts:
        _text(found, limits.TITLE, d.code, "discounts.code")
        amounts_ok = _amount(found, "discount amount", d.amount) and amounts_ok
    for t in order.taxes:
        _text(found, limits.TITLE, t.title, "taxes.title")
        amounts_ok = _amount(found, "tax line amount", t.amount) and amounts_ok
    for field, money in (("subtotal", order.subtotal), ("total_tax", order.total_tax), ("total", order.total)):
        amounts_ok = _amount(found, field, money) and amounts_ok
    if amounts_ok:
        _totals(found, order, lines_sum)

    if order.payment_status is PaymentStatus.UNKNOWN:
        value = _unknown(order, "financial_status")
        found.add("financial_status", reasons.unknown_status("financial_status", value, KNOWN_PAYMENT))
    if order.fulfilment_status is FulfilmentStatus.UNKNOWN:
        value = _unknown(order, "fulfillment_status")
        found.add("fulfillment_status", reasons.unknown_status("fulfillment_status", value, KNOWN_FULFILMENT))
    return found.reasons


def _totals(found: _Found, order: Order, lines_sum: Decimal) -> None:
    parts = 1 + len(order.lines) + len(order.shipping_lines) + len(order.taxes)
    tolerance = limits.TOTAL_TOLERANCE * parts
    subtotal, total = order.subtotal.amount, order.total.amount
    if order.lines and subtotal > lines_sum + tolerance:
        found.add(
            "subtotal",
            reasons.totals_inconsistent("subtotal", subtotal, None, lines_sum + tolerance, order.currency),
        )
    if total < subtotal - tolerance:
        found.add("total", reasons.totals_inconsistent("total", total, subtotal - tolerance, None, order.currency))


def over_key_limit(value: str | None, limit: TextLimit) -> bool:
    """Is ``value`` too long to be a mapping or hold key (``check`` holds the order for it)?"""
    return value is not None and len(value) > limit.max_chars
