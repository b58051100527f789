"""Channel deadlines (issue #16): an order is listed while its channel state is one the deadline runs
in and the due time is within the declared warning; one alert fires per order and deadline."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from sqlalchemy import select

from orderbridge.connectors import registry
from orderbridge.services.connections import add_connection
from orderbridge.services.deadlines import DEADLINE_ALERT, approaching, sync_channel_alerts
from orderbridge.services.hub import Hub
from orderbridge.services.sync import sync_channel
from orderbridge.storage.tables import alerts
from tests.builders import order
from tests.fakes import FakeDestination
from tests.scoped import cid, tenant
from tests.services.market_kind import FakeMarket


@pytest.fixture
def market(hub: Hub) -> Iterator[FakeMarket]:
    registry.register("fake_market", FakeMarket)
    registry.register("fake_destination", FakeDestination)
    m = FakeMarket()
    now = datetime.now(UTC)
    soon = (("acceptance", now + timedelta(minutes=30)), ("shipping", now + timedelta(days=3)))
    later = (("acceptance", now + timedelta(hours=5)), ("shipping", now + timedelta(days=3)))
    m.put(msgspec.structs.replace(order(1), channel_state="WAITING_ACCEPTANCE", deadlines=soon))
    m.put(msgspec.structs.replace(order(2), channel_state="WAITING_ACCEPTANCE", deadlines=later))
    m.put(msgspec.structs.replace(order(3), channel_state="SHIPPING", deadlines=soon))  # acceptance no longer runs
    add_connection(tenant(hub), "mp", "fake_market", "http://fake", {"token": "t"})
    hub.connectors[cid(hub, "mp")] = m
    sync_channel(tenant(hub), cid(hub, "mp"))
    yield m
    registry.unregister("fake_market")


def test_only_orders_within_the_warning_of_a_running_deadline_are_listed(hub: Hub, market: FakeMarket) -> None:
    found = approaching(tenant(hub))
    assert [(a.number, a.deadline, a.channel_state) for a in found] == [("#1001", "acceptance", "WAITING_ACCEPTANCE")]
    assert 0 < found[0].seconds_left <= 1800 and found[0].missed == "the order is refused automatically"


def test_one_alert_fires_per_order_and_deadline(hub: Hub, market: FakeMarket) -> None:
    assert sync_channel_alerts(tenant(hub)) == (1, 0)
    assert sync_channel_alerts(tenant(hub)) == (0, 0)
    with hub.db.read() as conn:
        rows = conn.execute(select(alerts.c.key, alerts.c.subject).where(alerts.c.kind == DEADLINE_ALERT)).all()
    ((key, subject),) = rows
    assert key.endswith(":acceptance") and "#1001" in subject and "acceptance deadline at mp is due" in subject
