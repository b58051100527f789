"""The CSV and XML layouts, read back with the stdlib's own readers: every value exact, money as
decimals beside their currency, dates ISO 8601 UTC, and hostile outside text kept as data."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from orderbridge.connectors.file_export import layouts
from orderbridge.domain.money import Money
from orderbridge.domain.order import Order
from tests.connectors.contract_destination import make_order, outgoing

HOSTILE = [
    '=HYPERLINK("http://evil","x")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\tTab",
    "</Title><Injected/>",
    "a & b < c > d \" ' ;,|",
    "line one\r\nline two\nthree",
    "bell\x07, esc\x1b and vertical tab\x0b (NUL never gets here: the pipeline holds it)",
    "Ünïcødé ✓ 𝄞 日本",
]


def _item(order: Order, position: int = 1) -> layouts.Item:
    o = outgoing(order)
    return layouts.Item(o.order_key, position, o.resolved)


def _hostile(n: int, text: str) -> Order:
    order = make_order(n)
    line = msgspec.structs.replace(order.lines[0], title=text)
    return msgspec.structs.replace(order, lines=(line, *order.lines[1:]), note=text, customer_name=text)


def test_the_default_csv_has_one_row_per_line_and_reads_back_exactly() -> None:
    order = make_order(3, lines=2)
    template = layouts.Template.from_setting({})
    text = layouts.render_csv([_item(order)], template)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert list(rows[0]) == list(layouts.DEFAULT_COLUMNS)
    assert [r["line_id"] for r in rows] == ["3-L0", "3-L1"]
    first = rows[0]
    assert first["order_number"] == "#1003" and first["order_id"] == "gid://shop/Order/3"
    assert first["created_at"] == "2025-03-01T12:03:00Z"
    assert first["currency"] == "USD"
    assert Decimal(first["unit_price"]) == order.lines[0].unit_price.amount
    assert Decimal(rows[1]["line_total"]) == order.lines[1].unit_price.amount * 2
    assert Decimal(first["total"]) == order.total.amount and first["total"] == format(order.total.amount, "f")
    assert text.endswith("\r\n")


def test_a_template_picks_the_columns_their_headers_the_separator_and_the_encoding() -> None:
    template = layouts.Template.from_setting(
        {
            "columns": [
                {"field": "order_number", "header": "Référence"},
                "sku",
                {"field": "quantity", "header": "Qté"},
            ],
            "separator": ";",
            "encoding": "cp1252",
        }
    )
    order = _hostile(1, "Crème brûlée")
    data = layouts.render_csv([_item(order)], template).encode(template.encoding)
    rows = list(csv.reader(io.StringIO(data.decode("cp1252"), newline=""), delimiter=";"))
    assert rows[0] == ["Référence", "sku", "Qté"]
    assert rows[1] == ["#1001", "WH-TEE-001", "1"]  # the destination SKU: the mapping applies
    headerless = layouts.Template.from_setting({"columns": ["order_number"], "header": False})
    assert layouts.render_csv([_item(order)], headerless).splitlines() == ["#1001", "#1001"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_is_data_in_csv_and_formulas_are_neutralised(text: str) -> None:
    template = layouts.Template.from_setting({"columns": ["title", "note", "customer_name", "quantity", "total"]})
    out = layouts.render_csv([_item(_hostile(1, text))], template)
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert len(rows) == 2  # the embedded line breaks stay inside their quoted cell
    cell = rows[0]["title"]
    if text[:1] in "=+-@\t\r":
        assert cell == "'" + text
    else:
        assert cell == text
    assert rows[0]["note"] == cell and rows[0]["customer_name"] == cell
    assert rows[0]["quantity"] == "1"  # numbers are never prefixed


def test_amounts_quantities_and_dates_are_never_prefixed_and_stay_exact() -> None:
    """Only outside text is neutralised: a number the hub writes (a negative adjustment one day)
    stays a number, exact and never in exponent form."""
    numeric = {
        "subtotal",
        "total_tax",
        "shipping_total",
        "discount_total",
        "total",
        "quantity",
        "unit_price",
        "line_discount",
        "line_tax",
        "line_total",
        "created_at",
        "updated_at",
        "processed_at",
        "document_id",
    }
    assert all(not layouts.FIELDS[name][1] for name in numeric)
    assert layouts.amount(Money(Decimal("-5.00"), "USD")) == "-5.00"
    assert layouts.amount(Money(Decimal("1E+3"), "USD")) == "1000"
    assert layouts.amount(Money(Decimal("0.10"), "EUR")) == "0.10"


def test_the_xml_layout_reads_back_with_elementtree() -> None:
    orders = [make_order(1, lines=2), make_order(2, lines=1)]
    template = layouts.Template.from_setting({})
    generated = datetime(2025, 3, 2, 8, 30, tzinfo=UTC)
    data = layouts.render_xml([_item(o, i) for i, o in enumerate(orders, start=1)], template, generated=generated)
    assert data.startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    root = ET.fromstring(data)
    assert root.tag == "Orders" and root.get("generated") == "2025-03-02T08:30:00Z" and root.get("count") == "2"
    first, second = root.findall("Order")
    assert (first.get("key"), first.get("position"), second.get("position")) == ("ob-1", "1", "2")
    assert first.findtext("Number") == "#1001" and first.findtext("CreatedAt") == "2025-03-01T12:01:00Z"
    total = first.find("Total")
    assert total is not None and total.get("currency") == "USD" and Decimal(total.text or "") == orders[0].total.amount
    lines = first.findall("Lines/Line")
    assert [ln.get("id") for ln in lines] == ["1-L0", "1-L1"]
    assert lines[1].findtext("Quantity") == "2"
    price = lines[1].find("UnitPrice")
    assert price is not None and Decimal(price.text or "") == Decimal("20.99") and price.get("currency") == "USD"
    assert first.findtext("ShipTo/City") == "Portland"


def test_xml_element_names_come_from_the_template() -> None:
    template = layouts.Template.from_setting(
        {"xml_elements": {"Orders": "Invoices", "Order": "Invoice", "Sku": "ItemCode"}}
    )
    root = ET.fromstring(layouts.render_xml([_item(make_order(1))], template, generated=datetime.now(UTC)))
    assert root.tag == "Invoices" and root.find("Invoice/Lines/Line/ItemCode") is not None


@pytest.mark.parametrize("text", HOSTILE)
@pytest.mark.parametrize("encoding", ["utf-8", "cp1252"])
def test_hostile_text_is_data_in_xml_and_the_file_is_always_well_formed(text: str, encoding: str) -> None:
    template = layouts.Template.from_setting({"encoding": encoding})
    data = layouts.render_xml([_item(_hostile(1, text))], template, generated=datetime.now(UTC))
    root = ET.fromstring(data)  # raises if ill-formed
    (order,) = root.findall("Order")
    assert len(root) == 1 and order.find("Injected") is None
    expected = layouts.xml_text(text)
    # XML normalises a CR LF to LF when it reads text back
    assert order.findtext("Note") == expected.replace("\r\n", "\n")
    assert order.findtext("Lines/Line/Title") == expected.replace("\r\n", "\n")
    if "\x07" in text:
        assert "\ufffd" in (order.findtext("Note") or "")


def test_a_value_the_csv_encoding_cannot_hold_is_named() -> None:
    template = layouts.Template.from_setting({"encoding": "cp1252"})
    item = _item(_hostile(1, "日本"))
    with pytest.raises(layouts.Unencodable) as refused:
        layouts.check_encodable(layouts.item_text(item, template, "csv"), template.encoding)
    assert refused.value.value == "日本"
    layouts.check_encodable(layouts.item_text(item, template, "xml"), template.encoding)  # XML carries it


def test_what_was_sent_is_kept_per_order_for_the_order_page(tmp_path: Path) -> None:
    """Decision 108: the attempt keeps what went out — the order's rows (CSV) or its element (XML)."""
    from tests.connectors.file_export.env import build

    (tmp_path / "c").mkdir()
    (csv_result,) = build(tmp_path / "c", template={"columns": ["order_number", "sku"]}).post_orders(
        [outgoing(make_order(1))]
    )
    assert csv_result.sent is not None and csv_result.sent["rows"][0] == {"order_number": "#1001", "sku": "WH-TEE-001"}
    (tmp_path / "x").mkdir()
    (xml_result,) = build(tmp_path / "x", layout="xml").post_orders([outgoing(make_order(2))])
    assert xml_result.sent is not None
    assert ET.fromstring(xml_result.sent["xml"]).findtext("Number") == "#1002"
