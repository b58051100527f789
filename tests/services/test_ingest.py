"""Ingest through the service layer with fake connectors, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from orderbridge.cli.fixes import sentence
from orderbridge.connectors.base import UnreadableOrder
from orderbridge.domain.order import Order, PaymentStatus
from orderbridge.errors import NotFound
from orderbridge.services.health import health_report
from orderbridge.services.hub import Hub
from orderbridge.services.queries import accounting, holds, show_order
from orderbridge.services.sync import sync_channel
from orderbridge.storage.repos.cursors import read_cursor
from orderbridge.storage.tables import events, orders, pending_rereads
from tests.builders import order, replace
from tests.fakes import FakeChannel, revoked, standard_world
from tests.scoped import cid, tenant


def setup(hub: Hub, n: int = 7) -> FakeChannel:
    channel = standard_world(hub, n)
    return channel


def count(hub: Hub, table: object = orders) -> int:
    with hub.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def stored_email(hub: Hub, external_id: str = "1000") -> str:
    with hub.db.read() as conn:
        canonical = conn.execute(select(orders.c.canonical).where(orders.c.external_id == external_id)).scalar_one()
    return str(canonical["email"])


def test_sync_stores_every_order_once_and_twice_changes_nothing(hub: Hub) -> None:
    setup(hub)
    first = sync_channel(tenant(hub), cid(hub, "shop"))
    second = sync_channel(tenant(hub), cid(hub, "shop"))
    assert (first.counts.inserted, first.batches) == (7, 3)
    assert second.counts.inserted == 0 and second.counts.changed == 0
    assert count(hub) == 7
    assert accounting(tenant(hub))["ready"] == 7


def test_the_cursor_is_the_newest_committed_update(hub: Hub) -> None:
    channel = setup(hub)
    sync_channel(tenant(hub), cid(hub, "shop"))
    with hub.db.read() as conn:
        cursor = read_cursor(conn, tenant(hub).connection_named(conn, "shop").id)
    assert cursor == max(o.updated_at for o in channel.orders.values() if o.updated_at)


def test_a_failure_mid_sync_keeps_committed_batches_and_their_cursor(hub: Hub) -> None:
    channel = setup(hub)
    channel.fail_after_pages, channel.error = 1, revoked()
    report = sync_channel(tenant(hub), cid(hub, "shop"))
    assert report.error is not None and report.counts.inserted == 3
    with hub.db.read() as conn:
        row = tenant(hub).connection_named(conn, "shop")
        assert row.health == "failing" and "refused the credentials" in row.health_message
        assert read_cursor(conn, row.id) == order(2, updated_minutes=2).updated_at
    channel.error = None
    again = sync_channel(tenant(hub), cid(hub, "shop"))
    assert again.ok and count(hub) == 7
    with hub.db.read() as conn:
        assert tenant(hub).connection_named(conn, "shop").health == "healthy"


def test_a_changed_order_gets_a_new_version_and_an_event_naming_the_fields(hub: Hub) -> None:
    channel = setup(hub, 1)
    sync_channel(tenant(hub), cid(hub, "shop"))
    o = channel.orders["1000"]
    assert not isinstance(o, UnreadableOrder)
    channel.put(replace(o, email="new@example.com", updated_at=o.updated_at + timedelta(minutes=5)))
    report = sync_channel(tenant(hub), cid(hub, "shop"))
    assert report.counts.changed == 1
    detail = show_order(tenant(hub), "#1000")
    assert detail.version == 2
    assert any(e["kind"] == "version_changed" and "email" in e["message"] for e in detail.timeline)


def test_an_older_version_never_overwrites_a_newer_one(hub: Hub) -> None:
    channel = setup(hub, 1)
    o = channel.orders["1000"]
    assert not isinstance(o, UnreadableOrder)
    newer = replace(o, email="new@example.com", updated_at=o.updated_at + timedelta(minutes=5))
    channel.put(newer)
    sync_channel(tenant(hub), cid(hub, "shop"))
    channel.put(o)  # a stale copy comes back (e.g. a late webhook)
    report = sync_channel(tenant(hub), cid(hub, "shop"), full=True)
    assert report.counts.stale == 1
    with hub.db.read() as conn:
        assert conn.execute(select(orders.c.canonical)).scalar_one()["email"] == "new@example.com"


def test_a_stale_copy_with_the_same_updated_at_is_settled_by_the_channel_not_by_arrival(hub: Hub) -> None:
    channel = setup(hub, 1)
    current = channel.orders["1000"]
    assert not isinstance(current, UnreadableOrder)
    sync_channel(tenant(hub), cid(hub, "shop"))
    # an edit made within the same second as the stored one: a page read before it comes back
    channel.listed_instead["1000"] = replace(current, email="before-the-edit@example.com")
    report = sync_channel(tenant(hub), cid(hub, "shop"), full=True)
    assert report.ok and report.counts.tied == 1 and report.counts.unchanged == 1
    assert channel.fetched == ["1000"]
    assert show_order(tenant(hub), "#1000").version == 1
    assert stored_email(hub) == current.email


def test_a_tie_whose_channel_version_is_the_listed_one_replaces_the_ledgers(hub: Hub) -> None:
    channel = setup(hub, 1)
    current = channel.orders["1000"]
    assert not isinstance(current, UnreadableOrder)
    channel.listed_instead["1000"] = replace(current, email="before-the-edit@example.com")
    sync_channel(tenant(hub), cid(hub, "shop"))  # the ledger took the copy read before the edit
    channel.listed_instead.clear()
    report = sync_channel(tenant(hub), cid(hub, "shop"), full=True)
    assert report.counts.tied == 1 and report.counts.changed == 1
    detail = show_order(tenant(hub), "#1000")
    assert detail.version == 2 and stored_email(hub) == current.email
    changed = [e["message"] for e in detail.timeline if e["kind"] == "version_changed"]
    assert len(changed) == 1 and "email" in changed[0] and "re-read from shop" in changed[0]


def stale_copy_in_ledger(hub: Hub) -> tuple[FakeChannel, Order]:
    """The ledger holds a copy of order 1000 read just before an edit made within the same second."""
    channel = setup(hub, 1)
    current = channel.orders["1000"]
    assert not isinstance(current, UnreadableOrder)
    channel.listed_instead["1000"] = replace(current, email="before-the-edit@example.com")
    sync_channel(tenant(hub), cid(hub, "shop"))
    channel.listed_instead.clear()
    return channel, current


def test_a_tie_the_channel_cannot_settle_now_keeps_the_ledgers_version_says_so_and_settles_later(hub: Hub) -> None:
    channel, current = stale_copy_in_ledger(hub)
    channel.fetch_error = revoked()
    report = sync_channel(tenant(hub), cid(hub, "shop"), full=True)
    # the batch and its cursor commit; only the tie waits, and the order's page says why
    assert report.ok and (report.counts.tied, report.counts.unsettled, report.counts.changed) == (1, 1, 0)
    detail = show_order(tenant(hub), "#1000")
    assert detail.version == 1 and stored_email(hub) == "before-the-edit@example.com"
    assert (
        detail.timeline[-1]["kind"] == "tie_unsettled" and "refused the credentials" in detail.timeline[-1]["message"]
    )
    channel.fetch_error = None
    again = sync_channel(tenant(hub), cid(hub, "shop"), full=True)
    assert (again.counts.tied, again.counts.changed, again.counts.unsettled) == (1, 1, 0)
    assert show_order(tenant(hub), "#1000").version == 2 and stored_email(hub) == current.email


def pending(hub: Hub) -> list[tuple[str, int]]:
    with hub.db.read() as conn:
        return [tuple(r) for r in conn.execute(select(pending_rereads.c.external_id, pending_rereads.c.attempts))]


def tie_events(hub: Hub) -> list[str]:
    return [e["message"] for e in show_order(tenant(hub), "#1000").timeline if e["kind"] == "tie_unsettled"]


def test_an_unsettled_tie_is_asked_about_by_every_sync_even_when_the_order_is_never_listed_again(hub: Hub) -> None:
    channel, current = stale_copy_in_ledger(hub)
    channel.fetch_error = revoked()
    first = sync_channel(tenant(hub), cid(hub, "shop"), full=True)
    assert (first.counts.tied, first.counts.unsettled, first.counts.rereads) == (1, 1, 0)
    assert pending(hub) == [("1000", 1)] and channel.fetched == ["1000"]  # asked once per run
    assert health_report(tenant(hub))["connections"][0]["pending_rereads"] == 1
    # the order does not change again, so no poll lists it (and an audit sees equal updated_at)
    channel.hidden.add("1000")
    second = sync_channel(tenant(hub), cid(hub, "shop"))
    assert (second.counts.tied, second.counts.unsettled, second.counts.rereads) == (0, 1, 1)
    assert pending(hub) == [("1000", 2)] and channel.fetched == ["1000", "1000"]
    assert len(tie_events(hub)) == 1  # the timeline says so once, not once per sync
    channel.fetch_error = None
    third = sync_channel(tenant(hub), cid(hub, "shop"))
    assert (third.counts.rereads, third.counts.changed, third.counts.unsettled) == (1, 1, 0)
    assert show_order(tenant(hub), "#1000").version == 2 and stored_email(hub) == current.email
    assert pending(hub) == [] and health_report(tenant(hub))["connections"][0]["pending_rereads"] == 0
    fourth = sync_channel(tenant(hub), cid(hub, "shop"))
    assert fourth.counts.rereads == 0 and channel.fetched == ["1000"] * 3


def test_a_tie_on_an_order_the_channel_no_longer_has_keeps_the_ledgers_version_and_is_not_asked_again(
    hub: Hub,
) -> None:
    channel = setup(hub, 1)
    current = channel.orders["1000"]
    assert not isinstance(current, UnreadableOrder)
    sync_channel(tenant(hub), cid(hub, "shop"))
    channel.listed_instead["1000"] = replace(current, email="before-the-edit@example.com")
    channel.fetch_error = NotFound("fake has no order 1000", hint="Check the order id.")
    report = sync_channel(tenant(hub), cid(hub, "shop"), full=True)
    assert report.ok and (report.counts.tied, report.counts.unsettled) == (1, 0)
    assert pending(hub) == [] and stored_email(hub) == current.email
    assert len(messages := tie_events(hub)) == 1 and "no longer has the order" in messages[0]
    channel.hidden.add("1000")  # gone from the listings too
    assert sync_channel(tenant(hub), cid(hub, "shop")).counts.rereads == 0 and channel.fetched == ["1000"]


def test_skipped_and_held_orders_are_visible_with_reasons(hub: Hub) -> None:
    channel = setup(hub, 0)
    channel.put(order(1, payment_status=PaymentStatus.PENDING))
    channel.put(order(2, skus=("ABC-1",)))
    channel.put(order(3, skus=("ABC-1",), shipping="Drone"))
    sync_channel(tenant(hub), cid(hub, "shop"))
    acct = accounting(tenant(hub))
    assert (acct["skipped"], acct["held"]) == (1, 2)
    groups = {(g.code, g.value): g for g in holds(tenant(hub), include_skipped=True)}
    assert groups[("sku_unmapped", "ABC-1")].orders == 2
    assert "mappings set sku 'ABC-1'" in sentence(groups[("sku_unmapped", "ABC-1")].fix)
    assert groups[("shipping_method_unmapped", "Drone")].orders == 1
    assert groups[("financial_status_not_downloaded", "pending")].kind == "skip"


def test_an_unreadable_record_is_stored_and_held_not_dropped(hub: Hub) -> None:
    channel = setup(hub, 1)
    channel.orders["999"] = UnreadableOrder(
        "999", "#999", order(9).updated_at, "total_price 'abc' is not decimal", {"id": 999, "total_price": "abc"}
    )
    sync_channel(tenant(hub), cid(hub, "shop"))
    detail = show_order(tenant(hub), "999")
    assert detail.state == "held"
    assert detail.reasons[0]["code"] == "invalid_order" and "abc" in detail.reasons[0]["message"]
    assert detail.raw == {"id": 999, "total_price": "abc"}


def test_events_are_append_only_in_the_database(hub: Hub) -> None:
    setup(hub, 1)
    sync_channel(tenant(hub), cid(hub, "shop"))
    assert count(hub, events) >= 1
    for statement in ("UPDATE events SET message = 'x'", "DELETE FROM events"):
        try:
            with hub.db.transaction() as conn:
                conn.execute(text(statement))
        except DBAPIError as exc:  # the database's own refusal (IntegrityError/InternalError by dialect)
            assert "append-only" in str(exc)
        else:
            raise AssertionError(f"{statement} was allowed")


def test_a_record_whose_id_no_ledger_column_holds_is_refused_by_any_connector_and_the_batch_is_stored(
    hub: Hub,
) -> None:
    channel = setup(hub, 3)
    channel.put(order(50, external_id="9" * 101))
    channel.put(order(51, external_id="51\x00"))
    report = sync_channel(tenant(hub), cid(hub, "shop"))
    assert report.ok and (report.counts.unidentified, report.counts.inserted) == (2, 3)
    assert all("is not usable" in m for m in report.counts.unidentified_records)
    assert count(hub) == 3
