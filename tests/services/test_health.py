"""Connection health: degraded → failing after repeated errors, silent channels, alerts once per episode."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from orderbridge.domain.shipments import Shipment, ShipmentLine
from orderbridge.errors import FixConfiguration, RemoteUnavailable
from orderbridge.runtime.worker import run_cycle
from orderbridge.services.health import health_report
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.sync import sync_channel
from orderbridge.storage.tables import alerts, events
from tests.builders import T0, order
from tests.fakes import FakeChannel, FakeDestination, install, revoked
from tests.scoped import cid, tenant


def setup(
    hub: Hub, n: int = 30, every: timedelta = timedelta(minutes=10), destination: FakeDestination | None = None
) -> FakeChannel:
    channel = FakeChannel()
    for i in range(n):
        channel.put(order(i, created_at=T0 + i * every, updated_at=T0 + i * every))
    install(hub, channel, destination or FakeDestination())
    set_mapping(tenant(hub), "sku", "SKU-1", "W-1", cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    return channel


def alert_rows(hub: Hub) -> list[tuple[str, str, int, int]]:
    with hub.db.read() as conn:
        return [
            (r.key, r.state, r.generation, r.occurrences) for r in conn.execute(select(alerts).order_by(alerts.c.id))
        ]


def open_alerts(hub: Hub) -> list[tuple[str, str, int]]:
    with hub.db.read() as conn:
        return [(r.kind, r.state, r.generation) for r in conn.execute(select(alerts).order_by(alerts.c.id))]


def health(hub: Hub, name: str = "shop") -> tuple[str, str]:
    with hub.db.read() as conn:
        row = tenant(hub).connection_named(conn, name)
    return row.health, row.health_message


def test_transient_errors_degrade_then_fail_after_the_threshold_with_one_alert(hub: Hub) -> None:
    channel = setup(hub)
    hub.now = lambda: T0 + timedelta(hours=5)  # type: ignore[method-assign]
    hub.settings = hub.settings.model_copy(update={"failing_after": 3})
    channel.fail_after_pages, channel.error = 0, RemoteUnavailable("Shopify answered 503")
    states = []
    for _ in range(5):
        sync_channel(tenant(hub), cid(hub, "shop"))
        states.append(health(hub)[0])
    assert states == ["degraded", "degraded", "failing", "failing", "failing"]
    assert "3 runs in a row failed" in health(hub)[1] or "runs in a row failed" in health(hub)[1]
    assert open_alerts(hub) == [("connection_failing", "open", 1)]
    report = health_report(tenant(hub))
    assert report["status"] == "failing"
    assert {c["name"]: c["consecutive_failures"] for c in report["connections"]}["shop"] == 5
    channel.error = None
    sync_channel(tenant(hub), cid(hub, "shop"))
    assert health(hub)[0] == "healthy"
    assert open_alerts(hub) == [("connection_failing", "resolved", 1)]
    # a second episode alerts again (new generation of the same cause)
    channel.error = RemoteUnavailable("Shopify answered 503")
    for _ in range(3):
        sync_channel(tenant(hub), cid(hub, "shop"))
    assert health(hub)[0] == "failing"
    assert open_alerts(hub) == [("connection_failing", "open", 2)]
    with hub.db.read() as conn:
        changes = [e.message for e in conn.execute(select(events).where(events.c.kind == "health_changed"))]
    assert any("degraded → failing" in m for m in changes) and any("failing → healthy" in m for m in changes)


def test_a_channel_quiet_far_longer_than_its_usual_gap_is_silent_until_orders_flow_again(hub: Hub) -> None:
    channel = setup(hub, n=30, every=timedelta(minutes=10))
    last = T0 + 29 * timedelta(minutes=10)
    hub.settings = hub.settings.model_copy(update={"silent_min_s": 3600.0, "silent_factor": 10.0})
    hub.now = lambda: last + timedelta(minutes=90)  # type: ignore[method-assign]
    sync_channel(tenant(hub), cid(hub, "shop"))
    assert health(hub)[0] == "healthy"  # 90 min < max(10 × 10 min, 1 h)
    hub.now = lambda: last + timedelta(hours=3)  # type: ignore[method-assign]
    sync_channel(tenant(hub), cid(hub, "shop"))
    state, message = health(hub)
    assert state == "silent"
    assert "no new orders from shop for 3.0 h" in message and "usually one every 10 min" in message
    sync_channel(tenant(hub), cid(hub, "shop"))
    assert open_alerts(hub) == [("connection_silent", "open", 1)]  # one alert, not one per run
    assert health_report(tenant(hub))["status"] == "degraded"
    channel.put(order(99, created_at=last + timedelta(hours=3), updated_at=last + timedelta(hours=3)))
    sync_channel(tenant(hub), cid(hub, "shop"))
    assert health(hub)[0] == "healthy"
    assert open_alerts(hub) == [("connection_silent", "resolved", 1)]


def test_a_young_channel_is_never_called_silent(hub: Hub) -> None:
    setup(hub, n=5, every=timedelta(minutes=1))
    hub.now = lambda: T0 + timedelta(days=30)  # type: ignore[method-assign]
    sync_channel(tenant(hub), cid(hub, "shop"))
    assert health(hub)[0] == "healthy"
    assert open_alerts(hub) == []


def test_a_job_failing_for_a_person_to_fix_is_one_alert_while_the_connections_other_jobs_succeed(hub: Hub) -> None:
    warehouse = FakeDestination()
    channel = setup(hub, n=3, destination=warehouse)
    hub.now = lambda: T0 + timedelta(hours=1)  # type: ignore[method-assign]
    run_cycle(tenant(hub), shipments=False, push=False)
    key = sorted(warehouse.documents)[0]
    warehouse.shipments.append(
        Shipment(
            "S-1", key, "1Z999", "ups", "ground", T0 + timedelta(minutes=50), False, (ShipmentLine(None, "SKU-1", 1),)
        )
    )
    channel.push_error = FixConfiguration(
        "Shopify refused the fulfilment: the app may not fulfil from this location",
        hint="Grant the app the location in Shopify's admin.",
    )
    for _ in range(3):  # each cycle: the sync and the posting succeed, the push fails
        cycle = run_cycle(tenant(hub))
        assert [s["error"] for s in cycle.syncs] == [None]
        state, message = health(hub)
        assert state == "failing" and message.startswith("fulfilment push: Shopify refused the fulfilment")
    shop_id = hub_connection_id(hub, "shop")
    assert alert_rows(hub) == [(f"connection_failing:{shop_id}:push", "open", 1, 3)]  # one episode, not three
    jobs = {c["name"]: {j["job"]: j["health"] for j in c["jobs"]} for c in health_report(tenant(hub))["connections"]}
    assert jobs["shop"] == {"sync": "healthy", "push": "failing"}
    assert jobs["wh"] == {"post": "healthy", "shipments": "healthy"}
    channel.push_error = None
    run_cycle(tenant(hub))
    assert health(hub) == ("healthy", "")
    assert alert_rows(hub) == [(f"connection_failing:{shop_id}:push", "resolved", 1, 3)]
    assert len(channel.pushed) == 1


def test_refused_credentials_are_one_alert_for_every_job_and_any_job_that_works_settles_them(hub: Hub) -> None:
    from orderbridge.services.connections import test_connection

    channel = setup(hub, n=3)
    hub.now = lambda: T0 + timedelta(hours=1)  # type: ignore[method-assign]
    channel.fail_after_pages, channel.error = 0, revoked()
    with pytest.raises(FixConfiguration):
        test_connection(tenant(hub), cid(hub, "shop"))
    sync_channel(tenant(hub), cid(hub, "shop"))
    state, message = health(hub)
    assert state == "failing" and "connection test: fake refused" in message and "order sync: fake refused" in message
    shop_id = hub_connection_id(hub, "shop")
    assert alert_rows(hub) == [(f"connection_failing:{shop_id}:credentials", "open", 1, 2)]  # one cause, one mail
    channel.error = None
    sync_channel(tenant(hub), cid(hub, "shop"))  # the credentials work again: the sync proves it for the test as well
    assert health(hub) == ("healthy", "")
    assert alert_rows(hub) == [(f"connection_failing:{shop_id}:credentials", "resolved", 1, 2)]
    jobs = {j["job"]: (j["health"], j["code"]) for j in health_report(tenant(hub))["connections"][0]["jobs"]}
    assert jobs == {"check": ("healthy", None), "sync": ("healthy", None)}


def test_a_job_refused_a_permission_keeps_failing_while_other_jobs_work(hub: Hub) -> None:
    from orderbridge.errors import PermissionDenied

    warehouse = FakeDestination()
    channel = setup(hub, n=3, destination=warehouse)
    hub.now = lambda: T0 + timedelta(hours=1)  # type: ignore[method-assign]
    run_cycle(tenant(hub), shipments=False, push=False)
    warehouse.shipments.append(
        Shipment(
            "S-1", sorted(warehouse.documents)[0], "1Z9", "ups", "ground", T0, False, (ShipmentLine(None, "SKU-1", 1),)
        )
    )
    channel.push_error = PermissionDenied("Shopify refused this operation (HTTP 403): write_fulfillments")
    for _ in range(2):
        run_cycle(tenant(hub))
    assert health(hub)[0] == "failing" and "fulfilment push: Shopify refused this operation" in health(hub)[1]
    shop_id = hub_connection_id(hub, "shop")
    assert alert_rows(hub) == [(f"connection_failing:{shop_id}:push", "open", 1, 2)]
    jobs = {c["name"]: {j["job"]: j["health"] for j in c["jobs"]} for c in health_report(tenant(hub))["connections"]}
    assert jobs == {
        "shop": {"sync": "healthy", "push": "failing"},
        "wh": {"post": "healthy", "shipments": "healthy"},
    }


def test_a_job_that_failed_recovers_on_its_next_run_even_with_nothing_to_do(hub: Hub) -> None:
    from orderbridge.errors import PermissionDenied
    from orderbridge.services.health import record_failure
    from orderbridge.services.posting import post_ready

    setup(hub, n=0)
    with hub.db.read() as conn:
        wh = tenant(hub).connection_named(conn, "wh")
    record_failure(tenant(hub), wh, PermissionDenied("fake 3PL refused this operation (HTTP 403)"), job="post")
    assert health(hub, "wh")[0] == "failing"
    report = post_ready(tenant(hub), cid(hub, "wh"))  # nothing is ready: the run talks to nobody, and still worked
    assert report.error is None and report.batches == 0
    assert health(hub, "wh") == ("healthy", "")
    wh_id = hub_connection_id(hub, "wh")
    assert alert_rows(hub) == [(f"connection_failing:{wh_id}:post", "resolved", 1, 1)]


def hub_connection_id(hub: Hub, name: str) -> int:
    with hub.db.read() as conn:
        return tenant(hub).connection_named(conn, name).id


def test_the_last_success_and_sync_lag_are_the_syncs_not_any_jobs(hub: Hub) -> None:
    from orderbridge.services.connections import test_connection

    setup(hub, n=3)
    synced_at = T0 + timedelta(hours=1)
    hub.now = lambda: synced_at  # type: ignore[method-assign]
    sync_channel(tenant(hub), cid(hub, "shop"))
    hub.now = lambda: synced_at + timedelta(minutes=30)  # type: ignore[method-assign]
    test_connection(tenant(hub), cid(hub, "shop"))  # the shop answers — which says nothing about orders flowing
    (shop,) = [c for c in health_report(tenant(hub))["connections"] if c["name"] == "shop"]
    assert shop["last_success_at"] == synced_at.isoformat() and shop["sync_lag_s"] == 1800.0
