"""REST counts are whole numbers as sent: a quantity the store did not send is never read into one.

Found by the adversarial suite: the REST mapper read a line's quantity with ``int()``, so a webhook
line of ``2.5`` units was posted to the 3PL as 2, ``true`` as 1, and a ``fulfillable_quantity`` of
``0.5`` as 0 (the line then looked fulfilled and the order was skipped as nothing to fulfil).
"""

from __future__ import annotations

from typing import Any

import pytest

from orderbridge.connectors.base import UnreadableOrder
from orderbridge.connectors.shopify.mapper import order_from_rest
from orderbridge.domain.order import Order
from orderbridge.sandboxes.shopify import create_sandbox


def _rest() -> dict[str, Any]:
    state, _app = create_sandbox(orders=0, seed=3, limits=False)
    return state.add_order(line_items=[{"sku": "TEE-BLK-M", "quantity": 2, "price": "24.00"}])


@pytest.mark.parametrize("field", ["quantity", "fulfillable_quantity"])
@pytest.mark.parametrize("given", [2.5, 0.5, 1.0, True, False, [2], {"n": 2}])
def test_a_line_count_that_is_not_a_whole_number_makes_the_order_unreadable(field: str, given: object) -> None:
    rest = _rest()
    rest["line_items"][0][field] = given
    record = order_from_rest(rest)
    assert isinstance(record, UnreadableOrder), record
    assert field in record.problem and "not a whole number" in record.problem


@pytest.mark.parametrize("given", [2, "2"])
def test_a_whole_quantity_as_a_number_or_its_digits_is_read_as_sent(given: object) -> None:
    rest = _rest()
    rest["line_items"][0]["quantity"] = rest["line_items"][0]["fulfillable_quantity"] = given
    record = order_from_rest(rest)
    assert isinstance(record, Order) and record.lines[0].quantity == 2
