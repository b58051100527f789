"""The two file layouts a file-export destination writes — CSV and XML — and the template that
shapes them per connection (``docs/connectors/file-export.md`` documents both precisely).

Why hand-written rather than a library: the stdlib already does the hard parts — :mod:`csv`
quotes separators, quotes and line breaks; :mod:`xml.etree.ElementTree` escapes ``<``, ``&`` and
quotes — and what is left is exactly what no library knows: which order field goes in which
column, the template's names, money as an exact decimal beside its currency, dates as ISO 8601
UTC, and two defences for the outside text an order carries:

- a CSV cell that starts like a spreadsheet formula (``=``, ``+``, ``-``, ``@``, tab, CR) is
  prefixed with an apostrophe, as every CSV the hub writes (decision 145) — text columns only:
  amounts and quantities are the hub's own numbers, and a negative amount stays a number;
- XML 1.0 cannot carry most control characters at all (ElementTree would write them and produce
  a file no parser reads): each is replaced by U+FFFD, so the file is always well-formed.

A value the file's encoding cannot hold (a ``☃`` in a ``cp1252`` file) is never replaced
silently: :class:`Unencodable` names it and the connector refuses that one order.
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from orderbridge.domain.csv_import.values import neutralise
from orderbridge.domain.money import Money
from orderbridge.domain.order import Address, Order, OrderLine
from orderbridge.domain.pipeline import ResolvedOrder

LAYOUTS = ("csv", "xml")
ENCODINGS = ("utf-8", "utf-8-sig", "cp1252", "iso-8859-1", "utf-16")


class TemplateError(ValueError):
    """A template setting that cannot be used (an unknown field, a bad separator, an XML name that
    is no name)."""


class Unencodable(ValueError):
    """A value the file's encoding cannot represent."""

    def __init__(self, encoding: str, value: str) -> None:
        super().__init__(f"the file's encoding {encoding} cannot hold {value!r}")
        self.encoding = encoding
        self.value = value


