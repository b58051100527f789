"""Notifications: deduplicated alerts, sent once per episode by e-mail and signed webhook, and a digest.

One module per concept:

- :mod:`.outbox` — raising and resolving alerts inside the caller's transaction (one episode per
  cause), each with its words and its fixes as data;
- :mod:`.render` — the fixes rendered when an alert is sent (commands and links, from ``Hub.present``);
- :mod:`.dispatch` — sending every undispatched episode to every target exactly once, with retries;
- :mod:`.mail` and :mod:`.webhook` — the two transports (SMTP e-mail, HMAC-signed webhooks), over
  :mod:`.outgoing` (the episode as sent, and the error a transport raises);
- :mod:`.digest` — held orders by root cause, once per aligned period;
- :mod:`.holds` — one alert per root cause of held orders while it holds any;
- :mod:`.listing` — alerts with their deliveries, for ``alerts list`` and the web; :mod:`.acknowledge`
  — an operator taking an open alert in hand;
- :mod:`.tenant_targets` — where a tenant's alerts go (its own recipients and webhooks, or the hub's
  defaults), checked when saved; :mod:`.probe` — the test message to each of them.

Callers use ``from orderbridge.services import notify`` and the names re-exported here.
"""

from orderbridge.services.notify.acknowledge import acknowledge_alert
from orderbridge.services.notify.digest import DIGEST, digest_period_start, send_digest_if_due
from orderbridge.services.notify.dispatch import (
    BATCH,
    FAILED,
    MAX_ATTEMPTS,
    RETRY_AFTER_S,
    RETRYING,
    SENT,
    DispatchReport,
    dispatch,
    targets,
)
from orderbridge.services.notify.holds import HOLD_ALERT, hold_key, sync_hold_alerts
from orderbridge.services.notify.listing import (
    STATES,
    AlertDetail,
    AlertInfo,
    AlertPage,
    AlertsScreen,
    DeliveryInfo,
    Episode,
    alert_page,
    alerts_screen,
    get_alert,
    list_alerts,
)
from orderbridge.services.notify.mail import SUBJECT_PREFIX
from orderbridge.services.notify.outbox import OPEN, RESOLVED, raise_alert, resolve_alert
from orderbridge.services.notify.outgoing import DeliveryFailed
from orderbridge.services.notify.probe import ProbeReport, ProbeResult, send_test_message
from orderbridge.services.notify.render import Renderer
from orderbridge.services.notify.tenant_targets import (
    HUB,
    MAX_RECIPIENTS,
    MAX_WEBHOOKS,
    TENANT,
    InvalidTarget,
    NotificationSettings,
    Saved,
    SettingsScreen,
    Targets,
    hub_targets,
    notification_settings,
    parse_recipients,
    parse_webhook_urls,
    save_notification_settings,
    settings_screen,
    tenant_targets,
    use_hub_defaults,
)
from orderbridge.services.notify.webhook import sign, webhook_payload

__all__ = [
    "BATCH",
    "DIGEST",
    "FAILED",
    "HOLD_ALERT",
    "HUB",
    "MAX_ATTEMPTS",
    "MAX_RECIPIENTS",
    "MAX_WEBHOOKS",
    "OPEN",
    "RESOLVED",
    "RETRYING",
    "RETRY_AFTER_S",
    "SENT",
    "STATES",
    "SUBJECT_PREFIX",
    "TENANT",
    "AlertDetail",
    "AlertInfo",
    "AlertPage",
    "AlertsScreen",
    "DeliveryFailed",
    "DeliveryInfo",
    "DispatchReport",
    "Episode",
    "InvalidTarget",
    "NotificationSettings",
    "ProbeReport",
    "ProbeResult",
    "Renderer",
    "Saved",
    "SettingsScreen",
    "Targets",
    "acknowledge_alert",
    "alert_page",
    "alerts_screen",
    "digest_period_start",
    "dispatch",
    "get_alert",
    "hold_key",
    "hub_targets",
    "list_alerts",
    "notification_settings",
    "parse_recipients",
    "parse_webhook_urls",
    "raise_alert",
    "resolve_alert",
    "save_notification_settings",
    "send_digest_if_due",
    "send_test_message",
    "settings_screen",
    "sign",
    "sync_hold_alerts",
    "targets",
    "tenant_targets",
    "use_hub_defaults",
    "webhook_payload",
]
