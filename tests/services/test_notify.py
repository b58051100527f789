"""Alerts, their dispatch by e-mail (a real local SMTP server) and signed webhook, and the digest.

Every test asserts what the receiving server actually got, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from orderbridge.domain.shipments import Shipment, ShipmentLine
from orderbridge.errors import SettingsError
from orderbridge.fixes import check_connection, update_credentials
from orderbridge.sandboxes.base import free_port, run_in_thread
from orderbridge.services import notify
from orderbridge.services.backsync import poll_shipments, push_fulfilments
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.services.present import Unpresented
from orderbridge.services.sync import sync_channel
from orderbridge.storage.tables import alerts, tenants
from tests.builders import T0, order
from tests.fakes import FakeChannel, FakeDestination, install
from tests.scoped import cid, tenant
from tests.smtp import SmtpSink, make_certificates, smtp_server

OPS, OWNER = "ops@example.com", "owner@example.com"
PUBLIC = "https://hub.example.com"
SECRET = "alert-signing-secret"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def configure(hub: Hub, **values: object) -> None:
    hub.settings = hub.settings.model_copy(update=values)


@pytest.fixture
def clock(hub: Hub) -> Clock:
    c = Clock(T0 + timedelta(days=1))
    hub.now = c
    return c


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def mail_hub(hub: Hub, smtp: SmtpSink, clock: Clock) -> Hub:
    configure(
        hub,
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_sender="OrderBridge <alerts@hub.example.com>",
        alert_recipients=f"{OPS}, {OWNER}",
        public_url=PUBLIC,
    )
    return hub


def raise_failing(hub: Hub, key: str = "connection_failing:1") -> bool:
    with hub.db.transaction() as conn:
        return notify.raise_alert(
            conn,
            tenant(hub).tenant_id,
            key=key,
            kind="connection_failing",
            subject="shop is failing: the channel refused the credentials",
            body="Connection shop is failing: the channel refused the credentials.",
            fixes=FAILING_FIXES,
            now=hub.now(),
            data={"code": "connection_auth_failed"},
        )


FAILING_FIXES = (
    update_credentials("Renew the connection's access token.", connection="shop", credential="access_token"),
    check_connection("shop"),
)


def resolve(hub: Hub, key: str = "connection_failing:1") -> bool:
    with hub.db.transaction() as conn:
        return notify.resolve_alert(conn, tenant(hub).tenant_id, key, hub.now())


def only_alert(hub: Hub) -> notify.AlertInfo:
    (alert,) = notify.list_alerts(tenant(hub))
    return alert


# --- e-mail --------------------------------------------------------------------------------------


def test_one_alert_is_one_email_per_recipient_with_subject_body_link_and_alert_header(
    mail_hub: Hub, smtp: SmtpSink
) -> None:
    assert raise_failing(mail_hub) is True
    report = notify.dispatch(tenant(mail_hub))

    assert (report.sent, report.failed, report.pending, report.dispatched) == (2, 0, 0, 1)
    assert len(smtp.inbox) == 2
    for address in (OPS, OWNER):
        (received,) = smtp.inbox.to(address)
        msg = received.message
        assert received.rcpt_tos == [address] and msg["To"] == address
        assert received.mail_from == "alerts@hub.example.com"
        assert msg["Subject"] == "[OrderBridge] shop is failing: the channel refused the credentials"
        assert msg["X-OrderBridge-Alert"] == "connection_failing:1"
        assert msg["From"] == "OrderBridge <alerts@hub.example.com>"
        assert msg["Date"] and msg["Message-ID"].endswith("@hub.example.com>")
        text = received.text.replace("\r\n", "\n")
        assert text.startswith("Connection shop is failing: the channel refused the credentials.")
        assert (
            "How to fix it:\n"
            "- Renew the connection's access token: orderbridge connections update shop --credential access_token=…\n"
            "- Test the connection (its credentials and permissions): orderbridge connections test shop\n"
        ) in text
        assert f"Where to fix it: {PUBLIC}/connections/by-name/shop\n" in text
    alert = only_alert(mail_hub)
    assert alert.dispatched_at == mail_hub.now()
    assert sorted((d.target, d.status, d.attempts) for d in alert.deliveries) == [
        (f"email:{OPS}", "sent", 1),
        (f"email:{OWNER}", "sent", 1),
    ]


def test_the_same_cause_raised_five_times_is_counted_and_sent_once(mail_hub: Hub, smtp: SmtpSink, clock: Clock) -> None:
    outcomes = []
    for _ in range(5):
        outcomes.append(raise_failing(mail_hub))
        clock.advance(minutes=1)
        notify.dispatch(tenant(mail_hub))

    assert outcomes == [True, False, False, False, False]
    assert len(smtp.inbox.to(OPS)) == 1
    alert = only_alert(mail_hub)
    assert (alert.occurrences, alert.generation, alert.state) == (5, 1, "open")
    assert alert.last_at - alert.first_at == timedelta(minutes=4)


def test_a_resolved_cause_that_comes_back_is_sent_again_as_a_new_episode(mail_hub: Hub, smtp: SmtpSink) -> None:
    raise_failing(mail_hub)
    notify.dispatch(tenant(mail_hub))
    assert resolve(mail_hub) is True
    assert resolve(mail_hub) is False  # already resolved
    notify.dispatch(tenant(mail_hub))
    assert len(smtp.inbox.to(OPS)) == 1

    assert raise_failing(mail_hub) is True
    notify.dispatch(tenant(mail_hub))

    first, second = smtp.inbox.to(OPS)
    assert first.message["X-OrderBridge-Alert"] == second.message["X-OrderBridge-Alert"] == "connection_failing:1"
    assert first.message["Message-ID"] != second.message["Message-ID"]
    alert = only_alert(mail_hub)
    assert (alert.generation, alert.state, alert.occurrences) == (2, "open", 1)


def test_dispatching_again_sends_nothing_twice_even_if_the_alert_was_not_marked_dispatched(
    mail_hub: Hub, smtp: SmtpSink
) -> None:
    raise_failing(mail_hub)
    notify.dispatch(tenant(mail_hub))
    again = notify.dispatch(tenant(mail_hub))
    assert (again.sent, again.dispatched) == (0, 0)

    # a crash after sending but before the alert was marked dispatched
    with mail_hub.db.transaction() as conn:
        conn.execute(update(alerts).values(dispatched_at=None))
    rerun = notify.dispatch(tenant(mail_hub))

    assert (rerun.sent, rerun.dispatched) == (0, 1)
    assert len(smtp.inbox) == 2


def test_an_alert_resolved_before_it_was_sent_is_still_sent_and_says_so(mail_hub: Hub, smtp: SmtpSink) -> None:
    raise_failing(mail_hub)
    resolve(mail_hub)
    notify.dispatch(tenant(mail_hub))
    (received,) = smtp.inbox.to(OPS)
    assert "Resolved since" in received.text


def test_an_smtp_outage_is_recorded_and_the_alert_is_sent_once_when_the_server_is_back(
    mail_hub: Hub, clock: Clock
) -> None:
    port = free_port()  # nothing listens here yet
    configure(mail_hub, smtp_port=port, alert_recipients=OPS)
    raise_failing(mail_hub)

    down = notify.dispatch(tenant(mail_hub))
    assert (down.sent, down.pending, down.dispatched) == (0, 1, 0)
    (delivery,) = only_alert(mail_hub).deliveries
    assert (delivery.status, delivery.attempts) == ("retrying", 1)
    assert delivery.error is not None and f"127.0.0.1:{port}" in delivery.error
    assert only_alert(mail_hub).dispatched_at is None

    with smtp_server(port) as server:
        too_soon = notify.dispatch(tenant(mail_hub))  # waits out the retry pause
        assert (too_soon.sent, too_soon.pending, len(server.inbox)) == (0, 1, 0)
        clock.advance(seconds=notify.RETRY_AFTER_S[0])
        back = notify.dispatch(tenant(mail_hub))
        clock.advance(hours=1)
        notify.dispatch(tenant(mail_hub))

        assert (back.sent, back.dispatched) == (1, 1)
        (received,) = server.inbox.to(OPS)
        assert received.message["X-OrderBridge-Alert"] == "connection_failing:1"
    (delivery,) = only_alert(mail_hub).deliveries
    assert (delivery.status, delivery.attempts) == ("sent", 2)


def test_a_delivery_is_given_up_after_five_attempts_and_the_alert_stays_listed(mail_hub: Hub, clock: Clock) -> None:
    configure(mail_hub, smtp_port=free_port(), alert_recipients=OPS)
    raise_failing(mail_hub)
    reports = []
    for _ in range(notify.MAX_ATTEMPTS):
        reports.append(notify.dispatch(tenant(mail_hub)))
        clock.advance(hours=1)

    assert [r.failed for r in reports] == [0, 0, 0, 0, 1]
    assert reports[-1].dispatched == 1 and "connection_failing:1" in reports[-1].errors[0]
    alert = only_alert(mail_hub)
    assert alert.dispatched_at is not None and alert.state == "open"
    (delivery,) = alert.deliveries
    assert (delivery.status, delivery.attempts) == ("failed", 5)
    assert notify.dispatch(tenant(mail_hub)).as_dict()["failed"] == 0  # given up once, not again


def test_smtp_login_uses_the_configured_credentials(mail_hub: Hub, clock: Clock) -> None:
    with smtp_server(login=("alerts", "s3cret")) as server:
        configure(mail_hub, smtp_port=server.port, smtp_user="alerts", smtp_password="wrong", alert_recipients=OPS)
        raise_failing(mail_hub)
        refused = notify.dispatch(tenant(mail_hub))
        assert refused.pending == 1 and len(server.inbox) == 0
        (delivery,) = only_alert(mail_hub).deliveries
        assert delivery.error is not None and "535" in delivery.error

        configure(mail_hub, smtp_password="s3cret")
        clock.advance(hours=1)
        accepted = notify.dispatch(tenant(mail_hub))
        (received,) = server.inbox.to(OPS)
        assert accepted.sent == 1 and received.authenticated


def test_recipients_without_an_smtp_host_are_refused_with_a_fix(mail_hub: Hub) -> None:
    configure(mail_hub, smtp_host=None)
    raise_failing(mail_hub)
    with pytest.raises(SettingsError, match="SMTP") as info:
        notify.dispatch(tenant(mail_hub))
    assert "ORDERBRIDGE_SMTP_HOST" in info.value.hint


# --- no targets ----------------------------------------------------------------------------------


def test_without_recipients_or_webhooks_alerts_stay_listed_and_the_report_says_so(hub: Hub, clock: Clock) -> None:
    raise_failing(hub)
    report = notify.dispatch(tenant(hub))

    assert (report.sent, report.skipped_no_targets) == (0, 1)
    assert "no alert recipients or webhooks are configured" in report.note
    alert = only_alert(hub)
    assert alert.dispatched_at is not None and alert.deliveries == [] and alert.state == "open"
    assert [a.key for a in notify.list_alerts(tenant(hub), open_only=True)] == ["connection_failing:1"]
    resolve(hub)
    assert notify.list_alerts(tenant(hub), open_only=True) == []


# --- webhooks ------------------------------------------------------------------------------------


@dataclass
class Receiver:
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)  # answers to give first; then 204

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            self.calls.append((dict(request.headers), await request.body()))
            return Response(status_code=self.statuses.pop(0) if self.statuses else 204)

        return Starlette(routes=[Route("/alerts", hook, methods=["POST"])])


def verified(secret: str, headers: dict[str, str], body: bytes) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["x-orderbridge-signature"], expected)


def test_a_webhook_target_receives_the_alert_as_signed_json(hub: Hub, clock: Clock) -> None:
    receiver = Receiver()
    with run_in_thread(receiver.app()) as server:
        configure(hub, alert_webhook_urls=f"{server.base_url}/alerts", alert_webhook_secret=SECRET, public_url=PUBLIC)
        raise_failing(hub)
        report = notify.dispatch(tenant(hub))

    assert (report.sent, report.dispatched) == (1, 1)
    ((headers, body),) = receiver.calls
    assert verified(SECRET, headers, body)
    assert not verified("another-secret", headers, body)
    assert not verified(SECRET, headers, body.replace(b"failing", b"healthy"))
    alert = only_alert(hub)
    assert headers["x-orderbridge-alert-id"] == f"{alert.id}.1"
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert payload == {
        "id": alert.id,
        "key": "connection_failing:1",
        "kind": "connection_failing",
        "subject": "shop is failing: the channel refused the credentials",
        "body": alert.body,
        "link": f"{PUBLIC}/connections/by-name/shop",
        "fixes": [
            {
                "action": "update_credentials",
                "params": {"connection": "shop", "credential": "access_token"},
                "text": "Renew the connection's access token.",
                "link": f"{PUBLIC}/connections/by-name/shop",
                "command": "orderbridge connections update shop --credential access_token=…",
            },
            {
                "action": "test_connection",
                "params": {"connection": "shop"},
                "text": "Test the connection (its credentials and permissions).",
                "link": f"{PUBLIC}/connections/by-name/shop",
                "command": "orderbridge connections test shop",
            },
        ],
        "data": {"code": "connection_auth_failed"},
        "generation": 1,
        "at": clock.now.isoformat(),
    }
    assert [(d.target, d.status) for d in alert.deliveries] == [(f"webhook:{server.base_url}/alerts", "sent")]


def test_a_webhook_that_answers_an_error_is_retried_with_the_same_alert_id(hub: Hub, clock: Clock) -> None:
    receiver = Receiver(statuses=[500])
    with run_in_thread(receiver.app()) as server:
        configure(hub, alert_webhook_urls=f"{server.base_url}/alerts", alert_webhook_secret=SECRET)
        raise_failing(hub)
        first = notify.dispatch(tenant(hub))
        (delivery,) = only_alert(hub).deliveries
        assert first.pending == 1 and delivery.error is not None and "HTTP 500" in delivery.error
        clock.advance(minutes=5)
        second = notify.dispatch(tenant(hub))
        notify.dispatch(tenant(hub))

    assert (second.sent, second.dispatched) == (1, 1)
    assert len(receiver.calls) == 2
    assert receiver.calls[0][0]["x-orderbridge-alert-id"] == receiver.calls[1][0]["x-orderbridge-alert-id"]


def test_webhooks_without_a_signing_secret_are_refused_and_nothing_is_marked_sent(hub: Hub, clock: Clock) -> None:
    receiver = Receiver()
    with run_in_thread(receiver.app()) as server:
        configure(hub, alert_webhook_urls=f"{server.base_url}/alerts", alert_webhook_secret=None)
        raise_failing(hub)
        with pytest.raises(SettingsError) as info:
            notify.dispatch(tenant(hub))

    assert "ORDERBRIDGE_ALERT_WEBHOOK_SECRET" in info.value.hint
    assert receiver.calls == []
    alert = only_alert(hub)
    assert alert.dispatched_at is None and alert.deliveries == []


def test_email_and_webhook_targets_are_each_sent_once(mail_hub: Hub, smtp: SmtpSink, clock: Clock) -> None:
    receiver = Receiver(statuses=[503])
    with run_in_thread(receiver.app()) as server:
        configure(mail_hub, alert_webhook_urls=f"{server.base_url}/alerts", alert_webhook_secret=SECRET)
        raise_failing(mail_hub)
        first = notify.dispatch(tenant(mail_hub))  # mail goes, the webhook fails
        clock.advance(hours=1)
        second = notify.dispatch(tenant(mail_hub))  # only the webhook is retried

    assert (first.sent, first.pending, first.dispatched) == (2, 1, 0)
    assert (second.sent, second.dispatched) == (1, 1)
    assert len(smtp.inbox) == 2 and len(receiver.calls) == 2


# --- links ---------------------------------------------------------------------------------------


def test_links_are_rendered_when_sent_so_a_changed_public_url_reaches_a_queued_alert(
    mail_hub: Hub, smtp: SmtpSink
) -> None:
    raise_failing(mail_hub)
    configure(mail_hub, public_url="https://moved.example.com/")
    notify.dispatch(tenant(mail_hub))
    (received,) = smtp.inbox.to(OPS)
    assert "Where to fix it: https://moved.example.com/connections/by-name/shop" in received.text
    assert PUBLIC not in received.text


def test_a_hub_without_a_presentation_sends_the_fixes_as_sentences(mail_hub: Hub, smtp: SmtpSink) -> None:
    mail_hub.present = Unpresented()
    raise_failing(mail_hub)
    notify.dispatch(tenant(mail_hub))
    (received,) = smtp.inbox.to(OPS)
    text = received.text.replace("\r\n", "\n")
    assert "- Renew the connection's access token.\n" in text
    assert "orderbridge " not in text and "http" not in text and "Where to fix it" not in text


# --- the digest ----------------------------------------------------------------------------------


def hold_some_orders(hub: Hub) -> None:
    channel = FakeChannel()
    channel.put(order(1))
    for n in (2, 3, 4):
        channel.put(order(n, skus=("ABC-1",)))
    channel.put(order(5, shipping="Drone"))
    install(hub, channel, FakeDestination())
    set_mapping(tenant(hub), "sku", "SKU-1", "W-1", cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    sync_channel(tenant(hub), cid(hub, "shop"))


def tenant_created_at(hub: Hub) -> datetime:
    with hub.db.read() as conn:
        created: datetime = conn.execute(select(tenants.c.created_at)).scalar_one()
    return created


@pytest.fixture
def digest_day(mail_hub: Hub, clock: Clock) -> datetime:
    """09:00 UTC on the first day that starts after the tenant was created (so a daily digest is due)."""
    midnight = notify.digest_period_start(tenant_created_at(mail_hub), 86400) + timedelta(days=1)
    clock.now = midnight + timedelta(hours=9)
    return midnight


def digest_key(start: datetime) -> str:
    return f"digest:{start.isoformat(timespec='seconds')}"


def test_the_digest_groups_held_orders_by_cause_with_counts_and_the_fix(
    mail_hub: Hub, smtp: SmtpSink, digest_day: datetime
) -> None:
    hold_some_orders(mail_hub)
    assert notify.send_digest_if_due(tenant(mail_hub)) is True
    notify.dispatch(tenant(mail_hub))

    (received,) = smtp.inbox.to(OPS)
    assert received.message["Subject"] == "[OrderBridge] Digest: 4 held order(s), 2 cause(s) to fix"
    assert received.message["X-OrderBridge-Alert"] == digest_key(digest_day)
    text = received.text.replace("\r\n", "\n")
    sku = text.index(
        "3 orders blocked by SKU ABC-1 — map SKU 'ABC-1' to a SKU of destination 'wh': "
        "orderbridge mappings set sku 'ABC-1' <destination SKU> --destination wh"
    )
    ship = text.index(
        "1 order blocked by shipping method Drone — map shipping method 'Drone' to a carrier and service of "
        "destination 'wh': orderbridge mappings set shipping 'Drone' <carrier>:<service> --destination wh"
    )
    assert sku < ship  # the biggest cause first
    assert f"e.g. #1002, #1003, #1004 · {PUBLIC}/holds?code=sku_unmapped&value=ABC-1" in text
    assert f"{PUBLIC}/holds?code=shipping_method_unmapped&value=Drone" in text
    assert "Ledger: 5 orders" in text and "4 held" in text
    assert "- See the held orders, grouped by cause: orderbridge holds" in text
    assert f"Where to fix it: {PUBLIC}/holds\n" in text
    (digest,) = notify.list_alerts(tenant(mail_hub))
    assert "orderbridge" not in digest.body and "http" not in digest.body  # stored: plain words
    assert "3 orders blocked by SKU ABC-1 — map SKU 'ABC-1' to a SKU of destination 'wh'." in digest.body


def test_the_digest_is_sent_once_per_period(mail_hub: Hub, smtp: SmtpSink, clock: Clock, digest_day: datetime) -> None:
    configure(mail_hub, alert_recipients=OPS)
    assert notify.send_digest_if_due(tenant(mail_hub)) is True
    notify.dispatch(tenant(mail_hub))
    clock.advance(hours=11)
    assert notify.send_digest_if_due(tenant(mail_hub)) is False
    notify.dispatch(tenant(mail_hub))
    assert len(smtp.inbox.to(OPS)) == 1

    clock.advance(hours=13)  # the next day
    assert notify.send_digest_if_due(tenant(mail_hub)) is True
    assert notify.send_digest_if_due(tenant(mail_hub)) is False
    notify.dispatch(tenant(mail_hub))

    assert len(smtp.inbox.to(OPS)) == 2
    digests = notify.list_alerts(tenant(mail_hub))
    assert [(d.key, d.state) for d in digests] == [
        (digest_key(digest_day + timedelta(days=1)), "open"),
        (digest_key(digest_day), "resolved"),
    ]


def test_the_first_digest_waits_for_the_first_period_after_the_tenant_was_created(mail_hub: Hub, clock: Clock) -> None:
    created = tenant_created_at(mail_hub)
    clock.now = created
    if notify.digest_period_start(created, 86400) < created:  # not created exactly at midnight
        assert notify.send_digest_if_due(tenant(mail_hub)) is False
    clock.now = notify.digest_period_start(created, 86400) + timedelta(days=1)
    assert notify.send_digest_if_due(tenant(mail_hub)) is True


def test_a_digest_with_nothing_held_is_still_sent(mail_hub: Hub, smtp: SmtpSink, digest_day: datetime) -> None:
    configure(mail_hub, alert_recipients=OPS, digest_every_s=3600)
    assert notify.send_digest_if_due(tenant(mail_hub)) is True
    notify.dispatch(tenant(mail_hub))

    (received,) = smtp.inbox.to(OPS)
    assert received.message["Subject"] == "[OrderBridge] Digest: nothing held"
    assert received.message["X-OrderBridge-Alert"] == digest_key(digest_day + timedelta(hours=9))
    assert "Nothing is held" in received.text and "Ledger: 0 orders" in received.text


def hold_a_push(hub: Hub, carrier: str | None = None) -> None:
    """Post the one ready order (#1001) and ship it without a carrier (or, again, with ``carrier``)."""
    scope, shop, wh = tenant(hub), cid(hub, "shop"), cid(hub, "wh")
    post_ready(scope, wh)
    destination = hub.connectors[wh]
    (key,) = destination.documents  # type: ignore[attr-defined]
    line = ShipmentLine("L1", "SKU-1", 1)
    destination.shipments[:] = [Shipment("S-1", key, "1Z999", carrier, None, T0, False, (line,))]  # type: ignore[attr-defined]
    assert poll_shipments(scope, wh).error is None
    assert push_fulfilments(scope, shop).error is None


def test_the_digest_lists_held_fulfilment_pushes_by_cause_with_held_orders(
    mail_hub: Hub, smtp: SmtpSink, digest_day: datetime
) -> None:
    hold_some_orders(mail_hub)
    hold_a_push(mail_hub)
    assert notify.send_digest_if_due(tenant(mail_hub)) is True
    notify.dispatch(tenant(mail_hub))

    (received,) = smtp.inbox.to(OPS)
    subject = "[OrderBridge] Digest: 4 held order(s), 1 held fulfilment push(es), 3 cause(s) to fix"
    assert received.message["Subject"] == subject
    text = received.text
    sku = text.index("3 orders blocked by SKU ABC-1")
    ship = text.index("1 order blocked by shipping method Drone")
    push = text.index(
        "1 fulfilment push of 1 order blocked by shipments without a carrier (channel shop) — set the carrier "
        "on the shipment in the 3PL; the next shipment poll pushes it."
    )
    assert sku < ship < push  # held orders, then held pushes, each biggest cause first
    assert "e.g. #1001 (shipment S-1)" in text
    (cause,) = [c for c in only_digest(mail_hub).data["causes"] if c["kind"] == "push"]  # type: ignore[index]
    assert (cause["code"], cause["value"], cause["pushes"]) == ("carrier_missing", "shop", 1)


def only_digest(hub: Hub) -> notify.AlertInfo:
    (digest,) = [a for a in notify.list_alerts(tenant(hub)) if a.kind == "digest"]
    return digest


# --- new hold reasons ------------------------------------------------------------------------------


def test_a_new_hold_reason_alerts_once_per_cause_and_clears_when_fixed(
    mail_hub: Hub, smtp: SmtpSink, clock: Clock
) -> None:
    hold_some_orders(mail_hub)  # 3 orders blocked by SKU ABC-1, 1 by shipping method Drone
    assert notify.sync_hold_alerts(tenant(mail_hub)) == (2, 0)
    assert notify.sync_hold_alerts(tenant(mail_hub)) == (0, 0)  # still held: not raised again
    notify.dispatch(tenant(mail_hub))
    to_ops = [m for m in smtp.messages if m["To"] == OPS]
    subjects = sorted(m["Subject"] for m in to_ops)
    assert subjects == ["[OrderBridge] Orders held: SKU ABC-1", "[OrderBridge] Orders held: shipping method Drone"]
    sku_mail = next(m for m in to_ops if "ABC-1" in m["Subject"])
    text = sku_mail.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert "3 orders held" in text
    assert "- Map SKU 'ABC-1' to a SKU of destination 'wh': orderbridge mappings set sku 'ABC-1'" in text
    assert f"Where to fix it: {PUBLIC}/holds?code=sku_unmapped&value=ABC-1\n" in text
    set_mapping(tenant(mail_hub), "sku", "ABC-1", "W-ABC", cid(mail_hub, "wh"))  # releases the three orders
    assert notify.sync_hold_alerts(tenant(mail_hub)) == (0, 1)
    clock.advance(minutes=1)
    notify.dispatch(tenant(mail_hub))
    assert len([m for m in smtp.messages if m["To"] == OPS]) == 2  # resolving sends nothing
    states = {a.key: a.state for a in notify.list_alerts(tenant(mail_hub))}
    assert states == {"hold:sku_unmapped:ABC-1": "resolved", "hold:shipping_method_unmapped:Drone": "open"}


def test_a_held_fulfilment_push_alerts_once_per_cause_and_clears_when_it_is_pushed(
    mail_hub: Hub, smtp: SmtpSink, clock: Clock
) -> None:
    hold_some_orders(mail_hub)
    hold_a_push(mail_hub)
    assert notify.sync_hold_alerts(tenant(mail_hub)) == (3, 0)
    notify.dispatch(tenant(mail_hub))
    to_ops = {m["Subject"]: m for m in smtp.messages if m["To"] == OPS}
    mail = to_ops["[OrderBridge] Fulfilment pushes held: shipments without a carrier (channel shop)"]
    text = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]
    assert "1 fulfilment push of 1 order held — shipment S-1 has no carrier" in text
    assert "Examples: #1001 (shipment S-1)" in text
    assert "How to fix it:\n- Set the carrier on the shipment in the 3PL; the next shipment poll pushes it.\n" in text
    assert f"Where to fix it: {PUBLIC}/holds?code=carrier_missing&value=shop\n" in text

    clock.advance(minutes=1)
    hold_a_push(mail_hub, carrier="ups")  # the 3PL sets the carrier: checked again, pushed
    assert notify.sync_hold_alerts(tenant(mail_hub)) == (0, 1)
    states = {a.key: a.state for a in notify.list_alerts(tenant(mail_hub)) if a.kind == notify.HOLD_ALERT}
    assert states["hold:push:carrier_missing:shop"] == "resolved"
    assert states["hold:sku_unmapped:ABC-1"] == "open"


