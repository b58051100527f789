"""Orders placed by hand or imported from a file: the draft, its problems, its totals, its record.

A :class:`Draft` is an order *as a person or a file gives it*: every scalar is the text that was
typed or read (``"2"``, ``"19.90"``, ``"2026-12-01T09:30:00+01:00"``), so that a problem can quote
the value exactly as given and a form can be shown again with what the user wrote. Nothing is
parsed until :func:`validate`, which returns *every* :class:`Problem` at once (field path, value,
what is wrong, the fix) rather than stopping at the first; :func:`totals` and
:func:`build_record` parse a draft that has none and refuse (:class:`InvalidDraft`) one that has.

:func:`build_record` turns a valid draft into the canonical :class:`~orderbridge.domain.order.Order`
every other channel's orders are mapped into, so a manual order goes through the same download
rules, mappings, required fields, posting and audits (decision 126). Its identity is its order
number, normalised by :func:`order_key` (decision 128): the external id of a manual order *is* the
key, so the ledger's unique ``(connection, external_id)`` makes "one order per (tenant, number)
in the manual channel" a database fact; a later draft with the same number is a new version of
the same order — an update, never a second order.

Pure: no I/O and no clock — ``now`` is passed in. Messages are English sentences for the API and
the CLI; each problem also carries a stable ``code`` and its ``params``, which the portal uses to
word it in the reader's language.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from orderbridge import boundedjson
from orderbridge.domain import limits
from orderbridge.domain.money import Money
from orderbridge.domain.order import Address, Discount, FulfilmentStatus, Order, OrderLine, PaymentStatus, ShippingLine
from orderbridge.domain.order import TaxLine as OrderTaxLine
from orderbridge.errors import InvalidInput

#: the longest order number (its key is the order's external id, and a destination's document key
#: is built from it: ShipStation's ``orderKey`` ``ob-<channel>-<number>`` must fit 120 characters)
MAX_NUMBER = 64
#: the characters an order number may have besides letters and digits (a number is typed, printed
#: on packing slips and put in URLs: no control characters, quotes or markup)
NUMBER_PUNCTUATION = " -_./#"
#: the prefix of the numbers OrderBridge gives a draft without one (``M-1``, ``M-2`` …)
AUTO_PREFIX = "M-"
#: payment statuses a manual order may be placed with (``unknown`` is a channel's, not a person's)
PAYMENT_STATUSES = tuple(s.value for s in PaymentStatus if s is not PaymentStatus.UNKNOWN)
DEFAULT_PAYMENT_STATUS = PaymentStatus.PAID.value

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


# --- the draft ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DraftAddress:
    name: str = ""
    company: str = ""
    address1: str = ""
    address2: str = ""
    city: str = ""
    province_code: str = ""
    postal_code: str = ""
    country_code: str = ""
    phone: str = ""


@dataclass(frozen=True, slots=True)
class DraftLine:
    sku: str = ""
    title: str = ""
    #: a whole number of units, as given
    quantity: str = ""
    #: the price of one unit in the order's currency, as given (``"19.90"``)
    unit_price: str = ""


@dataclass(frozen=True, slots=True)
class Draft:
    """An order as given; every scalar is text (see the module docstring)."""

    lines: tuple[DraftLine, ...] = ()
    #: empty: OrderBridge numbers it (``M-<n>``) when it is placed by hand
    number: str = ""
    currency: str = ""
    email: str = ""
    customer_name: str = ""
    shipping_address: DraftAddress | None = None
    shipping_method: str = ""
    shipping_price: str = ""
    #: the order's total tax, as given (added to the total)
    tax: str = ""
    #: the order's total discount, as given (taken off the total)
    discount: str = ""
    discount_code: str = ""
    payment_status: str = ""
    note: str = ""
    tags: tuple[str, ...] = ()
    custom_fields: tuple[tuple[str, str], ...] = ()
    #: when the order was placed, ISO 8601 with a timezone, or a date (midnight UTC); empty: when
    #: it is first submitted
    placed_at: str = ""


# --- where a draft came from ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Source:
    """Who or what gave a draft: shown on the order's timeline and kept with its raw payload.

    ``via`` is ``portal``, ``api``, ``cli`` or ``file``; ``by`` names the user (or token); a file's
    rows name the file and the (1-based, header = row 1) row number."""

    via: str
    by: str = ""
    file: str = ""
    row: int | None = None

    @classmethod
    def placed_by(cls, by: str, via: str = "portal") -> Source:
        return cls(via=via, by=by)

    @classmethod
    def imported(cls, file: str, row: int, by: str = "") -> Source:
        return cls(via="file", by=by, file=file, row=row)

    def describe(self) -> str:
        if self.via == "file":
            where = f"imported from file {self.file}" + (f" row {self.row}" if self.row is not None else "")
            return where + (f" by {self.by}" if self.by else "")
        how = {"portal": "in the portal", "api": "through the API", "cli": "from the command line"}.get(
            self.via, f"via {self.via}"
        )
        return f"placed by {self.by or 'an unnamed user'} {how}"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"via": self.via, "by": self.by}
        if self.via == "file":
            out.update(file=self.file, row=self.row)
        return out


# --- problems ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a draft: where (``field``: ``lines[0].quantity``), the value as given,
    what is wrong and how to fix it; ``code`` and ``params`` let a page word it in its language."""

    field: str
    value: str
    code: str
    message: str
    fix: str
    params: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "value": self.value, "code": self.code, "message": self.message, "fix": self.fix}

    def __str__(self) -> str:
        return f"{self.field}: {self.message} {self.fix}"


