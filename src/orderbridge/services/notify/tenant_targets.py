"""Where a tenant's alerts go: its own e-mail recipients and webhook targets, or the hub's defaults.

Recipients and webhook targets belong to the tenant (decision 122): its admins set them in the
portal or the API, and they are stored as one ``tenant_settings`` row (key ``notifications``).
The hub's ``ORDERBRIDGE_ALERT_RECIPIENTS``/``ALERT_WEBHOOK_URLS``/``ALERT_WEBHOOK_SECRET`` are the
**default** of a tenant that never saved its own — a single-merchant install keeps working as it
did — and a tenant that saved its own uses only those, even an empty list (then its alerts are
listed and sent nowhere). Saving is all or nothing: every value is checked first, and the first
bad one is refused with :class:`InvalidTarget` naming it and the field it came from.

Webhooks to a tenant's own targets are signed with the tenant's own secret, made by the hub when
the first target is saved (or rotated on request), shown once and stored encrypted like
connection credentials. A secret shared by every tenant would let one tenant's receiver forge
alerts to another's.

A tenant's webhook target must not be a loopback, private or link-local address, unless the hub
allows it (``ORDERBRIDGE_ALERT_WEBHOOK_ALLOW_PRIVATE``): checked when saved (an address written as
an IP or ``localhost``) and again when sent (what the name resolves to), so an account's admin
cannot make the hub probe its internal network. The hub's own default targets are the hub
operator's and are not restricted.

Every change is recorded in the audit trail with what it was before.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from orderbridge.errors import InvalidInput, SettingsError
from orderbridge.services.audit_trail import ActionInfo, actions_on, record_action
from orderbridge.services.notify.outgoing import DeliveryFailed
from orderbridge.services.principals import Actor
from orderbridge.services.scope import Scope
from orderbridge.settings import Settings
from orderbridge.storage.repos import tenant_settings as settings_repo

#: the ``tenant_settings`` key
KEY = "notifications"
#: where the targets in force come from
TENANT, HUB = "tenant", "hub"
#: the audit trail's name for this object (one per tenant, so without an id)
OBJECT = "notification_settings"
MAX_RECIPIENTS, MAX_WEBHOOKS = 20, 10
#: ``alert_deliveries.target`` is 500 characters, ``webhook:`` included
URL_MAX = 500 - len("webhook:")
EMAIL_MAX = 254

_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
#: recipients are separated by new lines, commas or semicolons; URLs (which may hold commas) by white space
_SPLIT_EMAILS = re.compile(r"[\r\n,;]+")
_SPLIT_URLS = re.compile(r"\s+")


class InvalidTarget(InvalidInput):
    """A recipient or webhook target that cannot be used; ``field`` names the input, ``value`` the
    value (shortened), so a form can point at it and the API's error names it."""

    code = "notification_target_invalid"

    def __init__(self, message: str, *, field: str, value: str, hint: str) -> None:
        super().__init__(message, hint=hint)
        self.field = field
        self.value = value


@dataclass(frozen=True)
class Targets:
    """What dispatch and the test message send to."""

    source: str
    recipients: tuple[str, ...]
    webhook_urls: tuple[str, ...]
    #: signs the webhooks (the tenant's own, or the hub's for the hub's targets)
    secret: str | None

    def names(self) -> list[str]:
        """Every target as ``email:<address>`` / ``webhook:<url>`` (``alert_deliveries.target``)."""
        return [f"email:{a}" for a in self.recipients] + [f"webhook:{u}" for u in self.webhook_urls]

    @property
    def restricted(self) -> bool:
        """Whether webhook targets are checked for private addresses when sent (the tenant's are)."""
        return self.source == TENANT


@dataclass(frozen=True)
class NotificationSettings:
    """What the settings screen and the API show: never a secret, and of the hub's defaults only
    how many there are (they are the hub operator's addresses, not the tenant's)."""

    source: str
    recipients: tuple[str, ...]
    webhook_urls: tuple[str, ...]
    #: the tenant has its own webhook signing secret
    signing_secret_set: bool
    hub_recipients: int
    hub_webhooks: int
    #: the hub has a mail server, so e-mail recipients can be used
    mail_server: bool
    updated_at: datetime | None
    updated_by: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "recipients": list(self.recipients),
            "webhook_urls": list(self.webhook_urls),
            "signing_secret_set": self.signing_secret_set,
            "hub_defaults": {"recipients": self.hub_recipients, "webhook_urls": self.hub_webhooks},
            "mail_server": self.mail_server,
            "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
            "updated_by": self.updated_by,
        }


