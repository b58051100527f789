"""The signed-webhook transport.

Webhooks are ``POST``s of JSON ``{id, key, kind, subject, body, link, fixes, data, generation, at}``
signed with ``X-OrderBridge-Signature: sha256=<hex HMAC-SHA256 of the raw body>`` using
the secret of the targets' owner (the tenant's own, or the hub's ``ALERT_WEBHOOK_SECRET`` for the hub's
default targets: :mod:`.tenant_targets`); ``X-OrderBridge-Alert-Id`` is the same on every retry of an episode.
``link`` is the page of the alert's first fix that has one ("" when none has); ``fixes`` lists every
fix as data with its ``link`` and ``command`` (:mod:`.render`).
Unsigned alerts are refused by :func:`orderbridge.services.notify.tenant_targets.hub_targets`, not sent.
"""

from __future__ import annotations

import hashlib
import hmac

import httpx
import orjson

from orderbridge.services.notify.outgoing import DeliveryFailed, Outgoing
from orderbridge.services.notify.render import Renderer


def webhook_payload(alert: Outgoing, render: Renderer) -> bytes:
    return orjson.dumps(
        {
            "id": alert.id,
            "key": alert.key,
            "kind": alert.kind,
            "subject": alert.subject,
            "body": alert.body,
            "link": render.where(alert.fixes) or "",
            "fixes": [render.payload(f) for f in alert.fixes],
            "data": alert.data,
            "generation": alert.generation,
            "at": alert.first_at.isoformat(),
        }
    )


def sign(secret: str, body: bytes) -> str:
    """The ``X-OrderBridge-Signature`` value for ``body``; receivers compare it with ``hmac.compare_digest``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_webhook(render: Renderer, http: httpx.Client, alert: Outgoing, url: str, secret: str) -> None:
    post_signed(http, url, webhook_payload(alert, render), alert.ref, secret)


def post_signed(http: httpx.Client, url: str, body: bytes, ref: str, secret: str) -> int:
    """POST ``body`` signed with ``secret``; the answer's status when it is a 2xx, else :class:`DeliveryFailed`."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "OrderBridge-Alerts",
        "X-OrderBridge-Signature": sign(secret, body),
        "X-OrderBridge-Alert-Id": ref,
    }
    try:
        response = http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"webhook POST failed: {type(exc).__name__}: {exc}") from exc
    if not response.is_success:
        raise DeliveryFailed(f"webhook answered HTTP {response.status_code}: {response.text[:200]}")
    return response.status_code
