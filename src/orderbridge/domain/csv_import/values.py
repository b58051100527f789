"""Reading one cell into a typed value: money as ``Decimal``, quantities as ``int``, dates as aware
UTC ``datetime``, codes upper-cased and checked. Each reader returns the value or raises
:class:`CellProblem` saying what is wrong and how to write it instead; none guesses.

Two choices a spreadsheet forces:

- **A comma as the decimal mark.** A semicolon-separated file usually comes from a spreadsheet set to
  a language that writes ``12,50``, so ``12,50`` is read as 12.50. A comma followed by three digits
  (``1,000``) could be a thousands separator, so it is refused as ambiguous rather than read as 1.
- **Dates without an offset** are read as UTC (documented), since the file has no other time zone
  to go by; a date alone is its midnight UTC.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from orderbridge.domain import limits
from orderbridge.domain.csv_import.countries import ALPHA_2, HINTS
from orderbridge.domain.csv_import.spec import Kind

_PLAIN_AMOUNT = re.compile(r"\d{1,18}(?:\.\d{1,6})?\Z")
_AMOUNT = re.compile(r"-?\d+(?:[.,]\d+)?\Z")
_COMMA_THOUSANDS = re.compile(r"-?\d{1,3},\d{3}\Z")
_INTEGER = re.compile(r"\d+\Z")
_CURRENCY = re.compile(r"[A-Za-z]{3}\Z")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")
_SYMBOLS = "$€£¥₹"
#: what a cell can hold that a spreadsheet would run as a formula (OWASP's list)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class CellProblem(ValueError):
    def __init__(self, code: str, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.code = code
        self.problem = problem
        self.fix = fix


def money(text: str) -> Decimal:
    raw = text.strip()
    if _PLAIN_AMOUNT.match(raw):  # the usual case, "12.50": straight to the checks
        return _checked_amount(Decimal(raw))
    if any(s in raw for s in _SYMBOLS):
        raise CellProblem(
            "amount_invalid",
            "is not a plain amount: it has a currency symbol",
            "Write the amount without a symbol (12.50); the currency goes in the currency column.",
        )
    candidate = raw.replace(" ", "").replace("\u00a0", "")
    if _COMMA_THOUSANDS.match(candidate):
        raise CellProblem(
            "amount_ambiguous",
            "is ambiguous: the comma may separate thousands or decimals",
            "Write the amount with a period as the decimal mark and no thousands separator (1000 or 1.000).",
        )
    if not _AMOUNT.match(candidate):
        raise CellProblem(
            "amount_invalid",
            "is not an amount",
            "Write a decimal amount with a period as the decimal mark, without thousands separators: 1250.00.",
        )
    try:
        amount = Decimal(candidate.replace(",", "."))
    except InvalidOperation as exc:  # the pattern admits only digits; kept for safety
        raise CellProblem("amount_invalid", "is not an amount", "Write a decimal amount: 12.50.") from exc
    return _checked_amount(amount)


def _checked_amount(amount: Decimal) -> Decimal:
    if amount < 0:
        raise CellProblem(
            "amount_negative",
            "is negative",
            "Write the amount as a positive number (a discount goes in the discount column).",
        )
    if amount > limits.MAX_AMOUNT:
        raise CellProblem(
            "amount_too_large", f"is over the largest amount accepted ({limits.MAX_AMOUNT:,.0f})", "Check the amount."
        )
    if not limits.fits_column(amount):
        raise CellProblem(
            "amount_too_precise",
            f"has more than {limits.MONEY_DECIMAL_PLACES} decimal places",
            f"Round the amount to at most {limits.MONEY_DECIMAL_PLACES} decimal places.",
        )
    return amount


def quantity(text: str) -> int:
    raw = text.strip()
    if not _INTEGER.match(raw):
        if re.fullmatch(r"\d+[.,]0+", raw):
            return quantity(raw.split(".")[0].split(",")[0])
        raise CellProblem(
            "quantity_invalid",
            "is not a whole number of units",
            f"Write the quantity as a whole number from {limits.MIN_QUANTITY} to {limits.MAX_QUANTITY:,}, e.g. 2.",
        )
    n = int(raw)
    if n < limits.MIN_QUANTITY:
        raise CellProblem(
            "quantity_invalid",
            "is not at least 1",
            "A line ships at least one unit: write 1 or more, or remove the row.",
        )
    if n > limits.MAX_QUANTITY:
        raise CellProblem("quantity_invalid", f"is over {limits.MAX_QUANTITY:,}", "Check the quantity.")
    return n


def date(text: str) -> datetime:
    raw = text.strip()
    try:
        value = datetime.fromisoformat(raw.replace(" ", "T", 1) if len(raw) > 10 else raw)
    except ValueError as exc:
        raise CellProblem(
            "date_invalid",
            "is not an ISO 8601 date",
            "Write the date as YYYY-MM-DD (2026-11-30) or with a time, 2026-11-30T14:05:00+01:00.",
        ) from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def country(text: str) -> str:
    code = text.strip().upper()
    if code in ALPHA_2:
        return code
    better = HINTS.get(code)
    raise CellProblem(
        "country_invalid",
        "is not an ISO 3166-1 alpha-2 country code",
        f"Write the two-letter code: {better}." if better else "Write the two-letter country code, e.g. US, FR, DE.",
    )


def currency(text: str) -> str:
    code = text.strip()
    if not _CURRENCY.match(code):
        raise CellProblem(
            "currency_invalid", "is not an ISO 4217 currency code", "Write the three-letter code, e.g. EUR, USD, GBP."
        )
    return code.upper()


def email(text: str) -> str:
    value = text.strip()
    if len(value) > limits.EMAIL.max_chars or not _EMAIL.match(value):
        raise CellProblem(
            "email_invalid",
            "is not an e-mail address",
            "Write one address like ana@example.com, or leave the cell empty.",
        )
    return value


def tags(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def text_value(text: str) -> str:
    return text.strip()


#: the reader of each kind of cell
READERS: dict[Kind, Callable[[str], object]] = {
    Kind.TEXT: text_value,
    Kind.MONEY: money,
    Kind.QUANTITY: quantity,
    Kind.DATE: date,
    Kind.COUNTRY: country,
    Kind.CURRENCY: currency,
    Kind.EMAIL: email,
    Kind.TAGS: tags,
}


def read(kind: Kind, text: str) -> object:
    """The cell ``text`` (not empty) read as ``kind``."""
    return READERS[kind](text)


def looks_like_formula(text: str) -> bool:
    """Would a spreadsheet run this cell? (It is kept as text here; see :func:`neutralise`.)"""
    return text.startswith(FORMULA_START)


def neutralise(cell: str) -> str:
    """A cell safe to write into a CSV a spreadsheet will open: one that starts like a formula gets a
    leading apostrophe, which spreadsheets show as text (OWASP's CSV-injection advice)."""
    return "'" + cell if looks_like_formula(cell) else cell