class InvalidDraft(InvalidInput):
    """A draft with problems was asked for its totals or its record."""

    code = "invalid_order"

    def __init__(self, problems: list[Problem]) -> None:
        head = problems[0] if problems else None
        super().__init__(
            f"the order has {len(problems)} problem(s)" + (f"; first: {head}" if head else ""),
            hint="Correct each field named and submit it again.",
        )
        self.problems = problems
        #: the first field at fault (the API's error shape names one; ``problems`` has them all)
        self.field = head.field if head else None


def _problem(path: str, value: str, code: str, message: str, fix: str, **params: str) -> Problem:
    return Problem(path, value, code, message, fix, tuple(sorted(params.items())))


# --- numbers and keys ----------------------------------------------------------------------------------
def normalise_number(text: str) -> str:
    """The order number as it is shown: Unicode NFKC, spaces around it and one leading ``#`` removed,
    runs of inner spaces made one (``"  #wh 12 "`` → ``"wh 12"``)."""
    value = unicodedata.normalize("NFKC", text).strip()
    if value.startswith("#"):
        value = value[1:].strip()
    return " ".join(value.split())


def order_key(number: str) -> str:
    """The order's identity in the manual channel (its external id): the normalised number in
    upper case — ``#wh-12``, ``WH-12`` and ``wh-12 `` are one order (decision 128)."""
    return normalise_number(number).upper()


def auto_number(n: int) -> str:
    return f"{AUTO_PREFIX}{n}"


def number_problems(text: str, path: str = "number") -> list[Problem]:
    value = normalise_number(text)
    if not value:
        return [
            _problem(path, text, "required", "The order number is missing.", "Give the order's number, e.g. WH-1001.")
        ]
    found: list[Problem] = []
    if len(value) > MAX_NUMBER:
        found.append(
            _problem(
                path,
                text,
                "too_long",
                f"The order number has {len(value)} characters; at most {MAX_NUMBER} are allowed.",
                f"Use a number of at most {MAX_NUMBER} characters.",
                max=str(MAX_NUMBER),
            )
        )
    bad = sorted({c for c in value if not (c.isalnum() or c in NUMBER_PUNCTUATION)})
    if bad:
        shown = " ".join(repr(c) for c in bad[:5])
        found.append(
            _problem(
                path,
                text,
                "bad_characters",
                f"The order number contains characters that are not allowed: {shown}.",
                "Use letters, digits, spaces and - _ . / # only.",
                chars=shown,
            )
        )
    return found


