"""Pushes through the planner on a marketplace-like channel (issue #16), on both databases: seed 004's
three failures — missing shipping data, ship before accept, an unsupported cancel — each held with
its exact reason and fix and released once fixed (or marked done once the back office shows it);
the auto-accept policy; an interrupted push never resent blindly. The fake marketplace refuses any
call its state machine forbids and records it: every test ends with that list empty."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from orderbridge import seams
from orderbridge.connectors import registry
from orderbridge.domain.shipments import Shipment, ShipmentLine
from orderbridge.errors import OutcomeUnknown
from orderbridge.services import channel_intents, notify
from orderbridge.services.backsync import poll_shipments, push_fulfilments
from orderbridge.services.channel_intents import held_intents, intents_of, request_intent
from orderbridge.services.connections import add_connection, update_connection
from orderbridge.services.deadlines import DEADLINE_ALERT, sync_channel_alerts
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import holds, show_order
from orderbridge.services.shipping_fill import fill_shipping_data
from orderbridge.services.sync import sync_channel
from tests.builders import T0, order
from tests.fakes import FakeDestination
from tests.scoped import cid, tenant
from tests.services.market_kind import FakeMarket


@pytest.fixture
def market_kind() -> Iterator[None]:
    registry.register("fake_market", FakeMarket)
    registry.register("fake_destination", FakeDestination)
    yield
    registry.unregister("fake_market")


def _world(
    hub: Hub, *, auto_accept: bool = True, skus: tuple[str, ...] = ("SKU-1",)
) -> tuple[FakeMarket, FakeDestination]:
    market, wh = FakeMarket(), FakeDestination()
    market.put(order(1, skus=skus))
    add_connection(tenant(hub), "mp", "fake_market", "http://fake", {"token": "t"}, {"auto_accept": auto_accept})
    hub.connectors[cid(hub, "mp")] = market
    add_connection(tenant(hub), "wh", "fake_destination", "http://fake", {"key": "k"})
    hub.connectors[cid(hub, "wh")] = wh
    set_mapping(tenant(hub), "sku", "SKU-1", "W-1", cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    sync_channel(tenant(hub), cid(hub, "mp"))
    return market, wh


def _ship(hub: Hub, wh: FakeDestination, carrier: str | None = "ups", url: str | None = None, n: str = "S-1") -> None:
    post_ready(tenant(hub), cid(hub, "wh"))
    (key,) = wh.documents
    wh.shipments[:] = [Shipment(n, key, "1Z999", carrier, None, T0, False, (ShipmentLine("L1", "SKU-1", 1),), url)]
    poll_shipments(tenant(hub), cid(hub, "wh"))


def _push(hub: Hub) -> Any:
    return push_fulfilments(tenant(hub), cid(hub, "mp"))


def _pushes(hub: Hub) -> list[tuple[str, str | None]]:
    return [(p["status"], p.get("reason_code")) for p in show_order(tenant(hub), "#1001").pushes]


def _order_id(hub: Hub) -> int:
    return int(show_order(tenant(hub), "#1001").id)


def test_missing_tracking_url_is_held_then_filled_in_and_sent(hub: Hub, market_kind: None) -> None:
    market, wh = _world(hub)
    _push(hub)  # the policy accepts it
    market.debit("1001")
    _ship(hub, wh, carrier="colis-prive")  # a carrier the marketplace does not know, no URL
    report = _push(hub)
    assert report.held == 1
    (group,) = [g for g in holds(tenant(hub)) if g.kind == "push"]
    assert (group.code, group.value) == ("shipping_data_missing", "mp")  # held pushes: a cause per channel
    detail = show_order(tenant(hub), "#1001")
    (reason,) = [r for r in detail.reasons if r["code"] == "shipping_data_missing"]
    assert reason["value"] == "tracking_url"
    assert reason["fix"].action == "fill_shipping_data" and reason["fix"].param("field") == "tracking_url"
    assert ("1001", "OR24 ship") not in market.ledger
    filled = fill_shipping_data(
        tenant(hub), _order_id(hub), by="ana@example.com", tracking_url="https://cp.example/t/1Z999"
    )
    assert filled.fields == ("tracking_url",) and filled.report.pushed == 1
    assert [c for o, c in market.ledger if o == "1001"] == ["OR21 accept", "OR23 tracking", "OR24 ship"]
    assert [g for g in holds(tenant(hub)) if g.kind == "push"] == []
    timeline = [e["message"] for e in show_order(tenant(hub), "#1001").timeline]
    assert any("filled in by ana@example.com" in m for m in timeline)
    assert market.refused == []


def test_missing_shipping_data_is_released_when_the_3pl_adds_it(hub: Hub, market_kind: None) -> None:
    market, wh = _world(hub)
    _push(hub)
    market.debit("1001")
    _ship(hub, wh, carrier="colis-prive")
    assert _push(hub).held == 1
    (key,) = wh.documents
    wh.shipments[:] = [
        Shipment(
            "S-1",
            key,
            "1Z999",
            "colis-prive",
            None,
            T0,
            False,
            (ShipmentLine("L1", "SKU-1", 1),),
            "https://cp.example/t",
        )
    ]
    poll_shipments(tenant(hub), cid(hub, "wh"))
    assert _push(hub).pushed == 1
    assert market.market["1001"].state == "SHIPPED" and market.refused == []


def test_ship_before_accept_without_auto_accept_is_held_until_accepted_in_the_back_office(
    hub: Hub, market_kind: None
) -> None:
    market, wh = _world(hub, auto_accept=False)
    _ship(hub, wh)
    assert _push(hub).held == 1
    (group,) = [g for g in holds(tenant(hub)) if g.kind == "push"]
    assert (group.code, group.value) == ("transition_not_allowed", "mp")
    (reason,) = [r for r in show_order(tenant(hub), "#1001").reasons if r["code"] == "transition_not_allowed"]
    assert reason["value"] == "WAITING_ACCEPTANCE->shipped"
    assert reason["fix"].action == "act_in_back_office"
    assert reason["fix"].param("url") == "https://market.example/orders/1001"
    assert _push(hub).held == 1 and market.ledger == []  # planned again, still not allowed: nothing sent
    market.accept_by_hand("1001")
    market.debit("1001")
    assert _push(hub).pushed == 1  # re-planned from the fresh state: released by itself
    assert [c for _, c in market.ledger] == ["OR23 tracking", "OR24 ship"]
    assert [g for g in holds(tenant(hub)) if g.kind == "push"] == [] and market.refused == []


def test_ship_before_accept_with_auto_accept_accepts_waits_for_the_debit_then_ships_once(
    hub: Hub, market_kind: None
) -> None:
    market, wh = _world(hub, auto_accept=True)
    _ship(hub, wh)
    _push(hub)
    assert _pushes(hub) == [("waiting", None)]
    assert [c for _, c in market.ledger] == ["OR21 accept"]
    _push(hub)  # still waiting for the debit: nothing more is sent
    assert [c for _, c in market.ledger] == ["OR21 accept"]
    market.debit("1001")
    assert _push(hub).pushed == 1
    _push(hub)
    assert [c for _, c in market.ledger] == ["OR21 accept", "OR23 tracking", "OR24 ship"]
    assert market.refused == []


def test_an_unsupported_cancel_is_held_with_the_back_office_link_and_done_once_cancelled_there(
    hub: Hub, market_kind: None
) -> None:
    market, _ = _world(hub)
    _push(hub)  # the policy accepts it
    market.debit("1001")  # SHIPPING, can_cancel false
    asked = request_intent(tenant(hub), _order_id(hub), "cancelled", by="ana@example.com", note="customer asked")
    assert asked.created
    assert request_intent(tenant(hub), _order_id(hub), "cancelled", by="bo@example.com").intent_id == asked.intent_id
    _push(hub)
    (held,) = held_intents(tenant(hub))
    assert held["reason"]["code"] == "action_not_supported"
    assert held["reason"]["fix"]["params"]["url"] == "https://market.example/orders/1001"
    market.cancel_by_hand("1001")
    _push(hub)
    (cancel,) = [i for i in intents_of(tenant(hub), _order_id(hub)) if i["outcome"] == "cancelled"]
    assert cancel["status"] == "pushed" and cancel["message"].startswith("already_in_state")
    assert ("1001", "OR29 cancel") not in market.ledger and market.refused == []


def test_a_held_request_alerts_once_per_cause_with_the_back_office_link_and_clears_when_done(
    hub: Hub, market_kind: None
) -> None:
    market, _ = _world(hub)
    _push(hub)
    market.debit("1001")  # SHIPPING, can_cancel false: the cancel is held action_not_supported
    request_intent(tenant(hub), _order_id(hub), "cancelled", by="ana@example.com")
    _push(hub)
    assert notify.sync_hold_alerts(tenant(hub)) == (1, 0)
    assert notify.sync_hold_alerts(tenant(hub)) == (0, 0)  # one alert per cause, not one per run
    sync_channel_alerts(tenant(hub))  # the housekeeping's other pass: deadlines, nothing about the request
    (alert,) = [a for a in notify.list_alerts(tenant(hub)) if a.kind != DEADLINE_ALERT]
    assert alert.key == "hold:request:action_not_supported:mp" and alert.state == "open"
    assert alert.subject == "Requests held: requests channel mp's API does not offer"
    assert "1 request held" in alert.body and "Orders: #1001" in alert.body
    assert alert.fixes[0].param("url") == "https://market.example/orders/1001"
    day = notify.digest_period_start(tenant(hub).now(), 86400) + timedelta(days=1, hours=9)
    hub.now = lambda: day  # the next day's digest counts it too
    assert notify.send_digest_if_due(tenant(hub)) is True
    (digest,) = [a for a in notify.list_alerts(tenant(hub)) if a.kind == "digest"]
    assert digest.subject == "Digest: 0 held order(s), 1 held request(s) to channels, 1 cause(s) to fix"
    assert "1 request: requests channel mp's API does not offer — " in digest.body
    assert "e.g. #1001" in digest.body
    market.cancel_by_hand("1001")
    _push(hub)  # the back office shows it cancelled: done, the cause is gone
    assert notify.sync_hold_alerts(tenant(hub)) == (0, 1)
    assert {a.key: a.state for a in notify.list_alerts(tenant(hub))}["hold:request:action_not_supported:mp"] == (
        "resolved"
    )


def test_a_cancel_the_api_allows_is_sent_once(hub: Hub, market_kind: None) -> None:
    market, _ = _world(hub)
    _push(hub)
    market.debit("1001")
    market.market["1001"].can_cancel = True
    request_intent(tenant(hub), _order_id(hub), "cancelled", by="ana@example.com")
    _push(hub)
    _push(hub)
    assert [c for _, c in market.ledger].count("OR29 cancel") == 1
    (cancel,) = [i for i in intents_of(tenant(hub), _order_id(hub)) if i["outcome"] == "cancelled"]
    assert cancel["status"] == "pushed" and [c["call"] for c in cancel["calls"]] == ["OR29 cancel"]


def test_an_order_with_an_unmapped_sku_has_its_acceptance_held_until_it_is_mapped(hub: Hub, market_kind: None) -> None:
    market, _ = _world(hub, skus=("SKU-NEW",))
    report = _push(hub)
    assert report.intents is not None and report.intents.acceptance_held == 1
    (held,) = held_intents(tenant(hub))
    assert held["outcome"] == "accepted" and held["reason"]["code"] == "acceptance_held"
    assert "sku_unmapped SKU-NEW" in held["reason"]["message"]
    assert market.ledger == []
    set_mapping(tenant(hub), "sku", "SKU-NEW", "W-9", cid(hub, "wh"))  # releases the order's hold
    _push(hub)
    assert [c for _, c in market.ledger] == ["OR21 accept"]
    assert held_intents(tenant(hub)) == []


def test_held_acceptances_never_keep_newer_orders_from_being_accepted(
    hub: Hub, market_kind: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(channel_intents, "AUTO_ACCEPT_BATCH", 1)  # the batch is one order
    market, _ = _world(hub, skus=("SKU-NEW",))  # #1001: held for an unmapped SKU
    market.put(order(2, skus=("SKU-1",)))  # #1002: acceptable
    sync_channel(tenant(hub), cid(hub, "mp"))
    first = _push(hub)
    assert first.intents is not None and first.intents.acceptance_held == 1
    second = _push(hub)  # #1001 was asked: the batch goes on to #1002
    assert second.intents is not None and second.intents.accepted_automatically == 1
    assert [(n, c) for n, c in market.ledger] == [("1002", "OR21 accept")]


def test_a_push_killed_between_two_calls_is_replanned_and_nothing_is_sent_twice(hub: Hub, market_kind: None) -> None:
    market, wh = _world(hub)
    _push(hub)
    market.debit("1001")
    _ship(hub, wh)
    seams.inject("push.between_calls", 1)
    try:
        with pytest.raises(seams.InjectedCrash):
            _push(hub)
    finally:
        seams.inject(None)
    assert [c for _, c in market.ledger] == ["OR21 accept", "OR23 tracking"]
    hub.settings = hub.settings.model_copy(update={"unknown_outcome_settle_s": 0})
    assert _push(hub).pushed == 1
    assert [c for _, c in market.ledger] == ["OR21 accept", "OR23 tracking", "OR24 ship"]
    assert market.refused == []


def test_a_lost_answer_is_read_before_anything_is_sent_again(hub: Hub, market_kind: None) -> None:
    market, wh = _world(hub)
    _push(hub)
    market.debit("1001")
    _ship(hub, wh)
    market.push_error = OutcomeUnknown("timed out", hint="read first")
    _push(hub)
    assert [status for status, _ in _pushes(hub)] == ["unknown"]
    market.push_error = None
    market.market["1001"].tracking = ("1Z999", "ups")  # the lost call had landed
    hub.settings = hub.settings.model_copy(update={"unknown_outcome_settle_s": 0})
    assert _push(hub).pushed == 1
    assert [c for _, c in market.ledger] == ["OR21 accept", "OR24 ship"]  # tracking not sent again
    update_connection(tenant(hub), cid(hub, "mp"), settings={"auto_accept": False})
