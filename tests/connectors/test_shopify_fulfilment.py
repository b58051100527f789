"""The Shopify connector's fulfilment push against the sandbox when ``fulfillmentCreate``'s answer is
refused, cut or lost: retried only when it certainly did not run, otherwise settled by reading."""

from __future__ import annotations

import pytest

from orderbridge.connectors.base import FulfilmentLine, FulfilmentRequest
from orderbridge.domain.order import Order
from orderbridge.errors import OutcomeUnknown
from orderbridge.sandboxes.base import Fault
from tests.connectors.test_shopify_connector import ShopifyEnv, make_env

CREATE = "fulfillmentCreate"


def _request(env: ShopifyEnv, external_id: str, tracking: str, quantity: int = 1) -> FulfilmentRequest:
    order = env.connector.fetch_order(external_id)
    assert isinstance(order, Order)
    return FulfilmentRequest(external_id, (FulfilmentLine(order.lines[0].external_id, quantity),), tracking, "UPS")


def test_a_rate_limited_create_never_ran_and_is_retried_into_one_fulfilment() -> None:
    env, http = make_env(0)
    external_id = env.add_order(line_items=[{"sku": "A", "quantity": 3, "price": "3.00"}])
    env.state.add_fault(Fault("429", path="/admin", retry_after=0.01, count=2, body_contains=CREATE))
    fid = env.connector.push_fulfilment(_request(env, external_id, "T-429"))
    assert [f["id"] for f in env.fulfillments(external_id)] == [int(fid)]
    http.close()


def test_a_cut_answer_is_settled_by_reading_and_the_create_is_not_sent_twice() -> None:
    env, http = make_env(0)
    external_id = env.add_order(line_items=[{"sku": "A", "quantity": 3, "price": "3.00"}])
    env.state.add_fault(Fault("truncate", path="/admin", body_contains=CREATE))
    fid = env.connector.push_fulfilment(_request(env, external_id, "T-CUT"))
    (only,) = env.fulfillments(external_id)
    assert str(only["id"]) == fid and only["line_items"][0]["quantity"] == 1
    http.close()


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_a_server_error_to_the_create_is_an_unknown_outcome_not_a_resend(kind: str) -> None:
    env, http = make_env(0)
    external_id = env.add_order(line_items=[{"sku": "A", "quantity": 3, "price": "3.00"}])
    env.state.add_fault(Fault(kind, path="/admin", count=-1, body_contains=CREATE))
    request = _request(env, external_id, "T-5XX")
    before = env.state.requests_seen
    with pytest.raises(OutcomeUnknown) as lost:
        env.connector.push_fulfilment(request)
    assert "no fulfilment with tracking T-5XX" in str(lost.value)
    assert env.state.requests_seen - before == 3  # read, one create, the read that settles it
    assert env.fulfillments(external_id) == []
    http.close()
