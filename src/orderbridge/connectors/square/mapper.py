"""Pure mapping between OrderBridge's domain and Square's Orders/Payments JSON (no I/O, no clock).

**The order** (``CreateOrder``'s ``order``) for one order version:

- ``reference_id`` = the channel's order number (Square allows 40 characters: a longer one is held,
  never cut — a cut number could be another order's), ``source.name`` "OrderBridge", ``metadata``
  with the hub's order key (how :meth:`find` recognises the hub's orders);
- one line item per open line: by catalog **variation** id when the SKU resolved to one (never an
  item id, failure #4), else — only where the connection allows it — an ad-hoc line (``name`` +
  ``base_price_money``) or the "no product found" helper item; ``base_price_money`` is always the
  channel's unit price, so Square charges what the channel charged;
- a line's own discount as a ``FIXED_AMOUNT`` discount of scope ``LINE_ITEM``; the order's
  discounts as ``FIXED_AMOUNT`` discounts of scope ``ORDER`` (Square spreads them over the lines);
- shipping as a ``service_charge`` (``SUBTOTAL_PHASE``, taxable per setting), or as a line on the
  shipping helper item where the connection says so;
- taxes: Square takes **percentages only** and computes the amounts itself. Each of the order's
  tax lines becomes a tax with its rate (``ADDITIVE``, or ``INCLUSIVE`` for prices that include
  tax), of scope ``ORDER`` when every line is taxed, else ``LINE_ITEM`` on the taxed lines. An
  order that carries tax but no rate (the shared contract's orders, some CSV imports) gets one
  order-level rate derived from its tax cents — the shortest percentage, at most
  :data:`RATE_DECIMALS` decimals, that reproduces them under Square's rounding — when the
  connection allows it (``derive_tax_rate``);
- one ``SHIPMENT`` fulfillment with the recipient, so the order shows in the Dashboard and the POS
  (failure #2: without one an API order is invisible).

**Square's arithmetic, predicted** (:func:`predict`): Bankers' Rounding (half to even) on the minor
unit; each tax computed once over everything it applies to (lines after discounts, taxable service
charges) and rounded once; inclusive taxes carved out as ``base × p / (100 + p)``; order-level
discounts spread by each line's gross. ``docs/connectors/square.md`` cites the sources. This is a
copy, kept apart from the sandbox's (``sandboxes/square/pricing.py``) on purpose: the tests then
prove the connector predicts what Square computes, not that two halves of one function agree.

Money is ``Decimal`` on the domain side and integer minor units on Square's.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

from orderbridge.connectors.base import OutgoingOrder, PosDocument, PosDocumentState
from orderbridge.domain.money import Money
from orderbridge.domain.order import Address, Order, OrderLine

Json = dict[str, Any]

REFERENCE_ID_MAX = 40
PAYMENT_KEY_MAX = 45
ORDER_KEY_MAX = 192
METADATA_VALUE_MAX = 255
NAME_MAX = 512
#: the most decimals a derived tax percentage is given ("8.875" has three)
RATE_DECIMALS = 4
ZERO_DECIMAL = frozenset({"JPY", "KRW"})
SOURCE_NAME = "OrderBridge"


class NotRepresentable(ValueError):
    """An amount with more decimals than the currency has (Square takes whole minor units)."""


def scale(currency: str) -> int:
    return 1 if currency in ZERO_DECIMAL else 100


def to_minor(amount: Money) -> int:
    value = amount.amount * scale(amount.currency)
    if value != value.to_integral_value():
        raise NotRepresentable(f"{amount} has more decimals than {amount.currency} allows")
    return int(value)


def from_minor(amount: int, currency: str) -> Money:
    exponent = Decimal(1) if currency in ZERO_DECIMAL else Decimal("0.01")
    return Money((Decimal(amount) / scale(currency)).quantize(exponent), currency)


def money(amount: Money) -> Json:
    return {"amount": to_minor(amount), "currency": amount.currency}


def percentage(rate: Decimal) -> str:
    """Square's percentage text of a rate (``0.0825`` → ``"8.25"``)."""
    text = format((rate * 100).normalize(), "f")
    return text if text != "-0" else "0"


# --- keys -----------------------------------------------------------------------------------------


def order_key(idempotency_key: str) -> str:
    """CreateOrder's ``idempotency_key``: the posting's own key (stable per order version)."""
    if len(idempotency_key) <= ORDER_KEY_MAX:
        return idempotency_key
    return "ob-" + hashlib.sha256(idempotency_key.encode()).hexdigest()


