"""Notification targets per tenant: validated when saved, used by dispatch and the digest, signed with
the tenant's own secret, never crossing tenants; the hub's settings are the default; the test
message reports per target. Every receiving server is real (a local SMTP server, an HTTP receiver).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orderbridge.domain.roles import Role
from orderbridge.errors import Conflict, SettingsError
from orderbridge.sandboxes.base import free_port, run_in_thread
from orderbridge.services import notify
from orderbridge.services.audit_trail import actions_on
from orderbridge.services.hub import Hub
from orderbridge.services.principals import Actor, Principal
from orderbridge.services.scope import Scope
from orderbridge.services.tenants import add_tenant
from orderbridge.storage.repos import tenant_settings as settings_repo
from orderbridge.storage.tables import tenants
from tests.builders import T0
from tests.scoped import tenant
from tests.smtp import SmtpSink, smtp_server

HUB_OPS = "hub-ops@operator.example"


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def mail_hub(hub: Hub, smtp: SmtpSink) -> Hub:
    hub.now = lambda: T0 + timedelta(days=1)  # type: ignore[method-assign]
    hub.settings = hub.settings.model_copy(
        update={
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "smtp_sender": "OrderBridge <alerts@hub.example.com>",
            "alert_recipients": HUB_OPS,
            "public_url": "https://hub.example.com",
        }
    )
    return hub


def admin(scope: Scope, name: str = "Ada Admin") -> Actor:
    return Actor(Principal("user", 1, scope.tenant_id, Role.ADMIN, name, "en"), scope, "203.0.113.9")


def raise_in(scope: Scope, key: str = "connection_failing:1", subject: str = "shop is failing") -> None:
    with scope.transaction() as conn:
        notify.raise_alert(
            conn,
            scope.tenant_id,
            key=key,
            kind="connection_failing",
            subject=subject,
            body=subject + ".",
            now=scope.now(),
        )


@dataclass
class Receiver:
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.calls.append((dict(request.headers), await request.body()))
            return Response(status_code=self.statuses.pop(0) if self.statuses else 204)

        return Starlette(routes=[Route("/alerts", hook, methods=["POST"])])


def signed_with(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-orderbridge-signature"], expected)


# --- validation ----------------------------------------------------------------------------------


def test_recipients_are_read_from_lines_or_commas_deduplicated_and_international_domains_made_ascii() -> None:
    got = notify.parse_recipients("ops@example.com, Owner@Example.COM\nops@EXAMPLE.com;  anna@bücher.example\n")
    assert got == ("ops@example.com", "Owner@example.com", "anna@xn--bcher-kva.example")
    assert notify.parse_recipients(["a@b.example", " "]) == ("a@b.example",)
    assert notify.parse_recipients("") == ()


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("ops", "it needs a name, an @ and a domain"),
        ("ops@localhost", "'localhost' is not a domain name"),
        ("Ops <ops@example.com>", "without a name"),
        ("o..ps@example.com", "before the @"),
        ("ops@exa_mple.com", "is not a domain name"),
        ("ops@exa\x07mple.com", "control character"),
        ("ops@example.com\r\nBcc: x@evil.example", "'Bcc: x@evil.example' is not"),  # a header it cannot add
        ("ops @example.com", "contains a space"),
        ("a" * 250 + "@example.com", "longer than 254"),
    ],
)
def test_a_recipient_that_is_not_an_address_is_refused_naming_it_and_its_field(value: str, said: str) -> None:
    with pytest.raises(notify.InvalidTarget) as info:
        notify.parse_recipients(value)
    assert info.value.field == "recipients" and info.value.code == "notification_target_invalid"
    assert said in info.value.message
    assert repr(value.splitlines()[-1][:30])[1:-1] in info.value.message  # the value is named


def test_too_many_recipients_are_refused() -> None:
    with pytest.raises(notify.InvalidTarget, match="more than the 20"):
        notify.parse_recipients([f"p{i}@example.com" for i in range(21)])


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("ftp://hooks.example.com/x", "is not an HTTP or HTTPS URL"),
        ("hooks.example.com/alerts", "is not an HTTP or HTTPS URL"),
        ("https:///alerts", "has no host name"),
        ("https://hooks.example.com:99999/", "port"),
        ("https://user:pw@hooks.example.com/", "user name or password"),
        ("http://127.0.0.1:8080/alerts", "loopback, private or link-local"),
        ("http://10.1.2.3/alerts", "loopback, private or link-local"),
        ("http://169.254.169.254/latest/meta-data", "loopback, private or link-local"),
        ("http://[::ffff:192.168.0.1]/", "loopback, private or link-local"),
        ("http://localhost:5432/", "loopback, private or link-local"),
        ("https://hooks.example.com/" + "a" * 500, "longer than"),
    ],
)
def test_a_webhook_url_that_cannot_be_used_is_refused_naming_it(value: str, said: str) -> None:
    with pytest.raises(notify.InvalidTarget) as info:
        notify.parse_webhook_urls(value)
    assert info.value.field == "webhook_urls" and said in info.value.message
    assert value[:20] in info.value.message


def test_internal_webhook_receivers_are_accepted_when_the_hub_allows_them() -> None:
    urls = "http://127.0.0.1:8080/alerts\nhttps://hooks.example.com/ob?token=abc"
    assert notify.parse_webhook_urls(urls, allow_private=True) == (
        "http://127.0.0.1:8080/alerts",
        "https://hooks.example.com/ob?token=abc",
    )


# --- saving, and where alerts go ------------------------------------------------------------------


def test_a_tenant_without_settings_uses_the_hubs_defaults_and_sees_only_how_many(mail_hub: Hub) -> None:
    shown = notify.notification_settings(tenant(mail_hub))
    assert (shown.source, shown.recipients, shown.hub_recipients, shown.mail_server) == ("hub", (), 1, True)
    assert notify.tenant_targets(tenant(mail_hub)).recipients == (HUB_OPS,)


def test_each_tenants_alerts_reach_only_its_own_recipients(mail_hub: Hub, smtp: SmtpSink) -> None:
    acme, globex = tenant(mail_hub), add_tenant(mail_hub, "globex", "Globex")
    initech = add_tenant(mail_hub, "initech", "Initech")  # sets nothing: the hub's default
    notify.save_notification_settings(admin(acme), recipients="ops@acme.example", webhook_urls="")
    notify.save_notification_settings(admin(globex), recipients="ops@globex.example", webhook_urls="")
    raise_in(acme, subject="acme shop is failing")
    raise_in(globex, subject="globex shop is failing")
    raise_in(initech, subject="initech shop is failing")
    for scope in (acme, globex, initech):
        assert notify.dispatch(scope).sent == 1

    def subjects(address: str) -> list[str]:
        return [str(r.message["Subject"]) for r in smtp.inbox.to(address)]

    assert subjects("ops@acme.example") == ["[OrderBridge] acme shop is failing"]
    assert subjects("ops@globex.example") == ["[OrderBridge] globex shop is failing"]
    assert subjects(HUB_OPS) == ["[OrderBridge] initech shop is failing"]
    assert len(smtp.inbox) == 3


def test_a_tenant_that_saved_no_targets_sends_nowhere_not_to_the_hubs_defaults(mail_hub: Hub, smtp: SmtpSink) -> None:
    scope = tenant(mail_hub)
    notify.save_notification_settings(admin(scope), recipients="", webhook_urls="")
    raise_in(scope)
    report = notify.dispatch(scope)
    assert (report.sent, report.skipped_no_targets, len(smtp.inbox)) == (0, 1, 0)
    assert "notification settings" in report.note


def test_the_digest_goes_to_the_tenants_recipients(mail_hub: Hub, smtp: SmtpSink) -> None:
    scope = tenant(mail_hub)
    notify.save_notification_settings(admin(scope), recipients="owner@acme.example", webhook_urls="")
    with mail_hub.db.read() as conn:
        created = conn.execute(select(tenants.c.created_at).where(tenants.c.id == scope.tenant_id)).scalar_one()
    due = notify.digest_period_start(created, mail_hub.settings.digest_every_s) + timedelta(days=1, hours=9)
    mail_hub.now = lambda: due  # type: ignore[method-assign]
    assert notify.send_digest_if_due(scope)
    notify.dispatch(scope)
    (got,) = smtp.inbox.received
    assert got.rcpt_tos == ["owner@acme.example"] and "Digest" in str(got.message["Subject"])


def test_a_tenants_webhooks_are_signed_with_its_own_secret_shown_once(mail_hub: Hub) -> None:
    mail_hub.settings = mail_hub.settings.model_copy(
        update={"alert_webhook_allow_private": True, "alert_webhook_secret": "the-hubs-secret"}
    )
    acme, globex = tenant(mail_hub), add_tenant(mail_hub, "globex", "Globex")
    receiver = Receiver()
    with run_in_thread(receiver.app()) as server:
        url = f"{server.base_url}/alerts"
        saved_a = notify.save_notification_settings(admin(acme), recipients="", webhook_urls=url)
        saved_b = notify.save_notification_settings(admin(globex), recipients="", webhook_urls=url)
        again = notify.save_notification_settings(admin(acme), recipients="", webhook_urls=[url, url])
        raise_in(acme)
        raise_in(globex)
        notify.dispatch(acme)
        notify.dispatch(globex)

    assert saved_a.new_secret and saved_b.new_secret and saved_a.new_secret != saved_b.new_secret
    assert again.new_secret is None and again.settings.webhook_urls == (url,)  # kept, and not shown again
    assert saved_a.settings.signing_secret_set and saved_a.new_secret not in json.dumps(saved_a.settings.as_dict())
    (a_headers, a_body), (b_headers, b_body) = receiver.calls
    assert signed_with(saved_a.new_secret, a_headers, a_body) and not signed_with("the-hubs-secret", a_headers, a_body)
    assert signed_with(saved_b.new_secret, b_headers, b_body) and not signed_with(saved_a.new_secret, b_headers, b_body)
    with mail_hub.db.read() as conn:  # stored encrypted
        stored = settings_repo.get(conn, acme.tenant_id, "notifications")
    assert saved_a.new_secret not in json.dumps(stored.value)


def test_rotating_the_secret_makes_a_new_one_and_the_old_one_stops_verifying(mail_hub: Hub) -> None:
    mail_hub.settings = mail_hub.settings.model_copy(update={"alert_webhook_allow_private": True})
    scope = tenant(mail_hub)
    receiver = Receiver()
    with run_in_thread(receiver.app()) as server:
        url = f"{server.base_url}/alerts"
        first = notify.save_notification_settings(admin(scope), recipients="", webhook_urls=url)
        second = notify.save_notification_settings(admin(scope), recipients="", webhook_urls=url, rotate_secret=True)
        raise_in(scope)
        notify.dispatch(scope)
    ((headers, body),) = receiver.calls
    assert first.new_secret and second.new_secret and first.new_secret != second.new_secret
    assert signed_with(second.new_secret, headers, body) and not signed_with(first.new_secret, headers, body)


def test_a_tenant_webhook_that_resolves_to_a_private_address_is_not_called(mail_hub: Hub) -> None:
    scope = tenant(mail_hub)
    receiver = Receiver()
    with run_in_thread(receiver.app()) as server:
        url = f"http://localhost:{server.port}/alerts"
        # saved while the hub allowed internal receivers; it no longer does
        mail_hub.settings = mail_hub.settings.model_copy(update={"alert_webhook_allow_private": True})
        notify.save_notification_settings(admin(scope), recipients="", webhook_urls=url)
        mail_hub.settings = mail_hub.settings.model_copy(update={"alert_webhook_allow_private": False})
        raise_in(scope)
        report = notify.dispatch(scope)
    assert receiver.calls == [] and report.pending == 1
    (alert,) = notify.list_alerts(scope)
    (delivery,) = alert.deliveries
    assert delivery.status == "retrying" and "loopback, private or link-local" in (delivery.error or "")


def test_saving_recipients_on_a_hub_without_a_mail_server_is_refused(hub: Hub) -> None:
    with pytest.raises(notify.InvalidTarget) as info:
        notify.save_notification_settings(admin(tenant(hub)), recipients="ops@acme.example", webhook_urls="")
    assert info.value.field == "recipients" and "no mail server" in info.value.message


def test_a_bad_value_saves_nothing(mail_hub: Hub) -> None:
    scope = tenant(mail_hub)
    notify.save_notification_settings(admin(scope), recipients="ops@acme.example", webhook_urls="")
    with pytest.raises(notify.InvalidTarget):
        notify.save_notification_settings(admin(scope), recipients="new@acme.example, nope", webhook_urls="")
    assert notify.notification_settings(scope).recipients == ("ops@acme.example",)


def test_every_change_is_in_the_audit_trail_with_what_it_was_before(mail_hub: Hub) -> None:
    scope = tenant(mail_hub)
    notify.save_notification_settings(admin(scope), recipients="ops@acme.example", webhook_urls="")
    notify.save_notification_settings(admin(scope, "Bo"), recipients="new@acme.example", webhook_urls="")
    shown = notify.use_hub_defaults(admin(scope, "Cy"))
    assert shown.source == "hub" and notify.tenant_targets(scope).recipients == (HUB_OPS,)
    trail = actions_on(scope, "notification_settings", None)
    assert [(a.who, a.action) for a in trail] == [
        ("Cy", "notifications.use_defaults"),
        ("Bo", "notifications.update"),
        ("Ada Admin", "notifications.update"),
    ]
    assert trail[1].detail is not None and trail[1].detail["before"]["recipients"] == ["ops@acme.example"]
    assert trail[1].address == "203.0.113.9" and "new@acme.example" in trail[1].summary


def test_recipients_stored_for_a_hub_that_lost_its_mail_server_stop_dispatch_with_the_fix(mail_hub: Hub) -> None:
    scope = tenant(mail_hub)
    notify.save_notification_settings(admin(scope), recipients="ops@acme.example", webhook_urls="")
    mail_hub.settings = mail_hub.settings.model_copy(update={"smtp_host": None})
    with pytest.raises(SettingsError, match="no SMTP server"):
        notify.dispatch(scope)


# --- the test message ----------------------------------------------------------------------------


def test_the_test_message_reaches_each_target_and_says_what_happened_at_each(mail_hub: Hub, smtp: SmtpSink) -> None:
    mail_hub.settings = mail_hub.settings.model_copy(update={"alert_webhook_allow_private": True})
    scope = tenant(mail_hub)
    good, bad = Receiver(), Receiver(statuses=[500])
    with run_in_thread(good.app()) as up, run_in_thread(bad.app()) as down:
        saved = notify.save_notification_settings(
            admin(scope),
            recipients="ops@acme.example, owner@acme.example",
            webhook_urls=[f"{up.base_url}/alerts", f"{down.base_url}/alerts", f"http://127.0.0.1:{free_port()}/x"],
        )
        report = notify.send_test_message(admin(scope))

    assert [(r.kind, r.ok) for r in report.results] == [
        ("email", True),
        ("email", True),
        ("webhook", True),
        ("webhook", False),
        ("webhook", False),
    ]
    assert report.reached == 3 and not report.ok and report.source == "tenant"
    assert "accepted by the mail server" in report.results[0].detail
    assert report.results[2].detail == "answered HTTP 204"
    assert "HTTP 500" in report.results[3].detail and "2xx" in report.results[3].hint
    assert "ConnectError" in report.results[4].detail
    assert sorted(r.rcpt_tos[0] for r in smtp.inbox.received) == ["ops@acme.example", "owner@acme.example"]
    mail = smtp.inbox.to("ops@acme.example")[0]
    assert "Test message for account default" in str(mail.message["Subject"]) and "Ada Admin" in mail.text
    ((headers, body),) = good.calls
    assert saved.new_secret and signed_with(saved.new_secret, headers, body)
    assert json.loads(body)["kind"] == "test" and headers["x-orderbridge-alert-id"].startswith("test.")
    assert notify.list_alerts(scope) == []  # a test is not an alert
    (action,) = actions_on(scope, "notification_settings", None)[:1]
    assert action.action == "notifications.test" and "3 of 5" in action.summary


def test_two_test_messages_carry_different_ids_so_receivers_do_not_drop_the_second(mail_hub: Hub) -> None:
    mail_hub.settings = mail_hub.settings.model_copy(update={"alert_webhook_allow_private": True})
    scope = tenant(mail_hub)
    receiver = Receiver()
    with run_in_thread(receiver.app()) as server:
        notify.save_notification_settings(admin(scope), recipients="", webhook_urls=f"{server.base_url}/alerts")
        notify.send_test_message(admin(scope))
        notify.send_test_message(admin(scope))
    ids = {h["x-orderbridge-alert-id"] for h, _ in receiver.calls}
    assert len(ids) == 2


def test_a_test_message_with_nowhere_to_go_is_refused(hub: Hub) -> None:
    with pytest.raises(Conflict, match="no e-mail recipient and no webhook target"):
        notify.send_test_message(admin(tenant(hub)))


def test_an_alert_email_is_plain_text_only_so_html_in_it_is_never_markup(mail_hub: Hub, smtp: SmtpSink) -> None:
    scope = tenant(mail_hub)
    raise_in(scope, subject='<script>alert(1)</script><img src=x onerror="x()"> is failing')
    notify.dispatch(scope)
    (got,) = smtp.inbox.received
    kinds = [part.get_content_type() for part in got.message.walk()]
    assert kinds == ["text/plain"]
    assert "<script>alert(1)</script>" in got.text  # as text, for a plain-text reader
