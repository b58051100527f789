"""A POS custom field's value: the order's own, else the mapped order field, else the default."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from orderbridge.domain.money import Money
from orderbridge.domain.order import FulfilmentStatus, Order, PaymentStatus
from orderbridge.domain.pos_fields import field_value

NOW = datetime(2026, 12, 3, tzinfo=UTC)
ZERO = Money(Decimal("0"), "EUR")


def order(**kw: object) -> Order:
    base: dict[str, object] = dict(
        external_id="1",
        number="#1",
        currency="EUR",
        created_at=NOW,
        updated_at=NOW,
        payment_status=PaymentStatus.PAID,
        fulfilment_status=FulfilmentStatus.UNFULFILLED,
        lines=(),
        subtotal=ZERO,
        total_tax=ZERO,
        total=ZERO,
    )
    return Order(**{**base, **kw})  # type: ignore[arg-type]


def test_the_orders_own_custom_field_wins_over_a_mapping_and_a_default() -> None:
    o = order(custom_fields=(("channel_ref", "from-order"),), email="a@example.com")
    assert field_value(o, "channel_ref", {"channel_ref": "email"}, {"channel_ref": "web"}) == "from-order"


def test_a_mapped_order_field_comes_before_the_default() -> None:
    o = order(email="a@example.com", custom_fields=(("gift", "yes"),))
    assert field_value(o, "buyer", {"buyer": "email"}, {"buyer": "x"}) == "a@example.com"
    assert field_value(o, "wrap", {"wrap": "custom:gift"}, {}) == "yes"


def test_an_empty_mapped_field_falls_back_to_the_default_and_none_gives_empty() -> None:
    o = order(note="")
    assert field_value(o, "memo", {"memo": "note"}, {"memo": "online"}) == "online"
    assert field_value(o, "memo", {}, {}) == ""
    assert field_value(o, "memo", {"memo": "lines"}, {}) == ""  # not text: never its repr
