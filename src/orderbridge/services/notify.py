"""Notifications: deduplicated alerts, sent once per episode by e-mail and signed webhook, and a digest.

An **alert** is a cause with a stable ``key`` (``connection_failing:12``, ``reconcile:40``,
``digest:2026-11-01T00:00:00+00:00``). The ``alerts`` table is an outbox with a unique
``(tenant_id, key)``:

- :func:`raise_alert` runs inside the caller's transaction, so an alert exists exactly when the
  fact that caused it was committed. While the alert is open a repeat only counts
  (``occurrences``, ``last_at``); a new key, or a key whose alert was resolved, opens an
  **episode**: ``generation`` + 1 and ``dispatched_at`` NULL. Each step is one conditional
  statement (bump the open row / reopen the resolved row / insert, ``ON CONFLICT DO NOTHING``),
  so two workers raising the same cause at once still produce one episode.
- :func:`dispatch` sends every episode not yet dispatched to every target and writes one
  ``alert_deliveries`` row per (alert, generation, target), unique in the database. A target with
  a ``sent`` row is never sent again, so a rerun after a crash does not duplicate. Each delivery
  is committed on its own, with no transaction held open across network I/O (SQLite would block
  every other writer). The one window left is a kill between the server's acceptance and that
  commit; the episode is then sent again with the *same* identifiers (``Message-ID``,
  ``X-OrderBridge-Alert-Id``), so a receiver can tell it is a repeat. A failed delivery is recorded with its
  error as ``retrying`` and tried again by a later dispatch after a growing pause
  (:data:`RETRY_AFTER_S`: the worker dispatches every few seconds, and five attempts in 25 s would
  give up during a mail-server restart). After :data:`MAX_ATTEMPTS` it is ``failed`` and
  logged as an error. The alert is ``dispatched_at`` once every target is ``sent`` or ``failed``.
  One dispatch runs at a time per tenant (a lease), because two would both send.
- An episode resolved before it was sent is still sent, saying so: a failure that healed
  itself within seconds should still be on record for the person who owns the connection.

**E-mail** uses the standard library: ``smtplib`` speaks SMTP, STARTTLS, implicit TLS and AUTH,
and ``email.message.EmailMessage`` builds a correct RFC 5322 plain-text message. An alert needs
nothing more, so a third-party mail library would add a dependency and no capability. One message
per recipient, so one refused address does not block the others and each has its own delivery row.

**Webhooks** are ``POST``s of JSON ``{id, key, kind, subject, body, link, data, generation, at}``
signed with ``X-OrderBridge-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` using
``ALERT_WEBHOOK_SECRET``. Unsigned alerts are refused (:class:`SettingsError`), not sent.

**The digest** (:func:`send_digest_if_due`) is an ordinary alert of kind ``digest`` whose key names
its period. Periods are aligned to multiples of ``DIGEST_EVERY_S`` since the Unix epoch (daily:
UTC midnight), so every process computes the same key and the unique constraint makes "one digest
per period" a database fact, not a look-up. The first digest comes in the first period that starts
after the tenant was created.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import smtplib
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
import structlog
from sqlalchemy import Connection, select, update
from sqlalchemy.dialects import postgresql, sqlite

from orderbridge.errors import InvalidInput, RemoteUnavailable, SettingsError
from orderbridge.services.hub import Hub
from orderbridge.services.queries import HoldGroup, accounting, holds
from orderbridge.settings import Settings
from orderbridge.storage.leases import held
from orderbridge.storage.tables import alert_deliveries, alerts, connections, tenants

log = structlog.get_logger("orderbridge.notify")

OPEN, RESOLVED = "open", "resolved"
SENT, RETRYING, FAILED = "sent", "retrying", "failed"
DIGEST = "digest"
SUBJECT_PREFIX = "[OrderBridge] "
#: deliveries are given up (``failed``) after this many attempts
MAX_ATTEMPTS = 5
#: pause before attempt n+1 after n failed attempts (n = 1..4): about 40 minutes in all
RETRY_AFTER_S = (30.0, 120.0, 600.0, 1800.0)
#: alerts handled per dispatch (the rest wait for the next one, a few seconds later)
BATCH = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_KEY_MAX, _SUBJECT_MAX, _LINK_MAX, _TARGET_MAX = 300, 300, 500, 500


class DeliveryFailed(RemoteUnavailable):
    """One alert could not be delivered to one target; recorded on its delivery row and retried."""

    code = "alert_delivery_failed"


# --- links ---------------------------------------------------------------------------------------


def alert_link(settings: Settings, path: str) -> str:
    """``public_url`` + ``path``: where the person reading the alert makes the fix."""
    return settings.public_url.rstrip("/") + "/" + path.lstrip("/")


def holds_link(settings: Settings, code: str, value: str) -> str:
    """The holds screen filtered to one root cause."""
    return alert_link(settings, "/holds?" + urlencode({"code": code, "value": value}))


# --- raising and resolving (inside the caller's transaction) -------------------------------------


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def raise_alert(
    conn: Connection,
    tenant_id: int,
    *,
    key: str,
    kind: str,
    subject: str,
    body: str,
    link: str,
    now: datetime,
    connection_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> bool:
    """Record a cause inside the caller's transaction. One alert per key while open: a repeat only bumps
    occurrences/last_at (returns False); a new key, or a key whose alert was resolved, (re)opens it with
    generation+1 and dispatched_at NULL so it is sent once (returns True)."""
    if not key or len(key) > _KEY_MAX:
        raise InvalidInput(f"alert key {key[:40]!r}… must be 1–{_KEY_MAX} characters")
    where = (alerts.c.tenant_id == tenant_id, alerts.c.key == key)
    episode = {
        "kind": kind,
        "connection_id": connection_id,
        "subject": _clip(" ".join(subject.split()), _SUBJECT_MAX),  # one line: it becomes a mail header
        "body": body,
        "link": _clip(link, _LINK_MAX),
        "data": data,
        "state": OPEN,
        "occurrences": 1,
        "first_at": now,
        "last_at": now,
        "resolved_at": None,
        "dispatched_at": None,
    }
    # Three conditional statements, each atomic; a concurrent insert of the same key makes the third
    # do nothing, and the next round's first statement then counts this occurrence on that row.
    for _ in range(3):
        bumped = conn.execute(
            update(alerts)
            .where(*where, alerts.c.state == OPEN)
            .values(occurrences=alerts.c.occurrences + 1, last_at=now)
        ).rowcount
        if bumped:
            log.debug("alert.repeated", tenant_id=tenant_id, key=key)
            return False
        reopened = conn.execute(
            update(alerts)
            .where(*where, alerts.c.state == RESOLVED)
            .values(generation=alerts.c.generation + 1, **episode)
        ).rowcount
        if reopened:
            log.info("alert.reopened", tenant_id=tenant_id, key=key, kind=kind)
            return True
        inserted = conn.execute(
            _insert(conn)(alerts)
            .values(tenant_id=tenant_id, key=key, generation=1, **episode)
            .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
        ).rowcount
        if inserted:
            log.info("alert.raised", tenant_id=tenant_id, key=key, kind=kind)
            return True
    raise RuntimeError(f"alert {key!r} changed state three times while being raised")  # pragma: no cover


def resolve_alert(conn: Connection, tenant_id: int, key: str, now: datetime) -> bool:
    """Close the open alert for ``key`` (its cause is fixed), so the next occurrence is a new episode.
    Returns False when no alert for ``key`` was open."""
    done = conn.execute(
        update(alerts)
        .where(alerts.c.tenant_id == tenant_id, alerts.c.key == key, alerts.c.state == OPEN)
        .values(state=RESOLVED, resolved_at=now)
    ).rowcount
    if done:
        log.info("alert.resolved", tenant_id=tenant_id, key=key)
    return bool(done)


# --- dispatch ------------------------------------------------------------------------------------


@dataclass
class DispatchReport:
    #: deliveries sent by this dispatch
    sent: int = 0
    #: deliveries given up by this dispatch (their last attempt failed)
    failed: int = 0
    #: deliveries that failed this time or are waiting for their retry pause; a later dispatch retries them
    pending: int = 0
    #: alerts marked dispatched with nothing sent, because no recipient and no webhook is configured
    skipped_no_targets: int = 0
    #: alerts whose every target is now sent or failed
    dispatched: int = 0
    errors: list[str] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Delivery:
    status: str
    attempts: int
    at: datetime


@dataclass(frozen=True)
class _Outgoing:
    """One episode to send, as read before sending (a reopen meanwhile makes a new generation)."""

    id: int
    key: str
    kind: str
    subject: str
    body: str
    link: str
    data: dict[str, Any] | None
    generation: int
    state: str
    first_at: datetime
    resolved_at: datetime | None
    deliveries: dict[str, _Delivery]

    @property
    def ref(self) -> str:
        """Stable per episode: the same on every retry, so receivers can recognise a repeat."""
        return f"{self.id}.{self.generation}"


def targets(settings: Settings) -> list[str]:
    """Every delivery target as ``email:<address>`` / ``webhook:<url>``; refuses unsafe or unusable settings."""
    emails, hooks = settings.recipients, settings.webhook_targets
    if emails and not settings.smtp_host:
        raise SettingsError(
            "ALERT_RECIPIENTS is set but there is no SMTP server to send through",
            hint="Set ORDERBRIDGE_SMTP_HOST (and SMTP_PORT, SMTP_TLS, SMTP_USER/SMTP_PASSWORD as your server needs), "
            "or clear ORDERBRIDGE_ALERT_RECIPIENTS.",
        )
    for address in emails:
        if "@" not in address:
            raise SettingsError(
                f"alert recipient {address!r} is not an e-mail address",
                hint="ORDERBRIDGE_ALERT_RECIPIENTS is a comma-separated list of addresses.",
            )
    if hooks and not settings.alert_webhook_secret:
        raise SettingsError(
            "alert webhooks are configured without a signing secret, so receivers could not tell them from forgeries",
            hint="Set ORDERBRIDGE_ALERT_WEBHOOK_SECRET to a long random string (e.g. `openssl rand -hex 32`) and "
            "verify X-OrderBridge-Signature with it in the receiver, or clear ORDERBRIDGE_ALERT_WEBHOOK_URLS.",
        )
    for url in hooks:
        if not url.startswith(("http://", "https://")) or len(url) > _TARGET_MAX - len("webhook:"):
            raise SettingsError(
                f"alert webhook URL {url[:80]!r} is not an http(s) URL of at most {_TARGET_MAX - 8} characters",
                hint="ORDERBRIDGE_ALERT_WEBHOOK_URLS is a comma-separated list of http:// or https:// URLs.",
            )
    return [f"email:{a}" for a in emails] + [f"webhook:{u}" for u in hooks]


def dispatch(hub: Hub) -> DispatchReport:
    """Send every alert whose current generation is not dispatched, to every e-mail recipient and every webhook
    target; record one alert_deliveries row per (alert, generation, target) — never send a (alert, generation,
    target) that already has a 'sent' row (so a crash/rerun does not duplicate); failures are recorded with the
    error and retried on the next dispatch (attempt count), up to 5 attempts, then marked failed and logged; an
    alert is dispatched_at once every target is sent or failed. With no recipients and no webhook targets
    configured, alerts stay listed (dispatched_at set, nothing sent) and `dispatch` says so in its report."""
    wanted = targets(hub.settings)  # SettingsError before anything is touched
    report = DispatchReport()
    with held(hub.db, f"notify:{hub.tenant_id}", hub.settings.lease_ttl_s, hub.now) as lease:
        pending = _pending(hub)
        if not pending:
            return report
        if not wanted:
            _mark_listed_only(hub, pending, report)
            return report
        with _Mailer(hub.settings) as mailer, httpx.Client(timeout=hub.settings.http_timeout_s) as http:
            for alert in pending:
                lease.renew()
                final = [_deliver(hub, alert, target, mailer, http, report) for target in wanted]
                if all(final):
                    report.dispatched += _mark_dispatched(hub, alert)
    return report


def _pending(hub: Hub) -> list[_Outgoing]:
    with hub.db.read() as conn:
        rows = conn.execute(
            select(alerts)
            .where(alerts.c.tenant_id == hub.tenant_id, alerts.c.dispatched_at.is_(None))
            .order_by(alerts.c.id)
            .limit(BATCH)
        ).all()
        done: dict[int, dict[str, _Delivery]] = {}
        if rows:
            generation = {r.id: r.generation for r in rows}
            for d in conn.execute(select(alert_deliveries).where(alert_deliveries.c.alert_id.in_(list(generation)))):
                if d.generation == generation[d.alert_id]:
                    done.setdefault(d.alert_id, {})[d.target] = _Delivery(d.status, d.attempts, d.at)
    return [
        _Outgoing(
            r.id,
            r.key,
            r.kind,
            r.subject,
            r.body,
            r.link,
            r.data,
            r.generation,
            r.state,
            r.first_at,
            r.resolved_at,
            done.get(r.id, {}),
        )
        for r in rows
    ]


def _mark_listed_only(hub: Hub, pending: Sequence[_Outgoing], report: DispatchReport) -> None:
    now = hub.now()
    with hub.db.transaction() as conn:
        for alert in pending:
            report.skipped_no_targets += _mark_dispatched(hub, alert, conn, now)
    report.note = (
        f"no alert recipients or webhooks are configured: {report.skipped_no_targets} alert(s) are recorded and "
        "listed but were not sent; set ORDERBRIDGE_ALERT_RECIPIENTS or ORDERBRIDGE_ALERT_WEBHOOK_URLS"
    )
    log.warning("notify.no_targets", tenant_id=hub.tenant_id, alerts=report.skipped_no_targets)


def _mark_dispatched(hub: Hub, alert: _Outgoing, conn: Connection | None = None, now: datetime | None = None) -> int:
    """Mark this generation dispatched — unless the cause recurred meanwhile (a new generation to send)."""
    now = now or hub.now()
    if conn is None:
        with hub.db.transaction() as c:
            return _mark_dispatched(hub, alert, c, now)
    return int(
        conn.execute(
            update(alerts)
            .where(alerts.c.id == alert.id, alerts.c.generation == alert.generation, alerts.c.dispatched_at.is_(None))
            .values(dispatched_at=now)
        ).rowcount
    )


def _retry_due(delivery: _Delivery, now: datetime) -> bool:
    pause = RETRY_AFTER_S[min(delivery.attempts, len(RETRY_AFTER_S)) - 1]
    return now >= delivery.at + timedelta(seconds=pause)


def _deliver(
    hub: Hub, alert: _Outgoing, target: str, mailer: _Mailer, http: httpx.Client, report: DispatchReport
) -> bool:
    """Send one episode to one target unless already done; record the outcome. True when the target is final."""
    before = alert.deliveries.get(target)
    if before is not None and before.status in (SENT, FAILED):
        return True
    if before is not None and not _retry_due(before, hub.now()):
        report.pending += 1
        return False
    attempts = (before.attempts if before else 0) + 1
    bound = log.bind(tenant_id=hub.tenant_id, key=alert.key, alert_id=alert.id, target=target, attempt=attempts)
    error: str | None = None
    try:
        if target.startswith("email:"):
            mailer.send(_email(hub.settings, alert, target.removeprefix("email:"), hub.now()))
        else:
            _post_webhook(hub.settings, http, alert, target.removeprefix("webhook:"))
    except DeliveryFailed as exc:
        error = str(exc)
    status = SENT if error is None else FAILED if attempts >= MAX_ATTEMPTS else RETRYING
    _record(hub, alert, target, status, attempts, error)
    if status == SENT:
        report.sent += 1
        bound.info("alert.sent")
    elif status == RETRYING:
        report.pending += 1
        bound.warning("alert.delivery_failed", error=error, retry_in_s=RETRY_AFTER_S[attempts - 1])
    else:
        report.failed += 1
        report.errors.append(f"{alert.key} → {target}: {error}")
        bound.error("alert.delivery_given_up", error=error, attempts=attempts)
    return status != RETRYING


def _record(hub: Hub, alert: _Outgoing, target: str, status: str, attempts: int, error: str | None) -> None:
    values = {"status": status, "attempts": attempts, "error": error, "at": hub.now()}
    with hub.db.transaction() as conn:
        conn.execute(
            _insert(conn)(alert_deliveries)
            .values(tenant_id=hub.tenant_id, alert_id=alert.id, generation=alert.generation, target=target, **values)
            .on_conflict_do_update(index_elements=["alert_id", "generation", "target"], set_=values)
        )


# --- e-mail --------------------------------------------------------------------------------------


def _email_text(alert: _Outgoing) -> str:
    text = alert.body.rstrip() + f"\n\nWhere to fix it: {alert.link}\n"
    if alert.state == RESOLVED and alert.kind != DIGEST and alert.resolved_at is not None:
        text += (
            f"\nResolved since, at {alert.resolved_at:%Y-%m-%d %H:%M} UTC: the cause went away before this alert "
            "was sent. It is sent anyway so the episode is on record.\n"
        )
    return text + (
        f"\n-- \nOrderBridge alert {alert.key} (episode {alert.generation}). "
        "Repeats of the same cause are counted, not sent again.\n"
    )


def _email(settings: Settings, alert: _Outgoing, to: str, now: datetime) -> EmailMessage:
    domain = parseaddr(settings.smtp_sender)[1].rpartition("@")[2] or "orderbridge.invalid"
    msg = EmailMessage()
    msg["Subject"] = SUBJECT_PREFIX + alert.subject
    msg["From"] = settings.smtp_sender
    msg["To"] = to
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<alert.{alert.ref}@{domain}>"  # the same on every retry: mail clients fold repeats
    msg["X-OrderBridge-Alert"] = alert.key
    msg.set_content(_email_text(alert), cte="quoted-printable")  # 7-bit safe through any relay
    return msg


class _Mailer:
    """One SMTP session per dispatch, opened on first use. Library errors become :class:`DeliveryFailed`.

    When the server cannot be reached, the rest of this dispatch's e-mails fail with the same error
    at once instead of each waiting for its own connect timeout."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        self._down: DeliveryFailed | None = None

    def __enter__(self) -> _Mailer:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def send(self, msg: EmailMessage) -> None:
        smtp = self._session()
        try:
            refused = smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:  # the session is still good for other recipients
            raise DeliveryFailed(f"SMTP server refused {msg['To']}: {_smtp_reason(exc.recipients)}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            self.close()
            raise DeliveryFailed(f"SMTP send failed: {type(exc).__name__}: {exc}") from exc
        if refused:
            raise DeliveryFailed(f"SMTP server refused {msg['To']}: {_smtp_reason(refused)}")

    def _session(self) -> smtplib.SMTP:
        if self._down is not None:
            raise self._down
        if self._smtp is None:
            s = self.settings
            where = f"{s.smtp_host}:{s.smtp_port}"
            try:
                self._smtp = self._connect()
            except (smtplib.SMTPException, OSError) as exc:
                self._down = DeliveryFailed(
                    f"cannot use SMTP server {where} (tls={s.smtp_tls}): {type(exc).__name__}: {exc}",
                    hint=_smtp_hint(exc),
                )
                raise self._down from exc
        return self._smtp

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        host, timeout = s.smtp_host or "", s.http_timeout_s
        smtp: smtplib.SMTP
        if s.smtp_tls == "ssl":
            smtp = smtplib.SMTP_SSL(host, s.smtp_port, timeout=timeout, context=self._tls())
        else:
            smtp = smtplib.SMTP(host, s.smtp_port, timeout=timeout)
        try:
            smtp.ehlo()
            if s.smtp_tls == "starttls":
                smtp.starttls(context=self._tls())
                smtp.ehlo()
            if s.smtp_user:
                smtp.login(s.smtp_user, s.smtp_password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def _tls(self) -> ssl.SSLContext:
        """Verifying context: the system's trust store, or only ``ORDERBRIDGE_SMTP_CA_FILE``'s CAs."""
        ca_file = self.settings.smtp_ca_file
        return ssl.create_default_context(cafile=str(ca_file) if ca_file is not None else None)

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError) as exc:  # the messages are already accepted or recorded
            log.debug("smtp.quit_failed", error=str(exc))
            smtp.close()


def _smtp_hint(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            "The SMTP server's certificate is not trusted (or is not for this host name): point "
            "ORDERBRIDGE_SMTP_CA_FILE at the PEM file of the CA that signs it, or fix the server's "
            "certificate; delivery is retried."
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError) and "STARTTLS" in str(exc):
        return (
            "The SMTP server offers no STARTTLS: use ORDERBRIDGE_SMTP_TLS=ssl (port 465) or none; delivery is retried."
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError) and "AUTH" in str(exc):
        return (
            "The SMTP server offers no login on this connection (many offer it only after STARTTLS): set "
            "ORDERBRIDGE_SMTP_TLS=starttls or ssl, or unset ORDERBRIDGE_SMTP_USER; delivery is retried."
        )
    return "Check ORDERBRIDGE_SMTP_HOST/PORT/TLS/USER/PASSWORD; delivery is retried."


def _smtp_reason(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{addr}: {code} {msg.decode(errors='replace')}" for addr, (code, msg) in refused.items())


# --- webhooks ------------------------------------------------------------------------------------


def webhook_payload(alert: _Outgoing) -> bytes:
    return orjson.dumps(
        {
            "id": alert.id,
            "key": alert.key,
            "kind": alert.kind,
            "subject": alert.subject,
            "body": alert.body,
            "link": alert.link,
            "data": alert.data,
            "generation": alert.generation,
            "at": alert.first_at.isoformat(),
        }
    )


def sign(secret: str, body: bytes) -> str:
    """The ``X-OrderBridge-Signature`` value for ``body``; receivers compare it with ``hmac.compare_digest``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _post_webhook(settings: Settings, http: httpx.Client, alert: _Outgoing, url: str) -> None:
    body = webhook_payload(alert)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "OrderBridge-Alerts",
        "X-OrderBridge-Signature": sign(settings.alert_webhook_secret or "", body),
        "X-OrderBridge-Alert-Id": alert.ref,
    }
    try:
        response = http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"webhook POST failed: {type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        raise DeliveryFailed(f"webhook answered HTTP {response.status_code}: {response.text[:200]}")


# --- the digest ----------------------------------------------------------------------------------


def digest_period_start(now: datetime, every_s: float) -> datetime:
    """Start of the digest period containing ``now``: periods are multiples of ``every_s`` since the epoch."""
    elapsed = (now - _EPOCH).total_seconds()
    return _EPOCH + timedelta(seconds=math.floor(elapsed / every_s) * every_s)


_CAUSES = {
    "sku_unmapped": "SKU {value}",
    "sku_missing": "a line without a SKU",
    "shipping_method_unmapped": "shipping method {value}",
    "shipping_method_missing": "no shipping method",
    "required_field_missing": "the empty required field {value}",
    "destination_rejected": "rejections from {value}",
    "invalid_order": "unreadable order data",
    "tracking_number_missing": "a missing tracking number",
    "carrier_missing": "a missing carrier",
    "channel_rejected": "rejections from channel {value}",
}


def _cause_line(settings: Settings, group: HoldGroup) -> str:
    cause = _CAUSES.get(group.code, group.code.replace("_", " ") + (" {value}" if group.value else ""))
    fix = group.fix[:1].lower() + group.fix[1:]
    noun = "order" if group.orders == 1 else "orders"
    examples = ", ".join(group.examples)
    more = ", …" if group.orders > len(group.examples) else ""
    return (
        f"{group.orders} {noun} blocked by {cause.format(value=group.value)} — {fix}\n"
        f"    e.g. {examples}{more} · {holds_link(settings, group.code, group.value)}"
    )


def send_digest_if_due(hub: Hub) -> bool:
    """When digest_every_s has elapsed since the last digest (alerts of kind 'digest'), raise a digest alert
    (key 'digest:<ISO period start>') whose body groups held orders by root cause with counts and the fix,
    e.g. '37 orders blocked by SKU ABC-1 — map it: orderbridge mappings set sku ABC-1 <target>' and a link; then
    the normal dispatch sends it. Nothing held → a short 'nothing held' digest is still sent (proof of life).

    "Elapsed" is counted in aligned periods (see the module docstring): one digest per period, the first in
    the first period that starts after the tenant was created (so a fresh install, or a test, does not get a
    digest the moment it starts). Returns True when a digest was raised."""
    now = hub.now()
    start = digest_period_start(now, hub.settings.digest_every_s)
    key = f"digest:{start.isoformat(timespec='seconds')}"
    with hub.db.read() as conn:
        created = conn.execute(select(tenants.c.created_at).where(tenants.c.id == hub.tenant_id)).scalar_one()
        exists = conn.execute(
            select(alerts.c.id).where(alerts.c.tenant_id == hub.tenant_id, alerts.c.key == key)
        ).first()
    if start < created or exists is not None:
        return False
    groups = holds(hub)
    totals = accounting(hub)
    held_orders = int(totals["held"])
    ledger = (
        f"Ledger: {totals['ledger_orders']} orders — {totals['posted']} posted, {totals['ready']} ready, "
        f"{held_orders} held, {totals['skipped']} skipped (by download rules), {totals['cancelled']} cancelled."
    )
    if groups:
        subject = f"Digest: {held_orders} held order(s), {len(groups)} cause(s) to fix"
        body = (
            f"Held orders by root cause, {now:%Y-%m-%d %H:%M} UTC. Fixing a cause releases every order it "
            "holds; they are then posted by the next run.\n\n"
            + "\n\n".join(_cause_line(hub.settings, g) for g in groups)
            + f"\n\n{ledger}\nSee them all: orderbridge holds"
        )
    else:
        subject = "Digest: nothing held"
        body = (
            f"Nothing is held, {now:%Y-%m-%d %H:%M} UTC: every order received is posted, on its way, or "
            f"skipped by a download rule.\n\n{ledger}\n\nThis digest is sent every period even when all is "
            "well, so its absence is itself a warning."
        )
    data = {
        "period_start": start.isoformat(),
        "held": held_orders,
        "causes": [{"code": g.code, "value": g.value, "orders": g.orders, "fix": g.fix} for g in groups],
    }
    with hub.db.transaction() as conn:
        raised = raise_alert(
            conn,
            hub.tenant_id,
            key=key,
            kind=DIGEST,
            subject=subject,
            body=body,
            link=alert_link(hub.settings, "/holds"),
            now=now,
            data=data,
        )
        if raised:  # only the newest digest stays open: it is the current summary
            conn.execute(
                update(alerts)
                .where(
                    alerts.c.tenant_id == hub.tenant_id,
                    alerts.c.kind == DIGEST,
                    alerts.c.key != key,
                    alerts.c.state == OPEN,
                )
                .values(state=RESOLVED, resolved_at=now)
            )
    if raised:
        log.info("digest.raised", tenant_id=hub.tenant_id, key=key, held=held_orders, causes=len(groups))
    return raised


# --- listing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryInfo:
    target: str
    status: str
    attempts: int
    error: str | None
    at: datetime


@dataclass(frozen=True)
class AlertInfo:
    id: int
    key: str
    kind: str
    state: str
    generation: int
    occurrences: int
    subject: str
    body: str
    link: str
    connection: str | None
    data: dict[str, Any] | None
    first_at: datetime
    last_at: datetime
    resolved_at: datetime | None
    dispatched_at: datetime | None
    #: deliveries of the current generation
    deliveries: list[DeliveryInfo]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def list_alerts(hub: Hub, *, open_only: bool = False) -> list[AlertInfo]:
    """Alerts of this tenant, most recent first, with the deliveries of their current episode."""
    q = (
        select(alerts, connections.c.name.label("connection"))
        .outerjoin(connections, connections.c.id == alerts.c.connection_id)
        .where(alerts.c.tenant_id == hub.tenant_id)
        .order_by(alerts.c.last_at.desc(), alerts.c.id.desc())
    )
    if open_only:
        q = q.where(alerts.c.state == OPEN)
    with hub.db.read() as conn:
        rows = conn.execute(q).all()
        by_alert: dict[tuple[int, int], list[DeliveryInfo]] = {}
        for chunk in _chunks([r.id for r in rows], 500):
            for d in conn.execute(
                select(alert_deliveries).where(alert_deliveries.c.alert_id.in_(chunk)).order_by(alert_deliveries.c.id)
            ):
                by_alert.setdefault((d.alert_id, d.generation), []).append(
                    DeliveryInfo(d.target, d.status, d.attempts, d.error, d.at)
                )
    return [
        AlertInfo(
            r.id,
            r.key,
            r.kind,
            r.state,
            r.generation,
            r.occurrences,
            r.subject,
            r.body,
            r.link,
            r.connection,
            r.data,
            r.first_at,
            r.last_at,
            r.resolved_at,
            r.dispatched_at,
            by_alert.get((r.id, r.generation), []),
        )
        for r in rows
    ]


def _chunks(items: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


# --- new hold reasons ------------------------------------------------------------------------------

HOLD_ALERT = "new_hold_reason"


def hold_key(code: str, value: str) -> str:
    return f"hold:{code}:{value}"[:300]


def sync_hold_alerts(hub: Hub) -> tuple[int, int]:
    """One alert per root cause of held orders (code + value) while orders are held for it.

    Runs from the worker's housekeeping (every few seconds), not inside ingest: the cause is looked
    at once per pass however many orders it blocks, and the alert goes out when the cause first
    appears — "37 orders blocked by SKU ABC-1" is one message, not 37. When no order is held for the
    cause any more (a mapping was added, the orders were retried), the alert is resolved, so the
    cause coming back later alerts again. Returns (raised, resolved).
    """
    groups = holds(hub)
    now = hub.now()
    raised = resolved = 0
    with hub.db.transaction() as conn:
        open_keys = set(
            conn.execute(
                select(alerts.c.key).where(
                    alerts.c.tenant_id == hub.tenant_id, alerts.c.kind == HOLD_ALERT, alerts.c.state == OPEN
                )
            ).scalars()
        )
        live = set()
        for g in groups:
            key = hold_key(g.code, g.value)
            live.add(key)
            if key in open_keys:
                continue
            cause = _CAUSES.get(g.code, g.code.replace("_", " ") + (" {value}" if g.value else ""))
            noun = "order" if g.orders == 1 else "orders"
            if raise_alert(
                conn,
                hub.tenant_id,
                key=key,
                kind=HOLD_ALERT,
                subject=f"Orders held: {cause.format(value=g.value)}",
                body=(
                    f"{g.orders} {noun} held — {g.message}\n\nHow to fix it: {g.fix}\n"
                    f"Examples: {', '.join(g.examples)}\n\nOrders held for the same cause later are not sent "
                    "again; the daily digest counts them. Fixing the cause releases every one of them."
                ),
                link=holds_link(hub.settings, g.code, g.value),
                now=now,
                data={"code": g.code, "value": g.value, "orders": g.orders},
            ):
                raised += 1
        for key in open_keys - live:
            if resolve_alert(conn, hub.tenant_id, key, now):
                resolved += 1
    return raised, resolved
