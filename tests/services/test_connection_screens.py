"""The services behind the Connections screens: add after a test, credentials never read back,
Sync now through the ledger, the poll interval, webhook status, download rules in plain words."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from orderbridge.domain.roles import Role
from orderbridge.errors import InvalidInput, NotFound
from orderbridge.runtime.sync_now import ThreadSyncRunner
from orderbridge.runtime.worker import CycleReport, due_channels, poll_interval, run_queued_syncs
from orderbridge.sandboxes.base import Fault
from orderbridge.services.audit_trail import actions_on
from orderbridge.services.connection_view import connection_detail, list_connection_summaries
from orderbridge.services.connections import (
    ConnectionTestFailed,
    check_now,
    create_connection,
    credential_status,
    set_credentials,
    set_poll_interval,
    try_connection,
)
from orderbridge.services.hub import Hub
from orderbridge.services.sync import sync_channel
from orderbridge.services.sync_now import QueuedSync, request_sync, run_requested, sync_progress
from orderbridge.services.tenants import add_tenant
from orderbridge.storage.tables import connections, orders
from tests.services.portal_world import SHOP_SECRET, SHOP_TOKEN, SS_KEY, SS_SECRET, person, portal_world


def _count_connections(hub: Hub) -> int:
    with hub.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(connections)).scalar_one())


def test_a_connection_is_saved_only_after_the_remote_accepted_its_credentials(hub: Hub) -> None:
    with portal_world(hub, connect=False) as w:
        with pytest.raises(ConnectionTestFailed) as refused:
            create_connection(
                w.scope, "shop", "shopify", w.shop_url, {"access_token": "shpat_wrong"}, by=w.actor(Role.ADMIN)
            )
        assert refused.value.check.code == "connection_auth_failed"
        assert "401" in refused.value.check.message and refused.value.check.hint
        assert _count_connections(hub) == 0, "a failed test saves nothing"
        row, check = create_connection(
            w.scope,
            "shop",
            "shopify",
            w.shop_url + "/",
            {"access_token": SHOP_TOKEN, "api_secret": SHOP_SECRET},
            by=w.actor(Role.ADMIN),
        )
        assert check.ok and "Shopify shop" in check.description and row.base_url == w.shop_url
        trail = actions_on(w.scope, "connection", row.id)
        assert [a.action for a in trail] == ["connection.add"] and trail[0].who == "Ana Lima"
        assert SHOP_TOKEN not in trail[0].summary and SHOP_TOKEN not in str(trail[0].detail)


def test_a_permission_the_remote_refuses_is_shown_with_its_reason_and_nothing_is_saved(hub: Hub) -> None:
    with portal_world(hub, connect=False) as w:
        w.warehouse.add_fault(Fault("403", path="/orders"))
        with pytest.raises(ConnectionTestFailed) as refused:
            create_connection(
                w.scope,
                "warehouse",
                "shipstation",
                w.warehouse_url,
                {"api_key": SS_KEY, "api_secret": SS_SECRET},
                by=w.actor(Role.ADMIN),
            )
        check = refused.value.check
        assert check.code == "connection_permission_denied" and "403" in check.message and "permission" in check.hint
        assert _count_connections(hub) == 0


def test_a_shopify_token_without_the_scopes_the_hub_uses_fails_the_test_naming_them(hub: Hub) -> None:
    with portal_world(hub, connect=False) as w:
        w.shop.scopes = ("read_products", "read_fulfillments")
        with pytest.raises(ConnectionTestFailed) as refused:
            create_connection(w.scope, "shop", "shopify", w.shop_url, {"access_token": SHOP_TOKEN}, by=w.actor())
        check = refused.value.check
        assert check.code == "connection_permission_denied"
        assert "read_orders" in check.message and "write_merchant_managed_fulfillment_orders" in check.message
        assert "read_products" in check.message and "scopes" in check.hint
        assert _count_connections(hub) == 0
        w.shop.scopes = ("read_orders", "write_merchant_managed_fulfillment_orders")
        assert try_connection(w.scope, "shopify", w.shop_url, {"access_token": SHOP_TOKEN}).ok


def test_input_the_hub_can_judge_is_refused_before_the_remote_is_asked(hub: Hub) -> None:
    with portal_world(hub, connect=False) as w:
        for url, creds, code in [
            ("ftp://x", {"access_token": "a"}, "base_url_invalid"),
            (w.shop_url, {}, "credentials_missing"),
        ]:
            with pytest.raises(InvalidInput) as bad:
                try_connection(w.scope, "shopify", url, creds)
            assert bad.value.code == code
        with pytest.raises(InvalidInput, match="no credential"):
            try_connection(w.scope, "shopify", w.shop_url, {"access_token": "a", "password": "x"})


def test_credentials_are_shown_as_set_or_not_and_replaced_only_when_the_new_ones_work(hub: Hub) -> None:
    with portal_world(hub) as w:
        shown = credential_status(w.scope, w.shop_id)
        assert {c.name: c.is_set for c in shown} == {"access_token": True, "api_secret": True}
        assert not any(SHOP_TOKEN in str(c) or SHOP_SECRET in str(c) for c in shown)
        with pytest.raises(ConnectionTestFailed):
            set_credentials(w.scope, w.shop_id, {"access_token": "shpat_revoked"}, by=w.actor(Role.ADMIN))
        assert w.hub.box.open(w.scope.load(w.shop_id).credentials_token)["access_token"] == SHOP_TOKEN
        w.shop.valid_credentials.add("shpat_new")
        assert set_credentials(w.scope, w.shop_id, {"access_token": "shpat_new", "api_secret": ""}, by=w.actor()).ok
        stored = w.hub.box.open(w.scope.load(w.shop_id).credentials_token)
        assert stored == {"access_token": "shpat_new", "api_secret": SHOP_SECRET}, "an empty field keeps its value"
        trail = actions_on(w.scope, "connection", w.shop_id)
        assert trail[0].action == "connection.credentials" and "shpat_new" not in trail[0].summary


def test_testing_a_saved_connection_records_the_outcome_on_its_check_job(hub: Hub) -> None:
    with portal_world(hub) as w:
        assert check_now(w.scope, w.shop_id, by=w.actor()).ok
        w.shop.revoke()
        failed = check_now(w.scope, w.shop_id, by=w.actor())
        assert not failed.ok and failed.code == "connection_auth_failed"
        detail = connection_detail(w.scope, w.shop_id)
        assert detail.health == "failing" and {j.job: j.health for j in detail.jobs}["check"] == "failing"
        assert [a.action for a in detail.actions] == ["connection.test", "connection.test"]


def test_another_tenants_connection_is_not_found_by_any_screen_service(hub: Hub) -> None:
    with portal_world(hub) as w:
        other = add_tenant(hub, "other", "Other Ltd")
        them = person(other, Role.ADMIN, "Eve")
        for call in (
            lambda: connection_detail(other, w.shop_id),
            lambda: credential_status(other, w.shop_id),
            lambda: check_now(other, w.shop_id, by=them),
            lambda: set_poll_interval(other, w.shop_id, 60, by=them),
            lambda: request_sync(other, w.shop_id, None, by=them),
            lambda: sync_progress(other, w.shop_id),
        ):
            with pytest.raises(NotFound):
                call()


def test_sync_now_pulls_the_channels_orders_and_its_progress_is_read_from_the_ledger(hub: Hub) -> None:
    with portal_world(hub, orders=12) as w:
        runner = ThreadSyncRunner(hub)
        try:
            asked = request_sync(w.scope, w.shop_id, runner, by=w.actor())
            assert not asked.already_running and asked.run.outcome in ("queued", "running")
            runner.wait(timeout=60)
        finally:
            runner.close()
        done = sync_progress(w.scope, w.shop_id)
        assert done is not None and done.run_id == asked.run.run_id and done.outcome == "ok"
        assert done.count("fetched") == 12 and done.count("inserted") == 12 and done.count("batches") >= 1
        with hub.db.read() as conn:
            assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 12
        assert actions_on(w.scope, "connection", w.shop_id)[0].action == "connection.sync_now"


def test_a_second_sync_now_while_one_is_queued_or_running_starts_nothing(hub: Hub) -> None:
    with portal_world(hub, orders=3) as w:
        first = request_sync(w.scope, w.shop_id, None, by=w.actor())
        again = request_sync(w.scope, w.shop_id, None, by=w.actor(Role.OPERATOR, "Bo"))
        assert again.already_running and again.run.run_id == first.run.run_id
        # the scheduler's sync holds the lease: a request then is answered with that run too
        run_requested(hub, QueuedSync(w.scope.tenant_id, w.shop_id, first.run.run_id))
        gate, release = threading.Event(), threading.Event()
        seen: list[bool] = []

        def slow(report: object) -> None:
            gate.set()
            release.wait(10)

        thread = threading.Thread(
            target=lambda: seen.append(sync_channel(w.scope, w.shop_id, progress=slow, full=True).ok)
        )
        thread.start()
        assert gate.wait(20)
        during = request_sync(w.scope, w.shop_id, None, by=w.actor())
        assert during.already_running and during.run.outcome == "running"
        release.set()
        thread.join(30)
        assert seen == [True]


def test_a_request_no_runner_took_is_run_by_the_worker_loop(hub: Hub) -> None:
    with portal_world(hub, orders=4) as w:
        asked = request_sync(w.scope, w.shop_id, None, by=w.actor())
        report = CycleReport()
        run_queued_syncs(w.scope, report)  # within the grace: left to the runner it was given
        assert sync_progress(w.scope, w.shop_id).outcome == "queued"  # type: ignore[union-attr]
        later = hub.now
        hub.now = lambda: later() + timedelta(seconds=6)
        try:
            run_queued_syncs(w.scope, report)
        finally:
            hub.now = later
        done = sync_progress(w.scope, w.shop_id, asked.run.run_id)
        assert done is not None and done.outcome == "ok" and done.count("inserted") == 4 and not report.crashed


def test_sync_now_is_refused_for_a_destination(hub: Hub) -> None:
    with portal_world(hub) as w, pytest.raises(InvalidInput, match="pulls orders from a channel"):
        request_sync(w.scope, w.warehouse_id, None, by=w.actor())


def test_a_channels_own_poll_interval_decides_when_it_is_due(hub: Hub) -> None:
    with portal_world(hub) as w:
        assert poll_interval(w.scope, w.scope.load(w.shop_id)) == hub.settings.poll_interval_s
        set_poll_interval(w.scope, w.shop_id, 600, by=w.actor(Role.ADMIN))
        assert poll_interval(w.scope, w.scope.load(w.shop_id)) == 600
        last: dict[int, float] = {}
        assert due_channels(w.scope, last, 1000.0) == {w.shop_id}
        assert due_channels(w.scope, last, 1599.0) == set()
        assert due_channels(w.scope, last, 1600.0) == {w.shop_id}
        for bad in (0, 5, 10**9, True):
            with pytest.raises(InvalidInput):
                set_poll_interval(w.scope, w.shop_id, bad, by=w.actor(Role.ADMIN))  # type: ignore[arg-type]
        set_poll_interval(w.scope, w.shop_id, None, by=w.actor(Role.ADMIN))
        detail = connection_detail(w.scope, w.shop_id)
        assert detail.poll_interval_s is None and detail.effective_poll_interval_s == hub.settings.poll_interval_s
        assert [a.action for a in detail.actions] == ["connection.settings", "connection.settings"]


def test_the_page_says_the_download_rules_in_words_and_the_webhook_state(hub: Hub) -> None:
    with portal_world(hub) as w:
        detail = connection_detail(w.scope, w.shop_id)
        rules = detail.rules
        assert rules is not None and rules.payment_taken == ("paid",) and "refunded" in rules.payment_left_out
        assert rules.fulfilment_taken == ("unfulfilled", "partial") and not rules.include_test
        assert not rules.customised
        hooks = detail.webhooks
        assert hooks is not None and hooks.supported and not hooks.registered and hooks.secret_set
        assert connection_detail(w.scope, w.warehouse_id).rules is None
        names = [s.name for s in list_connection_summaries(w.scope)]
        assert names == ["shop", "warehouse"]
