"""Exceptions: root causes with their fix inline — a mapping that releases the group, a bulk retry
recorded as one user action — and only the tenant's own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from orderbridge.domain.roles import Role
from orderbridge.errors import Forbidden, InvalidInput, NotFound
from orderbridge.runtime.worker import run_cycle
from orderbridge.services.audit_trail import actions_on, recent_actions
from orderbridge.services.connections import add_connection
from orderbridge.services.exceptions import causes, map_cause, retry_cause
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.services.principals import Actor, Principal
from orderbridge.services.queries import show_order
from orderbridge.services.scope import Scope
from orderbridge.services.tenants import add_tenant
from orderbridge.storage.tables import postings
from tests.builders import T0, order
from tests.fakes import FakeChannel, FakeDestination, install
from tests.scoped import cid, tenant

NOW = T0 + timedelta(hours=1)


def person(scope: Scope, role: Role = Role.OPERATOR, name: str = "Ana Lima") -> Actor:
    return Actor(Principal("user", 41, scope.tenant_id, role, name, "en"), scope, "192.0.2.7")


def world(hub: Hub) -> FakeDestination:
    """Two orders that post, three held for SKU ABC-1, two for shipping method Drone."""
    channel, dest = FakeChannel(), FakeDestination()
    for i in range(1, 3):
        channel.put(order(i, updated_minutes=i))
    for i in range(3, 6):
        channel.put(order(i, skus=("ABC-1",), updated_minutes=i))
    for i in range(6, 8):
        channel.put(order(i, shipping="Drone", updated_minutes=i))
    install(hub, channel, dest)
    set_mapping(tenant(hub), "sku", "SKU-1", "W-1", cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    hub.now = lambda: NOW  # type: ignore[method-assign]
    run_cycle(tenant(hub))
    return dest


def test_each_cause_a_mapping_fixes_carries_its_form_for_the_destination_the_reason_names(hub: Hub) -> None:
    world(hub)
    found = causes(tenant(hub))
    assert [(c.group.code, c.group.value, c.group.orders, c.retryable) for c in found] == [
        ("sku_unmapped", "ABC-1", 3, True),
        ("shipping_method_unmapped", "Drone", 2, True),
    ]
    sku, ship = (c.map for c in found)
    assert sku is not None and (sku.kind, sku.source, sku.destination_id) == ("sku", "ABC-1", cid(hub, "wh"))
    assert [d.name for d in sku.destinations] == ["wh"]
    assert ship is not None and (ship.kind, ship.source) == ("shipping", "Drone")


def test_one_cause_is_chosen_by_code_and_value_and_every_value_of_a_code_by_code_alone(hub: Hub) -> None:
    world(hub)
    scope = tenant(hub)
    assert [c.group.value for c in causes(scope, code="sku_unmapped", value="ABC-1")] == ["ABC-1"]
    assert [c.group.value for c in causes(scope, code="shipping_method_unmapped")] == ["Drone"]
    assert causes(scope, code="sku_unmapped", value="NOPE") == []


def test_mapping_a_cause_releases_its_orders_and_records_one_action_on_the_mapping(hub: Hub) -> None:
    dest = world(hub)
    scope, ana = tenant(hub), person(tenant(hub))
    result = map_cause(scope, "sku_unmapped", "ABC-1", "  W-ABC ", cid(hub, "wh"), by=ana)
    assert (result.released, result.still_held, result.target) == (3, 0, "W-ABC")
    assert [c.group.value for c in causes(scope)] == ["Drone"]
    run_cycle(scope, sync=False)
    assert len(dest.documents) == 5  # the released group reached the 3PL
    (action,) = [a for a in recent_actions(scope) if a.action == "mapping.set"]
    assert (action.who, action.object_type, action.address) == ("Ana Lima", "mapping", "192.0.2.7")
    assert "mapped sku 'ABC-1' to 'W-ABC' at wh" in action.summary and "3 orders released" in action.summary
    assert action.object_id is not None and actions_on(scope, "mapping", action.object_id) == [action]


def test_a_missing_shipping_method_is_mapped_as_the_default_service(hub: Hub) -> None:
    channel, dest = FakeChannel(), FakeDestination()
    channel.put(order(1, shipping=None))
    install(hub, channel, dest)
    set_mapping(tenant(hub), "sku", "SKU-1", "W-1", cid(hub, "wh"))
    run_cycle(tenant(hub))
    (cause,) = causes(tenant(hub))
    assert cause.group.code == "shipping_method_missing" and cause.map is not None and cause.map.source == "*"
    result = map_cause(
        tenant(hub), "shipping_method_missing", "", "ups:ups_ground", cid(hub, "wh"), by=person(tenant(hub))
    )
    assert result.released == 1 and result.source == "*"


def test_a_cause_no_mapping_fixes_is_refused_as_input(hub: Hub) -> None:
    world(hub)
    with pytest.raises(InvalidInput, match="not released by a mapping"):
        map_cause(tenant(hub), "destination_rejected", "wh", "x", cid(hub, "wh"), by=person(tenant(hub)))


def test_bulk_retry_of_rejected_orders_reopens_their_postings_readies_them_and_is_one_action_with_the_count(
    hub: Hub,
) -> None:
    dest = world(hub)
    scope = tenant(hub)
    map_cause(scope, "sku_unmapped", "ABC-1", "W-BAD", cid(hub, "wh"), by=person(scope))
    dest.reject_skus.add("W-BAD")
    post_ready(scope, cid(hub, "wh"))
    (rejected,) = [c for c in causes(scope) if c.group.code == "destination_rejected"]
    assert (rejected.group.value, rejected.group.orders, rejected.map) == ("wh", 3, None)
    dest.reject_skus.clear()  # the user corrected the product at the 3PL
    result = retry_cause(scope, "destination_rejected", "wh", by=person(scope, name="Bo"))
    assert (result.orders, result.released, result.still_held) == (3, 3, 0)
    with hub.db.read() as conn:
        assert conn.execute(select(func.count()).where(postings.c.status == "rejected")).scalar_one() == 0
    assert post_ready(scope, cid(hub, "wh")).posted == 3
    assert show_order(scope, "#1003").state == "posted"
    timeline = [e["message"] for e in show_order(scope, "#1003").timeline]
    assert any(
        "retry requested by Bo (bulk retry of every order held for destination_rejected 'wh')" in m for m in timeline
    )
    (action,) = [a for a in recent_actions(scope) if a.action == "holds.retry"]
    assert (action.object_type, action.object_id, action.who) == ("hold_cause", "destination_rejected:wh", "Bo")
    assert action.detail == {"code": "destination_rejected", "value": "wh", "orders": 3, "released": 3, "still_held": 0}


def test_bulk_retry_of_a_cause_still_unfixed_keeps_its_orders_held_and_says_so(hub: Hub) -> None:
    world(hub)
    result = retry_cause(tenant(hub), "shipping_method_unmapped", "Drone", by=person(tenant(hub)))
    assert (result.orders, result.released, result.still_held) == (2, 0, 2)
    assert [c.group.orders for c in causes(tenant(hub), code="shipping_method_unmapped")] == [2]


def test_bulk_retry_in_chunks_retries_every_order_of_a_large_group(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    world(hub)
    monkeypatch.setattr("orderbridge.services.exceptions.RETRY_CHUNK", 2)
    result = retry_cause(tenant(hub), "shipping_method_unmapped", "Drone", by=person(tenant(hub)))
    assert result.orders == 2
    monkeypatch.setattr("orderbridge.services.exceptions.RETRY_CHUNK", 1)
    assert retry_cause(tenant(hub), "shipping_method_unmapped", "Drone", by=person(tenant(hub))).orders == 2
    assert len([a for a in recent_actions(tenant(hub)) if a.action == "holds.retry"]) == 2  # one per retry


def test_a_cause_with_no_held_orders_left_is_not_found(hub: Hub) -> None:
    world(hub)
    with pytest.raises(NotFound, match="no orders are held for sku_unmapped 'NOPE'"):
        retry_cause(tenant(hub), "sku_unmapped", "NOPE", by=person(tenant(hub)))


def test_a_viewer_can_neither_map_nor_retry(hub: Hub) -> None:
    world(hub)
    viewer = person(tenant(hub), Role.VIEWER)
    with pytest.raises(Forbidden, match="operator"):
        retry_cause(tenant(hub), "sku_unmapped", "ABC-1", by=viewer)
    with pytest.raises(Forbidden, match="operator"):
        map_cause(tenant(hub), "sku_unmapped", "ABC-1", "W", cid(hub, "wh"), by=viewer)
    assert [c.group.orders for c in causes(tenant(hub))] == [3, 2]


def test_another_tenants_causes_destinations_and_orders_are_out_of_reach(hub: Hub) -> None:
    world(hub)
    other = add_tenant(hub, "globex", "Globex")
    channel = FakeChannel()
    channel.put(order(1, skus=("ABC-1",)))
    add_connection(other, "their-shop", "fake_channel", "http://fake", {"token": "t"})
    add_connection(other, "their-wh", "fake_destination", "http://fake", {"key": "k"})
    hub.connectors[other.connection_id("their-shop")] = channel
    hub.connectors[other.connection_id("their-wh")] = FakeDestination()
    set_mapping(other, "shipping", "Standard", "ups:ups_ground", other.connection_id("their-wh"))
    run_cycle(other)
    scope = tenant(hub)
    mine = causes(scope, code="sku_unmapped", value="ABC-1")
    assert [c.group.orders for c in mine] == [3]
    assert mine[0].map is not None and [d.name for d in mine[0].map.destinations] == ["wh"]
    # mapping at their destination from my tenant: no such destination
    with pytest.raises(NotFound):
        map_cause(scope, "sku_unmapped", "ABC-1", "W", other.connection_id("their-wh"), by=person(scope))
    # my retry of ABC-1 touches my three orders only; their order stays held
    assert retry_cause(scope, "sku_unmapped", "ABC-1", by=person(scope)).orders == 3
    assert [c.group.orders for c in causes(other, code="sku_unmapped")] == [1]
    # an actor of my tenant cannot act in theirs
    with pytest.raises(Forbidden):
        retry_cause(other, "sku_unmapped", "ABC-1", by=person(scope))
