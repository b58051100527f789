"""Issue #17 review, the Square connector against the Square sandbox:

- decision 214/244: a custom attribute takes the order's own custom field of that key first (the
  shared :func:`orderbridge.domain.pos_fields.field_value`), then the source ``custom_attributes``
  names, then ``attribute_defaults``;
- decision 222/245: "idempotency key reused" is settled by reading the hub's order back through
  *every* page of SearchOrders (Square's ``cursor``), not only the first 500 orders.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from orderbridge.domain.reasons import HoldCode
from orderbridge.sandboxes.square.state import SquareError
from tests.builders import replace
from tests.connectors._square_fixtures import SquareEnv, square_env
from tests.connectors.contract_destination import make_order, outgoing

__all__ = ["square_env"]


# --- custom attributes: the order's own field first (decision 214) -----------------------------------


def _attribute(env: SquareEnv, order_key: str, key: str) -> Any:
    (placed,) = env.received(order_key)
    return env.state.attributes[(placed["id"], key)]["value"]


def test_an_order_s_own_custom_field_of_the_key_comes_before_the_mapped_source_and_the_default(
    square_env: SquareEnv,
) -> None:
    connector = square_env.connector_with(
        custom_attributes={"pickup-note": "note"},
        required_attributes=["pickup-note"],
        attribute_defaults={"pickup-note": "ship it"},
    )
    base = make_order(1)
    own = outgoing(replace(base, note="the order's note", custom_fields=(("pickup-note", "leave at the door"),)))
    assert all(c.ok for c in connector.preflight_order(own))
    (result,) = connector.post_orders([own])
    assert result.ok
    assert _attribute(square_env, own.order_key, "pickup-note") == "leave at the door"

    mapped = outgoing(replace(make_order(2), note="the order's note", custom_fields=(("pickup-note", "  "),)))
    (result,) = connector.post_orders([mapped])
    assert result.ok and _attribute(square_env, mapped.order_key, "pickup-note") == "the order's note"

    defaulted = outgoing(replace(make_order(3), note=""))
    (result,) = connector.post_orders([defaulted])
    assert result.ok and _attribute(square_env, defaulted.order_key, "pickup-note") == "ship it"


def test_a_required_attribute_with_no_source_is_filled_from_the_order_s_own_custom_field(
    square_env: SquareEnv,
) -> None:
    connector = square_env.connector_with(required_attributes=["gift-wrap"])
    without = outgoing(make_order(4))
    (check,) = [c for c in connector.preflight_order(without) if c.name == "required_fields"]
    assert check.reason is not None and check.reason.code == HoldCode.REQUIRED_FIELD_MISSING

    order = outgoing(replace(make_order(5), custom_fields=(("gift-wrap", "yes"),)))
    assert all(c.ok for c in connector.preflight_order(order))
    (result,) = connector.post_orders([order])
    assert result.ok and _attribute(square_env, order.order_key, "gift-wrap") == "yes"


def test_tags_and_custom_sources_still_read_through_the_shared_lookup(square_env: SquareEnv) -> None:
    connector = square_env.connector_with(custom_attributes={"labels": "tags", "wrap": "custom:gift"})
    order = outgoing(replace(make_order(6), tags=("vip", "gift"), custom_fields=(("gift", "ribbon"),)))
    (result,) = connector.post_orders([order])
    assert result.ok
    assert _attribute(square_env, order.order_key, "labels") == "vip, gift"
    assert _attribute(square_env, order.order_key, "wrap") == "ribbon"


# --- SearchOrders, paged by cursor (decision 245) ------------------------------------------------------


def _newer_orders(env: SquareEnv, like: dict[str, Any], n: int) -> None:
    """``n`` other orders the hub made in Square after ``like`` (the same source, other keys)."""
    with env.state.lock:
        for i in range(n):
            other = copy.deepcopy(like)
            other["id"] = f"ZOTHER{i:05d}"
            other["created_at"] = "2999-01-01T00:00:00.000Z"
            other["reference_id"] = f"#other-{i}"
            other["metadata"] = {"ob_order_key": f"other-{i}"}
            env.state.orders[other["id"]] = other


def _searches(env: SquareEnv) -> int:
    return len([e for e in env.state.entries("call") if e.key == "/v2/orders/search" and e.data["status"] == 200])


def test_a_reused_key_is_settled_by_reading_every_page_of_the_order_search(square_env: SquareEnv) -> None:
    order = outgoing(make_order(7))
    (first,) = square_env.connector.post_orders([order])
    assert first.ok
    (placed,) = square_env.received(order.order_key)
    _newer_orders(square_env, placed, 1100)  # the hub's order is on the third page of 500

    other = square_env.connector_with(shipping_taxable=True)  # another body under the same key
    (again,) = other.post_orders([order])
    assert again.ok and again.document_id == first.document_id
    assert _searches(square_env) == 3
    assert len(square_env.received(order.order_key)) == 1 and len(square_env.payments_for(order.order_key)) == 1
    assert len(square_env.state.entries("order_created")) == 1
    assert len(square_env.state.entries("payment_created")) == 1


def test_find_returns_none_only_after_the_last_page(square_env: SquareEnv) -> None:
    order = outgoing(make_order(8))
    (first,) = square_env.connector.post_orders([order])
    (placed,) = square_env.received(order.order_key)
    _newer_orders(square_env, placed, 600)
    assert square_env.connector.find("not-a-key-the-hub-made") is None
    assert _searches(square_env) == 2
    found = square_env.connector.find(order.order_key)
    assert found is not None and found["id"] == first.document_id


# --- the sandbox pages SearchOrders as Square documents it -------------------------------------------


def test_the_sandbox_pages_orders_newest_first_with_a_cursor_bound_to_its_query(square_env: SquareEnv) -> None:
    order = outgoing(make_order(9))
    square_env.connector.post_orders([order])
    (placed,) = square_env.received(order.order_key)
    _newer_orders(square_env, placed, 4)
    state = square_env.state
    query = {"filter": {"source_filter": {"source_names": [placed["source"]["name"]]}}}
    body: dict[str, Any] = {"location_ids": [placed["location_id"]], "query": query, "limit": 2}
    seen: list[str] = []
    pages = 0
    while True:
        answer = state.search_orders(body)
        pages += 1
        seen += [o["id"] for o in answer.get("orders") or []]
        if "cursor" not in answer:
            break
        body = {**body, "cursor": answer["cursor"]}
    assert pages == 3 and len(seen) == 5 and len(set(seen)) == 5 and seen[-1] == placed["id"]

    first = state.search_orders({**body, "cursor": None})
    other_query = {"location_ids": [placed["location_id"]], "query": {}, "cursor": first["cursor"]}
    with pytest.raises(SquareError) as refused:
        state.search_orders(other_query)
    assert refused.value.field == "cursor"
    with pytest.raises(SquareError):
        state.search_orders({**body, "cursor": "not-a-cursor"})
    # never more than 500 a page, whatever the limit asks
    _newer_orders(square_env, placed, 600)
    big = state.search_orders({"location_ids": [placed["location_id"]], "query": query, "limit": 1000})
    assert len(big["orders"]) == 500 and "cursor" in big