# --- e-mail over TLS -----------------------------------------------------------------------------


@pytest.mark.parametrize("tls", ["ssl", "starttls"])
def test_alerts_go_over_verified_tls_to_a_relay_signed_by_a_private_ca(
    hub: Hub, clock: Clock, tmp_path: Path, tls: str
) -> None:
    certificates = make_certificates(tmp_path)
    with smtp_server(tls=tls, certificates=certificates, login=("hub", "s3cret")) as relay:
        configure(
            hub,
            smtp_host=relay.host,
            smtp_port=relay.port,
            smtp_tls=tls,
            smtp_user="hub",
            smtp_password="s3cret",
            alert_recipients=OPS,
            public_url=PUBLIC,
        )
        raise_failing(hub)
        untrusted = notify.dispatch(tenant(hub))  # the system's trust store does not know the private CA
        assert (untrusted.sent, untrusted.pending) == (0, 1) and len(relay.inbox) == 0
        (delivery,) = only_alert(hub).deliveries
        assert delivery.status != "sent" and delivery.error is not None
        assert "CERTIFICATE_VERIFY_FAILED" in delivery.error and "ORDERBRIDGE_SMTP_CA_FILE" in delivery.error
        configure(hub, smtp_ca_file=certificates.ca_cert)
        clock.advance(minutes=5)
        trusted = notify.dispatch(tenant(hub))
        assert (trusted.sent, trusted.pending, trusted.dispatched) == (1, 0, 1)
        (received,) = relay.inbox.to(OPS)
        assert received.authenticated  # the login went over the encrypted session
        assert received.message["X-OrderBridge-Alert"] == "connection_failing:1"


