"""The validation layer: what breaks the declared limits is held by name, after the download rules."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderbridge.connectors.shopify.mapper import order_from_graphql, order_from_rest
from orderbridge.domain import limits
from orderbridge.domain.mappings import DestinationPolicy, ServiceRef
from orderbridge.domain.money import Money
from orderbridge.domain.order import Order, PaymentStatus
from orderbridge.domain.pipeline import evaluate, resolve
from orderbridge.domain.reasons import HoldCode, SkipCode
from orderbridge.domain.rules import DownloadRules
from orderbridge.domain.states import OrderState
from orderbridge.domain.validation import _plainly_fits, _problems, check
from orderbridge.sandboxes.shopify import generator
from orderbridge.sandboxes.shopify.nodes import order_node
from tests.builders import SEED_000_RULES, line, order, replace

POLICY = DestinationPolicy(
    name="3pl", sku_map={"SKU-1": "W-1", "SKU-2": "W-2"}, shipping_map={"Standard": ServiceRef("ups", "ground")}
)


def decide(o: Order, rules: DownloadRules | None = None) -> list[tuple[str, str]]:
    d = evaluate(o, rules or SEED_000_RULES, [POLICY])
    return [(r.code, r.value) for r in d.reasons]


def with_lines(*lines: object, **kw: object) -> Order:
    base = order()
    subtotal = sum((li.unit_price.amount * li.quantity for li in lines), Decimal(0))  # type: ignore[attr-defined]
    money = Money(subtotal, "USD")
    return replace(base, lines=tuple(lines), subtotal=money, total=money + Money(Decimal(5), "USD"), **kw)


def test_a_well_formed_order_breaks_no_limit() -> None:
    assert check(order(skus=("SKU-1", "SKU-2"))) == []


@pytest.mark.parametrize("qty", [0, -1, limits.MAX_QUANTITY + 1])
def test_a_line_quantity_outside_one_to_a_million_is_held_naming_the_line(qty: int) -> None:
    o = with_lines(line("SKU-1", n=1), line("SKU-2", qty=qty, n=2))
    assert (HoldCode.INVALID_QUANTITY, "L2") in decide(o)
    with pytest.raises(ValueError, match="quantity"):
        resolve(o, POLICY)  # never posted as is


def test_a_negative_unit_price_is_held_a_refund_is_not_a_line() -> None:
    o = with_lines(line("SKU-1", n=1), line("SKU-2", price="-5.00", n=2))
    reasons = evaluate(o, SEED_000_RULES, [POLICY]).reasons
    assert [(r.code, r.value) for r in reasons] == [(HoldCode.INVALID_AMOUNT, "line L2 unit price")]
    assert "negative" in reasons[0].message and "refund" in reasons[0].fix.text


def test_an_unknown_financial_status_is_held_with_its_value_not_skipped_as_unknown() -> None:
    o = replace(order(), payment_status=PaymentStatus.UNKNOWN, unknown_values=(("financial_status", "on_review"),))
    d = evaluate(o, SEED_000_RULES, [POLICY])
    assert d.state is OrderState.HELD
    assert [(r.code, r.value) for r in d.reasons] == [(HoldCode.UNKNOWN_STATUS, "financial_status=on_review")]
    assert "'on_review'" in d.reasons[0].message


def test_the_download_rules_come_first_a_test_order_is_skipped_whatever_is_wrong_with_it() -> None:
    o = replace(
        with_lines(line("SKU-1", qty=0)),
        test=True,
        payment_status=PaymentStatus.UNKNOWN,
        number="#" + "9" * 600,
    )
    d = evaluate(o, SEED_000_RULES, [POLICY])
    assert d.state is OrderState.SKIPPED
    assert [r.code for r in d.reasons] == [SkipCode.TEST_ORDER]


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def test_a_total_below_its_subtotal_or_a_subtotal_above_its_lines_is_held() -> None:
    base = order()  # 10.00 of lines, 5.00 shipping, no tax: 15.00
    below = evaluate(replace(base, total=usd("2.00")), SEED_000_RULES, [POLICY]).reasons
    assert [(r.code, r.value) for r in below] == [(HoldCode.TOTALS_INCONSISTENT, "total=2.00")]
    assert "at least 9.97 USD" in below[0].message  # 10.00 less a cent for each of 3 parts
    over = replace(base, subtotal=usd("50.00"), total=usd("55.00"))
    assert decide(over) == [(HoldCode.TOTALS_INCONSISTENT, "subtotal=50.00")]


def test_totals_a_valid_order_can_have_are_not_held() -> None:
    base = order()
    free_shipping = replace(base, total=usd("10.00"))
    rounding = replace(base, subtotal=usd("10.02"), total=usd("9.99"))  # a cent per rounded part
    tip_or_duties = replace(base, total=usd("18.50"))  # charges the canonical order does not itemise
    discounted = replace(base, subtotal=usd("0.00"), total=usd("0.00"))  # a 100 % discount
    assert [decide(o) for o in (free_shipping, rounding, tip_or_duties, discounted)] == [[], [], [], []]


def test_an_overlong_sku_is_held_as_too_long_not_as_unmapped_and_the_reason_fits_its_column() -> None:
    sku = "X" * 400
    reasons = evaluate(with_lines(line(sku)), SEED_000_RULES, [POLICY]).reasons
    assert [r.code for r in reasons] == [HoldCode.VALUE_TOO_LONG]
    assert len(reasons[0].value) <= limits.REASON_VALUE.max_chars
    assert "400 characters" in reasons[0].message and "300" in reasons[0].fix.text


def test_every_text_field_has_a_size_and_each_is_named_once() -> None:
    long = "y" * 20_000
    o = replace(
        order(),
        email=long,
        note=long,
        customer_name=long,
        tags=("ok", long, long),
        lines=(replace(line("SKU-1"), title=long), replace(line("SKU-1", n=2), title=long)),
        subtotal=Money(Decimal(20), "USD"),
        total=Money(Decimal(25), "USD"),
    )
    fields = [r.value.split("=")[0] for r in check(o)]
    assert fields == ["email", "customer_name", "note", "tags", "lines.title"]


def test_text_a_database_cannot_store_is_held_and_the_reason_itself_is_storable() -> None:
    reasons = check(replace(order(), number="#10\x0001", customer_name="caf\udce9"))
    assert [r.code for r in reasons] == [HoldCode.INVALID_TEXT, HoldCode.INVALID_TEXT]
    for r in reasons:
        assert "\x00" not in r.value + r.message and limits.storable(r.value) == r.value


def test_too_many_lines_are_held() -> None:
    lines = tuple(line("SKU-1", n=i) for i in range(limits.MAX_LINES + 1))
    assert (HoldCode.TOO_MANY_VALUES, "lines") in decide(with_lines(*lines))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_no_order_the_sandbox_store_generates_breaks_a_limit_read_over_rest_or_graphql(seed: int) -> None:
    """The demo store (realistic: every currency, discounts, taxes, states) — 4 × 600 orders."""
    for s in generator.generate(600, seed=seed, realistic=True):
        rest = generator.expand(s)
        for record in (order_from_rest(rest), order_from_graphql(order_node(rest))):
            assert isinstance(record, Order), record
            assert check(record) == [], (rest["name"], check(record))
            assert _problems(record) == []  # the field-by-field walk agrees with the fast path


def _hostile() -> list[Order]:
    base = order(skus=("SKU-1", "SKU-2"))
    first = base.lines[0]
    return [
        replace(base, number="#" + "1" * 600),
        replace(base, number="#1\x00"),
        replace(base, email="e" * 400),
        replace(base, tags=("t" * 300,)),
        replace(base, custom_fields=(("k", "v" * 20_000),)),
        replace(base, lines=(replace(first, quantity=0), *base.lines[1:])),
        replace(base, lines=(replace(first, unit_price=Money(Decimal("-1"), "USD")), *base.lines[1:])),
        replace(base, lines=(replace(first, unit_price=Money(Decimal("10.0000001"), "USD")), *base.lines[1:])),
        replace(base, lines=(replace(first, sku="S" * 301), *base.lines[1:])),
        replace(base, lines=(replace(first, properties=(("p", "caf\udce9"),)), *base.lines[1:])),
        replace(base, total=Money(Decimal("1"), "USD")),
        replace(base, total=Money(Decimal("1e16"), "USD")),
        replace(base, payment_status=PaymentStatus.UNKNOWN),
        replace(base, shipping_address=replace(base.shipping_address, city="c" * 501)),
    ]


@pytest.mark.parametrize("hostile", _hostile(), ids=lambda o: str(check(o)[0].value)[:40])
def test_the_fast_path_never_lets_a_hostile_order_through(hostile: Order) -> None:
    assert not _plainly_fits(hostile)
    assert check(hostile) == _problems(hostile) != []


# --- generated orders: the fast path and the field walk agree, and every reason is storable -------

_texts = st.one_of(
    st.text(max_size=8),
    st.text(alphabet=st.sampled_from("a\x00é\udce9"), max_size=5),
    st.integers(0, 12).map(lambda n: "x" * (10**n // 10**7 if n > 7 else n * 40)),
)
_amounts = st.one_of(
    st.decimals(min_value=-5, max_value=50, places=2),
    st.decimals(min_value=0, max_value=1, places=9),
    st.sampled_from([Decimal("1e16"), Decimal("0"), Decimal("10.000000")]),
)


@st.composite
def _orders(draw: st.DrawFn) -> Order:
    n = draw(st.integers(0, 3))
    lines = tuple(
        replace(
            line(draw(st.one_of(st.none(), _texts)), n=i),
            quantity=draw(st.integers(-1, 3)),
            unit_price=Money(draw(_amounts), "USD"),
            title=draw(_texts),
            properties=tuple(draw(st.lists(st.tuples(_texts, _texts), max_size=2))),
        )
        for i in range(n)
    )
    return replace(
        order(),
        number=draw(_texts),
        email=draw(_texts),
        note=draw(_texts),
        tags=tuple(draw(st.lists(_texts, max_size=3))),
        lines=lines,
        subtotal=Money(draw(_amounts), "USD"),
        total=Money(draw(_amounts), "USD"),
        payment_status=draw(st.sampled_from(list(PaymentStatus))),
    )


@settings(max_examples=400, deadline=None)
@given(_orders())
def test_generated_orders_are_judged_alike_by_the_fast_path_and_the_walk_and_every_reason_fits(o: Order) -> None:
    found = check(o)
    assert found == _problems(o)
    for r in found:
        assert len(r.value) <= limits.REASON_VALUE.max_chars
        text = r.value + r.message + r.fix.text + "".join(v for _, v in r.fix.params)
        assert limits.storable(text) == text


def test_two_lines_with_one_id_are_held_naming_the_id_not_posted_as_one_product_twice() -> None:
    # found by the adversarial suite: the SKU mapping is keyed by line id, so the second line's
    # destination SKU was sent for both lines (a T-shirt shipped as a second cap)
    o = with_lines(line("SKU-1", qty=2, n=1), line("SKU-2", n=1), line("SKU-1", n=3))
    assert not _plainly_fits(o)
    reasons = check(o)
    assert [(r.code, r.value) for r in reasons] == [(HoldCode.INVALID_ORDER, "lines.external_id=L1")]
    assert "2 lines share the id 'L1'" in reasons[0].message
    assert decide(with_lines(line("SKU-1", n=1), line("SKU-2", n=2))) == []  # distinct ids: nothing
