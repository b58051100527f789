"""The field-level diff of two versions of an order: classes, paths, the summary, and the properties
that make it trustworthy — empty exactly when the content hashes are equal, every path a field that
really differs, classes independent of the order lines arrive in."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orderbridge.domain.canonical import content_hash, order_from_json, order_to_json
from orderbridge.domain.changes import ChangeClass, FieldChange, diff, diff_canonical
from orderbridge.domain.money import Money
from orderbridge.domain.order import (
    Address,
    Discount,
    FulfilmentStatus,
    Order,
    OrderLine,
    PaymentStatus,
    ShippingLine,
    TaxLine,
)
from tests.builders import T0, line, order, replace

EUR = "EUR"


def eur(amount: str) -> Money:
    return Money(Decimal(amount), EUR)


def base() -> Order:
    return order(
        currency=EUR,
        skus=("A", "B", "C"),
        shipping_address=Address(name="Ana", address1="1 rue Neuve", city="Lyon", country_code="FR"),
        payment_status=PaymentStatus.AUTHORIZED,
    )


def test_the_same_order_has_no_changes() -> None:
    d = diff(base(), base())
    assert d.empty and d.changes == () and d.classes == frozenset()
    assert d.summary() == "No change"


def test_a_touch_is_not_a_change() -> None:
    a = base()
    assert diff(a, replace(a, updated_at=a.updated_at + timedelta(hours=1), raw={"x": 1})).empty


def test_payment_captured_and_an_address_change_read_as_a_merchant_would() -> None:
    a = base()
    assert a.shipping_address is not None
    b = replace(a, payment_status=PaymentStatus.PAID, shipping_address=replace(a.shipping_address, city="Paris"))
    d = diff(a, b)
    assert d.changes == (
        FieldChange("payment_status", "authorized", "paid", ChangeClass.PAYMENT_CAPTURED),
        FieldChange("shipping_address.city", "Lyon", "Paris", ChangeClass.SHIPPING_ADDRESS),
    )
    assert d.summary() == "Payment captured; shipping address changed (city: Lyon → Paris)"


def test_payment_moves_are_classified() -> None:
    a = replace(base(), payment_status=PaymentStatus.PAID)
    assert diff(a, replace(a, payment_status=PaymentStatus.REFUNDED)).classes == {ChangeClass.REFUNDED}
    assert diff(a, replace(a, payment_status=PaymentStatus.PARTIALLY_REFUNDED)).classes == {
        ChangeClass.PARTIALLY_REFUNDED
    }
    assert diff(replace(a, payment_status=PaymentStatus.PENDING), a).classes == {ChangeClass.PAYMENT_CAPTURED}
    pending = replace(a, payment_status=PaymentStatus.PENDING)
    assert diff(pending, replace(a, payment_status=PaymentStatus.VOIDED)).classes == {ChangeClass.PAYMENT}


def test_a_refunded_amount_is_money_and_names_the_class_of_the_status() -> None:
    a = replace(base(), payment_status=PaymentStatus.PAID)
    b = replace(a, payment_status=PaymentStatus.PARTIALLY_REFUNDED, refunded=eur("12.50"))
    d = diff(a, b)
    assert d.by_class(ChangeClass.PARTIALLY_REFUNDED) == (
        FieldChange("payment_status", "paid", "partially_refunded", ChangeClass.PARTIALLY_REFUNDED),
        FieldChange("refunded", None, "12.50 EUR", ChangeClass.PARTIALLY_REFUNDED),
    )
    assert d.summary() == "Partially refunded (12.50 EUR)"


def test_the_refunded_amount_is_left_out_of_the_canonical_form_when_unknown() -> None:
    # pinned before Order.refunded existed: every stored order's content hash is unchanged
    assert content_hash(order()) == "0de996b5db026507f04c5fee428bba77a3c99fbbdade657f04c21e0d7bcc1e63"
    assert content_hash(order(7, skus=("A", "B"))) == (
        "10c85fda99d556c2baecc8334fbabe816c399d23ccc05ea13f294b4b8439d684"
    )
    assert "refunded" not in order_to_json(order())
    refunded = replace(order(), refunded=Money(Decimal("3.00"), "USD"))
    assert order_to_json(refunded)["refunded"] == "3.00"
    assert order_from_json(order_to_json(refunded)) == refunded
    assert content_hash(refunded) != content_hash(order())


def test_cancelling_the_order() -> None:
    a = base()
    d = diff(a, replace(a, cancelled_at=T0 + timedelta(days=1)))
    assert d.changes == (FieldChange("cancelled_at", None, "2026-11-02T12:00:00+00:00", ChangeClass.CANCELLED),)
    assert d.summary() == "Order cancelled"


def test_lines_are_matched_by_id_removal_and_lower_quantity_are_cancellations() -> None:
    a = base()
    l1, l2, _l3 = a.lines
    b = replace(a, lines=(line("D", n=4, currency=EUR), replace(l2, quantity=1), replace(l1, quantity=3)))
    d = diff(a, b)
    assert d.changes == (
        FieldChange("lines[L3]", "1 × C Item C at 10.00 EUR", None, ChangeClass.LINES_CANCELLED),
        FieldChange("lines[L1].quantity", "1", "3", ChangeClass.LINES),
        FieldChange("lines[L4]", None, "1 × D Item D at 10.00 EUR", ChangeClass.LINES),
    )
    lowered = replace(a, lines=(replace(l1, quantity=0), *a.lines[1:]))
    assert diff(a, lowered).classes == {ChangeClass.LINES_CANCELLED}


def test_a_fallen_remainder_is_a_cancellation_unless_the_fulfilment_status_moved() -> None:
    a = replace(base(), lines=tuple(replace(li, quantity=2) for li in base().lines))
    removed = replace(a, lines=(replace(a.lines[0], fulfillable_quantity=1), *a.lines[1:]))
    assert diff(a, removed).by_class(ChangeClass.LINES_CANCELLED) == (
        FieldChange("lines[L1].fulfillable_quantity", None, "1", ChangeClass.LINES_CANCELLED),
    )
    shipped = replace(removed, fulfilment_status=FulfilmentStatus.PARTIAL)
    assert diff(a, shipped).classes == {ChangeClass.FULFILMENT}


def test_line_price_sku_title_and_properties() -> None:
    a = base()
    l1 = a.lines[0]
    b = replace(a, lines=(replace(l1, unit_price=eur("12.50"), sku="A2", title="New", properties=(("gift", "yes"),)),
                          *a.lines[1:]))  # fmt: skip
    d = diff(a, b)
    assert [(c.path, c.before, c.after, c.change) for c in d.changes] == [
        ("lines[L1].unit_price", "10.00 EUR", "12.50 EUR", ChangeClass.LINES),
        ("lines[L1].sku", "A", "A2", ChangeClass.LINES),
        ("lines[L1].title", "Item A", "New", ChangeClass.LINES),
        ("lines[L1].properties[gift]", None, "yes", ChangeClass.NOTES),
    ]


def test_totals_shipping_discounts_and_tax_lines() -> None:
    a = replace(base(), discounts=(Discount("TEN", eur("1.00")),), taxes=(TaxLine("TVA", Decimal("0.2"), eur("6.00")),))
    b = replace(
        a,
        total=eur("40.00"),
        shipping_lines=(ShippingLine("Express", "express", eur("9.00")),),
        discounts=(Discount("TEN", eur("2.00")), Discount("NEW", eur("1.00"))),
        taxes=(TaxLine("TVA", Decimal("0.1"), eur("6.00")),),
    )
    d = diff(a, b)
    assert {c.path: (c.before, c.after) for c in d.by_class(ChangeClass.TOTALS)} == {
        "total": ("35.00 EUR", "40.00 EUR"),
        "shipping_lines[0].price": ("5.00 EUR", "9.00 EUR"),
        "discounts[NEW]": (None, "amount: 1.00 EUR, code: NEW, kind: —"),
        "discounts[TEN].amount": ("1.00 EUR", "2.00 EUR"),
        "taxes[TVA].rate": ("0.2", "0.1"),
    }
    assert {c.path for c in d.by_class(ChangeClass.SHIPPING_ADDRESS)} == {
        "shipping_lines[0].code",
        "shipping_lines[0].title",
    }


def test_customer_and_notes() -> None:
    a = base()
    b = replace(
        a,
        email="new@example.com",
        billing_address=Address(city="Nice"),
        note="leave at door",
        tags=("vip",),
        custom_fields=(("gift", "no"),),
        fulfilment_status=FulfilmentStatus.FULFILLED,
    )
    d = diff(a, b)
    assert {c.path for c in d.by_class(ChangeClass.CUSTOMER)} == {"email", "billing_address.city"}
    assert [c.path for c in d.by_class(ChangeClass.NOTES)] == ["note", "tags", "custom_fields[gift]"]
    assert d.by_class(ChangeClass.FULFILMENT) == (
        FieldChange("fulfilment_status", "unfulfilled", "fulfilled", ChangeClass.FULFILMENT),
    )
    assert d.summary() == (
        "Customer changed (email: buyer1@example.com → new@example.com, billing_address.city: — → Nice); "
        "fulfilment changed (fulfilment_status: unfulfilled → fulfilled); "
        "notes changed (note, tags, custom_fields[gift])"
    )


def test_lines_only_reordered_are_still_a_version_but_only_lines() -> None:
    a = base()
    b = replace(a, lines=tuple(reversed(a.lines)))
    assert content_hash(a) != content_hash(b)
    assert diff(a, b).changes == (FieldChange("lines", "L1, L2, L3", "L3, L2, L1", ChangeClass.LINES),)


def test_the_canonical_forms_diff_as_their_orders_do() -> None:
    a = base()
    b = replace(a, note="x")
    assert diff_canonical(order_to_json(a), order_to_json(b)) == diff(a, b)


# --- properties ------------------------------------------------------------------------------------
# Small value spaces on purpose: two drawn orders often agree on most fields, which is where a diff
# that missed a field (empty diff, different hashes) would show.

small_text = st.sampled_from(["", "a", "b"])
amounts = st.sampled_from(["0", "0.00", "1.00", "2.50"]).map(eur)
opt_amounts = st.one_of(st.none(), amounts)
pairs = st.lists(st.tuples(st.sampled_from(["k", "j"]), small_text), max_size=2).map(tuple)

lines_st = st.builds(
    OrderLine,
    external_id=st.sampled_from(["L1", "L2", "L3"]),
    sku=st.one_of(st.none(), st.sampled_from(["A", "B"])),
    title=small_text,
    quantity=st.integers(0, 2),
    unit_price=amounts,
    product_id=st.one_of(st.none(), st.just("p")),
    variant_id=st.one_of(st.none(), st.just("v")),
    discount=opt_amounts,
    tax=opt_amounts,
    properties=pairs,
    fulfilment_ref=st.one_of(st.none(), st.just("f")),
    fulfillable_quantity=st.one_of(st.none(), st.integers(0, 2)),
)
addresses = st.one_of(st.none(), st.builds(Address, city=small_text, name=small_text, country_code=small_text))
times = st.one_of(st.none(), st.sampled_from([T0, T0 + timedelta(days=1)]))

fields: dict[str, st.SearchStrategy[Any]] = {
    "number": st.sampled_from(["#1", "#2"]),
    "created_at": st.sampled_from([T0, T0 + timedelta(days=1)]),
    "updated_at": st.sampled_from([T0, T0 + timedelta(days=1)]),
    "payment_status": st.sampled_from(PaymentStatus),
    "fulfilment_status": st.sampled_from(FulfilmentStatus),
    "lines": st.lists(lines_st, max_size=3).map(tuple),
    "subtotal": amounts,
    "total_tax": amounts,
    "total": amounts,
    "shipping_lines": st.lists(
        st.builds(ShippingLine, title=small_text, code=st.one_of(st.none(), small_text), price=amounts), max_size=2
    ).map(tuple),
    "discounts": st.lists(st.builds(Discount, code=small_text, amount=amounts, kind=small_text), max_size=2).map(tuple),
    "taxes": st.lists(
        st.builds(TaxLine, title=small_text, rate=st.sampled_from([Decimal("0.1"), Decimal("0.2")]), amount=amounts),
        max_size=2,
    ).map(tuple),
    "processed_at": times,
    "cancelled_at": times,
    "closed_at": times,
    "test": st.booleans(),
    "email": small_text,
    "customer_name": small_text,
    "shipping_address": addresses,
    "billing_address": addresses,
    "tags": st.lists(small_text, max_size=2).map(tuple),
    "note": small_text,
    "custom_fields": pairs,
    "unknown_values": st.lists(st.tuples(st.sampled_from(["payment_status", "other"]), small_text), max_size=1).map(
        tuple
    ),
    "refunded": opt_amounts,
}


@st.composite
def order_pairs(draw: st.DrawFn) -> tuple[Order, Order]:
    """An order and a version of it with a few fields redrawn."""
    a = Order(external_id="1", currency=EUR, **{name: draw(s) for name, s in fields.items()})
    edited = draw(st.lists(st.sampled_from(sorted(fields)), max_size=4, unique=True))
    b = replace(a, **{name: draw(fields[name]) for name in edited})
    return a, b


_MISSING = object()
_IDENT = {"lines": "external_id", "discounts": "code", "taxes": "title"}


def field_of(canonical: dict[str, Any], path: str) -> Any:
    """The canonical value a diff path names (``lines[L2].quantity``, ``custom_fields[k#2]``), or
    ``_MISSING``: resolved independently of the differ, from the path alone."""
    cur: Any = canonical
    for segment in path.split("."):
        m = re.fullmatch(r"(\w+)(?:\[(.*)\])?", segment)
        assert m, path
        name, key = m.groups()
        if not isinstance(cur, dict) or name not in cur:
            return _MISSING
        cur = cur[name]
        if key is None:
            continue
        items = cur or []
        if name == "shipping_lines":
            cur = items[int(key)] if int(key) < len(items) else _MISSING
            continue
        ident, _, nth = key.partition("#")
        matches = [i for i in items if (i[_IDENT[name]] if name in _IDENT else i[0]) == ident]
        n = int(nth or 1)
        if len(matches) < n:
            return _MISSING
        cur = matches[n - 1] if name in _IDENT else matches[n - 1][1]
    return cur


@settings(max_examples=400)
@given(order_pairs())
def test_the_diff_is_empty_exactly_when_the_content_hashes_agree(pair: tuple[Order, Order]) -> None:
    a, b = pair
    assert diff(a, a).empty and diff(b, b).empty
    assert diff(a, b).empty == (content_hash(a) == content_hash(b))


@settings(max_examples=300)
@given(order_pairs())
def test_every_path_names_a_field_that_really_differs(pair: tuple[Order, Order]) -> None:
    a, b = pair
    ja, jb = order_to_json(a), order_to_json(b)
    for change in diff(a, b).changes:
        assert change.before != change.after or change.path in {"shipping_address", "billing_address"}, change
        before, after = field_of(ja, change.path), field_of(jb, change.path)
        assert before is not after and (before != after or type(before) is not type(after)), change


def _unique_ids(o: Order) -> bool:
    return len({li.external_id for li in o.lines}) == len(o.lines)


@settings(max_examples=300)
@given(order_pairs(), st.randoms(use_true_random=False))
def test_classes_do_not_depend_on_the_order_of_lines(pair: tuple[Order, Order], rnd: Any) -> None:
    a, b = pair
    la, lb = list(a.lines), list(b.lines)
    rnd.shuffle(la)
    rnd.shuffle(lb)
    d, d2 = diff(a, b), diff(replace(a, lines=tuple(la)), replace(b, lines=tuple(lb)))
    if _unique_ids(a) and _unique_ids(b):  # a repeated id is numbered by occurrence, so by position
        real = [c for c in d.changes if c.path != "lines"]
        assert real == [c for c in d2.changes if c.path != "lines"]  # same changes, same order
        if real:  # the lines' order alone is reported only when nothing else changed
            assert d.classes == d2.classes
            assert all(c.path != "lines" for c in (*d.changes, *d2.changes))
