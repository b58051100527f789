"""Posting, mapping release, rejection and retry through the service layer."""

from __future__ import annotations

from sqlalchemy import func, select

from orderbridge.errors import RemoteUnavailable
from orderbridge.runtime.worker import run_cycle
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import import_mappings, set_mapping, unmapped
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import accounting, retry_order, show_order
from orderbridge.services.sync import sync_channel
from orderbridge.storage.tables import postings
from tests.builders import order
from tests.fakes import FakeChannel, FakeDestination, install
from tests.scoped import cid, tenant


def world(hub: Hub, *orders_: object) -> tuple[FakeChannel, FakeDestination]:
    channel, dest = FakeChannel(), FakeDestination()
    for o in orders_:
        channel.put(o)  # type: ignore[arg-type]
    install(hub, channel, dest)
    set_mapping(tenant(hub), "sku", "SKU-1", "W-1", cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    return channel, dest


def test_ready_orders_are_posted_once_even_when_posting_runs_again(hub: Hub) -> None:
    _, dest = world(hub, *(order(i) for i in range(5)))
    sync_channel(tenant(hub), cid(hub, "shop"))
    first = post_ready(tenant(hub), cid(hub, "wh"))
    second = post_ready(tenant(hub), cid(hub, "wh"))
    assert (first.posted, second.posted) == (5, 0)
    assert set(dest.creates.values()) == {1} and len(dest.documents) == 5
    assert accounting(tenant(hub))["posted"] == 5


def test_adding_the_missing_mapping_releases_and_posts_the_held_orders(hub: Hub) -> None:
    _, dest = world(hub, order(1, skus=("ABC-1",)), order(2, skus=("ABC-1", "SKU-1")), order(3))
    run_cycle(tenant(hub))
    assert accounting(tenant(hub))["held"] == 2 and len(dest.documents) == 1
    assert [(u.kind, u.value, u.orders) for u in unmapped(tenant(hub))] == [("sku", "ABC-1", 2)]
    result = set_mapping(tenant(hub), "sku", "ABC-1", "W-ABC", cid(hub, "wh"))
    assert result.released == 2
    run_cycle(tenant(hub), sync=False)
    assert accounting(tenant(hub))["posted"] == 3 and len(dest.documents) == 3
    timeline = [e["kind"] for e in show_order(tenant(hub), "#1001").timeline]
    assert timeline == ["received", "released", "ready", "posted"]
    assert "held: SKU 'ABC-1'" in show_order(tenant(hub), "#1001").timeline[0]["message"]


def test_a_mapping_that_fixes_only_one_of_two_problems_keeps_the_order_held(hub: Hub) -> None:
    world(hub, order(1, skus=("ABC-1",), shipping="Drone"))
    sync_channel(tenant(hub), cid(hub, "shop"))
    result = set_mapping(tenant(hub), "sku", "ABC-1", "W-ABC", cid(hub, "wh"))
    assert (result.released, result.still_held) == (0, 1)
    reasons = show_order(tenant(hub), "#1001").reasons
    assert [(r["code"], r["value"]) for r in reasons] == [("shipping_method_unmapped", "Drone")]


def test_a_destination_rejection_holds_that_order_with_its_message_and_posts_the_rest(hub: Hub) -> None:
    _, dest = world(hub, order(1), order(2, skus=("SKU-2",)))
    set_mapping(tenant(hub), "sku", "SKU-2", "W-BAD", cid(hub, "wh"))
    dest.reject_skus.add("W-BAD")
    sync_channel(tenant(hub), cid(hub, "shop"))
    report = post_ready(tenant(hub), cid(hub, "wh"))
    assert (report.posted, report.rejected) == (1, 1)
    detail = show_order(tenant(hub), "#1002")
    assert detail.state == "held"
    assert (
        detail.reasons[0]["code"] == "destination_rejected" and "unknown product W-BAD" in detail.reasons[0]["message"]
    )
    dest.reject_skus.clear()
    assert retry_order(tenant(hub), "#1002") == "ready"
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 1
    assert show_order(tenant(hub), "#1002").state == "posted"


def test_a_transient_destination_error_keeps_orders_ready_and_loses_nothing(hub: Hub) -> None:
    _, dest = world(hub, order(1), order(2))
    sync_channel(tenant(hub), cid(hub, "shop"))
    dest.error = RemoteUnavailable("3PL failed with HTTP 503")
    report = post_ready(tenant(hub), cid(hub, "wh"))
    assert report.error is not None and accounting(tenant(hub))["ready"] == 2
    with hub.db.read() as conn:
        assert tenant(hub).connection_named(conn, "wh").health == "degraded"
        assert (
            conn.execute(select(func.count()).select_from(postings).where(postings.c.status == "pending")).scalar_one()
            == 2
        )
    dest.error = None
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 2
    with hub.db.read() as conn:
        assert set(conn.execute(select(postings.c.attempts)).scalars()) == {2}


def test_mapping_import_reports_bad_rows_by_line_and_applies_nothing_until_all_are_good(hub: Hub) -> None:
    world(hub, order(1, skus=("ABC-1",)))
    sync_channel(tenant(hub), cid(hub, "shop"))
    results, errors = import_mappings(
        tenant(hub), "sku", "source,target\nABC-1,W-ABC\nonly-one-column\n,W-EMPTY\n", cid(hub, "wh")
    )
    assert results == [] and [e.line for e in errors] == [3, 4]
    assert unmapped(tenant(hub))[0].value == "ABC-1"  # the good row was not applied either
    results, errors = import_mappings(tenant(hub), "sku", "source,target\nABC-1,W-ABC\n", cid(hub, "wh"))
    assert errors == [] and [r.source for r in results] == ["ABC-1"] and results[0].released == 1
