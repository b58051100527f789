"""How the Square sandbox prices an order: line gross, discounts, service charges, percentage taxes.

Square computes every amount itself from what the order names — a tax is only ever a percentage,
its ``applied_money`` is Square's, never the caller's — so this module is the heart of the
emulation of failure #1 in ``api-facts.md`` ("payment total does not match order total").

The rules, as Square's developer documentation and its staff's forum answers state them:

- **Rounding is Bankers' Rounding** (half to even, on the currency's minor unit): 0.585 → 0.58,
  0.705 → 0.70, but 3.5485 → 3.55 (only an exact half goes to even). ``ROUND_HALF_EVEN`` below.
- **A tax is computed once over everything it applies to** (its "bucket": the taxable amounts of
  the lines it applies to, after discounts, plus taxable service charges) and rounded once; the
  forum's 8.875 % example (15.00 + 8.00 + 6.95 + 6.95 → 3.27, where rounding per line gives
  3.28) and Square's own Japan guide (per-rate-bucket calculation with ``scope: ORDER``) show it.
  The rounded amount is then spread over the lines (largest remainder) for their
  ``applied_taxes``. Whether Square rounds per line in some configurations could not be confirmed,
  so ``tax_rounding="per_line"`` is a sandbox setting (``api-facts.md``'s (?) rule).
- ``ADDITIVE`` taxes are added on top; ``INCLUSIVE`` taxes are carved out of the price
  (``base × p / (100 + p)``) and not added to the total.
- Discounts come before taxes: a ``FIXED_AMOUNT`` or ``FIXED_PERCENTAGE`` discount of scope
  ``LINE_ITEM`` reduces the lines naming it; one of scope ``ORDER`` is spread over every line in
  proportion to its gross (largest remainder), never below zero.
- Service charges in ``SUBTOTAL_PHASE`` are added with their ``amount_money`` (or percentage of
  the subtotal); a ``taxable`` one takes the order-scoped taxes.

Written by hand, apart from the connector's copy (``connectors/square/mapper.py``), on purpose: a
test that posts through the connector then proves that the connector predicts what Square computes,
not that it agrees with itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

#: ISO 4217 minor units of the currencies Square sells in that have none (the rest have two)
ZERO_DECIMAL = frozenset({"JPY", "KRW"})

Json = dict[str, Any]


class PricingError(ValueError):
    """A request Square refuses while pricing it: ``code`` and ``field`` of Square's error."""

    def __init__(self, code: str, detail: str, field: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.field = field


def minor(currency: str) -> int:
    return 0 if currency in ZERO_DECIMAL else 2


def round_minor(value: Decimal, mode: str = ROUND_HALF_EVEN) -> int:
    """An amount in minor units (already scaled), rounded to a whole unit."""
    return int(value.quantize(Decimal(1), rounding=mode))


def spread(total: int, weights: Sequence[Decimal]) -> list[int]:
    """``total`` minor units over ``weights``, in proportion, summing exactly (largest remainder)."""
    whole = sum(weights, Decimal(0))
    if whole == 0 or not weights:
        return [0 for _ in weights]
    shares = [Decimal(total) * w / whole for w in weights]
    floors = [int(s.to_integral_value(rounding="ROUND_FLOOR")) for s in shares]
    left = total - sum(floors)
    order = sorted(range(len(weights)), key=lambda i: (-(shares[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return floors


def decimal_text(value: Any, field: str) -> Decimal:
    if not isinstance(value, str):
        raise PricingError("INVALID_VALUE", f"Expected a string for {field.rsplit('.', 1)[-1]}.", field)
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise PricingError("INVALID_VALUE", f"Invalid decimal value {value!r}.", field) from None
    if not number.is_finite():
        raise PricingError("INVALID_VALUE", f"Invalid decimal value {value!r}.", field)
    return number


def money_amount(value: Any, field: str, currency: str) -> int:
    if not isinstance(value, Mapping) or not isinstance(value.get("amount"), int) or isinstance(value["amount"], bool):
        raise PricingError("INVALID_VALUE", "Expected a money object with an integer amount.", field)
    if value.get("currency") != currency:
        raise PricingError(
            "INVALID_VALUE",
            f"The currency {value.get('currency')!r} does not match the location's currency {currency}.",
            field + ".currency",
        )
    return int(value["amount"])


def money(amount: int, currency: str) -> Json:
    return {"amount": amount, "currency": currency}


@dataclass
class _Line:
    index: int
    uid: str
    gross: int
    discount: int = 0
    tax: int = 0
    inclusive_tax: int = 0
    applied_taxes: list[Json] = field(default_factory=list)
    applied_discounts: list[Json] = field(default_factory=list)


def price(order: Json, currency: str, *, tax_rounding: str = "per_tax") -> Json:
    """Fill in Square's computed amounts on ``order`` (in place) and return it; :class:`PricingError`
    when Square would refuse a line, tax or discount as written. Line base prices must already be
    set (the catalog's price for a catalog line without one)."""
    lines: list[_Line] = []
    raw_lines: list[Json] = order.get("line_items") or []
    for i, item in enumerate(raw_lines):
        where = f"order.line_items[{i}]"
        quantity = decimal_text(item.get("quantity"), where + ".quantity")
        if quantity <= 0 or quantity != quantity.quantize(Decimal("0.00001")):
            raise PricingError("INVALID_VALUE", "Quantity must be positive with at most 5 decimal places.", where)
        base = money_amount(item.get("base_price_money"), where + ".base_price_money", currency)
        if base < 0:
            raise PricingError("INVALID_VALUE", "Line item prices cannot be negative.", where + ".base_price_money")
        gross = round_minor(Decimal(base) * quantity)
        item["gross_sales_money"] = money(gross, currency)
        item["variation_total_price_money"] = money(gross, currency)
        lines.append(_Line(i, str(item["uid"]), gross))

    # --- discounts (before taxes) --------------------------------------------------------------
    for d, discount in enumerate(order.get("discounts") or []):
        where = f"order.discounts[{d}]"
        uid = str(discount["uid"])
        scope = discount.get("scope") or ("LINE_ITEM" if _named_by(raw_lines, "applied_discounts", uid) else "ORDER")
        discount["scope"] = scope
        targets = (
            lines
            if scope == "ORDER"
            else [ln for ln in lines if uid in _uids(raw_lines[ln.index], "applied_discounts")]
        )
        kind = discount.get("type") or ("FIXED_PERCENTAGE" if "percentage" in discount else "FIXED_AMOUNT")
        discount["type"] = kind
        room = [Decimal(max(0, ln.gross - ln.discount)) for ln in targets]
        if kind == "FIXED_AMOUNT":
            amount = min(money_amount(discount.get("amount_money"), where + ".amount_money", currency), int(sum(room)))
        elif kind == "FIXED_PERCENTAGE":
            pct = decimal_text(discount.get("percentage"), where + ".percentage")
            amount = round_minor(sum(room, Decimal(0)) * pct / 100)
        else:
            raise PricingError("INVALID_VALUE", f"Unsupported discount type {kind}.", where + ".type")
        shares = spread(amount, room)
        for ln, share in zip(targets, shares, strict=True):
            ln.discount += share
            ln.applied_discounts.append(
                {"uid": f"{ln.uid}-{uid}", "discount_uid": uid, "applied_money": money(share, currency)}
            )
        discount["applied_money"] = money(amount, currency)

    # --- service charges ------------------------------------------------------------------------
    subtotal = sum(ln.gross - ln.discount for ln in lines)
    charges: list[tuple[Json, int]] = []
    for s, charge in enumerate(order.get("service_charges") or []):
        where = f"order.service_charges[{s}]"
        phase = charge.get("calculation_phase") or "SUBTOTAL_PHASE"
        if phase not in ("SUBTOTAL_PHASE", "TOTAL_PHASE", "APPORTIONED_AMOUNT_PHASE", "APPORTIONED_PERCENTAGE_PHASE"):
            raise PricingError("INVALID_VALUE", f"Invalid calculation phase {phase}.", where + ".calculation_phase")
        charge["calculation_phase"] = phase
        if "amount_money" in charge:
            amount = money_amount(charge["amount_money"], where + ".amount_money", currency)
        elif "percentage" in charge:
            amount = round_minor(Decimal(subtotal) * decimal_text(charge["percentage"], where + ".percentage") / 100)
        else:
            raise PricingError("MISSING_REQUIRED_PARAMETER", "Either amount_money or percentage is required.", where)
        if amount < 0:
            raise PricingError("INVALID_VALUE", "Service charges cannot be negative.", where + ".amount_money")
        charge["applied_money"] = money(amount, currency)
        charge["total_tax_money"] = money(0, currency)
        charges.append((charge, amount))

    # --- taxes ----------------------------------------------------------------------------------
    charge_taxes: dict[int, int] = {}
    additive_total = 0
    inclusive_total = 0
    for t, tax in enumerate(order.get("taxes") or []):
        where = f"order.taxes[{t}]"
        uid = str(tax["uid"])
        pct = decimal_text(tax.get("percentage"), where + ".percentage")
        if pct < 0 or pct > 100:
            raise PricingError("INVALID_VALUE", "Tax percentage must be between 0 and 100.", where + ".percentage")
        kind = tax.get("type") or "ADDITIVE"
        if kind not in ("ADDITIVE", "INCLUSIVE"):
            raise PricingError("INVALID_VALUE", f"Invalid tax type {kind}.", where + ".type")
        tax["type"] = kind
        scope = tax.get("scope") or ("LINE_ITEM" if _named_by(raw_lines, "applied_taxes", uid) else "ORDER")
        tax["scope"] = scope
        targets = (
            lines if scope == "ORDER" else [ln for ln in lines if uid in _uids(raw_lines[ln.index], "applied_taxes")]
        )
        taxed_charges = [(i, c) for i, (c, _) in enumerate(charges) if scope == "ORDER" and c.get("taxable")]
        bases = [Decimal(ln.gross - ln.discount) for ln in targets] + [Decimal(charges[i][1]) for i, _ in taxed_charges]

        def amount_of(base: Decimal, pct: Decimal = pct, kind: str = kind) -> Decimal:
            return base * pct / (100 + pct) if kind == "INCLUSIVE" else base * pct / 100

        if tax_rounding == "per_line":
            parts = [round_minor(amount_of(b)) for b in bases]
            amount = sum(parts)
        else:
            amount = round_minor(amount_of(sum(bases, Decimal(0))))
            parts = spread(amount, bases)
        for ln, part in zip(targets, parts, strict=False):
            if kind == "INCLUSIVE":
                ln.inclusive_tax += part
            else:
                ln.tax += part
            ln.applied_taxes.append({"uid": f"{ln.uid}-{uid}", "tax_uid": uid, "applied_money": money(part, currency)})
        for (i, _), part in zip(taxed_charges, parts[len(targets) :], strict=True):
            charge_taxes[i] = charge_taxes.get(i, 0) + (part if kind == "ADDITIVE" else 0)
            charges[i][0].setdefault("applied_taxes", []).append(
                {"uid": f"sc{i}-{uid}", "tax_uid": uid, "applied_money": money(part, currency)}
            )
        tax["applied_money"] = money(amount, currency)
        if kind == "INCLUSIVE":
            inclusive_total += amount
        else:
            additive_total += amount

    # --- totals ---------------------------------------------------------------------------------
    for ln in lines:
        item = raw_lines[ln.index]
        if ln.applied_taxes:
            item["applied_taxes"] = ln.applied_taxes
        if ln.applied_discounts:
            item["applied_discounts"] = ln.applied_discounts
        item["total_discount_money"] = money(ln.discount, currency)
        item["total_tax_money"] = money(ln.tax + ln.inclusive_tax, currency)
        item["total_money"] = money(ln.gross - ln.discount + ln.tax, currency)
    charge_total = 0
    for i, (charge, amount) in enumerate(charges):
        tax = charge_taxes.get(i, 0)
        charge["total_tax_money"] = money(tax, currency)
        charge["total_money"] = money(amount + tax, currency)
        charge_total += amount
    discount_total = sum(ln.discount for ln in lines)
    total = sum(ln.gross - ln.discount + ln.tax for ln in lines) + charge_total + sum(charge_taxes.values())
    order["total_money"] = money(total, currency)
    order["total_tax_money"] = money(additive_total + inclusive_total, currency)
    order["total_discount_money"] = money(discount_total, currency)
    order["total_service_charge_money"] = money(charge_total, currency)
    order["total_tip_money"] = money(0, currency)
    return order


def _uids(item: Mapping[str, Any], key: str) -> set[str]:
    ref = {"applied_taxes": "tax_uid", "applied_discounts": "discount_uid"}[key]
    return {str(a.get(ref)) for a in item.get(key) or [] if isinstance(a, Mapping)}


def _named_by(items: Sequence[Mapping[str, Any]], key: str, uid: str) -> bool:
    return any(uid in _uids(item, key) for item in items)
