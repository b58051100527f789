"""The Alerts screen, the notification settings and their API over a real port: open and past
alerts, acknowledging one, per-tenant recipients proven with a real SMTP server, the test message,
roles, CSRF, escaping, and another tenant's alerts and settings out of reach."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from orderbridge.services import notify
from orderbridge.services.scope import Scope
from tests.smtp import SmtpSink, smtp_server
from tests.web.portal.conftest import Portal

HOSTILE = '<script>alert("x")</script><img src=x onerror="steal()">'


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def mail(portal: Portal, smtp: SmtpSink) -> Portal:
    portal.hub.settings = portal.hub.settings.model_copy(
        update={"smtp_host": smtp.host, "smtp_port": smtp.port, "smtp_sender": "OrderBridge <alerts@hub.example>"}
    )
    return portal


def raise_(scope: Scope, key: str, subject: str, body: str = "Something is wrong.") -> int:
    with scope.transaction() as conn:
        notify.raise_alert(
            conn, scope.tenant_id, key=key, kind="connection_failing", subject=subject, body=body, now=scope.now()
        )
    return next(a.id for a in notify.list_alerts(scope) if a.key == key)


def resolve(scope: Scope, key: str) -> None:
    with scope.transaction() as conn:
        notify.resolve_alert(conn, scope.tenant_id, key, scope.now())


# --- alerts --------------------------------------------------------------------------------------


def test_open_and_past_alerts_are_listed_and_alert_text_renders_escaped(portal: Portal) -> None:
    open_id = raise_(portal.default, "cause:open", f"shop {HOSTILE} is failing", body=f"line one\n{HOSTILE}")
    past_id = raise_(portal.default, "cause:past", "wh was failing")
    resolve(portal.default, "cause:past")
    client = portal.signed_in("viewer")
    page = client.get("/alerts")
    assert page.status_code == 200
    open_part, past_part = page.text.split("Past alerts", 1)
    assert f'href="/alerts/{open_id}"' in open_part and f'href="/alerts/{past_id}"' in past_part
    one = client.get(f"/alerts/{open_id}")
    for text in (page.text, one.text):
        assert "<script>alert" not in text and "<img src=x" not in text
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text
    assert "line one<br>" in one.text  # the body's lines, each escaped
    assert "Acknowledge" not in one.text  # a viewer cannot


def test_an_operator_acknowledges_an_alert_and_everyone_sees_who(portal: Portal) -> None:
    alert_id = raise_(portal.default, "cause:a", "shop is failing")
    operator = portal.signed_in("operator")
    assert "Acknowledge" in operator.get(f"/alerts/{alert_id}").text
    answer = operator.post_form(f"/alerts/{alert_id}/ack", {"generation": "1"})
    assert answer.status_code == 303 and answer.headers["location"] == f"/alerts/{alert_id}"
    seen = portal.signed_in("viewer").get(f"/alerts/{alert_id}").text
    assert "Operator default" in seen and "Acknowledged episode 1" in seen
    resolve(portal.default, "cause:a")
    assert operator.post_form(f"/alerts/{alert_id}/ack").status_code == 409


def test_acknowledging_needs_an_operator_and_the_forms_token(portal: Portal) -> None:
    alert_id = raise_(portal.default, "cause:a", "shop is failing")
    assert portal.signed_in("viewer").post_form(f"/alerts/{alert_id}/ack").status_code == 403
    assert portal.signed_in("operator").post(f"/alerts/{alert_id}/ack").status_code == 403
    assert notify.get_alert(portal.default, alert_id).alert.acknowledged_at is None


def test_another_tenants_alert_is_not_found_in_the_portal_or_the_api(portal: Portal) -> None:
    alert_id = raise_(portal.default, "cause:a", "default's shop is failing")
    stranger = portal.signed_in("admin", tenant="other")
    assert stranger.get(f"/alerts/{alert_id}").status_code == 404
    assert "default&#39;s shop" not in stranger.get("/alerts").text
    assert stranger.post_form(f"/alerts/{alert_id}/ack").status_code == 404
    api = portal.api("admin", tenant="other")
    assert api.get(f"/api/v1/alerts/{alert_id}").status_code == 404
    assert api.post(f"/api/v1/alerts/{alert_id}/ack").json()["error"]["code"] == "not_found"
    assert api.get("/api/v1/alerts").json()["items"] == []
    assert notify.get_alert(portal.default, alert_id).alert.acknowledged_at is None


def test_the_api_pages_alerts_by_state_and_acknowledges_one(portal: Portal) -> None:
    ids = [raise_(portal.default, f"cause:{i}", f"cause {i}") for i in range(3)]
    resolve(portal.default, "cause:1")
    viewer = portal.api("viewer")
    first = viewer.get("/api/v1/alerts", params={"state": "open", "limit": 1}).json()
    assert [a["id"] for a in first["items"]] == [ids[2]] and first["next_cursor"] == str(ids[2])
    rest = viewer.get("/api/v1/alerts", params={"state": "open", "cursor": first["next_cursor"]}).json()
    assert [a["id"] for a in rest["items"]] == [ids[0]] and rest["next_cursor"] is None
    assert [a["id"] for a in viewer.get("/api/v1/alerts", params={"state": "resolved"}).json()["items"]] == [ids[1]]
    assert viewer.get("/api/v1/alerts", params={"state": "closed"}).status_code == 422
    one = viewer.get(f"/api/v1/alerts/{ids[0]}").json()
    assert one["key"] == "cause:0" and one["episodes"] == [] and one["acknowledged_by"] is None
    assert viewer.post(f"/api/v1/alerts/{ids[0]}/ack").status_code == 403
    acked = portal.api("operator").post(f"/api/v1/alerts/{ids[0]}/ack", json={"generation": 1})
    assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "test operator"
    stale = portal.api("operator").post(f"/api/v1/alerts/{ids[1]}/ack", json={"generation": 1})
    assert stale.status_code == 409 and stale.json()["error"]["code"] == "conflict"


# --- notification settings -----------------------------------------------------------------------


def test_an_admin_sets_the_accounts_recipients_and_only_its_alerts_reach_them(mail: Portal, smtp: SmtpSink) -> None:
    mine = mail.signed_in("admin")
    theirs = mail.signed_in("admin", tenant="other")
    assert mine.post_form("/settings/notifications", {"recipients": "ops@default.example"}).status_code == 303
    assert theirs.post_form("/settings/notifications", {"recipients": "ops@other.example"}).status_code == 303
    page = mine.get("/settings/notifications").text
    assert "ops@default.example" in page and "ops@other.example" not in page
    raise_(mail.default, "cause:a", "default's shop is failing")
    raise_(mail.other, "cause:a", "other's shop is failing")
    notify.dispatch(mail.default)
    notify.dispatch(mail.other)
    assert [str(r.message["Subject"]) for r in smtp.inbox.to("ops@default.example")] == [
        "[OrderBridge] default's shop is failing"
    ]
    assert [str(r.message["Subject"]) for r in smtp.inbox.to("ops@other.example")] == [
        "[OrderBridge] other's shop is failing"
    ]
    sent = mine.post_form("/settings/notifications/test")
    assert sent.status_code == 200 and "1 of 1 targets accepted it" in sent.text
    assert len(smtp.inbox.to("ops@default.example")) == 2 and len(smtp.inbox.to("ops@other.example")) == 1
    assert "Sent a test message" in mine.get("/settings/notifications").text


def test_a_refused_value_is_named_at_its_field_and_nothing_is_saved(mail: Portal) -> None:
    admin = mail.signed_in("admin")
    answer = admin.post_form(
        "/settings/notifications", {"recipients": "ops@default.example\nnot-an-address", "webhook_urls": ""}
    )
    assert answer.status_code == 422
    assert "&#39;not-an-address&#39; is not an e-mail address" in answer.text
    assert 'aria-invalid="true"' in answer.text and "not-an-address</textarea>" in answer.text
    assert notify.notification_settings(mail.default).source == "hub"
    hook = admin.post_form("/settings/notifications", {"webhook_urls": "http://169.254.169.254/latest"})
    assert hook.status_code == 422 and "loopback, private or link-local" in hook.text


def test_the_signing_secret_is_shown_once_on_the_answer_that_made_it(mail: Portal) -> None:
    admin = mail.signed_in("admin")
    made = admin.post_form("/settings/notifications", {"webhook_urls": "https://hooks.example.com/orderbridge"})
    assert made.status_code == 200 and "shown only this once" in made.text
    secret = made.text.split('<code class="secret">', 1)[1].split("</code>", 1)[0]
    assert len(secret) == 64
    again = admin.get("/settings/notifications").text
    assert secret not in again and "https://hooks.example.com/orderbridge" in again
    assert secret not in mail.api("admin").get("/api/v1/settings/notifications").text


def test_viewers_and_operators_read_the_settings_but_cannot_change_or_test_them(mail: Portal) -> None:
    mail.signed_in("admin").post_form("/settings/notifications", {"recipients": "ops@default.example"})
    for role in ("viewer", "operator"):
        client = mail.signed_in(role)
        page = client.get("/settings/notifications")
        assert page.status_code == 200 and "ops@default.example" in page.text
        assert 'action="/settings/notifications"' not in page.text
        assert client.post_form("/settings/notifications", {"recipients": "evil@example.com"}).status_code == 403
        assert client.post_form("/settings/notifications/test").status_code == 403
        api = mail.api(role)
        assert api.put("/api/v1/settings/notifications", json={"recipients": ["evil@example.com"]}).status_code == 403
        assert api.post("/api/v1/settings/notifications/test").status_code == 403
    assert (
        mail.signed_in("admin").post("/settings/notifications", data={"recipients": "evil@example.com"}).status_code
        == 403
    )
    assert notify.notification_settings(mail.default).recipients == ("ops@default.example",)


def test_the_api_reads_replaces_tests_and_resets_the_settings(mail: Portal, smtp: SmtpSink) -> None:
    admin = mail.api("admin")
    before = admin.get("/api/v1/settings/notifications").json()
    assert before["source"] == "hub" and before["recipients"] == []
    bad = admin.put("/api/v1/settings/notifications", json={"recipients": ["ops@default.example", "nope"]})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "recipients" and "'nope'" in bad.json()["error"]["message"]
    saved = admin.put("/api/v1/settings/notifications", json={"recipients": ["ops@default.example"]})
    assert saved.status_code == 200 and saved.json()["source"] == "tenant" and saved.json()["signing_secret"] is None
    report = admin.post("/api/v1/settings/notifications/test").json()
    assert report["ok"] and report["results"][0]["target"] == "email:ops@default.example"
    assert [r.rcpt_tos for r in smtp.inbox.received] == [["ops@default.example"]]
    reset = admin.delete("/api/v1/settings/notifications")
    assert reset.status_code == 200 and reset.json()["source"] == "hub"
    nowhere = admin.post("/api/v1/settings/notifications/test")
    assert nowhere.status_code == 409  # the hub has no default recipients here


def test_the_screens_speak_french_to_a_french_user(portal: Portal) -> None:
    alert_id = raise_(portal.default, "cause:a", "shop is failing")
    client = portal.signed_in("admin")
    client.post_form("/account/language", {"lang": "fr"})
    assert "Alertes ouvertes" in client.get("/alerts").text
    assert "Prendre en charge" in client.get(f"/alerts/{alert_id}").text
    assert "Lancer un audit maintenant" in client.get("/audits").text
    assert "Envoyer un message de test" in client.get("/settings/notifications").text
