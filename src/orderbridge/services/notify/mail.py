"""The e-mail transport: one plain-text message per recipient, over one SMTP session per dispatch.

E-mail uses the standard library: ``smtplib`` speaks SMTP, STARTTLS, implicit TLS and AUTH, and
``email.message.EmailMessage`` builds a correct RFC 5322 plain-text message. An alert needs
nothing more, so a third-party mail library would add a dependency and no capability. One message
per recipient, so one refused address does not block the others and each has its own delivery
row. The ``Message-ID`` is the same on every retry of an episode, so mail clients fold repeats.
"""

from __future__ import annotations

import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr

import structlog

from orderbridge.services.notify.digest import DIGEST, digest_text
from orderbridge.services.notify.outbox import RESOLVED
from orderbridge.services.notify.outgoing import DeliveryFailed, Outgoing
from orderbridge.services.notify.render import Renderer
from orderbridge.settings import Settings

log = structlog.get_logger("orderbridge.notify")

SUBJECT_PREFIX = "[OrderBridge] "


def email_text(alert: Outgoing, render: Renderer) -> str:
    """The body (the digest's rendered again from its data, with commands and links), how to fix it,
    where, and whether the cause went away before the alert was sent."""
    body = (digest_text(alert.data, render) if alert.kind == DIGEST else None) or alert.body
    text = body.rstrip()
    how = render.how_to_fix(alert.fixes)
    if how:
        text += "\n\n" + how
    where = render.where(alert.fixes)
    text += f"\n\nWhere to fix it: {where}\n" if where else "\n"
    if alert.state == RESOLVED and alert.kind != DIGEST and alert.resolved_at is not None:
        text += (
            f"\nResolved since, at {alert.resolved_at:%Y-%m-%d %H:%M} UTC: the cause went away before this alert "
            "was sent. It is sent anyway so the episode is on record.\n"
        )
    return text + (
        f"\n-- \nOrderBridge alert {alert.key} (episode {alert.generation}). "
        "Repeats of the same cause are counted, not sent again.\n"
    )


def email_message(settings: Settings, render: Renderer, alert: Outgoing, to: str, now: datetime) -> EmailMessage:
    domain = parseaddr(settings.smtp_sender)[1].rpartition("@")[2] or "orderbridge.invalid"
    msg = EmailMessage()
    msg["Subject"] = SUBJECT_PREFIX + alert.subject
    msg["From"] = settings.smtp_sender
    msg["To"] = to
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = f"<alert.{alert.ref}@{domain}>"  # the same on every retry: mail clients fold repeats
    msg["X-OrderBridge-Alert"] = alert.key
    msg.set_content(email_text(alert, render), cte="quoted-printable")  # 7-bit safe through any relay
    return msg


class Mailer:
    """One SMTP session per dispatch, opened on first use. Library errors become :class:`DeliveryFailed`.

    When the server cannot be reached, the rest of this dispatch's e-mails fail with the same error
    at once instead of each waiting for its own connect timeout."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        self._down: DeliveryFailed | None = None

    def __enter__(self) -> Mailer:
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