def iso(moment: datetime | None) -> str:
    """ISO 8601 in UTC with a ``Z`` (``2025-03-01T12:00:00Z``); empty for no date."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def amount(money: Money | None) -> str:
    """The exact decimal, never in exponent form, never rounded (``19.99``, ``0``, ``-5.00``)."""
    if money is None:
        return ""
    return format(money.amount, "f")


def _sum(values: Sequence[Money], currency: str) -> Money:
    return Money(sum((m.amount for m in values), Decimal("0")), currency)


def _addr(part: str) -> Callable[[Address | None], str]:
    return lambda a: "" if a is None else str(getattr(a, part))


@dataclass(frozen=True, slots=True)
class Row:
    """What one CSV row / one XML line is made from: the order, its position in the file, one line."""

    order_key: str
    position: int
    resolved: ResolvedOrder
    line: OrderLine
    destination_sku: str


_ADDRESS_PARTS = (
    "name",
    "company",
    "address1",
    "address2",
    "city",
    "province_code",
    "postal_code",
    "country_code",
    "phone",
)


def _order_fields() -> dict[str, tuple[Callable[[Row], str], bool]]:
    """field name → (getter, is text). Text fields are neutralised in CSV; the others are numbers,
    dates and codes the hub itself writes."""
    o: Callable[[Row], Order] = lambda r: r.resolved.order  # noqa: E731
    fields: dict[str, tuple[Callable[[Row], str], bool]] = {
        "document_id": (lambda r: str(r.position), False),
        "order_key": (lambda r: r.order_key, True),
        "order_id": (lambda r: o(r).external_id, True),
        "order_number": (lambda r: o(r).number, True),
        "created_at": (lambda r: iso(o(r).created_at), False),
        "processed_at": (lambda r: iso(o(r).processed_at), False),
        "updated_at": (lambda r: iso(o(r).updated_at), False),
        "currency": (lambda r: o(r).currency, False),
        "payment_status": (lambda r: o(r).payment_status.value, False),
        "email": (lambda r: o(r).email, True),
        "customer_name": (lambda r: o(r).customer_name, True),
        "subtotal": (lambda r: amount(o(r).subtotal), False),
        "total_tax": (lambda r: amount(o(r).total_tax), False),
        "shipping_total": (lambda r: amount(_sum([s.price for s in o(r).shipping_lines], o(r).currency)), False),
        "discount_total": (lambda r: amount(_sum([d.amount for d in o(r).discounts], o(r).currency)), False),
        "total": (lambda r: amount(o(r).total), False),
        "shipping_method": (lambda r: o(r).shipping_lines[0].title if o(r).shipping_lines else "", True),
        "shipping_service": (
            lambda r: (
                "" if r.resolved.service is None else f"{r.resolved.service.carrier}:{r.resolved.service.service}"
            ),
            True,
        ),
        "note": (lambda r: o(r).note, True),
        "tags": (lambda r: ", ".join(o(r).tags), True),
        "line_id": (lambda r: r.line.external_id, True),
        "sku": (lambda r: r.destination_sku, True),
        "channel_sku": (lambda r: r.line.sku or "", True),
        "title": (lambda r: r.line.title, True),
        "quantity": (lambda r: str(r.line.open_quantity), False),
        "unit_price": (lambda r: amount(r.line.unit_price), False),
        "line_discount": (lambda r: amount(r.line.discount), False),
        "line_tax": (lambda r: amount(r.line.tax), False),
        "line_total": (
            lambda r: amount(Money(r.line.unit_price.amount * r.line.open_quantity, r.line.unit_price.currency)),
            False,
        ),
    }
    for prefix, pick in (("ship", lambda r: o(r).shipping_address), ("bill", lambda r: o(r).billing_address)):
        for part in _ADDRESS_PARTS:
            get = _addr(part)
            fields[f"{prefix}_{part}"] = ((lambda r, g=get, p=pick: g(p(r))), True)  # type: ignore[misc]
    return fields


#: every field a CSV template may name, in the documented order
FIELDS: Mapping[str, tuple[Callable[[Row], str], bool]] = _order_fields()

#: the CSV columns when the template names none: one row per order line
DEFAULT_COLUMNS: tuple[str, ...] = (
    "order_number",
    "order_id",
    "created_at",
    "customer_name",
    "email",
    "currency",
    "line_id",
    "sku",
    "title",
    "quantity",
    "unit_price",
    "line_total",
    "shipping_total",
    "total_tax",
    "total",
    "ship_name",
    "ship_address1",
    "ship_city",
    "ship_postal_code",
    "ship_country_code",
)

#: the XML element names a template may rename (default name → itself)
XML_ELEMENTS: tuple[str, ...] = (
    "Orders",
    "Order",
    "Number",
    "OrderId",
    "CreatedAt",
    "Currency",
    "Customer",
    "Name",
    "Email",
    "ShipTo",
    "BillTo",
    "Company",
    "Address1",
    "Address2",
    "City",
    "Province",
    "PostalCode",
    "Country",
    "Phone",
    "Lines",
    "Line",
    "Sku",
    "ChannelSku",
    "Title",
    "Quantity",
    "UnitPrice",
    "LineTotal",
    "Discount",
    "Tax",
    "ShippingMethod",
    "Shipping",
    "Subtotal",
    "TotalTax",
    "Total",
    "Note",
)
_XML_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class Template:
    """How one connection's files look (its ``template`` setting, read by :meth:`from_setting`)."""

    columns: tuple[tuple[str, str], ...]  # (field, header)
    separator: str = ","
    encoding: str = "utf-8"
    header: bool = True
    elements: Mapping[str, str] | None = None

    @classmethod
    def from_setting(cls, value: Any) -> Template:
        """``{"columns": ["order_number", {"field": "sku", "header": "Item"}], "separator": ";",
        "encoding": "cp1252", "header": true, "xml_elements": {"Order": "Invoice"}}`` — every key
        optional."""
        data = dict(value or {})
        unknown = sorted(set(data) - {"columns", "separator", "encoding", "header", "xml_elements"})
        if unknown:
            raise TemplateError(f"unknown template keys: {', '.join(unknown)}")
        columns: list[tuple[str, str]] = []
        for spec in data.get("columns") or DEFAULT_COLUMNS:
            if isinstance(spec, str):
                name, header = spec, spec
            elif isinstance(spec, Mapping) and isinstance(spec.get("field"), str):
                name = spec["field"]
                header = str(spec.get("header") or name)
            else:
                raise TemplateError(f"a column is a field name or {{'field', 'header'}}, not {spec!r}")
            if name not in FIELDS:
                raise TemplateError(f"unknown field {name!r} (known: {', '.join(FIELDS)})")
            columns.append((name, header))
        separator = str(data.get("separator", ","))
        if separator not in (",", ";", "\t", "|"):
            raise TemplateError(f"separator {separator!r}: use one of , ; | or a tab")
        encoding = str(data.get("encoding", "utf-8")).lower()
        if encoding not in ENCODINGS:
            raise TemplateError(f"encoding {encoding!r}: use one of {', '.join(ENCODINGS)}")
        elements = dict(data.get("xml_elements") or {})
        for old, new in elements.items():
            if old not in XML_ELEMENTS:
                raise TemplateError(f"unknown XML element {old!r} (known: {', '.join(XML_ELEMENTS)})")
            if not isinstance(new, str) or not _XML_NAME.match(new) or new.lower().startswith("xml"):
                raise TemplateError(f"{new!r} is not an XML element name")
        return cls(tuple(columns), separator, encoding, bool(data.get("header", True)), elements)

    def element(self, name: str) -> str:
        return (self.elements or {}).get(name, name)


