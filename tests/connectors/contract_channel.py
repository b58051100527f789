"""The channel contract: what every channel connector must do against its sandbox.

A connector's test module subclasses :class:`ChannelContract` and provides a ``channel_env``
fixture yielding an object with ``connector``, ``add_order(**overrides) -> external_id``,
``update_order(external_id, **changes)``, ``add_unreadable_order() -> external_id``,
``revoke()``, ``restore()``, ``fault(kind, **kw)`` and ``fulfillments(external_id) -> list``.
The sandbox's own store is expected to start with some generated orders.
"""

from __future__ import annotations

from typing import Any

import pytest

from orderbridge.connectors.base import ChannelBatch, FulfilmentLine, FulfilmentRequest, UnreadableOrder
from orderbridge.domain.canonical import content_hash
from orderbridge.domain.order import Order
from orderbridge.errors import AuthFailed, HoldOrder, PermissionDenied


def _drain(connector: Any, since: Any) -> list[ChannelBatch]:
    return list(connector.list_changed(since))


def _records(batches: list[ChannelBatch]) -> list[Any]:
    return [r for b in batches for r in b.records]


class ChannelContract:
    def test_lists_every_order_exactly_once_across_pages_in_update_order(self, channel_env: Any) -> None:
        for _ in range(3):
            channel_env.add_order()
        from datetime import UTC, datetime

        batches = _drain(channel_env.connector, datetime(2000, 1, 1, tzinfo=UTC))
        records = _records(batches)
        ids = [r.external_id for r in records]
        assert len(batches) > 1, "the store should need more than one page"
        assert len(ids) == len(set(ids))
        assert len(ids) == channel_env.order_count()
        updated = [r.updated_at for r in records]
        assert updated == sorted(updated)
        assert all(b.cursor_after == max(r.updated_at for r in b.records) for b in batches)

    def test_incremental_listing_from_a_cursor_returns_only_changed_orders_plus_the_boundary(
        self, channel_env: Any
    ) -> None:
        from datetime import UTC, datetime

        batches = _drain(channel_env.connector, datetime(2000, 1, 1, tzinfo=UTC))
        cursor = batches[-1].cursor_after
        first = _records(batches)[0].external_id
        channel_env.update_order(first, note="changed by the customer")
        new = channel_env.add_order()
        again = _records(_drain(channel_env.connector, cursor))
        ids = {r.external_id for r in again}
        assert {first, new} <= ids
        assert all(r.updated_at >= cursor for r in again)
        assert len(ids) <= 2 + sum(1 for r in _records(batches) if r.updated_at == cursor)

    def test_fetch_order_returns_the_same_canonical_order_as_listing(self, channel_env: Any) -> None:
        from datetime import UTC, datetime

        external_id = channel_env.add_order()
        listed = {r.external_id: r for r in _records(_drain(channel_env.connector, datetime(2000, 1, 1, tzinfo=UTC)))}
        fetched = channel_env.connector.fetch_order(external_id)
        assert isinstance(fetched, Order)
        assert fetched == listed[external_id]
        assert content_hash(fetched) == content_hash(listed[external_id])

    def test_a_pushed_fulfilment_is_visible_in_the_sandbox(self, channel_env: Any) -> None:
        external_id = channel_env.add_order()
        order = channel_env.connector.fetch_order(external_id)
        request = FulfilmentRequest(
            external_id,
            tuple(FulfilmentLine(line.external_id, line.quantity) for line in order.lines),
            tracking_number="1Z999AA10123456784",
            carrier="UPS",
        )
        fulfilment_id = channel_env.connector.push_fulfilment(request)
        seen = channel_env.fulfillments(external_id)
        assert [f["tracking_number"] for f in seen] == ["1Z999AA10123456784"]
        assert str(seen[0]["id"]) == fulfilment_id
        assert channel_env.connector.fetch_order(external_id).fulfilment_status == "fulfilled"

    def test_a_pushed_fulfilment_is_found_again_and_pushing_it_again_creates_nothing(self, channel_env: Any) -> None:
        external_id = channel_env.add_order()
        order = channel_env.connector.fetch_order(external_id)
        first = order.lines[0]
        request = FulfilmentRequest(external_id, (FulfilmentLine(first.external_id, 1),), "TRK-CONTRACT-1", "UPS")
        assert channel_env.connector.find_fulfilment(request) is None
        fulfilment_id = channel_env.connector.push_fulfilment(request)
        assert channel_env.connector.find_fulfilment(request) == fulfilment_id
        assert channel_env.connector.push_fulfilment(request) == fulfilment_id
        assert len(channel_env.fulfillments(external_id)) == 1
        other_lines = FulfilmentRequest(external_id, (FulfilmentLine("999999", 1),), "TRK-CONTRACT-1", "UPS")
        assert channel_env.connector.find_fulfilment(other_lines) is None  # same tracking, other lines

    def test_a_fulfilment_without_lines_is_refused_and_fulfils_nothing(self, channel_env: Any) -> None:
        external_id = channel_env.add_order()
        with pytest.raises(HoldOrder):
            channel_env.connector.push_fulfilment(FulfilmentRequest(external_id, (), "TRK-EMPTY", "UPS"))
        assert channel_env.fulfillments(external_id) == []

    def test_revoked_credentials_raise_auth_failed_until_restored(self, channel_env: Any) -> None:
        channel_env.revoke()
        with pytest.raises(AuthFailed):
            channel_env.connector.check()
        channel_env.restore()
        assert channel_env.connector.check()

    def test_a_refused_permission_raises_permission_denied_not_auth_failed(self, channel_env: Any) -> None:
        external_id = channel_env.add_order()
        channel_env.fault("403", count=1)
        with pytest.raises(PermissionDenied) as refused:
            channel_env.connector.fetch_order(external_id)
        assert not isinstance(refused.value, AuthFailed) and "HTTP 403" in str(refused.value)
        assert channel_env.connector.fetch_order(external_id).external_id == external_id

    @pytest.mark.parametrize("kind", ["429", "500", "502", "503", "truncate"])
    def test_transient_failures_are_retried_transparently(self, channel_env: Any, kind: str) -> None:
        external_id = channel_env.add_order()
        channel_env.fault(kind, count=2)
        fetched = channel_env.connector.fetch_order(external_id)
        assert isinstance(fetched, Order)
        assert fetched.external_id == external_id

    def test_an_unreadable_record_comes_back_as_unreadable_order_not_an_exception(self, channel_env: Any) -> None:
        from datetime import UTC, datetime

        bad = channel_env.add_unreadable_order()
        records = _records(_drain(channel_env.connector, datetime(2000, 1, 1, tzinfo=UTC)))
        unreadable = [r for r in records if r.external_id == bad]
        assert len(unreadable) == 1
        assert isinstance(unreadable[0], UnreadableOrder)
        assert unreadable[0].problem
        assert len(records) == channel_env.order_count()
