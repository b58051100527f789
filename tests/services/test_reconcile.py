"""Reconciliation audits with a fake channel: what is missing or stale is recovered, with its cause."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from orderbridge.errors import RemoteUnavailable
from orderbridge.fixes import show_audit
from orderbridge.services.hub import Hub
from orderbridge.services.ingest import ingest_records
from orderbridge.services.reconcile import due_audits, list_reports, reconcile
from orderbridge.services.sync import channel_context, sync_channel
from orderbridge.storage.tables import alerts, events, orders
from orderbridge.web import links
from tests.builders import T0, order, replace
from tests.fakes import FakeChannel, standard_world
from tests.scoped import cid, tenant

NOW = T0 + timedelta(hours=2)


def setup(hub: Hub, n: int = 10) -> FakeChannel:
    channel = standard_world(hub, n)
    hub.now = lambda: NOW  # type: ignore[method-assign]
    return channel


def in_ledger(hub: Hub) -> dict[str, int]:
    with hub.db.read() as conn:
        return {ext: v for ext, v in conn.execute(select(orders.c.external_id, orders.c.version))}


def test_a_complete_ledger_reports_zero_missing_and_raises_no_alert(hub: Hub) -> None:
    setup(hub)
    sync_channel(tenant(hub), cid(hub, "shop"))
    report = reconcile(tenant(hub), cid(hub, "shop"), since=T0 - timedelta(hours=1), until=NOW)
    assert report.ok
    assert report.summary == "10 in the channel, 10 in the ledger, 0 recovered, 0 missing"
    assert report.findings == [] and report.api_requests == 1 and report.api_cost == 12
    with hub.db.read() as conn:
        assert conn.execute(select(alerts)).all() == []
        audited = conn.execute(select(events.c.message).where(events.c.kind == "audited")).scalars().all()
    assert len(audited) == 1 and "0 missing" in audited[0]


def test_orders_the_polls_never_saw_are_recovered_with_the_cause_and_an_event(hub: Hub) -> None:
    channel = setup(hub)
    channel.hidden = {"1002", "1005"}  # invisible to polls, and older than the cursor: a cursor gap
    sync_channel(tenant(hub), cid(hub, "shop"))
    assert "1002" not in in_ledger(hub)
    late = order(50, updated_minutes=90)
    channel.put(late)  # changed after the last poll: the next poll would have had it
    report = reconcile(tenant(hub), cid(hub, "shop"), since=T0 - timedelta(hours=1), until=NOW)
    assert (report.channel_count, report.ledger_count, report.recovered, report.missing) == (11, 11, 3, 0)
    # one listing page (2 + 11 stamps) and three fetches (5 points each), all on the report
    assert (report.api_requests, report.api_cost) == (4, 13 + 3 * channel.fetch_cost)
    causes = {f["external_id"]: f["cause"] for f in report.findings}
    assert causes == {"1002": "cursor_gap", "1005": "cursor_gap", "1050": "not_polled_yet"}
    assert set(in_ledger(hub)) >= {"1002", "1005", "1050"}
    with hub.db.read() as conn:
        recovered = conn.execute(
            select(orders.c.external_id, events.c.message)
            .join(events, events.c.order_id == orders.c.id)
            .where(events.c.kind == "recovered")
        ).all()
        alert = conn.execute(select(alerts)).one()
    assert {r.external_id for r in recovered} == {"1002", "1005", "1050"}
    assert all(f"audit #{report.run_id}" in r.message for r in recovered)
    assert alert.kind == "reconciliation_finding" and "recovered 3 order(s)" in alert.subject
    assert "#1002" in alert.body and alert.fixes[0] == show_audit(report.run_id)  # its e-mail links to the report
    assert links.fix_link("https://h", alert.fixes[0]) == f"https://h/audits/{report.run_id}"
    stored = list_reports(tenant(hub), cid(hub, "shop"))[0]
    assert (stored["recovered"], stored["missing"], stored["outcome"]) == (3, 0, "ok")
    assert {f["external_id"] for f in stored["findings"]} == {"1002", "1005", "1050"}


def test_a_newer_version_the_ledger_missed_is_refreshed(hub: Hub) -> None:
    channel = setup(hub)
    sync_channel(tenant(hub), cid(hub, "shop"))
    newer = order(3, updated_minutes=100, note="changed in the channel")
    channel.put(newer)
    channel.hidden = {"1003"}
    report = reconcile(tenant(hub), cid(hub, "shop"), since=T0 - timedelta(hours=1), until=NOW)
    assert (report.recovered, report.refreshed, report.missing) == (0, 1, 0)
    assert report.findings[0]["was"] == "stale" and report.findings[0]["action"] == "refreshed"
    assert in_ledger(hub)["1003"] == 2


def test_a_same_second_version_written_during_the_audits_fetch_is_settled_by_a_re_read_on_its_bill(
    hub: Hub,
) -> None:
    channel = setup(hub)
    sync_channel(tenant(hub), cid(hub, "shop"))
    newer = order(3, updated_minutes=100, note="changed in the channel")
    channel.put(newer)
    channel.hidden = {"1003"}
    raced = replace(newer, note="a copy of the same second, written by a webhook meanwhile")
    with hub.db.read() as conn:
        row = tenant(hub).connection_named(conn, "shop")
    ctx = channel_context(tenant(hub), row)

    def webhook_meanwhile(external_id: str) -> None:
        if channel.fetched == ["1003"]:  # the audit's fetch: the ledger changes before it writes
            with hub.db.transaction() as conn:
                ingest_records(conn, tenant(hub).tenant_id, ctx, [raced], hub.now())

    channel.on_fetch = webhook_meanwhile
    report = reconcile(tenant(hub), cid(hub, "shop"), since=T0 - timedelta(hours=1), until=NOW)
    assert report.ok and (report.refreshed, report.missing) == (1, 0)
    assert channel.fetched == ["1003", "1003"]  # fetched, then re-read to settle the tie
    with hub.db.read() as conn:
        version, canonical = conn.execute(
            select(orders.c.version, orders.c.canonical).where(orders.c.external_id == "1003")
        ).one()
    assert (version, canonical["note"]) == (3, "changed in the channel")  # the channel's, not arrival order
    # one listing page (2 + 10 stamps), the fetch and the re-read: all on the audit's report
    assert (report.api_requests, report.api_cost) == (3, 12 + 2 * channel.fetch_cost)


def test_orders_missed_while_polls_failed_are_blamed_on_the_sync_error(hub: Hub) -> None:
    channel = setup(hub, n=3)
    sync_channel(tenant(hub), cid(hub, "shop"))
    channel.put(order(7, updated_minutes=30))
    hub.now = lambda: NOW + timedelta(minutes=1)  # type: ignore[method-assign]
    channel.fail_after_pages, channel.error = 0, RemoteUnavailable("down")
    sync_channel(tenant(hub), cid(hub, "shop"))
    channel.error = None
    report = reconcile(tenant(hub), cid(hub, "shop"), since=T0 - timedelta(hours=1))
    assert [(f["external_id"], f["cause"]) for f in report.findings] == [("1007", "sync_error")]


def test_audits_are_scheduled_hourly_and_daily_after_the_first_poll(hub: Hub) -> None:
    setup(hub)
    assert due_audits(tenant(hub)) == []  # no poll yet: the backfill is the first audit
    sync_channel(tenant(hub), cid(hub, "shop"))
    due = due_audits(tenant(hub))
    shop = cid(hub, "shop")
    assert sorted((channel, kind) for channel, kind, _ in due) == [(shop, "daily"), (shop, "hourly")]
    windows = {kind: NOW - since for _, kind, since in due}
    assert windows == {"hourly": timedelta(hours=72), "daily": timedelta(days=60)}
    for channel, kind, since in due:
        reconcile(tenant(hub), channel, since=since, kind=kind)
    assert due_audits(tenant(hub)) == []
    hub.now = lambda: NOW + timedelta(minutes=61)  # type: ignore[method-assign]
    assert [kind for _, kind, _ in due_audits(tenant(hub))] == ["hourly"]


def test_a_failing_channel_stores_a_failed_report(hub: Hub) -> None:
    channel = setup(hub)
    sync_channel(tenant(hub), cid(hub, "shop"))
    channel.error = RemoteUnavailable("Shopify failed with HTTP 503")
    report = reconcile(tenant(hub), cid(hub, "shop"), since=T0 - timedelta(hours=1), until=NOW)
    assert not report.ok
    stored = list_reports(tenant(hub), cid(hub, "shop"))[0]
    assert stored["outcome"] == "failed" and "503" in stored["error"]
    with hub.db.read() as conn:
        alert = conn.execute(select(alerts)).one()
    assert alert.kind == "reconciliation_failed" and alert.state == "open" and "503" in alert.body
    channel.error = None
    assert reconcile(tenant(hub), cid(hub, "shop"), since=T0 - timedelta(hours=1), until=NOW).ok
    with hub.db.read() as conn:
        assert conn.execute(select(alerts.c.state)).scalar_one() == "resolved"


def test_scheduled_audits_stop_short_of_the_last_poll_interval(hub: Hub) -> None:
    from orderbridge.services.reconcile import run_due_audits

    channel = setup(hub)
    sync_channel(tenant(hub), cid(hub, "shop"))
    channel.put(order(60, updated_at=NOW - timedelta(seconds=1)))  # changed after the last poll
    reports = run_due_audits(tenant(hub))
    assert {r.kind for r in reports} == {"hourly", "daily"}
    assert all(r.findings == [] and r.missing == 0 for r in reports)
    assert all(
        r.window_end == NOW - timedelta(seconds=hub.settings.poll_interval_s + hub.settings.cursor_overlap_s)
        for r in reports
    )
    with hub.db.read() as conn:
        assert conn.execute(select(alerts)).all() == []
