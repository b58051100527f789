"""Pure mapping between OrderBridge's domain and QuickBooks Online JSON (no I/O, no clock).

A sales document (``SalesReceipt`` or ``Invoice``, per connection) is built from an order version:

- one ``SalesItemLineDetail`` line per order line — **every** line, fulfilled or not (accounting
  records the sale, not what is left to ship) — with the QBO ``ItemRef`` the connector resolved
  from the line's *destination* SKU (the hub's SKU mapping, or the channel's SKU unchanged),
  ``Qty``, ``UnitPrice`` and ``Amount = Qty × UnitPrice`` (QBO refuses any other Amount), and the
  taxable or the non-taxable ``TaxCodeRef`` (a line with tax takes the taxable code);
- one line per shipping line on the shipping item (QBO's ``SHIPPING_ITEM_ID`` by default);
- one ``DiscountLineDetail`` line for the order's discounts (line discounts and order discounts,
  as an amount, on the connection's discount account when it names one);
- ``TxnTaxDetail.TotalTax``: the order's tax as the channel charged it (QBO would otherwise compute
  its own, which can differ by the channel's rounding);
- ``DocNumber`` from the order number (:func:`doc_number`), ``TxnDate`` the order's date in UTC,
  ``CustomerRef``, ``BillEmail``, ``BillAddr``/``ShipAddr``, ``CustomerMemo`` from the order note,
  and ``PrivateNote`` carrying :func:`marker` — the hub's order key and idempotency key, which is
  how :meth:`find_document` recognises a document as the hub's.

Money stays ``Decimal`` (serialised by :mod:`orderbridge.exactjson`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from orderbridge.connectors.base import OutgoingOrder
from orderbridge.domain.money import Money
from orderbridge.domain.order import Address, Order

Json = dict[str, Any]

#: QBO's limits (its entity reference): DocNumber 21 characters, PrivateNote 4000, memo 1000,
#: line descriptions 4000, address lines 500, customer display names 500
DOC_NUMBER_MAX = 21
PRIVATE_NOTE_MAX = 4000
MEMO_MAX = 1000
DESCRIPTION_MAX = 4000
ADDRESS_MAX = 500
DISPLAY_NAME_MAX = 500
MARKER = "OrderBridge"


def doc_number(number: str) -> str:
    """The DocNumber of an order number: the number without a leading ``#`` and surrounding blanks
    (``#1001`` → ``1001``). May be longer than :data:`DOC_NUMBER_MAX`: the connector holds such an
    order rather than cut it (a cut number could be another order's)."""
    return number.strip().lstrip("#").strip()


def refund_doc_number(number: str, key: str) -> str:
    """A RefundReceipt's DocNumber: the sales document's number, ``-R`` and four hex digits of the
    adjustment's key — deterministic, distinct per refund, at most 21 characters."""
    suffix = "-R" + hashlib.sha256(key.encode()).hexdigest()[:4]
    return number[: DOC_NUMBER_MAX - len(suffix)] + suffix


def marker(order_key: str, idempotency_key: str) -> str:
    """The note that marks a document as the hub's (read back by :func:`marked_key`)."""
    return f"{MARKER} {order_key} {idempotency_key}"


def marked_key(doc: Mapping[str, Any]) -> tuple[str, str] | None:
    """(order key, idempotency key) of the hub's marker in the document's private note, if any."""
    note = str(doc.get("PrivateNote") or "")
    at = note.find(MARKER + " ")
    if at < 0:
        return None
    parts = note[at + len(MARKER) + 1 :].split()
    return (parts[0], parts[1]) if len(parts) >= 2 else None


def is_voided(doc: Mapping[str, Any]) -> bool:
    return str(doc.get("PrivateNote") or "").startswith("Voided")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def address(value: Address | None) -> Json | None:
    if value is None:
        return None
    lines = [v for v in (value.name, value.company, value.address1, value.address2) if v]
    out: Json = {f"Line{i}": _cut(v, ADDRESS_MAX) for i, v in enumerate(lines[:5], start=1)}
    out.update(
        {
            k: v
            for k, v in (
                ("City", value.city),
                ("CountrySubDivisionCode", value.province_code),
                ("PostalCode", value.postal_code),
                ("Country", value.country_code),
            )
            if v
        }
    )
    return out or None


def _name(text: str) -> str:
    """QBO refuses a colon, a tab or a line break in a name (the colon nests sub-customers)."""
    return " ".join(text.replace(":", "-").split())


def display_name(order: Order) -> str:
    """The customer's QBO display name (unique in a company): the name, else the e-mail."""
    return _cut(_name(order.customer_name or order.email or "") or "Web customer", DISPLAY_NAME_MAX)


def display_name_with_email(order: Order) -> str:
    """The display name to create when :func:`display_name` is another customer's: ``Name (e-mail)``."""
    return _cut(f"{display_name(order)} ({order.email})", DISPLAY_NAME_MAX)


def customer_body(order: Order, name: str) -> Json:
    body: Json = {"DisplayName": name}
    if order.email:
        body["PrimaryEmailAddr"] = {"Address": order.email}
    billing = address(order.billing_address or order.shipping_address)
    if billing:
        body["BillAddr"] = billing
    return body


@dataclass(frozen=True, slots=True)
class Refs:
    """The QBO references a document needs, resolved by the connector."""

    customer_id: str
    #: destination SKU → Item Id
    items: Mapping[str, str]
    shipping_item: str
    tax_code: str
    untaxed_code: str
    discount_account: str | None = None
    deposit_account: str | None = None
    payment_method: str | None = None


def _ref(value: str) -> Json:
    return {"value": value}


def _discounts(order: Order) -> Decimal:
    lines = sum((line.discount.amount for line in order.lines if line.discount is not None), Decimal("0"))
    return lines + sum((d.amount.amount for d in order.discounts), Decimal("0"))


def sales_body(outgoing: OutgoingOrder, refs: Refs, *, entity: str, number: str) -> Json:
    """The create (or full update) body of the order's sales document."""
    resolved = outgoing.resolved
    order = resolved.order
    skus = {line.line_key: line.destination_sku for line in resolved.lines}
    lines: list[Json] = []
    for line in order.lines:
        sku = skus.get(line.external_id, line.sku or "")
        amount = (line.unit_price.amount * line.quantity).quantize(Decimal("0.01"))
        lines.append(
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": amount,
                "Description": _cut(line.title, DESCRIPTION_MAX),
                "SalesItemLineDetail": {
                    "ItemRef": _ref(refs.items[sku]),
                    "Qty": line.quantity,
                    "UnitPrice": line.unit_price.amount,
                    "TaxCodeRef": _ref(refs.tax_code if line.tax and line.tax.amount else refs.untaxed_code),
                },
            }
        )
    for ship in order.shipping_lines:
        if ship.price.amount == 0:
            continue
        lines.append(
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": ship.price.amount,
                "Description": _cut(ship.title, DESCRIPTION_MAX),
                "SalesItemLineDetail": {
                    "ItemRef": _ref(refs.shipping_item),
                    "Qty": 1,
                    "UnitPrice": ship.price.amount,
                    "TaxCodeRef": _ref(refs.untaxed_code),
                },
            }
        )
    discount = _discounts(order)
    if discount:
        detail: Json = {"PercentBased": False}
        if refs.discount_account:
            detail["DiscountAccountRef"] = _ref(refs.discount_account)
        lines.append({"DetailType": "DiscountLineDetail", "Amount": discount, "DiscountLineDetail": detail})
    body: Json = {
        "DocNumber": number,
        "TxnDate": order.created_at.date().isoformat(),
        "CurrencyRef": _ref(order.currency),
        "CustomerRef": _ref(refs.customer_id),
        "Line": lines,
        "TxnTaxDetail": {"TotalTax": order.total_tax.amount},
        "GlobalTaxCalculation": "TaxExcluded",
        "PrivateNote": _cut(marker(outgoing.order_key, outgoing.idempotency_key), PRIVATE_NOTE_MAX),
    }
    if order.email:
        body["BillEmail"] = {"Address": order.email}
    for key, value in (
        ("BillAddr", order.billing_address or order.shipping_address),
        ("ShipAddr", order.shipping_address),
    ):
        mapped = address(value)
        if mapped:
            body[key] = mapped
    if order.note:
        body["CustomerMemo"] = {"value": _cut(order.note, MEMO_MAX)}
    if entity == "SalesReceipt":
        if refs.deposit_account:
            body["DepositToAccountRef"] = _ref(refs.deposit_account)
        if refs.payment_method:
            body["PaymentMethodRef"] = _ref(refs.payment_method)
    return body