def test_starttls_asked_of_a_server_without_it_fails_with_the_fix(hub: Hub, clock: Clock, smtp: SmtpSink) -> None:
    configure(hub, smtp_host=smtp.host, smtp_port=smtp.port, smtp_tls="starttls", alert_recipients=OPS)
    raise_failing(hub)
    report = notify.dispatch(tenant(hub))
    assert (report.sent, report.pending) == (0, 1) and len(smtp.inbox) == 0
    (delivery,) = only_alert(hub).deliveries
    assert delivery.error is not None and "STARTTLS" in delivery.error and "ORDERBRIDGE_SMTP_TLS=ssl" in delivery.error


def test_a_ca_file_that_does_not_exist_is_refused_when_settings_load(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from orderbridge.settings import Settings

    with pytest.raises(ValidationError, match="smtp_ca_file"):
        Settings(data_dir=tmp_path, smtp_ca_file=tmp_path / "missing.pem")


def test_a_login_the_server_does_not_offer_fails_with_the_fix(hub: Hub, clock: Clock, smtp: SmtpSink) -> None:
    configure(hub, smtp_host=smtp.host, smtp_port=smtp.port, smtp_user="hub", smtp_password="x", alert_recipients=OPS)
    raise_failing(hub)
    assert notify.dispatch(tenant(hub)).sent == 0 and len(smtp.inbox) == 0
    (delivery,) = only_alert(hub).deliveries
    assert delivery.error is not None and "AUTH" in delivery.error
    assert "ORDERBRIDGE_SMTP_TLS=starttls or ssl, or unset ORDERBRIDGE_SMTP_USER" in delivery.error
