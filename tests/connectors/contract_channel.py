"""The channel contract: what every channel connector must do against its sandbox.

A connector's test module subclasses :class:`ChannelContract` and provides a ``channel_env``
fixture yielding an object with ``connector``, ``add_order(**overrides) -> external_id``,
``update_order(external_id, **changes)``, ``add_unreadable_order() -> external_id``,
``order_count()``, ``revoke()``, ``restore()`` and ``fault(kind, **kw)``; for ``PUSH_FULFILMENT``
also ``fulfillments(external_id) -> list``, and for ``WEBHOOKS`` ``webhook_secret``, ``base_url``
and ``signed_delivery(external_id, signed=True) -> (headers, body)`` (lower-case header names,
signed as the channel signs them). The sandbox's own store is expected to start with some generated orders.

Each test runs only where the connector declares the capability it needs (:mod:`.capabilities`):
a channel without ``PUSH_FULFILMENT`` shows the fulfilment tests as skipped, with the reason.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orderbridge.connectors import registry
from orderbridge.connectors.base import (
    AuditableChannel,
    Capability,
    ChannelBatch,
    ChannelConnector,
    PlannedChannel,
    Role,
    UnreadableOrder,
    WebhookChannel,
    WebhookSource,
    missing_methods,
)
from orderbridge.domain.canonical import content_hash
from orderbridge.domain.channel_rules import ChannelAction, Outcome
from orderbridge.domain.order import Order
from orderbridge.domain.push_plan import Intent, PlannedCall, PlanStatus, Tracking, plan
from orderbridge.errors import AuthFailed, HoldOrder, OrderBridgeError, PermissionDenied
from tests.connectors.capabilities import gate, requires

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def _drain(connector: Any, since: Any) -> list[ChannelBatch]:
    return list(connector.list_changed(since))


def _records(batches: list[ChannelBatch]) -> list[Any]:
    return [r for b in batches for r in b.records]


class ChannelContract:
    @pytest.fixture(autouse=True)
    def _declared(self, request: pytest.FixtureRequest, channel_env: Any) -> None:
        gate(request, channel_env.connector.declaration)

    # --- the declaration (every channel) -----------------------------------------------------------
    def test_the_declaration_is_registered_and_backed_by_the_methods_it_promises(self, channel_env: Any) -> None:
        connector = channel_env.connector
        decl = connector.declaration
        assert decl.role is Role.CHANNEL and isinstance(connector, ChannelConnector)
        assert registry.declaration(decl.kind) is decl
        assert missing_methods(type(connector), decl) == []
        assert isinstance(connector, PlannedChannel) or Capability.PUSH_FULFILMENT not in decl.capabilities
        assert isinstance(connector, AuditableChannel) or Capability.LIST_ORDER_STAMPS not in decl.capabilities
        assert isinstance(connector, WebhookChannel) or Capability.WEBHOOKS not in decl.capabilities
        assert all(s.description for s in decl.all_settings()), "every setting says what it does"
        assert all(c.description for c in decl.credentials)
        decl.download_rules(None)  # the declared default rules are readable

    @requires(Capability.LIST_CHANGED)
    def test_lists_every_order_exactly_once_across_pages_in_update_order(self, channel_env: Any) -> None:
        for _ in range(3):
            channel_env.add_order()
        batches = _drain(channel_env.connector, LONG_AGO)
        records = _records(batches)
        ids = [r.external_id for r in records]
        assert len(batches) > 1, "the store should need more than one page"
        assert len(ids) == len(set(ids))
        assert len(ids) == channel_env.order_count()
        updated = [r.updated_at for r in records]
        assert updated == sorted(updated)
        assert all(b.cursor_after == max(r.updated_at for r in b.records) for b in batches)

    @requires(Capability.LIST_CHANGED)
    def test_incremental_listing_from_a_cursor_returns_only_changed_orders_plus_the_boundary(
        self, channel_env: Any
    ) -> None:
        batches = _drain(channel_env.connector, LONG_AGO)
        cursor = batches[-1].cursor_after
        first = _records(batches)[0].external_id
        channel_env.update_order(first, note="changed by the customer")
        new = channel_env.add_order()
        again = _records(_drain(channel_env.connector, cursor))
        ids = {r.external_id for r in again}
        assert {first, new} <= ids
        assert all(r.updated_at >= cursor for r in again)
        assert len(ids) <= 2 + sum(1 for r in _records(batches) if r.updated_at == cursor)

    @requires(Capability.FETCH_ORDER)
    def test_fetch_order_returns_the_same_canonical_order_as_listing(self, channel_env: Any) -> None:
        external_id = channel_env.add_order()
        listed = {r.external_id: r for r in _records(_drain(channel_env.connector, LONG_AGO))}
        fetched = channel_env.connector.fetch_order(external_id)
        assert isinstance(fetched, Order)
        assert fetched == listed[external_id]
        assert content_hash(fetched) == content_hash(listed[external_id])

    # issue #16: a pushing channel is pushed to through the planner (remote_state → plan → perform)
    @requires(Capability.PUSH_FULFILMENT)
    def test_a_fulfilment_remote_state_is_a_declared_state_with_every_line(self, channel_env: Any) -> None:
        connector = channel_env.connector
        rules = connector.declaration.channel_rules
        assert rules is not None
        external_id = channel_env.add_order()
        order = connector.fetch_order(external_id)
        remote = connector.remote_state(external_id)
        assert remote.external_id == external_id and remote.state in rules.states
        assert {ln.line_external_id for ln in remote.lines} == {line.external_id for line in order.lines}

    @requires(Capability.PUSH_FULFILMENT)
    def test_a_planned_fulfilment_is_sent_then_already_in_state(self, channel_env: Any) -> None:
        connector = channel_env.connector
        rules = getattr(connector, "channel_rules", None) or connector.declaration.channel_rules
        external_id = channel_env.add_order()
        order = connector.fetch_order(external_id)
        intent = Intent(
            Outcome.SHIPPED,
            tuple((line.external_id, line.quantity) for line in order.lines),
            Tracking("1Z999AA10123456784", "UPS", "https://www.ups.com/track?tracknum=1Z999AA10123456784"),
        )
        for _ in range(20):  # a channel that moves the order on by itself (a debit) is waited for
            p = plan(rules, connector.remote_state(external_id), intent, channel="contract")
            assert p.status is not PlanStatus.HELD, p.describe()
            if p.status is PlanStatus.DONE:
                break
            for call in p.calls:
                connector.perform(external_id, call)
            if p.status is PlanStatus.WAIT:
                settle = getattr(channel_env, "settle", None)
                settle() if settle is not None else time.sleep(0.1)
        assert plan(rules, connector.remote_state(external_id), intent, channel="contract").status is PlanStatus.DONE
        assert connector.fetch_order(external_id).fulfilment_status in ("fulfilled", "shipped", "completed")

    @requires(Capability.PUSH_FULFILMENT)
    def test_the_fulfilment_state_of_an_unknown_order_is_a_typed_error(self, channel_env: Any) -> None:
        with pytest.raises(OrderBridgeError):
            channel_env.connector.remote_state("987654321987")

    @requires(Capability.PUSH_FULFILMENT)
    def test_a_call_the_channel_refuses_holds_the_order_with_its_words_and_changes_nothing(
        self, channel_env: Any
    ) -> None:
        connector = channel_env.connector
        rules = getattr(connector, "channel_rules", None) or connector.declaration.channel_rules
        external_id = channel_env.add_order()
        remote = connector.remote_state(external_id)
        ship = rules.actions[ChannelAction.SHIP]
        if remote.state in ship.from_states:
            pytest.skip("a new order can be shipped at once here: nothing to refuse")
        with pytest.raises(HoldOrder) as held:
            connector.perform(external_id, PlannedCall(ChannelAction.SHIP, ship.call))
        assert held.value.message
        assert connector.remote_state(external_id).state == remote.state, "a refused call changes nothing"

    def test_revoked_credentials_raise_auth_failed_until_restored(self, channel_env: Any) -> None:
        channel_env.revoke()
        with pytest.raises(AuthFailed):
            channel_env.connector.check()
        channel_env.restore()
        assert channel_env.connector.check()

    @requires(Capability.FETCH_ORDER)
    def test_a_refused_permission_raises_permission_denied_not_auth_failed(self, channel_env: Any) -> None:
        external_id = channel_env.add_order()
        channel_env.fault("403", count=1)
        with pytest.raises(PermissionDenied) as refused:
            channel_env.connector.fetch_order(external_id)
        assert not isinstance(refused.value, AuthFailed) and "HTTP 403" in str(refused.value)
        assert channel_env.connector.fetch_order(external_id).external_id == external_id

    @requires(Capability.FETCH_ORDER)
    @pytest.mark.parametrize("kind", ["429", "500", "502", "503", "truncate"])
    def test_transient_failures_are_retried_transparently(self, channel_env: Any, kind: str) -> None:
        external_id = channel_env.add_order()
        channel_env.fault(kind, count=2)
        fetched = channel_env.connector.fetch_order(external_id)
        assert isinstance(fetched, Order)
        assert fetched.external_id == external_id

    @requires(Capability.LIST_CHANGED)
    def test_an_unreadable_record_comes_back_as_unreadable_order_not_an_exception(self, channel_env: Any) -> None:
        bad = channel_env.add_unreadable_order()
        records = _records(_drain(channel_env.connector, LONG_AGO))
        unreadable = [r for r in records if r.external_id == bad]
        assert len(unreadable) == 1
        assert isinstance(unreadable[0], UnreadableOrder)
        assert unreadable[0].problem
        assert len(records) == channel_env.order_count()

    # --- audits ---------------------------------------------------------------------------------
    @requires(Capability.LIST_ORDER_STAMPS)
    def test_order_stamps_name_every_order_of_the_window_once_with_its_update_time(self, channel_env: Any) -> None:
        connector = channel_env.connector
        listed = {r.external_id: r for r in _records(_drain(connector, LONG_AGO))}
        until = datetime.now(UTC) + timedelta(days=1)
        stamps = [s for b in connector.list_order_stamps(LONG_AGO, until) for s in b.stamps]
        ids = [s.external_id for s in stamps]
        assert len(ids) == len(set(ids)) == channel_env.order_count()
        assert set(ids) == set(listed)
        readable = {i: r for i, r in listed.items() if isinstance(r, Order)}
        assert all(s.updated_at == readable[s.external_id].updated_at for s in stamps if s.external_id in readable)
        assert all(s.updated_at.tzinfo is not None for s in stamps)
        assert connector.api_cost_spent() >= 0

    @requires(Capability.LIST_ORDER_STAMPS)
    def test_order_stamps_leave_out_orders_updated_before_the_window(self, channel_env: Any) -> None:
        connector = channel_env.connector
        times = sorted(r.updated_at for r in _records(_drain(connector, LONG_AGO)) if r.updated_at is not None)
        middle = times[len(times) // 2]
        until = datetime.now(UTC) + timedelta(days=1)
        stamps = [s for b in connector.list_order_stamps(middle, until) for s in b.stamps]
        assert stamps, "the window holds the newer half of the store"
        # a window's edges may be widened to the channel's precision (a second), never narrowed
        assert all(s.updated_at >= middle - timedelta(seconds=1) for s in stamps)
        assert {s.external_id for s in stamps} >= {
            r.external_id for r in _records(_drain(connector, LONG_AGO)) if r.updated_at and r.updated_at >= middle
        }

    # --- webhooks -------------------------------------------------------------------------------
    @requires(Capability.WEBHOOKS)
    def test_webhook_subscriptions_are_made_once_per_topic_listed_and_removed(self, channel_env: Any) -> None:
        connector = channel_env.connector
        adapter = connector.declaration.webhooks
        address = "https://hub.example.com/webhooks/contract/shop"
        first = connector.register_webhooks(address)
        again = connector.register_webhooks(address)
        assert {s.topic for s in first} == set(adapter.topics) == set(connector.webhook_topics)
        assert sorted(s.id for s in again) == sorted(s.id for s in first), "registering again creates nothing"
        assert len([s for s in connector.list_webhooks() if s.address == address]) == len(first)
        assert connector.remove_webhooks(address) == len(first)
        assert [s for s in connector.list_webhooks() if s.address == address] == []

    @requires(Capability.WEBHOOKS)
    def test_a_signed_delivery_is_read_as_the_order_and_any_forgery_is_refused(self, channel_env: Any) -> None:
        connector = channel_env.connector
        adapter = connector.declaration.webhooks
        assert adapter.secret_credential in {c.name for c in connector.declaration.credentials}
        external_id = channel_env.add_order()
        headers, body = channel_env.signed_delivery(external_id)
        source = WebhookSource("contract", channel_env.base_url, channel_env.webhook_secret, {})
        assert adapter.verify(source, headers, body) == ""
        delivery = adapter.parse(headers, body)
        assert delivery.external_id == external_id and delivery.topic in adapter.topics
        assert delivery.webhook_id
        fetched = connector.fetch_order(external_id)
        assert isinstance(delivery.record, Order)
        assert content_hash(delivery.record) == content_hash(fetched), "a delivery and a read are one version"
        other = WebhookSource("contract", channel_env.base_url, channel_env.webhook_secret + "x", {})
        assert adapter.verify(other, headers, body), "another secret's signature is refused"
        assert adapter.verify(source, headers, body + b" "), "a changed body is refused"
        unsigned, _ = channel_env.signed_delivery(external_id, signed=False)
        assert adapter.verify(source, unsigned, body), "an unsigned delivery is refused"
