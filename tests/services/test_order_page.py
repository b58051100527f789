"""The order page's services: the order's whole story, and what a person can do to it (retry,
reset to pending, refresh from the channel, release a hold) — outcomes read from the ledger's rows
and from what the destinations received."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from orderbridge.domain.money import Money
from orderbridge.domain.roles import Role
from orderbridge.errors import Conflict, Forbidden, InvalidInput, NotFound
from orderbridge.services.audit_trail import actions_on, record_action
from orderbridge.services.auth import Actor, Principal
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.order_actions import refresh_from_channel, release_hold, reset_to_pending, retry_now
from orderbridge.services.order_story import order_story
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import find_order_id
from orderbridge.services.scope import Scope
from orderbridge.services.sync import sync_channel
from orderbridge.services.tenants import add_tenant
from orderbridge.storage.tables import events, order_reasons, posting_attempts, postings, user_actions
from tests.builders import order, replace
from tests.fakes import FakeChannel, FakeDestination, install
from tests.scoped import cid, tenant


def actor(hub: Hub, role: Role = Role.OPERATOR, name: str = "Ana Lima", scope: Scope | None = None) -> Actor:
    scope = scope or tenant(hub)
    return Actor(Principal("user", 7, scope.tenant_id, role, name, "en"), scope, "203.0.113.9")


def world(hub: Hub, *orders_: Any) -> tuple[FakeChannel, FakeDestination]:
    channel, dest = FakeChannel(), FakeDestination()
    for o in orders_:
        channel.put(o)
    install(hub, channel, dest)
    set_mapping(tenant(hub), "sku", "SKU-1", "W-1", cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    return channel, dest


def second_destination(hub: Hub) -> FakeDestination:
    """A second 3PL ``wh2`` with the same mappings as ``wh``."""
    dest = FakeDestination()
    add_connection(tenant(hub), "wh2", "fake_destination", "http://fake2", {"key": "k"})
    hub.connectors[cid(hub, "wh2")] = dest
    set_mapping(tenant(hub), "sku", "SKU-1", "W2-1", cid(hub, "wh2"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh2"))
    return dest


def oid(hub: Hub, ref: str = "#1001") -> int:
    return find_order_id(tenant(hub), ref)


def count(hub: Hub, table: Any, *where: Any) -> int:
    with hub.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


# --- the story ------------------------------------------------------------------------------------


def test_the_story_tells_the_problem_and_its_fix_first_then_the_order_itself(hub: Hub) -> None:
    world(hub, order(1, skus=("ABC-1", "SKU-1"), note="leave at the door", tags=("vip",)))
    sync_channel(tenant(hub), cid(hub, "shop"))
    story = order_story(tenant(hub), oid(hub))
    assert story.state == "held" and story.number == "#1001" and story.version == 1
    first = story.problems[0]
    assert (first.kind, first.code, first.value) == ("hold", "sku_unmapped", "ABC-1")
    assert first.fix.action == "map_sku" and first.fix.param("sku") == "ABC-1" and first.releasable
    assert [(li.sku, li.quantity, li.total) for li in story.lines] == [
        ("ABC-1", 1, Money(Decimal("10.00"), "USD")),
        ("SKU-1", 1, Money(Decimal("10.00"), "USD")),
    ]
    assert story.totals is not None
    assert (story.totals.subtotal, story.totals.shipping, story.totals.total) == (
        Money(Decimal("20.00"), "USD"),
        Money(Decimal("5.00"), "USD"),
        Money(Decimal("25.00"), "USD"),
    )
    assert story.shipping_address is not None and story.shipping_address.city == "Springfield"
    assert (story.customer_name, story.email, story.note, story.tags) == (
        "Buyer 1",
        "buyer1@example.com",
        "leave at the door",
        ("vip",),
    )
    assert story.raw == {"id": 1001}  # the channel's payload as stored
    assert story.waiting_for == ("wh",) and [d.postings for d in story.destinations] == [()]
    assert [e.kind for e in story.timeline] == ["received"]
    offers = {a.name: a.possible for a in story.actions}
    assert offers == {"retry": True, "reset": True, "refresh": True, "release": True}


def test_another_tenants_order_is_not_found_by_the_story_and_by_every_action(hub: Hub) -> None:
    world(hub, order(1))
    sync_channel(tenant(hub), cid(hub, "shop"))
    other = add_tenant(hub, "globex", "Globex")
    stranger = actor(hub, Role.ADMIN, "Eve", scope=other)
    mine = oid(hub)
    with hub.db.read() as conn:
        reason_id = conn.execute(select(func.max(order_reasons.c.id))).scalar_one() or 1
    for call in (
        lambda: order_story(other, mine),
        lambda: retry_now(stranger, mine),
        lambda: reset_to_pending(stranger, mine),
        lambda: refresh_from_channel(stranger, mine),
        lambda: release_hold(stranger, mine, reason_id, "because"),
    ):
        with pytest.raises(NotFound, match=f"no order {mine}"):
            call()
    assert count(hub, user_actions) == 0


def test_postings_per_destination_show_version_key_document_and_every_attempt_with_what_was_sent(hub: Hub) -> None:
    _, dest = world(hub, order(1, skus=("SKU-2",)))
    set_mapping(tenant(hub), "sku", "SKU-2", "W-BAD", cid(hub, "wh"))
    dest.reject_skus.add("W-BAD")
    sync_channel(tenant(hub), cid(hub, "shop"))
    post_ready(tenant(hub), cid(hub, "wh"))
    set_mapping(tenant(hub), "sku", "SKU-2", "W-2", cid(hub, "wh"))
    retry_now(actor(hub), oid(hub))
    post_ready(tenant(hub), cid(hub, "wh"))
    story = order_story(tenant(hub), oid(hub))
    (wh,) = story.destinations
    (posting,) = wh.postings  # one posting of version 1, sent twice
    assert (wh.destination, wh.has_current, posting.version, posting.status) == ("wh", True, 1, "posted")
    assert posting.idempotency_key == f"{oid(hub)}:{cid(hub, 'wh')}:v1"
    assert posting.document_id == f"D-{posting.order_key}"
    assert [(a.outcome, (a.sent or {}).get("lines")) for a in posting.attempts] == [
        ("rejected", [{"sku": "W-BAD"}]),
        ("posted", [{"sku": "W-2"}]),
    ]
    assert story.state == "posted" and story.waiting_for == () and story.problems == ()


def test_the_timeline_merges_ledger_events_with_the_user_actions_recorded_on_the_order(hub: Hub) -> None:
    _, dest = world(hub, order(1))
    dest.reject_skus.add("W-1")
    sync_channel(tenant(hub), cid(hub, "shop"))
    post_ready(tenant(hub), cid(hub, "wh"))
    dest.reject_skus.clear()
    ana = actor(hub)
    retry_now(ana, oid(hub))
    record_action(ana, "order.note", "order", oid(hub), "added a note for the warehouse")
    story = order_story(tenant(hub), oid(hub))
    told = [(e.kind, e.who) for e in story.timeline]
    assert told == [
        ("received", None),
        ("held", None),
        ("user_action", "Ana Lima"),  # the retry's own event, telling who
        ("ready", None),
        ("user_action", "Ana Lima"),  # the audit trail's row (no event of its own)
    ]
    retry_entry = story.timeline[2]
    assert retry_entry.action == "order.retry" and retry_entry.address == "203.0.113.9"
    assert story.timeline[-1].message == "added a note for the warehouse"
    assert [a.action for a in actions_on(tenant(hub), "order", oid(hub))] == ["order.note", "order.retry"]


# --- reset to pending -----------------------------------------------------------------------------


def test_reset_posts_only_to_the_destination_that_has_not_accepted_the_current_version(hub: Hub) -> None:
    _, wh = world(hub, order(1))
    wh2 = second_destination(hub)
    wh2.reject_skus.add("W2-1")
    sync_channel(tenant(hub), cid(hub, "shop"))
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 1
    assert post_ready(tenant(hub), cid(hub, "wh2")).rejected == 1
    assert order_story(tenant(hub), oid(hub)).state == "held"
    wh2.reject_skus.clear()  # the 3PL created the product

    result = reset_to_pending(actor(hub), oid(hub))
    again = reset_to_pending(actor(hub), oid(hub))  # a double click
    assert (result.changed, result.state_before, result.state, result.to_post) == (True, "held", "ready", ("wh2",))
    assert (again.changed, again.state) == (False, "ready")
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 0
    assert post_ready(tenant(hub), cid(hub, "wh2")).posted == 1
    key = f"{oid(hub)}:{{}}:v1"
    assert wh.received == [key.format(cid(hub, "wh"))]  # nothing new for the one that accepted
    assert wh2.received == [key.format(cid(hub, "wh2"))] * 2  # refused once, then once more: accepted
    story = order_story(tenant(hub), oid(hub))
    assert story.state == "posted" and [d.has_current for d in story.destinations] == [True, True]
    assert count(hub, postings) == 2  # one per destination and version, whatever was resent
    assert [a.action for a in actions_on(tenant(hub), "order", oid(hub))] == ["order.reset"]


def test_reset_of_a_posted_order_sends_it_only_to_a_destination_added_since(hub: Hub) -> None:
    _, wh = world(hub, order(1))
    sync_channel(tenant(hub), cid(hub, "shop"))
    post_ready(tenant(hub), cid(hub, "wh"))
    assert order_story(tenant(hub), oid(hub)).action("reset").possible is False  # everyone has it
    nothing = reset_to_pending(actor(hub), oid(hub))
    assert (nothing.changed, nothing.state) == (False, "posted") and "every destination" in nothing.message
    wh2 = second_destination(hub)
    result = reset_to_pending(actor(hub), oid(hub))
    assert (result.state_before, result.state, result.to_post) == ("posted", "ready", ("wh2",))
    assert reset_to_pending(actor(hub), oid(hub)).changed is False
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 0
    assert post_ready(tenant(hub), cid(hub, "wh2")).posted == 1
    assert len(wh.received) == 1 and len(wh2.received) == 1
    assert order_story(tenant(hub), oid(hub)).state == "posted"


def test_an_order_already_shipped_cannot_be_reset(hub: Hub) -> None:
    world(hub, order(1))
    sync_channel(tenant(hub), cid(hub, "shop"))
    post_ready(tenant(hub), cid(hub, "wh"))
    with hub.db.transaction() as conn:
        from orderbridge.domain.states import OrderState
        from orderbridge.storage.repos import orders as order_repo

        order_repo.transition(conn, [order_repo.Move(oid(hub), OrderState.POSTED, OrderState.FULFILLED)], hub.now())
    with pytest.raises(Conflict, match="fulfilled; it cannot go back to pending"):
        reset_to_pending(actor(hub), oid(hub))
    with pytest.raises(Forbidden):
        reset_to_pending(actor(hub, Role.VIEWER), oid(hub))


# --- retry ----------------------------------------------------------------------------------------


def test_retry_now_sends_a_rejected_order_again_once_and_a_second_click_does_nothing(hub: Hub) -> None:
    _, dest = world(hub, order(1))
    dest.reject_skus.add("W-1")
    sync_channel(tenant(hub), cid(hub, "shop"))
    post_ready(tenant(hub), cid(hub, "wh"))
    dest.reject_skus.clear()
    first, second = retry_now(actor(hub), oid(hub)), retry_now(actor(hub), oid(hub))
    assert (first.changed, first.state, second.changed) == (True, "ready", False)
    assert "already pending" in second.message
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 1
    assert len(dest.received) == 2 and len(dest.documents) == 1
    assert count(hub, events, events.c.kind == "user_action") == 1
    assert count(hub, user_actions, user_actions.c.action == "order.retry") == 1
    with pytest.raises(Forbidden, match="cannot retry an order"):
        retry_now(actor(hub, Role.VIEWER), oid(hub))


# --- refresh from the channel ---------------------------------------------------------------------


def test_refresh_makes_a_changed_order_a_new_version_and_forgets_no_posting(hub: Hub) -> None:
    channel, dest = world(hub, order(1))
    sync_channel(tenant(hub), cid(hub, "shop"))
    post_ready(tenant(hub), cid(hub, "wh"))
    assert refresh_from_channel(actor(hub), oid(hub)).changed is False  # the channel has the same order
    channel.put(replace(order(1, updated_minutes=5), note="ring twice"))
    result = refresh_from_channel(actor(hub), oid(hub))
    assert (result.changed, result.version_before, result.version, result.state) == (True, 1, 2, "posted")
    assert refresh_from_channel(actor(hub), oid(hub)).changed is False  # a double click
    assert channel.fetched == ["1001", "1001", "1001"]
    story = order_story(tenant(hub), oid(hub))
    (posting,) = story.destinations[0].postings
    assert (posting.version, posting.status, posting.document_id) == (1, "posted", f"D-{posting.order_key}")
    assert story.note == "ring twice" and story.waiting_for == ("wh",)
    # issue #15: the new version of a posted order is an order update (a note: ignored by default)
    kinds = [e.kind for e in story.timeline]
    assert kinds == ["received", "posted", "version_changed", "order_update", "user_action"]
    # a refresh never re-posts; the fake 3PL declares no amendment, so a reset cannot send it either:
    # it says so, and nothing is sent (a person changes it there and accepts the update)
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 0
    with pytest.raises(Conflict, match="cannot amend a posted document for notes"):
        reset_to_pending(actor(hub), oid(hub))
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 0
    assert list(dest.creates.values()) == [1] and len(dest.received) == 1
    assert count(hub, postings) == 1 and count(hub, posting_attempts) == 1


def test_refresh_of_an_order_the_channel_no_longer_has_keeps_the_ledger_version(hub: Hub) -> None:
    channel, _ = world(hub, order(1))
    sync_channel(tenant(hub), cid(hub, "shop"))
    del channel.orders["1001"]
    with pytest.raises(Conflict, match="no longer has order #1001") as caught:
        refresh_from_channel(actor(hub), oid(hub))
    assert caught.value.code == "gone_from_channel"
    assert order_story(tenant(hub), oid(hub)).version == 1


# --- release a hold -------------------------------------------------------------------------------


def _reason_id(hub: Hub, code: str) -> int:
    return next(p.reason_id for p in order_story(tenant(hub), oid(hub)).problems if p.code == code)


def test_releasing_an_unmapped_sku_posts_the_order_with_the_channel_sku_and_keeps_the_reason_in_history(
    hub: Hub,
) -> None:
    _, dest = world(hub, order(1, skus=("ABC-1", "SKU-1")))
    sync_channel(tenant(hub), cid(hub, "shop"))
    rid = _reason_id(hub, "sku_unmapped")
    admin = actor(hub, Role.ADMIN, "Ada")
    with pytest.raises(Forbidden, match="cannot release a hold"):
        release_hold(actor(hub, Role.OPERATOR), oid(hub), rid, "the 3PL knows ABC-1")
    with pytest.raises(InvalidInput, match="needs a reason") as caught:
        release_hold(admin, oid(hub), rid, "   ")
    assert getattr(caught.value, "field", None) == "reason"
    result = release_hold(admin, oid(hub), rid, "the 3PL stocks ABC-1 under the same code")
    assert (result.changed, result.state, result.to_post) == (True, "ready", ("wh",))
    assert release_hold(admin, oid(hub), rid, "again").changed is False  # a double click
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 1
    assert dest.documents and order_story(tenant(hub), oid(hub)).destinations[0].postings[0].attempts[0].sent == {
        "number": "#1001",
        "key": f"{oid(hub)}:{cid(hub, 'wh')}:v1",
        "lines": [{"sku": "ABC-1"}, {"sku": "W-1"}],
    }
    with hub.db.read() as conn:
        released = conn.execute(select(order_reasons.c.released_at).where(order_reasons.c.id == rid)).scalar_one()
        (data,) = conn.execute(select(events.c.data).where(events.c.kind == "hold_released")).scalars()
    assert released is not None
    assert (data["code"], data["value"], data["version"], data["by"]) == ("sku_unmapped", "ABC-1", 1, "Ada")
    assert [a.action for a in actions_on(tenant(hub), "order", oid(hub))] == ["order.release"]


def test_a_release_is_for_the_version_it_was_made_on(hub: Hub) -> None:
    channel, _ = world(hub, order(1, skus=("ABC-1",)))
    sync_channel(tenant(hub), cid(hub, "shop"))
    release_hold(actor(hub, Role.ADMIN), oid(hub), _reason_id(hub, "sku_unmapped"), "known to the 3PL")
    assert order_story(tenant(hub), oid(hub)).state == "ready"
    channel.put(replace(order(1, skus=("ABC-1",), updated_minutes=5), note="new note"))
    sync_channel(tenant(hub), cid(hub, "shop"))
    story = order_story(tenant(hub), oid(hub))
    assert (story.version, story.state, [p.code for p in story.problems]) == (2, "held", ["sku_unmapped"])


def test_a_hold_the_order_cannot_be_sent_without_is_not_released(hub: Hub) -> None:
    world(hub, order(1, skus=(None,)))
    sync_channel(tenant(hub), cid(hub, "shop"))
    story = order_story(tenant(hub), oid(hub))
    (problem,) = story.problems
    assert problem.code == "sku_missing" and not problem.releasable and not story.action("release").possible
    with pytest.raises(Conflict, match="cannot be released"):
        release_hold(actor(hub, Role.ADMIN), oid(hub), problem.reason_id, "send it anyway")
    assert count(hub, user_actions) == 0 and order_story(tenant(hub), oid(hub)).state == "held"


def test_releasing_a_destination_rejection_asks_that_destination_again(hub: Hub) -> None:
    _, wh = world(hub, order(1))
    wh.reject_skus.add("W-1")
    sync_channel(tenant(hub), cid(hub, "shop"))
    post_ready(tenant(hub), cid(hub, "wh"))
    wh.reject_skus.clear()
    rid = _reason_id(hub, "destination_rejected")
    result = release_hold(actor(hub, Role.ADMIN), oid(hub), rid, "the product exists now")
    assert (result.state, result.to_post) == ("ready", ("wh",))
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 1 and len(wh.received) == 2


# --- the events feed ------------------------------------------------------------------------------


def test_the_events_feed_pages_the_tenants_events_newest_first_and_filters_by_order(hub: Hub) -> None:
    from orderbridge.services.event_feed import list_events

    world(hub, order(1), order(2), order(3))
    sync_channel(tenant(hub), cid(hub, "shop"))
    post_ready(tenant(hub), cid(hub, "wh"))
    seen: list[int] = []
    page = list_events(tenant(hub), limit=4)
    while True:
        seen.extend(e.id for e in page.events)
        if page.next_before is None:
            break
        page = list_events(tenant(hub), limit=4, before=page.next_before)
    assert seen == sorted(seen, reverse=True) and len(seen) == count(hub, events) > 4
    mine = list_events(tenant(hub), order_id=oid(hub, "#1002")).events
    assert [(e.kind, e.order_number) for e in mine] == [("posted", "#1002"), ("received", "#1002")]
    by_channel = list_events(tenant(hub), connection_id=cid(hub, "shop")).events
    assert sum(1 for e in by_channel if e.order_id is not None) == 6  # the channel's orders' events
    assert all(e.connection_id == cid(hub, "shop") for e in by_channel if e.order_id is None)
    other = add_tenant(hub, "globex", "Globex")
    assert list_events(other).events == ()
    with pytest.raises(NotFound):
        list_events(other, order_id=oid(hub))
    with pytest.raises(NotFound):
        list_events(other, connection_id=cid(hub, "shop"))
    with pytest.raises(InvalidInput, match="limit 0"):
        list_events(tenant(hub), limit=0)


def test_two_clicks_at_the_same_moment_reset_the_order_once(hub: Hub) -> None:
    import threading

    _, wh = world(hub, order(1))
    wh.reject_skus.add("W-1")
    sync_channel(tenant(hub), cid(hub, "shop"))
    post_ready(tenant(hub), cid(hub, "wh"))
    wh.reject_skus.clear()
    start = threading.Barrier(2)
    results: list[Any] = []

    def click() -> None:
        start.wait()
        results.append(reset_to_pending(actor(hub), oid(hub)))

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.changed for r in results) == [False, True]
    assert count(hub, user_actions) == 1 and count(hub, events, events.c.kind == "user_action") == 1
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 1 and len(wh.received) == 2
