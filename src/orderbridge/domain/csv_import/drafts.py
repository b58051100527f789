"""An imported order's rows as a :class:`~orderbridge.domain.manual.Draft`, and a draft's problems
pointed back at the rows and columns they came from.

The reader has already typed every cell (amounts as ``Decimal``, dates as UTC); the draft takes
them back as the canonical text (``"12.50"``, ``"2026-11-30T13:05:00+00:00"``) so that a file's
order and a form's order are validated by the very same :func:`~orderbridge.domain.manual.validate`
and built by the same :func:`~orderbridge.domain.manual.build_record` (decision 142).
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from orderbridge.domain.csv_import.problems import RowError
from orderbridge.domain.csv_import.reader import ImportOrder
from orderbridge.domain.manual import Draft, DraftAddress, DraftLine, Problem

#: the draft's address fields ← the file's columns
ADDRESS_COLUMNS = {
    "name": "ship_name",
    "company": "ship_company",
    "address1": "ship_address1",
    "address2": "ship_address2",
    "city": "ship_city",
    "province_code": "ship_province",
    "postal_code": "ship_postal_code",
    "country_code": "ship_country",
    "phone": "ship_phone",
}
#: the draft's order-level fields ← the file's columns (where the names differ)
FIELD_COLUMNS = {"number": "order_number", "email": "customer_email"}
_INDEXED = re.compile(r"(\w+)\[(\d+)\](?:\.(\w+))?\Z")


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def to_draft(order: ImportOrder) -> Draft:
    f = order.fields
    address = None
    if any(column in f for column in ADDRESS_COLUMNS.values()):
        address = DraftAddress(**{name: _text(f.get(column)) for name, column in ADDRESS_COLUMNS.items()})
    tags = f.get("tags")
    return Draft(
        lines=tuple(
            DraftLine(sku=ln.sku, title=ln.title, quantity=str(ln.quantity), unit_price=_text(ln.unit_price))
            for ln in order.lines
        ),
        number=order.number,
        currency=_text(f.get("currency")),
        email=_text(f.get("customer_email")),
        customer_name=_text(f.get("customer_name")),
        shipping_address=address,
        shipping_method=_text(f.get("shipping_method")),
        shipping_price=_text(f.get("shipping_price")),
        tax=_text(f.get("tax")),
        discount=_text(f.get("discount")),
        discount_code=_text(f.get("discount_code")),
        payment_status=_text(f.get("payment_status")),
        note=_text(f.get("note")),
        tags=tuple(tags) if isinstance(tags, tuple) else (),
        custom_fields=order.custom,
        placed_at=_text(f.get("placed_at")),
    )


def where(order: ImportOrder, field: str) -> tuple[int, str]:
    """The (row, column) a draft's field path (``lines[2].quantity``, ``shipping_address.city``) came from."""
    indexed = _INDEXED.match(field)
    if indexed:
        name, index, attribute = indexed.group(1), int(indexed.group(2)), indexed.group(3)
        if name == "lines" and index < len(order.lines):
            return order.lines[index].row, attribute or ""
        if name == "custom_fields" and index < len(order.custom):
            column = "custom." + order.custom[index][0]
            return order.field_rows.get(column, order.first_row), column
        column = name
    elif field.startswith("shipping_address."):
        column = ADDRESS_COLUMNS.get(field.split(".", 1)[1], field)
    else:
        column = FIELD_COLUMNS.get(field, field)
    return order.field_rows.get(column, order.first_row), column


def row_errors(order: ImportOrder, problems: list[Problem] | tuple[Problem, ...]) -> tuple[RowError, ...]:
    """A draft's problems as row errors of the order's rows."""
    out: list[RowError] = []
    for p in problems:
        row, column = where(order, p.field)
        out.append(RowError(row, column, p.value, p.code, p.message, p.fix))
    return tuple(out)