# --- parsing -------------------------------------------------------------------------------------------
def _decimal(text: str) -> Decimal | None:
    value = text.strip()
    if not value:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def _amount(path: str, text: str, found: list[Problem], *, label: str, default_zero: bool = True) -> Decimal | None:
    """A non-negative amount with at most :data:`limits.MONEY_DECIMAL_PLACES` decimals; empty is 0
    where ``default_zero``."""
    if not text.strip():
        if default_zero:
            return Decimal("0")
        found.append(_problem(path, text, "required", f"The {label} is missing.", f"Give the {label}, e.g. 19.90."))
        return None
    amount = _decimal(text)
    if amount is None:
        found.append(
            _problem(
                path,
                text,
                "not_an_amount",
                f"The {label} {text!r} is not an amount.",
                "Write it with digits and a decimal point, e.g. 19.90 (no currency sign, no thousands separator).",
            )
        )
        return None
    if amount < 0:
        found.append(
            _problem(path, text, "negative", f"The {label} cannot be negative.", "Give an amount of 0 or more.")
        )
        return None
    exponent = amount.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    if places > limits.MONEY_DECIMAL_PLACES or len(str(int(amount))) > limits.MONEY_INTEGER_DIGITS:
        found.append(
            _problem(
                path,
                text,
                "out_of_range",
                f"The {label} {text!r} has too many digits.",
                f"Use at most {limits.MONEY_DECIMAL_PLACES} decimals and {limits.MONEY_INTEGER_DIGITS} digits before "
                "the point.",
            )
        )
        return None
    return amount


def _quantity(path: str, text: str, found: list[Problem]) -> int | None:
    value = text.strip()
    if not value:
        found.append(
            _problem(path, text, "required", "The quantity is missing.", "Give a whole number of units, e.g. 2.")
        )
        return None
    if not value.isascii() or not value.isdigit():
        found.append(
            _problem(
                path,
                text,
                "not_a_whole_number",
                f"The quantity {text!r} is not a whole number.",
                "Give a whole number of units, e.g. 2.",
            )
        )
        return None
    n = int(value)
    if not limits.MIN_QUANTITY <= n <= limits.MAX_QUANTITY:
        found.append(
            _problem(
                path,
                text,
                "out_of_range",
                f"The quantity must be between {limits.MIN_QUANTITY} and {limits.MAX_QUANTITY:,}.",
                f"Give a quantity from {limits.MIN_QUANTITY} to {limits.MAX_QUANTITY:,}.",
            )
        )
        return None
    return n


