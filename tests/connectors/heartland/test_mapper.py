"""The pure Heartland mapping: what a sale holds, the total Heartland computes, where a document stands."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orderbridge.connectors.base import PosDocumentState
from orderbridge.connectors.heartland import HeartlandDestination, mapper
from orderbridge.domain.money import Money
from orderbridge.errors import SettingsError
from tests.builders import replace
from tests.connectors.contract_destination import make_order, outgoing
from tests.connectors.heartland.env import HL_POLICY


def test_a_sale_carries_the_open_lines_as_items_the_taxes_and_shipping_and_totals_as_the_channel() -> None:
    order = outgoing(make_order(1), policy=HL_POLICY)
    sale = mapper.sale_from(order)
    assert sale.public_id == "#1001"
    assert [(li.item, li.qty, li.original, li.adjusted) for li in sale.lines] == [
        ("WH-TEE-001", 1, Decimal("19.99"), Decimal("19.99")),
        ("SKU-1", 2, Decimal("20.99"), Decimal("20.99")),
    ]
    assert sale.taxes == (("Tax", Decimal("1.10")),) and sale.shipping == Decimal("4.95")
    assert sale.pos_total == sale.channel_total == order.resolved.order.total.amount
    assert mapper.total_problem(sale) is None
    assert mapper.sale_from(order, public_id_format="web-{digits}").public_id == "web-1001"


def test_a_partly_fulfilled_order_is_sold_for_what_is_open_and_not_compared() -> None:
    order = make_order(1)
    order = replace(order, lines=(order.lines[0], replace(order.lines[1], fulfillable_quantity=1)))
    sale = mapper.sale_from(outgoing(order, policy=HL_POLICY))
    assert [li.qty for li in sale.lines] == [1, 1] and sale.channel_total is None and sale.taxes == ()
    assert mapper.total_problem(sale) is None


def test_a_line_discount_lowers_the_adjusted_price_per_unit_rounded_to_the_cent() -> None:
    order = make_order(1)
    line = replace(order.lines[1], discount=Money(Decimal("1.00"), "USD"))
    order = replace(order, lines=(order.lines[0], line), total=Money(order.total.amount - 1, "USD"))
    sale = mapper.sale_from(outgoing(order, policy=HL_POLICY))
    assert sale.lines[1].adjusted == Decimal("20.49") and sale.adjusted
    assert sale.pos_total == sale.channel_total


@pytest.mark.parametrize(
    ("kind", "record", "invoices", "expected"),
    [
        ("order", {"status": "pending"}, [], (PosDocumentState.PENDING, False)),
        ("order", {"status": "open"}, [], (PosDocumentState.OPEN, False)),
        ("order", {"status": "open"}, [{"status": "complete"}], (PosDocumentState.INVOICED, True)),
        ("order", {"status": "closed"}, [{"status": "complete"}], (PosDocumentState.INVOICED, True)),
        ("ticket", {"status": "complete"}, [], (PosDocumentState.COMPLETED, True)),
        ("ticket", {"status": "complete", "affect_inventory": False}, [], (PosDocumentState.COMPLETED, False)),
        ("ticket", {"status": "pending"}, [], (PosDocumentState.PENDING, False)),
    ],
)
def test_a_documents_state_and_whether_stock_moved(
    kind: str, record: dict[str, object], invoices: list[dict[str, object]], expected: tuple[PosDocumentState, bool]
) -> None:
    assert mapper.pos_state(kind, record, invoices) == expected


def test_document_ids_name_the_kind_of_sale() -> None:
    assert mapper.parse_document(mapper.document_id(mapper.ORDER, 17)) == ("order", 17)
    assert mapper.parse_document("ticket:5") == ("ticket", 5)
    assert mapper.parse_document("invoice:5") is None and mapper.parse_document("order:x") is None


def test_heartlands_error_answer_reads_as_one_line_with_its_fields() -> None:
    body = {"error": "validation_error", "message": "Order is invalid", "details": {"custom@gift": ["is required"]}}
    assert mapper.error_text(body, "x") == "Order is invalid (custom@gift is required)"
    assert mapper.custom_keys(body) == ["gift"]


def test_a_connection_without_a_token_or_with_an_unknown_mode_is_refused_with_the_fix() -> None:
    with pytest.raises(SettingsError) as missing:
        HeartlandDestination("http://127.0.0.1:1", {}, {})
    assert missing.value.fix is not None and missing.value.fix.param("credential") == "api_token"
    with pytest.raises(SettingsError, match="posting_mode"):
        HeartlandDestination("http://127.0.0.1:1", {"api_token": "t"}, {"posting_mode": "invoice"})


def test_every_setting_the_pos_screen_shows_has_french_for_seed_001s_readers() -> None:
    from orderbridge.web import i18n

    french = i18n.catalog("fr")
    decl = HeartlandDestination.declaration
    missing = [s.name for s in decl.settings if not french.get(s.description)]
    missing += [c.name for c in decl.credentials if not french.get(c.description)]
    assert missing == []
    with i18n.using("fr"):
        assert "Commandes en ligne" in i18n.gettext(decl.setting("acting_user").description)  # type: ignore[union-attr]
