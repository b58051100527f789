"""An imported order's rows as a manual draft, and the draft's problems pointed back at rows and columns."""

from __future__ import annotations

import io

from orderbridge.domain import manual
from orderbridge.domain.csv_import import CsvOrders
from orderbridge.domain.csv_import.drafts import row_errors, to_draft, where


def order(text: str):  # type: ignore[no-untyped-def]
    return next(iter(CsvOrders(io.BytesIO(text.encode()), key=manual.order_key)))


def test_the_draft_takes_the_typed_cells_back_as_canonical_text() -> None:
    o = order(
        "order_number;currency;sku;quantity;unit_price;placed_at;ship_country;ship_city;tags;custom.PO\n"
        "w-1;eur;MUG;2;12,50;2026-11-30T14:05:00+01:00;fr;Lyon;a, b;77\n"
        "W-1;;PLATE;1;3;;;;;\n"
    )
    draft = to_draft(o)
    assert (draft.number, draft.currency, draft.placed_at) == ("w-1", "EUR", "2026-11-30T13:05:00+00:00")
    assert [(ln.sku, ln.quantity, ln.unit_price) for ln in draft.lines] == [("MUG", "2", "12.50"), ("PLATE", "1", "3")]
    assert draft.shipping_address is not None and draft.shipping_address.country_code == "FR"
    assert draft.tags == ("a", "b") and draft.custom_fields == (("PO", "77"),)
    assert manual.validate(draft, number_required=True) == []


def test_a_problem_names_the_row_and_column_it_came_from() -> None:
    o = order(
        "order_number,currency,sku,quantity,unit_price,ship_city,custom.PO\nW-1,EUR,MUG,1,1,Lyon,1\nW-1,,PLATE,1,1,,\n"
    )
    assert where(o, "lines[1].sku") == (3, "sku")
    assert where(o, "number") == (2, "order_number")
    assert where(o, "shipping_address.city") == (2, "ship_city")
    assert where(o, "custom_fields[0]") == (2, "custom.PO")
    assert where(o, "email") == (2, "customer_email")
    problems = [manual.Problem("lines[1].quantity", "0", "out_of_range", "The quantity …", "Give 1 or more.")]
    [error] = row_errors(o, problems)
    assert (error.row, error.column, error.value, error.fix) == (3, "quantity", "0", "Give 1 or more.")