def refund_body(
    *, customer_id: str, number: str, amount: Money, reason: str, item: str, account: str, note: str
) -> Json:
    """A RefundReceipt for ``amount``: one line on ``item``, paid out of ``account``."""
    return {
        "DocNumber": number,
        "CustomerRef": _ref(customer_id),
        "CurrencyRef": _ref(amount.currency),
        "DepositToAccountRef": _ref(account),
        "Line": [
            {
                "DetailType": "SalesItemLineDetail",
                "Amount": amount.amount,
                "Description": _cut(reason, DESCRIPTION_MAX),
                "SalesItemLineDetail": {"ItemRef": _ref(item), "Qty": 1, "UnitPrice": amount.amount},
            }
        ],
        "PrivateNote": _cut(note, PRIVATE_NOTE_MAX),
    }


@dataclass(frozen=True, slots=True)
class QboFault:
    status: int
    code: str
    message: str
    detail: str
    element: str

    def text(self) -> str:
        return f"{self.message} (code {self.code})" + (f": {self.detail}" if self.detail else "")


def fault(status: int, body: Any) -> QboFault:
    """The first error of a QBO ``Fault`` body (or a plain description of whatever came back)."""
    errors = body.get("Fault", {}).get("Error") if isinstance(body, Mapping) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        e = errors[0]
        return QboFault(
            status,
            str(e.get("code", "")),
            str(e.get("Message", "")),
            str(e.get("Detail", "")),
            str(e.get("element", "")),
        )
    return QboFault(status, "", f"HTTP {status}", str(body)[:300] if body else "", "")


def one(body: Any, entity: str) -> Json | None:
    doc = body.get(entity) if isinstance(body, Mapping) else None
    return doc if isinstance(doc, dict) else None


def found(body: Any, entity: str) -> list[Json]:
    response = body.get("QueryResponse") if isinstance(body, Mapping) else None
    docs = response.get(entity) if isinstance(response, Mapping) else None
    return [d for d in docs if isinstance(d, dict)] if isinstance(docs, list) else []


def quoted(value: str) -> str:
    """A value as a QBO query literal (``'`` escaped with a backslash)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def money(doc: Mapping[str, Any], currency: str) -> Money | None:
    total = doc.get("TotalAmt")
    if total is None:
        return None
    ref = doc.get("CurrencyRef")
    code = ref.get("value") if isinstance(ref, Mapping) and ref.get("value") else currency
    return Money(Decimal(str(total)), str(code))