@dataclass(frozen=True, slots=True)
class Item:
    """One order going into a file, at its position (1-based)."""

    order_key: str
    position: int
    resolved: ResolvedOrder


def rows_of(item: Item) -> list[Row]:
    """One row per line sent (the open lines the pipeline resolved), with the destination's SKU."""
    by_key = {line.external_id: line for line in item.resolved.order.lines}
    return [
        Row(item.order_key, item.position, item.resolved, by_key[r.line_key], r.destination_sku)
        for r in item.resolved.lines
        if r.line_key in by_key
    ]


def check_encodable(text: str, encoding: str) -> None:
    try:
        text.encode(encoding)
    except UnicodeEncodeError as exc:
        raise Unencodable(encoding, exc.object[exc.start : exc.end]) from None


# --- CSV ----------------------------------------------------------------------------------------


def csv_cells(row: Row, template: Template) -> list[str]:
    cells = []
    for name, _header in template.columns:
        get, is_text = FIELDS[name]
        value = get(row)
        cells.append(neutralise(value) if is_text else value)
    return cells


def render_csv(items: Sequence[Item], template: Template, *, with_header: bool | None = None) -> str:
    """The CSV text: the header row (unless the template turns it off), then one row per line of
    each item, in position order. ``\\r\\n`` line ends (RFC 4180); every cell quoted only when it
    must be."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=template.separator, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    if template.header if with_header is None else with_header:
        writer.writerow([neutralise(h) for _, h in template.columns])
    for item in items:
        for row in rows_of(item):
            writer.writerow(csv_cells(row, template))
    return out.getvalue()


# --- XML ----------------------------------------------------------------------------------------

_XML_INVALID = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: str) -> str:
    """``value`` as XML 1.0 can carry it: characters it forbids become U+FFFD."""
    return _XML_INVALID.sub("\ufffd", value)


def _sub(parent: ET.Element, template: Template, name: str, text: str, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, template.element(name), {k: xml_text(v) for k, v in attrs.items()})
    el.text = xml_text(text)
    return el


def _money(parent: ET.Element, template: Template, name: str, money: Money | None) -> None:
    if money is not None:
        _sub(parent, template, name, amount(money), currency=money.currency)


def _address(parent: ET.Element, template: Template, name: str, a: Address | None) -> None:
    if a is None:
        return
    el = ET.SubElement(parent, template.element(name))
    for part, element in (
        ("name", "Name"),
        ("company", "Company"),
        ("address1", "Address1"),
        ("address2", "Address2"),
        ("city", "City"),
        ("province_code", "Province"),
        ("postal_code", "PostalCode"),
        ("country_code", "Country"),
        ("phone", "Phone"),
    ):
        _sub(el, template, element, str(getattr(a, part)))


def order_element(parent: ET.Element, item: Item, template: Template) -> ET.Element:
    order = item.resolved.order
    el = ET.SubElement(
        parent, template.element("Order"), {"key": xml_text(item.order_key), "position": str(item.position)}
    )
    _sub(el, template, "Number", order.number)
    _sub(el, template, "OrderId", order.external_id)
    _sub(el, template, "CreatedAt", iso(order.created_at))
    _sub(el, template, "Currency", order.currency)
    customer = ET.SubElement(el, template.element("Customer"))
    _sub(customer, template, "Name", order.customer_name)
    _sub(customer, template, "Email", order.email)
    _address(el, template, "ShipTo", order.shipping_address)
    _address(el, template, "BillTo", order.billing_address)
    lines = ET.SubElement(el, template.element("Lines"))
    for row in rows_of(item):
        line = ET.SubElement(lines, template.element("Line"), {"id": xml_text(row.line.external_id)})
        _sub(line, template, "Sku", row.destination_sku)
        _sub(line, template, "ChannelSku", row.line.sku or "")
        _sub(line, template, "Title", row.line.title)
        _sub(line, template, "Quantity", str(row.line.open_quantity))
        _money(line, template, "UnitPrice", row.line.unit_price)
        _money(
            line,
            template,
            "LineTotal",
            Money(row.line.unit_price.amount * row.line.open_quantity, row.line.unit_price.currency),
        )
        _money(line, template, "Discount", row.line.discount)
        _money(line, template, "Tax", row.line.tax)
    if order.shipping_lines:
        _sub(el, template, "ShippingMethod", order.shipping_lines[0].title)
    _money(el, template, "Shipping", _sum([s.price for s in order.shipping_lines], order.currency))
    _money(el, template, "Discount", _sum([d.amount for d in order.discounts], order.currency))
    _money(el, template, "Subtotal", order.subtotal)
    _money(el, template, "TotalTax", order.total_tax)
    _money(el, template, "Total", order.total)
    _sub(el, template, "Note", order.note)
    return el


def order_xml(item: Item, template: Template) -> str:
    """One order's element as text (what the attempt keeps as sent, decision 108)."""
    text: str = ET.tostring(order_element(ET.Element("Orders"), item, template), encoding="unicode")
    return text


def render_xml(items: Sequence[Item], template: Template, *, generated: datetime) -> bytes:
    """The XML document, encoded with its declaration (``<Orders generated="…">`` holding one
    ``<Order key position>`` per item)."""
    root = ET.Element(template.element("Orders"), {"generated": iso(generated), "count": str(len(items))})
    for item in items:
        order_element(root, item, template)
    ET.indent(root)
    # ElementTree escapes every character the encoding lacks as a character reference (&#9731;),
    # which is exact, so an XML file takes any order whatever its encoding
    encoding = "utf-8" if template.encoding == "utf-8-sig" else template.encoding  # no BOM label in XML
    data: bytes = ET.tostring(root, encoding=encoding, xml_declaration=True)
    return data


def item_text(item: Item, template: Template, layout: str) -> str:
    """Everything of ``item`` its file would carry, as text: what :func:`check_encodable` reads to
    refuse, before writing, an order the encoding cannot hold."""
    if layout == "xml":
        return ""  # character references carry anything (see render_xml)
    return render_csv([item], template, with_header=False)