@dataclass(frozen=True)
class SettingsScreen:
    """The settings page: the settings and what people did to them (changes, test messages)."""

    settings: NotificationSettings
    actions: list[ActionInfo]


@dataclass(frozen=True)
class Saved:
    settings: NotificationSettings
    #: the webhook signing secret when this save made a new one — shown once, never again
    new_secret: str | None


# --- validation ----------------------------------------------------------------------------------


def _items(value: str | Sequence[str], split: re.Pattern[str]) -> list[str]:
    """A text (one item per line, or as ``split`` separates them) or a list, as stripped items."""
    raw = [value] if isinstance(value, str) else list(value)
    out: list[str] = []
    for item in raw:
        out.extend(p.strip() for p in split.split(item) if p.strip())
    return out


def _shown(value: str) -> str:
    return value if len(value) <= 80 else value[:79] + "…"


def _domain(domain: str) -> str | None:
    """The domain in ASCII (an international one in its ``xn--`` form), or None when it is not one."""
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        return None
    return ascii_domain


def parse_recipients(value: str | Sequence[str]) -> tuple[str, ...]:
    """E-mail addresses, checked and deduplicated (case-insensitively), in the order given."""
    found: dict[str, str] = {}
    for item in _items(value, _SPLIT_EMAILS):
        address = _email(item)
        found.setdefault(address.lower(), address)
    if len(found) > MAX_RECIPIENTS:
        raise InvalidTarget(
            f"{len(found)} e-mail recipients are more than the {MAX_RECIPIENTS} an account can have",
            field="recipients",
            value=str(len(found)),
            hint="Send alerts to a mailing list address instead of to each person.",
        )
    return tuple(found.values())


