"""Audits as people see them: "Run audit now" queues a report that the runtime's housekeeper runs,
reports list per window and show their recovered orders linked to the ledger, another tenant's
are not found."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from orderbridge.domain.roles import Role
from orderbridge.errors import InvalidInput, NotFound
from orderbridge.runtime.worker import CycleReport, housekeeping
from orderbridge.services.audit_trail import actions_on
from orderbridge.services.audits import get_audit, latest_audits, list_audits, request_audit, run_queued_audits
from orderbridge.services.hub import Hub
from orderbridge.services.principals import Actor, Principal
from orderbridge.services.reconcile import reconcile
from orderbridge.services.scope import Scope
from orderbridge.services.sync import sync_channel
from orderbridge.services.tenants import add_tenant
from orderbridge.storage.leases import held
from orderbridge.storage.tables import orders, reconciliation_runs
from tests.builders import T0
from tests.fakes import FakeChannel, standard_world
from tests.scoped import cid, tenant

NOW = T0 + timedelta(hours=2)


def operator(scope: Scope) -> Actor:
    return Actor(Principal("user", 7, scope.tenant_id, Role.OPERATOR, "Olga Operator", "en"), scope, "198.51.100.4")


def world(hub: Hub) -> FakeChannel:
    channel = standard_world(hub, 10)
    hub.now = lambda: NOW  # type: ignore[method-assign]
    channel.hidden = {"1002", "1005"}  # the polls never see them
    sync_channel(tenant(hub), cid(hub, "shop"))
    return channel


def test_run_audit_now_queues_a_report_that_the_housekeeper_runs_and_records_who_asked(hub: Hub) -> None:
    world(hub)
    scope = tenant(hub)
    queued = request_audit(operator(scope), cid(hub, "shop"))
    assert (queued.outcome, queued.kind, queued.connection) == ("queued", "manual", "shop")
    assert queued.window_end == NOW and queued.window_start == NOW - timedelta(hours=72)
    (asked,) = actions_on(scope, "audit", queued.id)
    assert (asked.who, asked.action, asked.address) == ("Olga Operator", "audit.run", "198.51.100.4")

    report = CycleReport()
    housekeeping(scope, report)
    assert report.crashed == [] and report.audits[0]["run_id"] == queued.id  # before the scheduled ones
    done = get_audit(scope, queued.id)
    assert (done.audit.outcome, done.audit.recovered, done.audit.missing) == ("ok", 2, 0)
    assert done.audit.channel_count == 10 and done.audit.finished_at is not None
    assert done.by_cause == [("cursor_gap", 2)]
    with hub.db.read() as conn:
        ids = dict(conn.execute(select(orders.c.external_id, orders.c.id)).all())
    assert {(f.external_id, f.order_id, f.action) for f in done.findings} == {
        ("1002", ids["1002"], "recovered"),
        ("1005", ids["1005"], "recovered"),
    }
    assert [a.action for a in done.actions] == ["audit.run"]


def test_asking_again_while_one_is_queued_returns_it_and_queues_nothing_new(hub: Hub) -> None:
    world(hub)
    scope = tenant(hub)
    first = request_audit(operator(scope), cid(hub, "shop"))
    second = request_audit(operator(scope), cid(hub, "shop"), window="full")
    assert second.id == first.id
    assert len(actions_on(scope, "audit", first.id)) == 1
    run_queued_audits(scope)
    third = request_audit(operator(scope), cid(hub, "shop"), window="full")
    assert third.id != first.id and third.window_start == NOW - timedelta(days=60)


def test_a_queued_audit_waits_while_the_channel_is_being_audited(hub: Hub) -> None:
    world(hub)
    scope = tenant(hub)
    queued = request_audit(operator(scope), cid(hub, "shop"))
    with held(hub.db, f"reconcile:{cid(hub, 'shop')}", 30, hub.now):
        assert run_queued_audits(scope) == []
    assert get_audit(scope, queued.id).audit.outcome == "queued"
    (done,) = run_queued_audits(scope)
    assert done.run_id == queued.id and done.ok


def test_a_queued_audit_of_a_channel_that_can_no_longer_be_audited_fails_saying_why(hub: Hub) -> None:
    world(hub)
    scope = tenant(hub)
    queued = request_audit(operator(scope), cid(hub, "shop"))
    with hub.db.transaction() as conn:  # the window became empty (a clock set back): nothing to run
        conn.execute(
            reconciliation_runs.update()
            .where(reconciliation_runs.c.id == queued.id)
            .values(window_start=NOW, window_end=NOW - timedelta(hours=1))
        )
    assert run_queued_audits(scope) == []
    failed = get_audit(scope, queued.id).audit
    assert failed.outcome == "failed" and "window is empty" in (failed.error or "")


def test_only_a_channel_that_can_be_audited_can_be_asked_for(hub: Hub) -> None:
    world(hub)
    scope = tenant(hub)
    with pytest.raises(InvalidInput, match="is a destination connection"):
        request_audit(operator(scope), cid(hub, "wh"))
    with pytest.raises(InvalidInput, match="audit window 'week'"):
        request_audit(operator(scope), cid(hub, "shop"), window="week")


def test_reports_are_listed_newest_first_in_keyset_pages(hub: Hub) -> None:
    world(hub)
    scope = tenant(hub)
    ran = [reconcile(scope, cid(hub, "shop"), since=T0 - timedelta(hours=i + 1), until=NOW).run_id for i in range(5)]
    first = list_audits(scope, limit=2)
    assert [a.id for a in first.items] == ran[::-1][:2] and first.next_before == ran[3]
    second = list_audits(scope, limit=2, before_id=first.next_before)
    third = list_audits(scope, limit=2, before_id=second.next_before)
    assert [a.id for a in second.items + third.items] == ran[::-1][2:] and third.next_before is None
    assert [a.id for a in list_audits(scope, connection_id=cid(hub, "shop")).items] == ran[::-1]
    assert [a.id for a in latest_audits(scope)] == [ran[-1]]


def test_a_queued_or_running_report_is_not_what_the_latest_audit_proved(hub: Hub) -> None:
    world(hub)
    scope = tenant(hub)
    proved = reconcile(scope, cid(hub, "shop"), since=T0 - timedelta(hours=1), until=NOW)
    request_audit(operator(scope), cid(hub, "shop"))
    assert [a.id for a in latest_audits(scope)] == [proved.run_id]


def test_another_tenants_reports_and_channels_are_not_found(hub: Hub) -> None:
    world(hub)
    scope = tenant(hub)
    mine = reconcile(scope, cid(hub, "shop"), since=T0 - timedelta(hours=1), until=NOW)
    other = add_tenant(hub, "globex", "Globex")
    with pytest.raises(NotFound):
        get_audit(other, mine.run_id)
    with pytest.raises(NotFound):
        request_audit(operator(other), cid(hub, "shop"))
    with pytest.raises(NotFound):
        list_audits(other, connection_id=cid(hub, "shop"))
    assert list_audits(other).items == [] and latest_audits(other) == []