def payment_key(idempotency_key: str) -> str:
    """CreatePayment's ``idempotency_key`` (at most 45 characters): a digest of the posting's key."""
    return "ob-pay-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[: PAYMENT_KEY_MAX - 7]


def attribute_key(idempotency_key: str, key: str, value: str) -> str:
    return "ob-ca-" + hashlib.sha256(f"{idempotency_key}\x00{key}\x00{value}".encode()).hexdigest()[:40]


def helper_key(sku: str) -> str:
    return "ob-helper-" + hashlib.sha256(sku.encode()).hexdigest()[:32]


# --- the order --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    """What a connection's settings decide about the body (read by the connector, pure here)."""

    location_id: str
    #: "ad_hoc": an unmatched SKU goes as an ad-hoc line; "helper_item": on the no-product helper
    #: item; "hold" (default): never sent (the caller holds it first)
    unmatched_lines: str = "hold"
    shipping_as: str = "service_charge"
    shipping_variation: str | None = None
    no_product_variation: str | None = None
    shipping_taxable: bool = False
    taxes_included: bool = False
    derive_tax_rate: bool = True


@dataclass
class Built:
    body: Json
    #: sentences for the order's timeline (a rate derived, lines sent ad hoc)
    notes: list[str] = field(default_factory=list)


def open_lines(outgoing: OutgoingOrder) -> list[tuple[OrderLine, str]]:
    """(line, destination SKU) of each line the order sends, in order."""
    by_key = {line.external_id: line for line in outgoing.resolved.order.lines}
    return [(by_key[r.line_key], r.destination_sku) for r in outgoing.resolved.lines if r.line_key in by_key]


def build(outgoing: OutgoingOrder, variations: Mapping[str, str | None], options: Options) -> Built:
    """The ``order`` object of CreateOrder; ``variations`` maps each destination SKU to its
    variation id (None: not in the catalog). :class:`NotRepresentable` for an amount Square cannot
    hold."""
    order = outgoing.resolved.order
    notes: list[str] = []
    items: list[Json] = []
    discounts: list[Json] = []
    taxed: list[bool] = []
    ad_hoc: list[str] = []
    for i, (line, sku) in enumerate(open_lines(outgoing)):
        item: Json = {
            "uid": f"l{i}",
            "quantity": str(line.open_quantity),
            "base_price_money": money(line.unit_price),
            "note": _cut(f"SKU {line.sku}" if line.sku else "", 500) or None,
        }
        variation = variations.get(sku)
        if variation is not None:
            item["catalog_object_id"] = variation
        elif options.unmatched_lines == "helper_item" and options.no_product_variation:
            item["catalog_object_id"] = options.no_product_variation
            item["name"] = _cut(line.title or sku, NAME_MAX)
            ad_hoc.append(sku)
        else:
            item["name"] = _cut(line.title or sku, NAME_MAX)
            ad_hoc.append(sku)
        if item["note"] is None:
            del item["note"]
        if line.discount is not None and line.discount.amount:
            uid = f"dl{i}"
            discounts.append(
                {
                    "uid": uid,
                    "name": "Line discount",
                    "type": "FIXED_AMOUNT",
                    "amount_money": money(line.discount),
                    "scope": "LINE_ITEM",
                }
            )
            item["applied_discounts"] = [{"discount_uid": uid}]
        taxed.append(line.tax is None or line.tax.amount != 0)
        items.append(item)
    for j, discount in enumerate(order.discounts):
        if discount.amount.amount:
            discounts.append(
                {
                    "uid": f"d{j}",
                    "name": _cut(discount.code or "Discount", 255),
                    "type": "FIXED_AMOUNT",
                    "amount_money": money(discount.amount),
                    "scope": "ORDER",
                }
            )
    charges: list[Json] = []
    for k, ship in enumerate(order.shipping_lines):
        if options.shipping_as == "helper_item" and options.shipping_variation:
            items.append(
                {
                    "uid": f"s{k}",
                    "catalog_object_id": options.shipping_variation,
                    "name": _cut(ship.title or "Shipping", NAME_MAX),
                    "quantity": "1",
                    "base_price_money": money(ship.price),
                }
            )
            taxed.append(options.shipping_taxable)
        else:
            charges.append(
                {
                    "uid": f"s{k}",
                    "name": _cut(ship.title or "Shipping", 255),
                    "amount_money": money(ship.price),
                    "calculation_phase": "SUBTOTAL_PHASE",
                    "taxable": options.shipping_taxable,
                }
            )
    body: Json = {
        "location_id": options.location_id,
        "reference_id": order.number,
        "source": {"name": SOURCE_NAME},
        "metadata": {"ob_order_key": _cut(outgoing.order_key, METADATA_VALUE_MAX)},
        "line_items": items,
        "state": "OPEN",
        "fulfillments": [fulfillment(order)],
    }
    if discounts:
        body["discounts"] = discounts
    if charges:
        body["service_charges"] = charges
    taxes = _taxes(order, body, taxed, options, notes)
    if taxes:
        body["taxes"] = taxes
    if ad_hoc:
        notes.append(
            f"Square: {len(ad_hoc)} line(s) sent without a catalog variation ({', '.join(sorted(set(ad_hoc)))}): "
            "Square does not move stock for them"
        )
    return Built(body, notes)


