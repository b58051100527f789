"""The test message: a real e-mail to each of the tenant's recipients and a signed webhook to each of
its targets, now, with what happened at each.

It goes through the same transports as alerts (:mod:`.mail`, :mod:`.webhook`) and to the same
targets dispatch would use (:func:`.tenant_targets.tenant_targets`), so "the test arrived" means
alerts will too. It runs while the admin waits (decision 123): every target is tried once, with a
shorter timeout than dispatch's, and the answer lists each — accepted, or the error and its fix.
It is not an alert: nothing is stored in ``alerts`` or ``alert_deliveries`` and nothing is retried;
the audit trail records who sent it and what each target answered. Its webhook has ``kind`` and
``key`` ``test`` and an ``X-OrderBridge-Alert-Id`` of its own (``test.<random>``), so a receiver
that drops repeats does not drop the next test.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any

import httpx
import orjson

from orderbridge.errors import Conflict, RetryLater, SettingsError
from orderbridge.services.audit_trail import record_action
from orderbridge.services.notify.mail import SUBJECT_PREFIX, Mailer
from orderbridge.services.notify.outgoing import DeliveryFailed
from orderbridge.services.notify.tenant_targets import OBJECT, Targets, check_public, tenant_targets
from orderbridge.services.notify.webhook import post_signed
from orderbridge.services.principals import Actor

#: seconds each target gets (dispatch's timeout is the hub's HTTP timeout, 30 s by default)
TIMEOUT_S = 10.0
TEST = "test"
_WEBHOOK_HINT = (
    "Check that the receiver is running and answers a POST with a 2xx status (redirects are not followed), "
    "then send the test again."
)


@dataclass(frozen=True)
class ProbeResult:
    #: ``email:<address>`` / ``webhook:<url>``
    target: str
    kind: str
    address: str
    ok: bool
    #: what happened: who accepted it, or the error
    detail: str
    #: what to do when it failed
    hint: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "kind": self.kind,
            "address": self.address,
            "ok": self.ok,
            "detail": self.detail,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class ProbeReport:
    at: datetime
    #: ``tenant`` or ``hub``: whose targets were tried
    source: str
    results: tuple[ProbeResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def reached(self) -> int:
        return sum(r.ok for r in self.results)

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "source": self.source,
            "ok": self.ok,
            "reached": self.reached,
            "results": [r.as_dict() for r in self.results],
        }


def send_test_message(actor: Actor) -> ProbeReport:
    """Send a test message to every target of the actor's tenant and say, per target, what happened."""
    scope = actor.scope
    try:
        wanted = tenant_targets(scope)
    except SettingsError as exc:  # the hub's defaults are unusable: nothing can be sent
        raise Conflict(f"no test message can be sent: {exc.message}", hint=exc.hint) from exc
    if not wanted.names():
        raise Conflict(
            "there is no e-mail recipient and no webhook target to send a test message to",
            hint="Add a recipient or a webhook target and save them, then send the test.",
        )
    now = scope.now()
    ref = f"{TEST}.{secrets.token_hex(6)}"
    who = " ".join(actor.principal.name.split())
    subject = f"Test message for account {scope.slug}"
    body = (
        f"This is a test message from OrderBridge, sent by {who} from the notification settings of account "
        f"{scope.slug} at {now:%Y-%m-%d %H:%M} UTC.\n\n"
        "Alerts (a connection failing, orders held, an audit that recovered orders) and the digest are sent here "
        "the same way. Nothing needs doing.\n"
    )
    settings = scope.settings.model_copy(update={"http_timeout_s": min(TIMEOUT_S, scope.settings.http_timeout_s)})
    results: list[ProbeResult] = []
    with Mailer(settings) as mailer, httpx.Client(timeout=settings.http_timeout_s) as http:
        for address in wanted.recipients:
            results.append(_email(mailer, settings.smtp_sender, address, subject, body, ref, now))
        payload = _payload(scope.slug, who, subject, body, now)
        for url in wanted.webhook_urls:
            results.append(_webhook(http, url, payload, ref, wanted, settings.alert_webhook_allow_private))
    report = ProbeReport(now, wanted.source, tuple(results))
    record_action(
        actor,
        "notifications.test",
        OBJECT,
        None,
        f"Sent a test message: {report.reached} of {len(results)} target(s) accepted it.",
        detail={"results": [{"target": r.target, "ok": r.ok, "detail": r.detail} for r in results]},
    )
    return report


def _email(mailer: Mailer, sender: str, to: str, subject: str, body: str, ref: str, now: datetime) -> ProbeResult:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "orderbridge.invalid"
    msg = EmailMessage()
    msg["Subject"] = SUBJECT_PREFIX + subject
    msg["From"] = sender
    msg["To"] = to
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<{ref}@{domain}>"
    msg["X-OrderBridge-Alert"] = TEST
    msg.set_content(body, cte="quoted-printable")
    where = f"{mailer.settings.smtp_host}:{mailer.settings.smtp_port}"
    try:
        mailer.send(msg)
    except DeliveryFailed as exc:
        return ProbeResult(f"email:{to}", "email", to, False, exc.message, exc.hint)
    return ProbeResult(f"email:{to}", "email", to, True, f"accepted by the mail server {where}")


def _payload(slug: str, who: str, subject: str, body: str, now: datetime) -> bytes:
    return orjson.dumps(
        {
            "id": None,
            "key": TEST,
            "kind": TEST,
            "subject": subject,
            "body": body,
            "link": "",
            "fixes": [],
            "data": {"tenant": slug, "by": who},
            "generation": 0,
            "at": now.isoformat(),
        }
    )


def _webhook(
    http: httpx.Client, url: str, payload: bytes, ref: str, wanted: Targets, allow_private: bool
) -> ProbeResult:
    try:
        if wanted.restricted and not allow_private:
            check_public(url)
        status = post_signed(http, url, payload, ref, wanted.secret or "")
    except DeliveryFailed as exc:
        hint = (
            exc.hint if exc.hint != RetryLater("").hint else _WEBHOOK_HINT
        )  # not the retry hint: a test is not retried
        return ProbeResult(f"webhook:{url}", "webhook", url, False, exc.message, hint)
    return ProbeResult(f"webhook:{url}", "webhook", url, True, f"answered HTTP {status}")
