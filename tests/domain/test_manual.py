"""Manual drafts: every problem named with its field, value and fix; exact totals; the canonical record."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from orderbridge.domain import manual
from orderbridge.domain.canonical import content_hash
from orderbridge.domain.manual import Draft, DraftAddress, DraftLine, InvalidDraft, Source
from orderbridge.domain.order import PaymentStatus

NOW = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)


def draft(**changes: object) -> Draft:
    base = Draft(
        number="WH-1001",
        currency="EUR",
        email="ada@example.com",
        customer_name="Ada Lovelace",
        shipping_address=DraftAddress(name="Ada", address1="1 rue de Rivoli", city="Paris", country_code="fr"),
        shipping_method="Standard",
        shipping_price="4.90",
        tax="3.10",
        discount="1.00",
        lines=(DraftLine("TEE-BLK-S", "T-shirt", "2", "12.50"), DraftLine("MUG-12OZ", "", "1", "8.00")),
    )
    return Draft(**{**{f: getattr(base, f) for f in Draft.__slots__}, **changes})  # type: ignore[arg-type]


def fields(problems: list[manual.Problem]) -> list[tuple[str, str, str]]:
    return [(p.field, p.value, p.code) for p in problems]


def test_a_complete_draft_has_no_problem_and_exact_decimal_totals() -> None:
    assert manual.validate(draft()) == []
    t = manual.totals(draft())
    assert (t.subtotal.amount, t.shipping.amount, t.tax.amount, t.discount.amount) == (
        Decimal("33.00"),
        Decimal("4.90"),
        Decimal("3.10"),
        Decimal("1.00"),
    )
    assert t.total.amount == Decimal("40.00") and t.total.currency == "EUR" and t.units == 3


def test_every_problem_is_named_at_once_with_its_field_value_and_a_fix() -> None:
    bad = draft(
        currency="euro",
        email="not-an-address",
        lines=(DraftLine("", "x", "two", "12,50"), DraftLine("SKU", "", "0", "-1")),
        shipping_price="abc",
        placed_at="2026-12-01T10:00:00",
        payment_status="maybe",
        shipping_address=DraftAddress(country_code="France"),
    )
    problems = manual.validate(bad)
    assert fields(problems) == [
        ("currency", "euro", "not_a_currency"),
        ("email", "not-an-address", "not_an_email"),
        ("shipping_address.country_code", "France", "not_a_country"),
        ("lines[0].sku", "", "required"),
        ("lines[0].quantity", "two", "not_a_whole_number"),
        ("lines[0].unit_price", "12,50", "not_an_amount"),
        ("lines[1].quantity", "0", "out_of_range"),
        ("lines[1].unit_price", "-1", "negative"),
        ("shipping_price", "abc", "not_an_amount"),
        ("payment_status", "maybe", "unknown_status"),
        ("placed_at", "2026-12-01T10:00:00", "not_a_time"),
    ]
    assert all(p.message and p.fix for p in problems)
    assert "decimal point" in problems[5].fix and "timezone" in problems[-1].fix


def test_a_draft_without_lines_or_currency_says_what_to_add() -> None:
    problems = manual.validate(Draft())
    assert fields(problems) == [("currency", "", "required"), ("lines", "", "required")]
    assert manual.validate(Draft(currency="EUR", lines=(DraftLine("A", "", "1", "1"),))) == []
    assert fields(
        manual.validate(Draft(currency="EUR", lines=(DraftLine("A", "", "1", "1"),)), number_required=True)
    ) == [("number", "", "required")]


def test_a_discount_larger_than_the_order_is_refused() -> None:
    problems = manual.validate(draft(discount="100"))
    assert fields(problems) == [("discount", "100", "too_large")]


@pytest.mark.parametrize(
    ("given", "shown", "key"),
    [("WH-1001", "WH-1001", "WH-1001"), ("  #wh-1001 ", "wh-1001", "WH-1001"), ("ＷＨ  7", "WH 7", "WH 7")],
)
def test_order_numbers_are_normalised_and_their_key_ignores_case(given: str, shown: str, key: str) -> None:
    assert manual.normalise_number(given) == shown and manual.order_key(given) == key


def test_an_order_number_with_markup_or_too_long_is_refused() -> None:
    assert fields(manual.validate(draft(number="<b>1</b>"))) == [("number", "<b>1</b>", "bad_characters")]
    assert fields(manual.validate(draft(number="9" * 65))) == [("number", "9" * 65, "too_long")]


def test_the_record_is_a_canonical_order_keyed_by_its_number() -> None:
    source = Source.placed_by("Olu", via="api")
    order = manual.build_record(draft(number=" #wh-1001"), source, NOW)
    assert (order.external_id, order.number, order.currency) == ("WH-1001", "wh-1001", "EUR")
    assert [(li.external_id, li.sku, li.title, li.quantity, li.unit_price.amount) for li in order.lines] == [
        ("1", "TEE-BLK-S", "T-shirt", 2, Decimal("12.50")),
        ("2", "MUG-12OZ", "MUG-12OZ", 1, Decimal("8.00")),
    ]
    assert order.shipping_method == "Standard" and order.total.amount == Decimal("40.00")
    assert order.payment_status is PaymentStatus.PAID and order.created_at == order.updated_at == NOW
    assert order.shipping_address is not None and order.shipping_address.country_code == "FR"
    assert order.raw["manual"]["source"] == {"via": "api", "by": "Olu"}
    # the same draft later, with the placing time the ledger kept, has the same content
    later = manual.build_record(
        draft(), Source.imported("orders.csv", 3), datetime(2026, 12, 3, tzinfo=UTC), created_at=NOW
    )
    assert content_hash(later) == content_hash(order.__class__(**{**_fields(order), "number": "WH-1001"}))


def _fields(order: object) -> dict[str, object]:
    return {f: getattr(order, f) for f in order.__struct_fields__}  # type: ignore[attr-defined]


def test_an_invalid_draft_has_no_record_and_no_totals() -> None:
    with pytest.raises(InvalidDraft) as caught:
        manual.build_record(draft(currency=""), Source.placed_by("Olu"), NOW)
    assert [p.field for p in caught.value.problems] == ["currency"]
    with pytest.raises(InvalidDraft):
        manual.totals(draft(lines=()))


def test_placed_at_takes_a_zone_or_a_date() -> None:
    assert manual.parse_placed_at("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    assert manual.parse_placed_at("2026-12-01T10:00:00+01:00") == datetime(2026, 12, 1, 9, tzinfo=UTC)
    assert manual.parse_placed_at("2026-12-01T10:00:00Z") == datetime(2026, 12, 1, 10, tzinfo=UTC)
    assert manual.parse_placed_at("yesterday") is None


def test_sources_say_who_placed_or_which_file_row() -> None:
    assert Source.placed_by("Olu").describe() == "placed by Olu in the portal"
    assert Source.imported("orders.csv", 7).describe() == "imported from file orders.csv row 7"


def test_json_drafts_refuse_floats_unknown_fields_and_wrong_shapes() -> None:
    d, problems = manual.draft_from_json(
        {"currency": "EUR", "lines": [{"sku": "A", "quantity": 2, "unit_price": Decimal("9.5")}], "colour": "red"}
    )
    assert fields(problems) == [("colour", "", "unknown_field")]
    assert d.lines == (DraftLine("A", "", "2", "9.5"),)
    _, problems = manual.draft_from_json({"currency": "EUR", "lines": [{"sku": "A", "quantity": 1, "unit_price": 9.5}]})
    assert fields(problems) == [("lines[0].unit_price", "9.5", "wrong_type")]
    _, problems = manual.draft_from_json([1])
    assert fields(problems) == [("", "list", "wrong_type")]
    d, problems = manual.draft_from_json({"currency": "EUR", "custom_fields": {"po": "4711"}, "tags": ["a"]})
    assert problems == [] and d.custom_fields == (("po", "4711"),) and d.tags == ("a",)