def _taxes(order: Order, body: Json, taxed: list[bool], options: Options, notes: list[str]) -> list[Json]:
    kind = "INCLUSIVE" if options.taxes_included else "ADDITIVE"
    every = all(taxed)
    rated = [t for t in order.taxes if t.rate]
    taxes: list[Json] = []
    if rated:
        for j, tax in enumerate(rated):
            taxes.append(
                {
                    "uid": f"t{j}",
                    "name": _cut(tax.title or "Tax", 255),
                    "percentage": percentage(tax.rate),
                    "type": kind,
                    "scope": "ORDER" if every else "LINE_ITEM",
                }
            )
    elif order.total_tax.amount and options.derive_tax_rate:
        want = to_minor(order.total_tax)
        trial = {
            **body,
            "taxes": [{"uid": "t0", "percentage": "0", "type": kind, "scope": "ORDER" if every else "LINE_ITEM"}],
        }
        base = _tax_base(trial, "t0", taxed)
        found = derive_rate(want, base, kind)
        if found is None:
            return []  # no percentage reproduces the cents: the totals check holds it
        taxes.append(
            {"uid": "t0", "name": "Tax", "percentage": found, "type": kind, "scope": "ORDER" if every else "LINE_ITEM"}
        )
        notes.append(
            f"Square: the channel gave the tax amount without a rate; {found}% reproduces its {order.total_tax}"
        )
    if taxes and not every:
        for item, is_taxed in zip(body["line_items"], taxed, strict=True):
            if is_taxed:
                item["applied_taxes"] = [{"tax_uid": t["uid"]} for t in taxes]
    return taxes


def derive_rate(want: int, base: int, kind: str = "ADDITIVE") -> str | None:
    """The shortest percentage (≤ :data:`RATE_DECIMALS` decimals) whose tax on ``base`` minor units,
    rounded half to even, is ``want`` minor units; None when there is none."""
    if base <= 0:
        return None
    for decimals in range(0, RATE_DECIMALS + 1):
        step = Decimal(1).scaleb(-decimals)
        if kind == "INCLUSIVE":
            exact = Decimal(want) * 100 / (Decimal(base) - Decimal(want)) if base > want else None
        else:
            exact = Decimal(want) * 100 / Decimal(base)
        if exact is None:
            return None
        for candidate in (
            exact.quantize(step, rounding=ROUND_FLOOR),
            exact.quantize(step, rounding=ROUND_FLOOR) + step,
        ):
            if _tax(Decimal(base), candidate, kind) == want:
                return format(candidate.normalize(), "f")
    return None


def _tax(base: Decimal, pct: Decimal, kind: str) -> int:
    amount = base * pct / (100 + pct) if kind == "INCLUSIVE" else base * pct / 100
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def fulfillment(order: Order) -> Json:
    address = order.shipping_address or order.billing_address or Address()
    recipient: Json = {
        "display_name": _cut(address.name or order.customer_name or order.email or "Online customer", 255)
    }
    if order.email:
        recipient["email_address"] = order.email
    if address.phone:
        recipient["phone_number"] = address.phone
    parts = {
        "address_line_1": address.address1,
        "address_line_2": address.address2,
        "locality": address.city,
        "administrative_district_level_1": address.province_code,
        "postal_code": address.postal_code,
        "country": address.country_code,
    }
    shown = {k: v for k, v in parts.items() if v}
    if shown:
        recipient["address"] = shown
    return {"type": "SHIPMENT", "state": "PROPOSED", "shipment_details": {"recipient": recipient}}


# --- Square's arithmetic ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Predicted:
    tax: int
    total: int


def _spread(total: int, weights: Sequence[int]) -> list[int]:
    whole = sum(weights)
    if whole <= 0:
        return [0 for _ in weights]
    shares = [Decimal(total) * w / whole for w in weights]
    floors = [int(s.to_integral_value(rounding=ROUND_FLOOR)) for s in shares]
    for i in sorted(range(len(weights)), key=lambda i: (-(shares[i] - floors[i]), i))[: total - sum(floors)]:
        floors[i] += 1
    return floors