def _email(item: str) -> str:
    def refuse(why: str, hint: str = "Write one address per line, like ops@example.com.") -> InvalidTarget:
        return InvalidTarget(
            f"{_shown(item)!r} is not an e-mail address: {why}", field="recipients", value=_shown(item), hint=hint
        )

    if len(item) > EMAIL_MAX:
        raise refuse(f"it is longer than {EMAIL_MAX} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in item):
        raise refuse("it contains a control character")
    if "<" in item or ">" in item or '"' in item:
        raise refuse("write the address alone, without a name or quotes")
    if any(c.isspace() for c in item):
        raise refuse("it contains a space (put one address per line)")
    local, at, domain = item.rpartition("@")
    if not at or not local or not domain:
        raise refuse("it needs a name, an @ and a domain")
    if len(local) > 64 or not _LOCAL.match(local):
        raise refuse(f"{_shown(local)!r} before the @ has characters an address cannot have")
    ascii_domain = _domain(domain)
    if ascii_domain is None:
        raise refuse(f"{_shown(domain)!r} is not a domain name")
    return f"{local}@{ascii_domain}"


def parse_webhook_urls(value: str | Sequence[str], *, allow_private: bool = False) -> tuple[str, ...]:
    """HTTP(S) URLs, checked and deduplicated, in the order given."""
    found: dict[str, None] = {}
    for item in _items(value, _SPLIT_URLS):
        found.setdefault(_url(item, allow_private), None)
    if len(found) > MAX_WEBHOOKS:
        raise InvalidTarget(
            f"{len(found)} webhook targets are more than the {MAX_WEBHOOKS} an account can have",
            field="webhook_urls",
            value=str(len(found)),
            hint="Send alerts to one receiver that fans them out.",
        )
    return tuple(found)


def _url(item: str, allow_private: bool) -> str:
    def refuse(
        why: str, hint: str = "Write one URL per line, each the HTTPS (or HTTP) address of a receiver."
    ) -> InvalidTarget:
        return InvalidTarget(f"webhook URL {_shown(item)!r} {why}", field="webhook_urls", value=_shown(item), hint=hint)

    if len(item) > URL_MAX:
        raise refuse(f"is longer than {URL_MAX} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in item):
        raise refuse("contains a control character")
    parts = urlsplit(item)
    if parts.scheme.lower() not in ("http", "https"):
        raise refuse("is not an HTTP or HTTPS URL")
    try:
        host, _port = parts.hostname, parts.port
    except ValueError:
        raise refuse("has a port that is not a number from 1 to 65535") from None
    if not host:
        raise refuse("has no host name")
    if parts.username is not None or parts.password is not None:
        raise refuse(
            "carries a user name or password",
            "Put a token in the URL's path or query instead, and verify X-OrderBridge-Signature in the receiver.",
        )
    address = _ip(host)
    if address is None and _domain(host) is None and host != "localhost" and not host.endswith(".localhost"):
        raise refuse(f"has {_shown(host)!r} as host, which is not a host name")
    local = host == "localhost" or host.endswith(".localhost") or (address is not None and not address.is_global)
    if local and not allow_private:
        raise refuse(
            f"points at {_shown(host)}, a loopback, private or link-local address",
            "Alert webhooks go to a receiver on the internet. Whoever runs the hub can allow internal "
            "receivers with ORDERBRIDGE_ALERT_WEBHOOK_ALLOW_PRIVATE=true.",
        )
    return item


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def check_public(url: str) -> None:
    """Refuse to send to a URL whose host resolves to a loopback, private or link-local address
    (:class:`DeliveryFailed`, recorded on the delivery like any other failure). What the name
    resolves to is checked just before sending; a name that changes its answer between this check
    and the request (DNS rebinding) is the one case it does not cover (docs/security.md)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        answers = socket.getaddrinfo(
            host, parts.port or (443 if parts.scheme == "https" else 80), proto=socket.IPPROTO_TCP
        )
    except (OSError, UnicodeError) as exc:
        raise DeliveryFailed(f"cannot resolve {host}: {exc}", hint="Check the webhook URL's host name.") from exc
    for *_, sockaddr in answers:
        address = _ip(str(sockaddr[0]).split("%", 1)[0])
        if address is None or not address.is_global:
            raise DeliveryFailed(
                f"not sent: {host} resolves to {sockaddr[0]}, a loopback, private or link-local address",
                hint="Alert webhooks go to a receiver on the internet; whoever runs the hub can allow internal "
                "receivers with ORDERBRIDGE_ALERT_WEBHOOK_ALLOW_PRIVATE=true.",
            )


# --- the targets in force ------------------------------------------------------------------------


def hub_targets(settings: Settings) -> Targets:
    """The hub's default targets (``ORDERBRIDGE_ALERT_*``); refuses unsafe or unusable settings."""
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
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > URL_MAX:
            raise SettingsError(
                f"alert webhook URL {url[:80]!r} is not an http(s) URL of at most {URL_MAX} characters",
                hint="ORDERBRIDGE_ALERT_WEBHOOK_URLS is a comma-separated list of HTTP or HTTPS URLs.",
            )
    return Targets(HUB, tuple(emails), tuple(hooks), settings.alert_webhook_secret)


def tenant_targets(scope: Scope) -> Targets:
    """The targets the tenant's alerts go to: its own once it saved them, else the hub's."""
    with scope.read() as conn:
        row = settings_repo.get(conn, scope.tenant_id, KEY)
    if row is None:
        return hub_targets(scope.settings)
    value = _stored(row.value)
    if value["recipients"] and not scope.settings.smtp_host:
        raise SettingsError(
            f"tenant {scope.slug!r} has e-mail recipients but the hub has no SMTP server to send through",
            hint="Set ORDERBRIDGE_SMTP_HOST, or remove the account's e-mail recipients in its notification settings.",
        )
    return Targets(TENANT, value["recipients"], value["webhook_urls"], _secret(scope, value))


def _stored(value: Any) -> dict[str, Any]:
    data = value if isinstance(value, dict) else {}
    return {
        "recipients": tuple(str(a) for a in data.get("recipients") or ()),
        "webhook_urls": tuple(str(u) for u in data.get("webhook_urls") or ()),
        "webhook_secret": data.get("webhook_secret") or None,
    }


def _secret(scope: Scope, value: dict[str, Any]) -> str | None:
    sealed = value["webhook_secret"]
    if not sealed:
        return None
    return scope.box.open(str(sealed), what=f"the webhook signing secret of tenant {scope.slug!r}").get("secret")


def notification_settings(scope: Scope) -> NotificationSettings:
    """The tenant's notification settings, as its settings page shows them."""
    with scope.read() as conn:
        row = settings_repo.get(conn, scope.tenant_id, KEY)
    return _shown_settings(scope, row)


def settings_screen(scope: Scope) -> SettingsScreen:
    """What the notification settings page shows (see :class:`SettingsScreen`)."""
    return SettingsScreen(notification_settings(scope), actions_on(scope, OBJECT, None, limit=20))


def _shown_settings(scope: Scope, row: Any | None) -> NotificationSettings:
    s = scope.settings
    hub = (len(s.recipients), len(s.webhook_targets))
    if row is None:
        return NotificationSettings(HUB, (), (), False, *hub, bool(s.smtp_host), None, None)
    value = _stored(row.value)
    return NotificationSettings(
        TENANT,
        value["recipients"],
        value["webhook_urls"],
        bool(value["webhook_secret"]),
        *hub,
        bool(s.smtp_host),
        row.updated_at,
        row.updated_by,
    )


# --- changing them (admin) -----------------------------------------------------------------------


def save_notification_settings(
    actor: Actor,
    *,
    recipients: str | Sequence[str],
    webhook_urls: str | Sequence[str],
    rotate_secret: bool = False,
) -> Saved:
    """Set the tenant's own recipients and webhook targets (replacing the hub's defaults for it).
    Every value is checked before anything is stored. A new webhook signing secret is made when the
    tenant has none and sets a webhook, or when ``rotate_secret``; it is returned once."""
    scope = actor.scope
    emails = parse_recipients(recipients)
    hooks = parse_webhook_urls(webhook_urls, allow_private=scope.settings.alert_webhook_allow_private)
    if emails and not scope.settings.smtp_host:
        raise InvalidTarget(
            "this hub has no mail server, so alerts cannot be sent by e-mail",
            field="recipients",
            value=emails[0],
            hint="Use a webhook target, or ask whoever runs the hub to set ORDERBRIDGE_SMTP_HOST.",
        )
    now = scope.now()
    with scope.transaction() as conn:
        row = settings_repo.get(conn, scope.tenant_id, KEY)
        before = None if row is None else _stored(row.value)
        sealed = None if before is None else before["webhook_secret"]
        new_secret = None
        if rotate_secret or (hooks and not sealed):
            new_secret = secrets.token_hex(32)
            sealed = scope.box.seal({"secret": new_secret})
        value = {"recipients": list(emails), "webhook_urls": list(hooks), "webhook_secret": sealed}
        settings_repo.put(conn, scope.tenant_id, KEY, value, now, actor.principal.name)
        record_action(
            actor,
            "notifications.update",
            OBJECT,
            None,
            _summary(emails, hooks) + (" A new webhook signing secret was made." if new_secret else ""),
            detail={
                "recipients": list(emails),
                "webhook_urls": list(hooks),
                "secret_rotated": new_secret is not None,
                "before": None
                if before is None
                else {"recipients": list(before["recipients"]), "webhook_urls": list(before["webhook_urls"])},
            },
            conn=conn,
        )
        saved = settings_repo.get(conn, scope.tenant_id, KEY)
    return Saved(_shown_settings(scope, saved), new_secret)


def use_hub_defaults(actor: Actor) -> NotificationSettings:
    """Forget the tenant's own targets (and its signing secret): its alerts go to the hub's defaults."""
    scope = actor.scope
    with scope.transaction() as conn:
        row = settings_repo.get(conn, scope.tenant_id, KEY)
        if row is not None:
            before = _stored(row.value)
            settings_repo.remove(conn, scope.tenant_id, KEY)
            record_action(
                actor,
                "notifications.use_defaults",
                OBJECT,
                None,
                "Alerts go to the hub's default targets again (the account's own were removed).",
                detail={
                    "before": {"recipients": list(before["recipients"]), "webhook_urls": list(before["webhook_urls"])}
                },
                conn=conn,
            )
    return _shown_settings(scope, None)


def _summary(emails: Sequence[str], hooks: Sequence[str]) -> str:
    if not emails and not hooks:
        return "Alerts go nowhere: the account has no e-mail recipient and no webhook target (they are still listed)."
    parts = []
    if emails:
        parts.append(f"{len(emails)} e-mail recipient(s) ({', '.join(emails)})")
    if hooks:
        parts.append(f"{len(hooks)} webhook target(s) ({', '.join(hooks)})")
    return "Alerts go to " + " and ".join(parts) + "."