def parse_placed_at(text: str) -> datetime | None:
    """``placed_at`` as an aware UTC datetime (a bare date is midnight UTC); ``None`` when empty or unreadable."""
    value = text.strip()
    if not value:
        return None
    try:
        if len(value) == 10:
            d = date.fromisoformat(value)
            return datetime(d.year, d.month, d.day, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


def _text(path: str, text: str, limit: limits.TextLimit, found: list[Problem], label: str) -> None:
    if len(text) > limit.max_chars:
        found.append(
            _problem(
                path,
                text[:60] + "…",
                "too_long",
                f"The {label} has {len(text):,} characters; at most {limit.max_chars:,} are allowed.",
                f"Shorten it to {limit.max_chars:,} characters.",
                max=str(limit.max_chars),
            )
        )
    if "\x00" in text:
        found.append(
            _problem(
                path,
                text.replace("\x00", "\\0")[:60],
                "bad_characters",
                f"The {label} contains a NUL character.",
                "Remove the NUL character.",
            )
        )


# --- validation ----------------------------------------------------------------------------------------
def validate(draft: Draft, *, number_required: bool = False) -> list[Problem]:
    """Every problem of ``draft``, in field order (none: it can be placed). A missing number is a
    problem only when ``number_required`` (a file's rows are grouped by it; a form's is given one)."""
    found: list[Problem] = []
    if draft.number.strip() or number_required:
        found.extend(number_problems(draft.number))
    currency = draft.currency.strip().upper()
    if not currency:
        found.append(
            _problem(
                "currency",
                draft.currency,
                "required",
                "The currency is missing.",
                "Give the ISO 4217 code of the order's currency, e.g. EUR or USD.",
            )
        )
    elif not _CURRENCY.match(currency):
        found.append(
            _problem(
                "currency",
                draft.currency,
                "not_a_currency",
                f"{draft.currency!r} is not a currency code.",
                "Give a three-letter ISO 4217 code, e.g. EUR or USD.",
            )
        )
    if draft.email.strip():
        _text("email", draft.email, limits.EMAIL, found, "e-mail address")
        if not _EMAIL.match(draft.email.strip()):
            found.append(
                _problem(
                    "email",
                    draft.email,
                    "not_an_email",
                    f"{draft.email!r} is not an e-mail address.",
                    "Give an address like name@example.com, or leave it empty.",
                )
            )
    _text("customer_name", draft.customer_name, limits.NAME, found, "customer name")
    if draft.shipping_address is not None:
        address = draft.shipping_address
        for name in DraftAddress.__slots__:
            _text(f"shipping_address.{name}", getattr(address, name), limits.ADDRESS_FIELD, found, "address field")
        country = address.country_code.strip().upper()
        if country and not _COUNTRY.match(country):
            found.append(
                _problem(
                    "shipping_address.country_code",
                    address.country_code,
                    "not_a_country",
                    f"{address.country_code!r} is not a country code.",
                    "Give the two-letter ISO 3166 code, e.g. FR, DE or US.",
                )
            )
    if not draft.lines:
        found.append(_problem("lines", "", "required", "The order has no lines.", "Add at least one line with a SKU."))
    elif len(draft.lines) > limits.MAX_LINES:
        found.append(
            _problem(
                "lines",
                str(len(draft.lines)),
                "too_many",
                f"The order has {len(draft.lines):,} lines.",
                f"Split it into orders of at most {limits.MAX_LINES:,} lines.",
            )
        )
    for i, line in enumerate(draft.lines):
        path = f"lines[{i}]"
        if not line.sku.strip():
            found.append(
                _problem(
                    f"{path}.sku",
                    line.sku,
                    "required",
                    "The line has no SKU.",
                    "Give the SKU of the product, as the tenant's mappings know it.",
                )
            )
        else:
            _text(f"{path}.sku", line.sku, limits.SKU, found, "SKU")
        _text(f"{path}.title", line.title, limits.TITLE, found, "title")
        _quantity(f"{path}.quantity", line.quantity, found)
        _amount(f"{path}.unit_price", line.unit_price, found, label="unit price", default_zero=False)
    if draft.shipping_method.strip():
        _text("shipping_method", draft.shipping_method, limits.SHIPPING_METHOD, found, "shipping method")
    _amount("shipping_price", draft.shipping_price, found, label="shipping price")
    _amount("tax", draft.tax, found, label="tax")
    discount = _amount("discount", draft.discount, found, label="discount")
    _text("discount_code", draft.discount_code, limits.TITLE, found, "discount code")
    if draft.payment_status.strip() and draft.payment_status.strip().lower() not in PAYMENT_STATUSES:
        found.append(
            _problem(
                "payment_status",
                draft.payment_status,
                "unknown_status",
                f"{draft.payment_status!r} is not a payment status.",
                f"Use one of: {', '.join(PAYMENT_STATUSES)} (empty: {DEFAULT_PAYMENT_STATUS}).",
            )
        )
    _text("note", draft.note, limits.NOTE, found, "note")
    if len(draft.tags) > limits.MAX_TAGS:
        found.append(
            _problem(
                "tags",
                str(len(draft.tags)),
                "too_many",
                f"The order has {len(draft.tags)} tags.",
                f"Keep at most {limits.MAX_TAGS} tags.",
            )
        )
    for i, tag in enumerate(draft.tags):
        _text(f"tags[{i}]", tag, limits.TAG, found, "tag")
    if len(draft.custom_fields) > limits.MAX_ATTRIBUTES:
        found.append(
            _problem(
                "custom_fields",
                str(len(draft.custom_fields)),
                "too_many",
                f"The order has {len(draft.custom_fields)} custom fields.",
                f"Keep at most {limits.MAX_ATTRIBUTES} custom fields.",
            )
        )
    for i, (key, value) in enumerate(draft.custom_fields):
        if not key.strip():
            found.append(
                _problem(
                    f"custom_fields[{i}]",
                    value[:60],
                    "required",
                    "A custom field has no name.",
                    "Name the field, or remove it.",
                )
            )
        _text(f"custom_fields[{i}]", key, limits.TITLE, found, "custom field name")
        _text(f"custom_fields[{i}]", value, limits.ATTRIBUTE, found, "custom field")
    if draft.placed_at.strip() and parse_placed_at(draft.placed_at) is None:
        found.append(
            _problem(
                "placed_at",
                draft.placed_at,
                "not_a_time",
                f"{draft.placed_at!r} is not a date and time with a timezone.",
                "Write it as ISO 8601 with a timezone, e.g. 2026-12-01T09:30:00+01:00, or a date: 2026-12-01.",
            )
        )
    if not found and discount is not None:
        t = _totals(draft)
        if t.total.amount < 0:
            found.append(
                _problem(
                    "discount",
                    draft.discount,
                    "too_large",
                    f"The discount ({t.discount}) is larger than the order ({t.subtotal + t.shipping + t.tax}).",
                    "Give a discount no larger than the lines, shipping and tax together.",
                )
            )
    return found


# --- totals --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Totals:
    currency: str
    subtotal: Money
    shipping: Money
    tax: Money
    discount: Money
    total: Money
    units: int
    #: each line's quantity × unit price, in line order
    line_totals: tuple[Money, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "subtotal": str(self.subtotal.amount),
            "shipping": str(self.shipping.amount),
            "tax": str(self.tax.amount),
            "discount": str(self.discount.amount),
            "total": str(self.total.amount),
            "units": self.units,
            "lines": [str(m.amount) for m in self.line_totals],
        }


def _money(text: str, currency: str) -> Money:
    return Money(_decimal(text) or Decimal("0"), currency)


def _totals(draft: Draft) -> Totals:
    currency = draft.currency.strip().upper()
    line_totals = tuple(_money(li.unit_price, currency).times(int(li.quantity.strip())) for li in draft.lines)
    subtotal = Money.zero(currency)
    for m in line_totals:
        subtotal = subtotal + m
    shipping, tax, discount = (_money(v, currency) for v in (draft.shipping_price, draft.tax, draft.discount))
    return Totals(
        currency,
        subtotal,
        shipping,
        tax,
        discount,
        subtotal + shipping + tax - discount,
        sum(int(li.quantity.strip()) for li in draft.lines),
        line_totals,
    )


def totals(draft: Draft) -> Totals:
    """The draft's totals in its currency: lines, shipping and tax, less the discount (Decimal, exact)."""
    problems = validate(draft)
    if problems:
        raise InvalidDraft(problems)
    return _totals(draft)


# --- the canonical record --------------------------------------------------------------------------------
def _address(a: DraftAddress | None) -> Address | None:
    if a is None or not any(getattr(a, n).strip() for n in DraftAddress.__slots__):
        return None
    return Address(
        name=a.name.strip(),
        company=a.company.strip(),
        address1=a.address1.strip(),
        address2=a.address2.strip(),
        city=a.city.strip(),
        province_code=a.province_code.strip(),
        postal_code=a.postal_code.strip(),
        country_code=a.country_code.strip().upper(),
        phone=a.phone.strip(),
    )


def draft_as_json(draft: Draft) -> dict[str, Any]:
    """The draft as plain JSON data, as given (kept as the order's raw payload, and what an
    idempotency key's request is compared by)."""
    address = draft.shipping_address
    return {
        "number": draft.number,
        "currency": draft.currency,
        "email": draft.email,
        "customer_name": draft.customer_name,
        "shipping_address": None if address is None else {n: getattr(address, n) for n in DraftAddress.__slots__},
        "shipping_method": draft.shipping_method,
        "shipping_price": draft.shipping_price,
        "tax": draft.tax,
        "discount": draft.discount,
        "discount_code": draft.discount_code,
        "payment_status": draft.payment_status,
        "note": draft.note,
        "tags": list(draft.tags),
        "custom_fields": [[k, v] for k, v in draft.custom_fields],
        "placed_at": draft.placed_at,
        "lines": [
            {"sku": li.sku, "title": li.title, "quantity": li.quantity, "unit_price": li.unit_price}
            for li in draft.lines
        ],
    }


def build_record(draft: Draft, source: Source, now: datetime, *, created_at: datetime | None = None) -> Order:
    """The canonical order of a valid draft that has its number (:class:`InvalidDraft` otherwise).

    ``updated_at`` is ``now`` — a later submission is a later version; ``created_at`` is the
    draft's ``placed_at``, else ``created_at`` (the ledger's, for an order placed before), else
    ``now``. Lines are keyed by position (``1``, ``2`` …)."""
    problems = validate(draft, number_required=True)
    if problems:
        raise InvalidDraft(problems)
    t = _totals(draft)
    currency = t.currency
    lines = tuple(
        OrderLine(
            external_id=str(i + 1),
            sku=li.sku.strip(),
            title=li.title.strip() or li.sku.strip(),
            quantity=int(li.quantity.strip()),
            unit_price=_money(li.unit_price, currency),
        )
        for i, li in enumerate(draft.lines)
    )
    method = draft.shipping_method.strip()
    shipping = (
        (ShippingLine(title=method, code=method or None, price=t.shipping),) if method or t.shipping.amount else ()
    )
    discounts = (
        (Discount(code=draft.discount_code.strip() or "manual", amount=t.discount, kind="manual"),)
        if t.discount.amount
        else ()
    )
    taxes = (OrderTaxLine(title="Tax", rate=Decimal("0"), amount=t.tax),) if t.tax.amount else ()
    placed = parse_placed_at(draft.placed_at) or created_at or now
    return Order(
        external_id=order_key(draft.number),
        number=normalise_number(draft.number),
        currency=currency,
        created_at=placed,
        updated_at=now,
        payment_status=PaymentStatus(draft.payment_status.strip().lower() or DEFAULT_PAYMENT_STATUS),
        fulfilment_status=FulfilmentStatus.UNFULFILLED,
        lines=lines,
        subtotal=t.subtotal,
        total_tax=t.tax,
        total=t.total,
        shipping_lines=shipping,
        discounts=discounts,
        taxes=taxes,
        processed_at=placed,
        email=draft.email.strip(),
        customer_name=draft.customer_name.strip(),
        shipping_address=_address(draft.shipping_address),
        tags=tuple(t.strip() for t in draft.tags if t.strip()),
        note=draft.note,
        custom_fields=tuple((k.strip(), v) for k, v in draft.custom_fields),
        raw={"manual": {"source": source.as_dict(), "draft": draft_as_json(draft)}},
    )


# --- from JSON (the API's body, the CLI's file) -------------------------------------------------------------
_DRAFT_FIELDS = {
    "number", "currency", "email", "customer_name", "shipping_address", "shipping_method", "shipping_price", "tax",
    "discount", "discount_code", "payment_status", "note", "tags", "custom_fields", "placed_at", "lines",
}  # fmt: skip
_LINE_FIELDS = {"sku", "title", "quantity", "unit_price"}


def _scalar(path: str, value: Any, found: list[Problem]) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        found.append(
            _problem(
                path,
                str(value).lower(),
                "wrong_type",
                "A true/false value is not allowed here.",
                "Give a text or a number.",
            )
        )
        return ""
    if isinstance(value, (str, int, Decimal)):
        return str(value)
    if isinstance(value, float):
        found.append(
            _problem(
                path,
                repr(value),
                "wrong_type",
                "A binary floating-point number cannot be money.",
                'Send the amount as a string, e.g. "19.90".',
            )
        )
        return ""
    found.append(
        _problem(
            path, type(value).__name__, "wrong_type", "A text or a number is expected here.", "Give a text or a number."
        )
    )
    return ""


def _unknown(path: str, data: Mapping[str, Any], known: set[str], found: list[Problem]) -> None:
    for key in sorted(set(data) - known):
        found.append(
            _problem(
                f"{path}{key}",
                "",
                "unknown_field",
                f"{key!r} is not a field of an order.",
                f"Remove it; the fields are: {', '.join(sorted(known))}.",
            )
        )


def draft_from_json(data: Any) -> tuple[Draft, list[Problem]]:
    """A draft from JSON data (numbers parsed as Decimal, or strings), and the problems of its
    *shape* (unknown fields, wrong types): :func:`validate` then checks its values."""
    found: list[Problem] = []
    if not isinstance(data, Mapping):
        return Draft(), [
            _problem(
                "",
                type(data).__name__,
                "wrong_type",
                "The order must be a JSON object.",
                'Send an object like {"currency": "EUR", "lines": [...]}.',
            )
        ]
    _unknown("", data, _DRAFT_FIELDS, found)
    lines: list[DraftLine] = []
    raw_lines = data.get("lines") or []
    if not isinstance(raw_lines, list):
        found.append(
            _problem(
                "lines",
                type(raw_lines).__name__,
                "wrong_type",
                "The lines must be a list.",
                'Send "lines": [{"sku": …, "quantity": …, "unit_price": …}].',
            )
        )
        raw_lines = []
    for i, item in enumerate(raw_lines):
        if not isinstance(item, Mapping):
            found.append(
                _problem(
                    f"lines[{i}]",
                    type(item).__name__,
                    "wrong_type",
                    "A line must be an object.",
                    'Send {"sku": …, "quantity": …, "unit_price": …}.',
                )
            )
            continue
        _unknown(f"lines[{i}].", item, _LINE_FIELDS, found)
        lines.append(DraftLine(**{k: _scalar(f"lines[{i}].{k}", item.get(k), found) for k in sorted(_LINE_FIELDS)}))
    address = None
    raw_address = data.get("shipping_address")
    if isinstance(raw_address, Mapping):
        _unknown("shipping_address.", raw_address, set(DraftAddress.__slots__), found)
        address = DraftAddress(
            **{k: _scalar(f"shipping_address.{k}", raw_address.get(k), found) for k in DraftAddress.__slots__}
        )
    elif raw_address is not None:
        found.append(
            _problem(
                "shipping_address",
                type(raw_address).__name__,
                "wrong_type",
                "The shipping address must be an object.",
                'Send {"name": …, "city": …, …}.',
            )
        )
    tags = data.get("tags") or []
    if not isinstance(tags, list):
        found.append(
            _problem(
                "tags",
                type(tags).__name__,
                "wrong_type",
                "The tags must be a list of texts.",
                'Send "tags": ["wholesale", "phone"].',
            )
        )
        tags = []
    custom = data.get("custom_fields") or {}
    pairs: list[tuple[str, str]] = []
    if isinstance(custom, Mapping):
        pairs = [(str(k), _scalar(f"custom_fields.{k}", v, found)) for k, v in custom.items()]
    elif isinstance(custom, list) and all(isinstance(p, list) and len(p) == 2 for p in custom):
        pairs = [(str(k), _scalar(f"custom_fields[{i}]", v, found)) for i, (k, v) in enumerate(custom)]
    else:
        found.append(
            _problem(
                "custom_fields",
                type(custom).__name__,
                "wrong_type",
                "The custom fields must be an object of names and values.",
                'Send "custom_fields": {"po_number": "4711"}.',
            )
        )
    scalars = {
        k: _scalar(k, data.get(k), found)
        for k in _DRAFT_FIELDS - {"lines", "shipping_address", "tags", "custom_fields"}
    }
    draft = Draft(
        lines=tuple(lines),
        shipping_address=address,
        tags=tuple(_scalar(f"tags[{i}]", t, found) for i, t in enumerate(tags)),
        custom_fields=tuple(pairs),
        **scalars,
    )
    return draft, found


#: the largest JSON draft accepted (a 1,000-line order is about 150 KB)
MAX_JSON_BYTES = 1_048_576
JSON_LIMITS = boundedjson.JsonLimits(max_depth=6, max_values=20_000, max_members=2_000, max_string_chars=20_000)


class UnreadableDraft(InvalidInput):
    """The bytes are not a JSON draft (empty, too large, not JSON)."""

    code = "invalid_order"


def parse_json_draft(body: bytes) -> Draft:
    """A draft from a JSON document (the API's body, the CLI's file): numbers are read as
    ``Decimal``, exactly. :class:`UnreadableDraft` when the bytes are not JSON within the limits,
    :class:`InvalidDraft` for the problems of its shape (then :func:`validate` checks its values)."""
    if len(body) > MAX_JSON_BYTES:
        raise UnreadableDraft(
            f"the order has {len(body):,} bytes; one order may have at most {MAX_JSON_BYTES:,}",
            hint="Send one order of at most 1,000 lines; import larger batches from a CSV file.",
        )
    if not body.strip():
        raise UnreadableDraft(
            "the order is empty", hint='Write the order as JSON: {"currency": "EUR", "lines": [...]}.'
        )
    try:
        boundedjson.loads(body, JSON_LIMITS)
        data = json.loads(body.decode(), parse_float=Decimal)
    except boundedjson.JsonRefused as exc:
        raise UnreadableDraft(f"the order is not JSON OrderBridge takes: {exc.message}", hint=exc.hint) from None
    draft, problems = draft_from_json(data)
    if problems:
        raise InvalidDraft(problems)
    return draft
