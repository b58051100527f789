"""Pure mapping between OrderBridge's orders and Heartland Retail's sales JSON (no I/O, no clock).

:func:`sale_from` turns an :class:`OutgoingOrder` into a :class:`Sale`: what Heartland is asked to
hold for it, in Heartland's terms — one line per open order line (the destination SKU is the
Item #, ``public_id``; a line discount lowers the *adjusted* unit price, cent-rounded as Heartland
keeps prices), the order's taxes as tax entries, its order-level discounts, and its shipping.
:meth:`Sale.pos_total` is the total Heartland computes from those parts, which
:func:`total_problem` compares with the channel's within a cent (a line discount that does not
divide by the quantity cannot be reproduced by a per-unit price: the sale is held with both
figures rather than posted with a wrong total).

Money stays ``Decimal`` (sent as JSON numbers through :mod:`orderbridge.exactjson`).

Documents: a posted sale's id is ``order:<id>`` (a sales order) or ``ticket:<id>`` (a completed
ticket) — :func:`document_id` / :func:`parse_document`; :func:`pos_state` says where it stands and
whether stock moved (api-facts (e): a pending order moves nothing until invoiced, an open one only
*commits* stock, an invoice or a completed ticket reduces on-hand).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from orderbridge.connectors.base import OutgoingOrder, PosDocumentState
from orderbridge.domain.order import Address, Order
from orderbridge.domain.pipeline import open_lines

Json = dict[str, Any]
CENT = Decimal("0.01")
ZERO = Decimal("0")
#: the documents a connector makes, by the prefix of their id
ORDER, TICKET = "order", "ticket"


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class SaleLine:
    line_key: str
    #: the Item # (``public_id``) the line is sold as
    item: str
    qty: int
    original: Decimal
    adjusted: Decimal
    description: str
    #: the channel's discount on the whole line (what ``adjusted`` spreads over the units)
    discount: Decimal = ZERO
    #: the line's properties (``name → value``): where a required line custom field may come from
    properties: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Sale:
    public_id: str
    currency: str
    lines: tuple[SaleLine, ...]
    taxes: tuple[tuple[str, Decimal], ...]
    discounts: tuple[tuple[str, Decimal], ...]
    shipping: Decimal
    #: the channel's total of what is posted, None when it cannot be compared (part already fulfilled)
    channel_total: Decimal | None

    @property
    def pos_total(self) -> Decimal:
        """The total Heartland computes from these parts (lines at their adjusted price, cent-rounded)."""
        lines = sum((cents(line.adjusted * line.qty) for line in self.lines), ZERO)
        taxes = sum((value for _, value in self.taxes), ZERO)
        discounts = sum((value for _, value in self.discounts), ZERO)
        return cents(lines + taxes + self.shipping - discounts)

    @property
    def adjusted(self) -> bool:
        return any(line.adjusted != line.original for line in self.lines)


def public_id(order: Order, fmt: str) -> str:
    """The sale's ``public_id`` in Heartland: the channel order's number (``{number}``, ``#`` kept;
    ``{digits}`` is the number without its ``#``)."""
    return fmt.format(number=order.number, digits=order.number.lstrip("#"))


def sale_from(outgoing: OutgoingOrder, *, public_id_format: str = "{number}") -> Sale:
    resolved = outgoing.resolved
    order = resolved.order
    by_key = {line.external_id: line for line in open_lines(order)}
    lines: list[SaleLine] = []
    partial = False
    for resolved_line in resolved.lines:
        line = by_key[resolved_line.line_key]
        qty = line.open_quantity
        partial = partial or qty != line.quantity
        unit = cents(line.unit_price.amount)
        discount = line.discount.amount if line.discount is not None else ZERO
        adjusted = cents(unit - discount / line.quantity) if discount else unit
        lines.append(
            SaleLine(
                line_key=line.external_id,
                item=resolved_line.destination_sku,
                qty=qty,
                original=unit,
                adjusted=adjusted,
                description=line.title,
                discount=cents(discount),
                properties=line.properties,
            )
        )
    if order.taxes:
        taxes = tuple((tax.title or "Tax", cents(tax.amount.amount)) for tax in order.taxes if tax.amount.amount)
    else:
        taxes = (("Tax", cents(order.total_tax.amount)),) if order.total_tax.amount else ()
    discounts = tuple((d.code or "Discount", cents(d.amount.amount)) for d in order.discounts if d.amount.amount)
    return Sale(
        public_id=public_id(order, public_id_format),
        currency=order.currency,
        lines=tuple(lines),
        taxes=taxes if not partial else (),
        discounts=discounts if not partial else (),
        shipping=cents(order.shipping_total.amount),
        channel_total=None if partial else cents(order.total.amount),
    )


def total_problem(sale: Sale) -> str | None:
    """Why Heartland's total would not be the channel's (more than a cent apart), or None."""
    if sale.channel_total is None:
        return None
    if abs(sale.pos_total - sale.channel_total) <= CENT:
        return None
    odd = [line for line in sale.lines if cents(line.adjusted * line.qty) != line.original * line.qty - line.discount]
    if odd:
        return (
            f"a line discount does not divide into whole cents per unit on {len(odd)} line(s), and Heartland keeps "
            "a per-unit adjusted price"
        )
    return "the order's parts (lines, taxes, shipping, discounts) do not add up to its total"


# --- customers --------------------------------------------------------------------------------------


def split_name(name: str) -> tuple[str, str]:
    first, _, last = name.strip().partition(" ")
    return (first, last) if last else ("", first)


def customer_body(order: Order) -> Json:
    name = order.customer_name or (order.shipping_address.name if order.shipping_address else "") or order.email
    first, last = split_name(name)
    return {"first_name": first, "last_name": last or order.email, "email": order.email}


def complete_address(order: Order) -> Address | None:
    """The order's address when Heartland (Mortar's rule) can take it: street, city, postal code and
    country all present; else None."""
    for address in (order.shipping_address, order.billing_address):
        if address is not None and address.address1 and address.city and address.postal_code and address.country_code:
            return address
    return None


def address_body(address: Address) -> Json:
    first, last = split_name(address.name)
    return {
        "first_name": first,
        "last_name": last,
        "line_1": address.address1,
        "line_2": address.address2 or None,
        "city": address.city,
        "state": address.province_code or None,
        "postal_code": address.postal_code,
        "country": address.country_code,
    }


# --- sales bodies -------------------------------------------------------------------------------------


def order_body(
    sale: Sale,
    *,
    station: Mapping[str, Any],
    customer_id: int | None,
    address_id: int | None,
    sales_rep: str,
    custom: Mapping[str, Any],
) -> Json:
    return {
        "public_id": sale.public_id,
        "status": "pending",
        "station_id": station["id"],
        "source_location_id": station["location_id"],
        "customer_id": customer_id,
        "billing_address_id": address_id,
        "shipping_address_id": address_id,
        "shipping_charge": sale.shipping,
        "sales_rep": sales_rep,
        "custom": dict(custom),
    }


def line_body(
    line: SaleLine, *, item_id: int, location_id: int, custom: Mapping[str, Any], adjustment_reason: str
) -> Json:
    body: Json = {
        "item_id": item_id,
        "qty": line.qty,
        "original_unit_price": line.original,
        "adjusted_unit_price": line.adjusted,
        "total_tax": ZERO,
        "ship_from_location_id": location_id,
        "description": line.description,
    }
    if custom:
        body["custom"] = dict(custom)
    if line.adjusted != line.original and adjustment_reason:
        body["adjustment_reason"] = adjustment_reason
    return body


def ticket_body(
    sale: Sale,
    *,
    items: Mapping[str, int],
    line_custom: Sequence[Mapping[str, Any]],
    helpers: Mapping[str, int],
    station: Mapping[str, Any],
    customer_id: int | None,
    sales_rep: str,
    custom: Mapping[str, Any],
    payment_type_id: int,
    adjustment_reason: str,
) -> Json:
    """The one-call completed ticket: item lines, shipping and order discounts as lines on the
    helper items (``helpers["shipping"]``, ``helpers["discount"]``), the taxes, one external payment."""
    lines: list[Json] = []
    for line, extra in zip(sale.lines, line_custom, strict=True):
        entry: Json = {
            "type": "ItemLine",
            "item_id": items[line.item],
            "qty": line.qty,
            "unit_price": line.adjusted,
            "original_unit_price": line.original,
            "description": line.description,
        }
        if extra:
            entry["custom"] = dict(extra)
        if line.adjusted != line.original and adjustment_reason:
            entry["adjustment_reason"] = adjustment_reason
        lines.append(entry)
    if sale.shipping:
        lines.append(
            {
                "type": "ItemLine",
                "item_id": helpers["shipping"],
                "qty": 1,
                "unit_price": sale.shipping,
                "original_unit_price": sale.shipping,
                "description": "Shipping",
            }
        )
    for description, value in sale.discounts:
        lines.append(
            {
                "type": "ItemLine",
                "item_id": helpers["discount"],
                "qty": 1,
                "unit_price": -value,
                "original_unit_price": -value,
                "description": f"Discount {description}",
            }
        )
    return {
        "public_id": sale.public_id,
        "status": "complete",
        "station_id": station["id"],
        "customer_id": customer_id,
        "sales_rep": sales_rep,
        "custom": dict(custom),
        "item_lines": lines,
        "tax_lines": [{"type": "TaxLine", "description": d, "value": v} for d, v in sale.taxes],
        "payments": [
            {
                "type": "Payments::ExternalPayment",
                "payment_type_id": payment_type_id,
                "amount": sale.pos_total,
                "deposit": False,
            }
        ],
    }


# --- documents ----------------------------------------------------------------------------------------


def document_id(kind: str, record_id: int) -> str:
    return f"{kind}:{record_id}"


def parse_document(document: str) -> tuple[str, int] | None:
    kind, _, number = document.partition(":")
    if kind not in (ORDER, TICKET) or not number.isdigit():
        return None
    return kind, int(number)


def pos_state(
    kind: str, record: Mapping[str, Any], invoices: Sequence[Mapping[str, Any]]
) -> tuple[PosDocumentState, bool]:
    """Where a sale stands and whether Heartland has adjusted on-hand inventory for it."""
    status = str(record.get("status") or "")
    if kind == TICKET:
        if status == "complete":
            return PosDocumentState.COMPLETED, record.get("affect_inventory", True) is not False
        return PosDocumentState.PENDING, False
    if status in ("void", "voided", "cancelled"):
        return PosDocumentState.VOIDED, False
    invoiced = any(i.get("status") == "complete" for i in invoices)
    if status == "closed" or (invoiced and status != "pending"):
        return PosDocumentState.INVOICED, True
    if status == "open":
        return PosDocumentState.OPEN, False
    return PosDocumentState.PENDING, False


def error_text(body: Any, fallback: str) -> str:
    """Heartland's error answer ``{error, message, details}`` in one line (its words: data)."""
    if not isinstance(body, Mapping):
        return str(body)[:300] if body else fallback
    message = str(body.get("message") or body.get("error") or fallback)
    details = body.get("details")
    if isinstance(details, Mapping) and details:
        parts = []
        for field, problems in details.items():
            said = ", ".join(str(p) for p in problems) if isinstance(problems, list) else str(problems)
            parts.append(f"{field} {said}")
        message += " (" + "; ".join(parts) + ")"
    return message[:500]


def custom_keys(body: Any) -> list[str]:
    """The custom fields a validation answer names (``details: {"custom@gift_note": [...]}``)."""
    details = body.get("details") if isinstance(body, Mapping) else None
    if not isinstance(details, Mapping):
        return []
    return sorted(str(k)[len("custom@") :] for k in details if str(k).startswith("custom@"))
