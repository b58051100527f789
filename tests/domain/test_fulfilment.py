"""What is left to fulfil (pure): lines the channel fulfilled already are not sent or checked, an
order with nothing left is skipped, and shipment lines are matched to order lines all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from orderbridge.domain.canonical import canonical_hash, content_hash, order_from_json, order_to_json
from orderbridge.domain.mappings import DestinationPolicy, ServiceRef
from orderbridge.domain.money import Money
from orderbridge.domain.order import FulfilmentStatus, Order, OrderLine, PaymentStatus, fulfillable
from orderbridge.domain.pipeline import evaluate, left_out, resolve
from orderbridge.domain.rules import DownloadRules
from orderbridge.domain.shipments import Shipment, ShipmentLine, fulfilment_lines
from orderbridge.domain.states import OrderState
from tests.builders import SEED_000_RULES

T = datetime(2026, 5, 1, 12, tzinfo=UTC)
POLICY = DestinationPolicy(
    name="wh", sku_map={"A": "WA", "B": "WB"}, shipping_map={"Standard": ServiceRef("ups", "ground")}
)


def line(key: str, sku: str | None, quantity: int, left: int | None = None) -> OrderLine:
    return OrderLine(key, sku, f"item {key}", quantity, Money(Decimal("2.00"), "USD"), fulfillable_quantity=left)


def order(*lines: OrderLine, status: FulfilmentStatus = FulfilmentStatus.PARTIAL) -> Order:
    from orderbridge.domain.order import Address, ShippingLine

    zero = Money(Decimal(0), "USD")
    return Order(
        "1",
        "#1001",
        "USD",
        T,
        T,
        PaymentStatus.PAID,
        status,
        tuple(lines),
        zero,
        zero,
        zero,
        shipping_lines=(ShippingLine("Standard", "Standard", zero),),
        shipping_address=Address(name="Ann", address1="1 Main St", city="Austin", country_code="US"),
    )


def test_the_channels_remainder_is_stored_only_when_part_of_a_line_is_fulfilled() -> None:
    assert fulfillable(3, None) is None and fulfillable(3, 3) is None and fulfillable(3, 5) is None
    assert fulfillable(3, 1) == 1 and fulfillable(3, 0) == 0
    with pytest.raises(ValueError, match="cannot be negative"):  # nonsense, not "all fulfilled"
        fulfillable(3, -2)
    open_line, part = line("1", "A", 3), line("2", "B", 3, left=1)
    assert (open_line.open_quantity, part.open_quantity) == (3, 1)
    stored = order_to_json(order(open_line, part))
    assert "fulfillable_quantity" not in stored["lines"][0] and stored["lines"][1]["fulfillable_quantity"] == 1
    assert order_from_json(stored) == order(open_line, part)


def test_an_open_lines_canonical_form_and_hash_are_what_they_were_before_lines_carried_the_remainder() -> None:
    stored = order_to_json(order(line("1", "A", 3)))
    assert set(stored["lines"][0]) == {
        "external_id",
        "sku",
        "title",
        "quantity",
        "unit_price",
        "product_id",
        "variant_id",
        "discount",
        "tax",
        "properties",
        "fulfilment_ref",
    }
    assert canonical_hash(stored) == content_hash(order(line("1", "A", 3)))


def test_a_fulfilled_line_is_neither_sent_nor_held_for_its_mapping() -> None:
    o = order(line("1", "UNMAPPED-SKU", 2, left=0), line("2", "A", 3, left=1), line("3", "B", 1))
    assert evaluate(o, SEED_000_RULES, [POLICY]).state is OrderState.READY
    resolved = resolve(o, POLICY)
    assert [r.line_key for r in resolved.lines] == ["2", "3"]
    assert left_out(o) == [
        "'item 1' (SKU UNMAPPED-SKU) line 1: all 2 already fulfilled in the channel, not sent",
        "'item 2' (SKU A) line 2: 2 of 3 already fulfilled in the channel, 1 sent",
    ]


def test_an_order_with_nothing_left_to_fulfil_is_skipped_with_that_reason() -> None:
    o = order(line("1", "A", 2, left=0), line("2", "B", 1, left=0))
    decision = evaluate(o, DownloadRules(fulfilment_statuses=frozenset({"any"})), [POLICY])
    assert decision.state is OrderState.SKIPPED
    assert [r.code for r in decision.reasons] == ["nothing_to_fulfil"]


def _shipment(*lines: ShipmentLine) -> Shipment:
    return Shipment("S-9", "ob-1-1", "1Z1", "ups", "ground", T, False, tuple(lines))


def test_shipment_lines_match_by_line_key_then_by_a_sku_naming_one_line_and_are_summed() -> None:
    o = order(line("1", "A", 3), line("2", "B", 2))
    pairs, problems = fulfilment_lines(
        _shipment(ShipmentLine("1", "A", 1), ShipmentLine(None, "B", 2), ShipmentLine("1", None, 1)), o
    )
    assert problems == [] and pairs == (("1", 2), ("2", 2))


def test_any_unusable_shipment_line_holds_the_whole_push_and_names_each() -> None:
    o = order(line("1", "A", 3), line("2", "A", 2))
    pairs, problems = fulfilment_lines(
        _shipment(ShipmentLine("1", "A", 1), ShipmentLine("X-9", "GHOST", 1), ShipmentLine(None, "A", 1)), o
    )
    assert pairs == ()
    assert [p.code for p in problems] == ["shipment_line_unmatched", "shipment_line_unmatched"]
    assert "'X-9'" in problems[0].message and "matches no line" in problems[0].message
    assert "matches 2 lines" in problems[1].message
    _, zero = fulfilment_lines(_shipment(ShipmentLine("1", "A", 0)), o)
    assert "no quantity" in zero[0].message
    _, empty = fulfilment_lines(_shipment(), o)
    assert [p.code for p in empty] == ["shipment_without_lines"]


def test_a_tracking_number_or_carrier_the_boundary_had_to_make_storable_holds_the_push_naming_it() -> None:
    from orderbridge.domain.shipments import push_hold_reasons

    base = Shipment("S1", "k", "1Z999", "ups", None, T, False, (ShipmentLine("L1", "A", 1),))
    assert push_hold_reasons(base) == []
    damaged = Shipment("S1", "k", "1Z\ufffdX", "u\ufffdps", None, T, False, base.lines)
    assert [(r.code, r.value) for r in push_hold_reasons(damaged)] == [
        ("invalid_text", "shipment S1 tracking_number=1Z\ufffdX"),
        ("invalid_text", "shipment S1 carrier=u\ufffdps"),
    ]