def _nets(body: Json) -> list[int]:
    """Each line's amount after its discounts, as Square spreads them."""
    items = body.get("line_items") or []
    gross = [
        int((Decimal(i["base_price_money"]["amount"]) * Decimal(i["quantity"])).quantize(Decimal(1), ROUND_HALF_EVEN))
        for i in items
    ]
    nets = list(gross)
    for discount in body.get("discounts") or []:
        uid = discount["uid"]
        targets = (
            list(range(len(items)))
            if discount.get("scope") == "ORDER"
            else [
                n for n, i in enumerate(items) if uid in {a["discount_uid"] for a in i.get("applied_discounts") or []}
            ]
        )
        room = [max(0, nets[n]) for n in targets]
        amount = min(int(discount["amount_money"]["amount"]), sum(room))
        for n, share in zip(targets, _spread(amount, room), strict=True):
            nets[n] -= share
    return nets


def _tax_base(body: Json, uid: str, taxed: Sequence[bool] | None = None) -> int:
    nets = _nets(body)
    tax = next(t for t in body.get("taxes") or [] if t["uid"] == uid)
    items = body.get("line_items") or []
    if tax.get("scope") == "ORDER":
        charged = [int(c["amount_money"]["amount"]) for c in body.get("service_charges") or [] if c.get("taxable")]
        return sum(nets) + sum(charged)
    if taxed is not None:
        return sum(n for n, t in zip(nets, taxed, strict=True) if t)
    return sum(
        n for n, i in zip(nets, items, strict=True) if uid in {a["tax_uid"] for a in i.get("applied_taxes") or []}
    )


def predict(body: Json) -> Predicted:
    """What Square will compute for ``body``: its total tax and total, in minor units."""
    nets = _nets(body)
    charges = sum(int(c["amount_money"]["amount"]) for c in body.get("service_charges") or [])
    additive = inclusive = 0
    for tax in body.get("taxes") or []:
        amount = _tax(Decimal(_tax_base(body, tax["uid"])), Decimal(tax["percentage"]), tax.get("type", "ADDITIVE"))
        if tax.get("type") == "INCLUSIVE":
            inclusive += amount
        else:
            additive += amount
    return Predicted(additive + inclusive, sum(nets) + charges + additive)


# --- reading Square back ---------------------------------------------------------------------------


def document(order: Mapping[str, Any]) -> PosDocument:
    """A Square order as the hub shows it: its state, and whether Square has moved stock for it.

    Square's states: ``DRAFT`` and unpaid ``OPEN`` are "pending" (no stock moved: Square decrements
    inventory when an order is paid); ``OPEN`` and paid in full is open — paid, its SHIPMENT
    fulfillment still to be marked in the POS — with stock moved; ``COMPLETED`` is completed, stock
    moved; ``CANCELED`` is voided (nothing moved, or moved back). "Stock moved" means Square has
    adjusted inventory for every line it tracks: a line on a variation without ``track_inventory``,
    or an ad-hoc line, has no stock to move (the posting's notes name the lines sent ad hoc)."""
    state = str(order.get("state") or "")
    due = int((order.get("net_amount_due_money") or {}).get("amount", 1) or 0)
    paid = bool(order.get("tenders")) and due == 0
    if state == "COMPLETED":
        mapped, moved = PosDocumentState.COMPLETED, True
    elif state == "CANCELED":
        mapped, moved = PosDocumentState.VOIDED, False
    elif state == "OPEN" and paid:
        mapped, moved = PosDocumentState.OPEN, True
    else:
        mapped, moved = PosDocumentState.PENDING, False
    total = order.get("total_money") or {}
    return PosDocument(
        str(order.get("id")),
        mapped,
        moved,
        number=str(order.get("reference_id") or "") or None,
        total=from_minor(int(total["amount"]), str(total["currency"])) if "amount" in total else None,
    )


@dataclass(frozen=True, slots=True)
class SquareProblem:
    status: int
    category: str
    code: str
    detail: str
    field: str

    def text(self) -> str:
        where = f" (field {self.field})" if self.field else ""
        return f"{self.code}: {self.detail}{where}"


def problem(status: int, body: Any) -> SquareProblem:
    """The first of Square's errors in ``body`` (what HTTP status follows)."""
    errors = body.get("errors") if isinstance(body, Mapping) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], Mapping) else {}
    return SquareProblem(
        status,
        str(first.get("category") or ""),
        str(first.get("code") or f"HTTP_{status}"),
        str(first.get("detail") or (body if isinstance(body, str) else "") or "no detail given")[:500],
        str(first.get("field") or ""),
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
