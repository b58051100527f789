from datetime import datetime, timedelta

import pytest

from orderbridge.domain.canonical import content_hash
from tests.builders import order, replace


def test_content_hash_ignores_updated_at_and_raw_payload() -> None:
    a = order()
    b = replace(a, updated_at=a.updated_at + timedelta(hours=1), raw={"other": True})
    assert content_hash(a) == content_hash(b)


def test_content_hash_changes_when_a_line_changes() -> None:
    assert content_hash(order(skus=("A",))) != content_hash(order(skus=("B",)))


def test_orders_refuse_naive_timestamps() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        replace(order(), created_at=datetime(2026, 1, 1))


def test_shipping_method_prefers_the_code_over_the_title() -> None:
    assert order(shipping="Express").shipping_method == "Express"
    assert order(shipping=None).shipping_method is None
