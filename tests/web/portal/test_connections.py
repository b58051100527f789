"""The Connections screens and API over a real port: add after a test, credentials never shown,
Sync now into the ledger, tenants, roles, CSRF."""

from __future__ import annotations

import time

import httpx
import pytest
from sqlalchemy import Table, func, select

from orderbridge.services import sync_now
from orderbridge.services.audit_trail import actions_on
from orderbridge.services.auth import Actor
from orderbridge.storage.tables import connections, orders
from tests.web.portal.conftest import Portal
from tests.web.portal.conn_world import SECRETS, SHOP_SECRET, SHOP_TOKEN, connected


def _count(portal: Portal, table: Table, **where: object) -> int:
    with portal.hub.db.read() as conn:
        q = select(func.count()).select_from(table)
        for name, value in where.items():
            q = q.where(table.c[name] == value)
        return int(conn.execute(q).scalar_one())


def _no_secret_in(text: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"credentials in an answer: {leaked}"


def _wait_for_sync(client: httpx.Client, url: str, *, api: bool = False) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = client.get(url, headers={} if api else {"HX-Request": "true"})
        assert answer.status_code == 200, answer.text
        body = answer.text
        if api:
            if answer.json()["outcome"] not in ("queued", "running"):
                return body
        elif "hx-trigger" not in body:  # the partial stops polling once the run is over
            return body
        time.sleep(0.2)
    raise AssertionError("the sync did not finish")


def test_adding_a_connection_with_refused_credentials_shows_the_remotes_reason_and_saves_nothing(
    portal: Portal,
) -> None:
    with connected(portal) as w:
        admin = portal.signed_in("admin")
        before = _count(portal, connections)
        form = {"kind": "shopify", "name": "second shop", "base_url": w.shop_url, "credential_access_token": "shpat_no"}
        tried = admin.post_form("/connections/test", form)
        assert tried.status_code == 422
        assert "The connection test failed." in tried.text and "401" in tried.text
        assert "shpat_no" not in tried.text, "a typed credential is not written back into the page"
        saved = admin.post_form("/connections", form)
        assert saved.status_code == 422 and "connection_auth_failed" in saved.text
        assert _count(portal, connections) == before, "a failed test saves nothing"


def test_adding_a_connection_that_works_tests_it_then_saves_it_and_records_who(portal: Portal) -> None:
    with connected(portal) as w:
        admin = portal.signed_in("admin")
        form = {"kind": "shopify", "name": "second shop", "base_url": w.shop_url, "credential_access_token": SHOP_TOKEN}
        tried = admin.post_form("/connections/test", form, headers={"HX-Request": "true"})
        assert tried.status_code == 200 and "The connection works." in tried.text
        assert "<html" not in tried.text, "htmx gets the result alone, the typed form stays in the browser"
        _no_secret_in(tried.text)
        saved = admin.post_form("/connections", form)
        assert saved.status_code == 303
        page = admin.get(saved.headers["location"])
        assert page.status_code == 200 and "second shop" in page.text and "Admin default" in page.text
        _no_secret_in(page.text)
        new_id = int(saved.headers["location"].rsplit("/", 1)[1])
        assert [a.action for a in actions_on(portal.default, "connection", new_id)][-1] == "connection.add"


def test_no_page_or_api_answer_ever_contains_a_credential(portal: Portal) -> None:
    with connected(portal) as w:
        admin = portal.signed_in("admin")
        api = portal.api("admin")
        for url in (
            "/connections",
            f"/connections/{w.shop_id}",
            f"/connections/{w.warehouse_id}",
            "/connections/new?kind=shopify",
            "/connections/new?kind=shipstation",
        ):
            answer = admin.get(url)
            assert answer.status_code == 200, url
            _no_secret_in(answer.text)
        for url in (
            "/api/v1/connections",
            f"/api/v1/connections/{w.shop_id}",
            f"/api/v1/connections/{w.warehouse_id}",
            f"/api/v1/connections/{w.shop_id}/health",
        ):
            answer = api.get(url)
            assert answer.status_code == 200, url
            _no_secret_in(answer.text)
        creds = {c["name"]: c["is_set"] for c in api.get(f"/api/v1/connections/{w.shop_id}").json()["credentials"]}
        assert creds == {"access_token": True, "api_secret": True}


def test_new_credentials_replace_the_old_ones_only_when_the_remote_accepts_them(portal: Portal) -> None:
    with connected(portal) as w:
        admin = portal.signed_in("admin")
        refused = admin.post_form(f"/connections/{w.shop_id}/credentials", {"credential_access_token": "shpat_typo"})
        assert refused.status_code == 422 and "nothing was changed" in refused.text and "shpat_typo" not in refused.text
        stored = portal.hub.box.open(portal.default.load(w.shop_id).credentials_token)
        assert stored == {"access_token": SHOP_TOKEN, "api_secret": SHOP_SECRET}
        w.shop.valid_credentials.add("shpat_rotated")
        ok = admin.post_form(f"/connections/{w.shop_id}/credentials", {"credential_access_token": "shpat_rotated"})
        assert ok.status_code == 303
        assert portal.hub.box.open(portal.default.load(w.shop_id).credentials_token)["access_token"] == "shpat_rotated"
        page = admin.get(f"/connections/{w.shop_id}").text
        assert "shpat_rotated" not in page and "changed the credentials of shop: access_token" in page


def test_sync_now_pulls_the_sandboxs_orders_into_the_ledger_and_shows_the_progress(portal: Portal) -> None:
    with connected(portal, orders=15) as w:
        operator = portal.signed_in("operator")
        started = operator.post_form(f"/connections/{w.shop_id}/sync", headers={"HX-Request": "true"})
        assert started.status_code == 200 and 'id="sync-progress"' in started.text
        done = _wait_for_sync(operator, f"/connections/{w.shop_id}/sync")
        assert "Finished" in done
        assert _count(portal, orders, connection_id=w.shop_id) == 15
        page = operator.get(f"/connections/{w.shop_id}").text
        assert "asked for a sync of shop now" in page and "Operator default" in page
        assert portal.wakes, "the poster was nudged: new orders are posted right away"


def test_a_second_sync_now_while_one_runs_says_already_running(portal: Portal) -> None:
    with connected(portal, orders=3) as w:
        api = portal.api("operator")
        # a request no runner took stays queued: the next one is answered with it
        queued = sync_now.request_sync(portal.default, w.shop_id, None, by=Actor.cli(portal.default))
        again = api.post(f"/api/v1/connections/{w.shop_id}/sync")
        assert again.status_code == 202
        assert again.json()["already_running"] is True and again.json()["run"]["run_id"] == queued.run.run_id
        operator = portal.signed_in("operator")
        page = operator.post_form(f"/connections/{w.shop_id}/sync")
        assert page.status_code == 303
        assert "already running" in operator.get(page.headers["location"]).text


def test_sync_now_over_the_api_answers_202_and_its_figures_are_read_back(portal: Portal) -> None:
    with connected(portal, orders=6) as w:
        api = portal.api("operator")
        asked = api.post(f"/api/v1/connections/{w.shop_id}/sync")
        assert asked.status_code == 202 and asked.json()["already_running"] is False
        assert asked.headers["location"] == f"/api/v1/connections/{w.shop_id}/sync"
        final = _wait_for_sync(api, f"/api/v1/connections/{w.shop_id}/sync", api=True)
        assert '"outcome":"ok"' in final and '"inserted":6' in final
        assert api.post(f"/api/v1/connections/{w.warehouse_id}/sync").status_code == 422, "not a channel"


def test_testing_a_connection_reports_the_remotes_answer(portal: Portal) -> None:
    with connected(portal) as w:
        api = portal.api("operator")
        assert api.post(f"/api/v1/connections/{w.shop_id}/test").json()["ok"] is True
        w.shop.revoke()
        failed = api.post(f"/api/v1/connections/{w.shop_id}/test").json()
        assert failed["ok"] is False and failed["code"] == "connection_auth_failed" and "401" in failed["message"]
        operator = portal.signed_in("operator")
        answer = operator.post_form(f"/connections/{w.shop_id}/test", headers={"HX-Request": "true"})
        assert "The connection test failed." in answer.text


def test_the_poll_interval_is_set_by_an_admin_and_refused_out_of_range(portal: Portal) -> None:
    with connected(portal) as w:
        admin = portal.signed_in("admin")
        assert admin.post_form(f"/connections/{w.shop_id}/settings", {"poll_interval_s": "5"}).status_code == 422
        assert admin.post_form(f"/connections/{w.shop_id}/settings", {"poll_interval_s": "x"}).status_code == 422
        assert admin.post_form(f"/connections/{w.shop_id}/settings", {"poll_interval_s": "300"}).status_code == 303
        assert portal.default.load(w.shop_id).settings["poll_interval_s"] == 300
        assert "Synced every 300 seconds" in admin.get(f"/connections/{w.shop_id}").text
        assert portal.api("admin").get(f"/api/v1/connections/{w.shop_id}").json()["poll_interval_s"] == 300


def test_reregistering_webhooks_subscribes_them_and_the_page_says_so(portal: Portal) -> None:
    with connected(portal) as w:
        admin = portal.signed_in("admin")
        answer = admin.post_form(f"/connections/{w.shop_id}/webhooks")
        assert answer.status_code == 303
        page = admin.get(f"/connections/{w.shop_id}").text
        assert "Webhooks registered" in page and "yes, to" in page
        subscribed = w.shop.webhook_dispatcher.subscriptions()
        assert subscribed and all(s.callback_url.endswith(f"/webhooks/shopify/{w.shop_id}") for s in subscribed)


def test_an_alerts_link_by_name_redirects_to_the_connection_in_the_readers_tenant(portal: Portal) -> None:
    with connected(portal) as w:
        viewer = portal.signed_in("viewer")
        answer = viewer.get("/connections/by-name/shop")
        assert answer.status_code == 303 and answer.headers["location"] == f"/connections/{w.shop_id}"
        assert viewer.get("/connections/by-name/their%20shop").status_code == 404
        assert viewer.get("/connections/by-name/nothing").status_code == 404


def test_another_tenants_connection_is_404_on_every_route(portal: Portal) -> None:
    with connected(portal) as w:
        admin = portal.signed_in("admin")
        api = portal.api("admin")
        theirs = w.their_shop_id
        for url in (f"/connections/{theirs}", f"/connections/{theirs}/sync"):
            assert admin.get(url).status_code == 404, url
        for url, data in (
            (f"/connections/{theirs}/credentials", {"credential_access_token": "x"}),
            (f"/connections/{theirs}/sync", {}),
            (f"/connections/{theirs}/test", {}),
            (f"/connections/{theirs}/webhooks", {}),
            (f"/connections/{theirs}/settings", {"poll_interval_s": "60"}),
        ):
            assert admin.post_form(url, data).status_code == 404, url
        for url in (
            f"/api/v1/connections/{theirs}",
            f"/api/v1/connections/{theirs}/health",
            f"/api/v1/connections/{theirs}/sync",
        ):
            answer = api.get(url)
            assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found", url
        for url in (f"/api/v1/connections/{theirs}/sync", f"/api/v1/connections/{theirs}/test"):
            assert api.post(url).status_code == 404, url
        assert [c["id"] for c in api.get("/api/v1/connections").json()] == [w.shop_id, w.warehouse_id]
        assert admin.get("/connections/99999999999999999999").status_code == 422
        assert api.get("/api/v1/connections/99999999999999999999").status_code == 422
        assert portal.default.load(w.shop_id).settings.get("poll_interval_s") is None


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_an_admin_adds_connections_changes_credentials_settings_and_webhooks(portal: Portal, role: str) -> None:
    with connected(portal) as w:
        client = portal.signed_in(role)
        form = {"kind": "shopify", "name": "x", "base_url": w.shop_url, "credential_access_token": SHOP_TOKEN}
        for url, data in (
            ("/connections/test", form),
            ("/connections", form),
            (f"/connections/{w.shop_id}/credentials", {"credential_access_token": "shpat_x"}),
            (f"/connections/{w.shop_id}/settings", {"poll_interval_s": "60"}),
            (f"/connections/{w.shop_id}/webhooks", {}),
        ):
            assert client.post_form(url, data).status_code == 403, url
        assert client.get("/connections/new").status_code == 403
        assert client.get(f"/connections/{w.shop_id}").status_code == 200
        assert _count(portal, connections) == 4, "two of each tenant, none added"


def test_a_viewer_cannot_sync_or_test_but_reads_everything(portal: Portal) -> None:
    with connected(portal) as w:
        viewer = portal.signed_in("viewer")
        assert viewer.post_form(f"/connections/{w.shop_id}/sync").status_code == 403
        assert viewer.post_form(f"/connections/{w.shop_id}/test").status_code == 403
        api = portal.api("viewer")
        assert api.post(f"/api/v1/connections/{w.shop_id}/sync").status_code == 403
        assert api.post(f"/api/v1/connections/{w.shop_id}/test").status_code == 403
        assert api.get(f"/api/v1/connections/{w.shop_id}").status_code == 200
        page = viewer.get(f"/connections/{w.shop_id}").text
        assert "Sync now" not in page and "Re-register webhooks" not in page
        assert actions_on(portal.default, "connection", w.shop_id) == []


def test_every_change_needs_the_sessions_csrf_token(portal: Portal) -> None:
    with connected(portal) as w:
        admin = portal.signed_in("admin")
        form = {"kind": "shopify", "name": "x", "base_url": w.shop_url, "credential_access_token": SHOP_TOKEN}
        for url, data in (
            ("/connections/test", form),
            ("/connections", form),
            (f"/connections/{w.shop_id}/credentials", {"credential_access_token": "shpat_x"}),
            (f"/connections/{w.shop_id}/sync", {}),
            (f"/connections/{w.shop_id}/test", {}),
            (f"/connections/{w.shop_id}/webhooks", {}),
            (f"/connections/{w.shop_id}/settings", {"poll_interval_s": "60"}),
        ):
            assert admin.post(url, data=data).status_code == 403, url
            assert admin.post(url, data={**data, "csrf_token": "forged"}).status_code == 403, url
        assert _count(portal, orders) == 0 and actions_on(portal.default, "connection", w.shop_id) == []


def test_the_connection_pages_read_in_french(portal: Portal) -> None:
    with connected(portal) as w:
        admin = portal.signed_in("admin")
        admin.post_form("/account/language", {"lang": "fr"})
        page = admin.get(f"/connections/{w.shop_id}").text
        assert "Règles de téléchargement" in page and "Synchroniser maintenant" in page
        assert "Les commandes sont prises quand leur statut de paiement est : payé." in page
