"""The Mirakl channel against the Mirakl sandbox: the shared contract, paging, the mapper, perform."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from orderbridge.connectors import registry
from orderbridge.connectors.base import UnreadableOrder
from orderbridge.connectors.mirakl import MiraklChannel
from orderbridge.connectors.mirakl.mapper import order_from_json
from orderbridge.domain.channel_rules import ChannelAction
from orderbridge.domain.order import FulfilmentStatus, Order, PaymentStatus
from orderbridge.domain.push_plan import PlannedCall, Tracking
from orderbridge.errors import HoldOrder, OutcomeUnknown, SettingsError
from orderbridge.sandboxes.base import Fault, in_process_client, run_in_thread
from orderbridge.sandboxes.mirakl import MiraklState, create_sandbox
from tests.connectors.contract_channel import ChannelContract

BASE = "http://sandbox.local"
KEY = "mirakl-shop-key"
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass
class MiraklEnv:
    state: MiraklState
    connector: MiraklChannel

    def add_order(self, **overrides: Any) -> str:
        return str(self.state.create_order(**overrides)["order_id"])

    def update_order(self, external_id: str, **changes: Any) -> None:
        self.state.update(external_id, **changes)

    def add_unreadable_order(self) -> str:
        external_id = self.add_order()
        self.state.update(external_id, total_price="12,50")
        return external_id

    def order_count(self) -> int:
        return len(self.state.orders)

    def revoke(self) -> None:
        self.state.revoke()

    def restore(self) -> None:
        self.state.restore()

    def fault(self, kind: str, **kw: Any) -> None:
        self.state.add_fault(Fault(kind, path="/api", retry_after=0.01, **kw))

    def settle(self) -> None:
        self.state.tick()


def make_env(orders: int = 12, *, page_size: int = 5, **sandbox: Any) -> tuple[MiraklEnv, httpx.Client]:
    state, app = create_sandbox(orders=orders, **sandbox)
    http = in_process_client(app, BASE, timeout=2.0)
    connector = registry.build(
        "mirakl", BASE, {"shop_key": KEY}, {"page_size": page_size}, http=http, sleep=lambda _s: None
    )
    assert isinstance(connector, MiraklChannel)
    return MiraklEnv(state, connector), http


class TestMiraklChannelContract(ChannelContract):
    @pytest.fixture
    def channel_env(self) -> Iterator[MiraklEnv]:
        env, http = make_env()
        yield env
        http.close()


@pytest.fixture
def env() -> Iterator[MiraklEnv]:
    made, http = make_env(0)
    yield made
    http.close()


def test_every_request_carries_the_shop_key_itself_not_a_bearer_token(env: MiraklEnv) -> None:
    env.connector.check()
    with run_in_thread(env.state and create_sandbox()[1]) as running:
        seen: list[str] = []

        def hook(request: httpx.Request) -> None:
            seen.append(request.headers["authorization"])

        http = httpx.Client(timeout=2.0, event_hooks={"request": [hook]})
        connector = MiraklChannel(running.base_url, {"shop_key": KEY}, {}, http=http)
        assert "reachable" in connector.check()
        assert seen == [KEY]
        http.close()


def test_a_listing_pages_with_max_and_offset_from_the_cursor_sorted_by_update(env: MiraklEnv) -> None:
    for _ in range(12):
        env.add_order()
    batches = list(env.connector.list_changed(LONG_AGO))
    assert sum(len(b.records) for b in batches) == 12 and len(batches) == 3
    listings = [c for c in env.state.calls() if c["path"] == "/api/orders"]
    assert all(c["query"]["sort"] == "dateUpdated" and c["query"]["order"] == "asc" for c in listings)
    assert all(int(c["query"]["max"]) <= 100 for c in listings)
    assert listings[0]["query"]["start_update_date"].startswith("2000-01-01")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_an_order_updated_while_the_listing_pages_is_not_skipped() -> None:
    clock = Clock()
    env, http = make_env(0, clock=clock)
    ids = []
    for _ in range(10):
        ids.append(env.add_order())
        clock.advance(1)
    pages = env.connector.list_changed(LONG_AGO, clock.now + timedelta(hours=1))
    first = next(pages)
    clock.advance(1)
    env.state.update(ids[0], note="moved while paging")  # leaves its place: plain offsets would skip one
    rest = [r.external_id for b in pages for r in b.records]
    assert set(ids) <= {r.external_id for r in first.records} | set(rest)
    assert len(rest) == len(set(rest))
    http.close()


def test_the_mapper_keeps_mirakl_state_deadlines_and_exact_money(env: MiraklEnv) -> None:
    external_id = env.add_order(lines=[{"offer_sku": "MUG", "quantity": 2, "price_unit": "9.95"}], state="SHIPPING")
    order = env.connector.fetch_order(external_id)
    assert isinstance(order, Order)
    assert order.channel_state == "SHIPPING" and order.payment_status is PaymentStatus.PAID
    assert [name for name, _ in order.deadlines] == ["acceptance", "shipping"]
    assert all(due.tzinfo is not None for _, due in order.deadlines)
    assert order.lines[0].unit_price.amount == Decimal("9.95") and order.subtotal.amount == Decimal("19.90")
    assert order.total.amount == Decimal("24.80") and order.shipping_address is not None
    assert order.shipping_address.country_code == "FR"


def test_an_unknown_state_is_kept_as_it_is_and_never_crashes_the_mapper(env: MiraklEnv) -> None:
    external_id = env.add_order()
    env.state.update(external_id, order_state="WAITING_SOMETHING_NEW")
    order = env.connector.fetch_order(external_id)
    assert isinstance(order, Order) and order.channel_state == "WAITING_SOMETHING_NEW"
    assert order.payment_status is PaymentStatus.UNKNOWN and order.fulfilment_status is FulfilmentStatus.UNKNOWN
    assert order.unknown_values == (("order_state", "WAITING_SOMETHING_NEW"),)
    assert env.connector.remote_state(external_id).state == "WAITING_SOMETHING_NEW"
    assert isinstance(order_from_json({"order_id": 7}), UnreadableOrder)
    assert isinstance(order_from_json({"order_id": "1-A", "last_updated_date": "2026-01-01T00:00:00"}), UnreadableOrder)


def test_remote_state_reads_lines_tracking_flags_refunds_deadlines_and_the_back_office_link(env: MiraklEnv) -> None:
    external_id = env.add_order(
        state="SHIPPED", can_cancel=False, tracking={"tracking_number": "1Z9", "carrier_code": "ups"}
    )
    remote = env.connector.remote_state(external_id)
    assert remote.state == "SHIPPED" and remote.flag("can_cancel") is False
    assert [(s.tracking_number, s.carrier) for s in remote.shipments] == [("1Z9", "ups")]
    assert all(line.state == "SHIPPED" and line.shipped == line.quantity for line in remote.lines)
    assert remote.url == f"{BASE}/mmp/shop/order/{external_id}"
    assert set(remote.deadlines) == {"acceptance", "shipping"} and remote.refunded == 0


def test_an_unknown_carrier_is_sent_by_name_with_its_url_and_a_known_one_by_code(env: MiraklEnv) -> None:
    a = env.add_order(state="SHIPPING")
    b = env.add_order(state="SHIPPING")
    track = PlannedCall(ChannelAction.TRACKING, "OR23", tracking=Tracking("T1", "UPS"))
    env.connector.perform(a, track)
    other = PlannedCall(ChannelAction.TRACKING, "OR23", tracking=Tracking("T2", "Colis Privé", "https://cp.example/T2"))
    env.connector.perform(b, other)
    bodies = [c["body"] for c in env.state.writes()]
    assert bodies == [
        {"tracking_number": "T1", "carrier_code": "ups"},
        {"tracking_number": "T2", "carrier_name": "Colis Privé", "carrier_url": "https://cp.example/T2"},
    ]


def test_a_refused_call_is_a_hold_with_miraklss_words_and_a_lost_answer_is_outcome_unknown(env: MiraklEnv) -> None:
    external_id = env.add_order()
    with pytest.raises(HoldOrder) as held:
        env.connector.perform(external_id, PlannedCall(ChannelAction.SHIP, "OR24"))
    assert "WAITING_ACCEPTANCE" in held.value.message and held.value.code == "channel_rejected"
    lines = tuple((ln.line_external_id, ln.quantity) for ln in env.connector.remote_state(external_id).lines)
    env.fault("500", count=1, method="PUT")
    with pytest.raises(OutcomeUnknown):
        env.connector.perform(external_id, PlannedCall(ChannelAction.ACCEPT, "OR21", lines))
    assert [c["status"] for c in env.state.writes(external_id)] == [400, 500], "never re-sent blindly"
    env.fault("timeout", count=1, method="PUT", delay=2.5)
    with pytest.raises(OutcomeUnknown):
        env.connector.perform(external_id, PlannedCall(ChannelAction.ACCEPT, "OR21", lines))
    env.fault("truncate", count=1, method="PUT")  # a 204 cut short is still a 204: applied
    env.connector.perform(external_id, PlannedCall(ChannelAction.ACCEPT, "OR21", lines))
    assert env.connector.remote_state(external_id).state == "SHIPPING"


def test_a_429_on_a_write_is_retried_because_mirakl_did_not_run_it(env: MiraklEnv) -> None:
    external_id = env.add_order(state="SHIPPING")
    env.fault("429", count=1, method="PUT")
    env.connector.perform(external_id, PlannedCall(ChannelAction.SHIP, "OR24"))
    assert [c["status"] for c in env.state.writes(external_id)] == [429, 204]


def test_a_refund_is_spread_over_the_lines_within_what_each_has_left(env: MiraklEnv) -> None:
    external_id = env.add_order(
        state="SHIPPED",
        lines=[
            {"offer_sku": "A", "quantity": 1, "price_unit": "5.00"},
            {"offer_sku": "B", "quantity": 1, "price_unit": "8.00"},
        ],
    )
    refund_ids = env.connector.perform(external_id, PlannedCall(ChannelAction.REFUND, "OR28", amount=Decimal("7.50")))
    assert len(refund_ids.split(",")) == 2
    assert env.connector.remote_state(external_id).refunded == Decimal("7.50")
    with pytest.raises(HoldOrder):
        env.connector.perform(external_id, PlannedCall(ChannelAction.REFUND, "OR28", amount=Decimal("6")))


def test_a_connection_without_a_shop_key_or_address_is_a_settings_error() -> None:
    with pytest.raises(SettingsError):
        MiraklChannel(BASE, {}, {})
    with pytest.raises(SettingsError):
        MiraklChannel("", {"shop_key": KEY}, {})


def test_the_poll_interval_defaults_to_at_least_a_minute_and_auto_accept_is_the_hubs() -> None:
    decl = registry.declaration("mirakl")
    assert decl.hub_setting({}, "poll_interval_s") >= 60
    assert decl.hub_setting({}, "auto_accept") is True
    assert "auto_accept" not in decl.connector_settings({})


def test_the_connections_known_carriers_reach_the_planners_rules() -> None:
    connector = MiraklChannel(BASE, {"shop_key": KEY}, {"known_carriers": ["colis-prive"]})
    assert connector.channel_rules.knows_carrier("Colis-Prive") and not connector.channel_rules.knows_carrier("ups")
