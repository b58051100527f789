"""Shopify's webhooks: the adapter the hub's receiver is given (:data:`ADAPTER`), the signature check
and the topic names.

:class:`ShopifyWebhooks` is the ``WebhookAdapter`` this kind declares (decision 72): it verifies a
delivery (signature, then the shop it came from) and reads it (headers, then the order in the
REST shape Shopify sends). The hub's receiver names no header and no topic of its own.

``verify_signature`` is what the adapter runs before it trusts a byte of a delivery.
Shopify signs the *raw* request body: base64(HMAC-SHA256(app secret, body)) in
``X-Shopify-Hmac-Sha256``. The check therefore runs on the bytes as received (never on re-encoded
JSON, which would differ in spacing or key order) and compares in constant time with
:func:`hmac.compare_digest`, so a forger learns nothing from response timing. A missing, empty or
non-ASCII header is simply "not authentic" — the caller decides what to answer.

Topics have two spellings: the wire name in ``X-Shopify-Topic`` and REST (``orders/create``) and
the GraphQL enum (``ORDERS_CREATE``); :data:`TOPIC_TO_ENUM` and :data:`ENUM_TO_TOPIC` translate.

Hand-written because it is six lines of standard library; the official ``ShopifyAPI`` package
would bring its session machinery along for them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from orderbridge import boundedjson
from orderbridge.connectors.base import WebhookDelivery, WebhookSource
from orderbridge.connectors.shopify.mapper import order_from_rest, order_id, parse_time
from orderbridge.domain import limits

TOPIC_TO_ENUM: dict[str, str] = {
    "orders/create": "ORDERS_CREATE",
    "orders/updated": "ORDERS_UPDATED",
    "orders/cancelled": "ORDERS_CANCELLED",
    "orders/fulfilled": "ORDERS_FULFILLED",
    "orders/partially_fulfilled": "ORDERS_PARTIALLY_FULFILLED",
    "orders/paid": "ORDERS_PAID",
    "orders/edited": "ORDERS_EDITED",
    "orders/delete": "ORDERS_DELETE",
}
ENUM_TO_TOPIC: dict[str, str] = {enum: topic for topic, enum in TOPIC_TO_ENUM.items()}


def signature(secret: str, body: bytes) -> str:
    """The ``X-Shopify-Hmac-Sha256`` value Shopify sends for ``body`` (for tests and tools)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Is ``header`` Shopify's signature of exactly these ``body`` bytes under ``secret``?"""
    if not secret or not header:
        return False
    try:
        given = header.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(signature(secret, body).encode("ascii"), given)


#: the topics the hub subscribes to: every order topic but ``orders/edited`` (an edit's payload
#: carries no order; the ``orders/updated`` that follows it does)
ORDER_TOPICS: tuple[str, ...] = (
    "orders/create",
    "orders/updated",
    "orders/cancelled",
    "orders/fulfilled",
    "orders/partially_fulfilled",
    "orders/paid",
    "orders/delete",
)


def shop_domain(base_url: str, settings: Mapping[str, Any]) -> str:
    """The shop's ``*.myshopify.com`` host: the ``shop_domain`` setting, else the base URL's host."""
    configured = str(settings.get("shop_domain") or "").strip().lower()
    if configured:
        return configured
    host = (urlsplit(base_url).hostname or "").lower()
    return host if host.endswith(".myshopify.com") else ""


class ShopifyWebhooks:
    """How Shopify signs, names and shapes its webhooks (the kind's ``WebhookAdapter``)."""

    secret_credential = "api_secret"
    topics = ORDER_TOPICS

    def verify(self, source: WebhookSource, headers: Mapping[str, str], body: bytes) -> str:
        header = headers.get("x-shopify-hmac-sha256")
        if not header:
            return "unsigned: no X-Shopify-Hmac-Sha256 header"
        if not verify_signature(source.secret, body, header):
            return "forged: X-Shopify-Hmac-Sha256 does not match the body"
        # one app secret signs for every shop that installed the app: the shop must be this one
        expected = shop_domain(source.base_url, source.settings)
        sent = (headers.get("x-shopify-shop-domain") or "").strip().lower()
        if expected and sent != expected:
            return (
                f"from another shop: X-Shopify-Shop-Domain is {sent or 'missing'!r}, connection {source.name!r} is "
                f"{expected!r} (set the connection's shop_domain setting if the store was renamed)"
            )
        return ""

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        """The delivery; ``ValueError`` when it cannot be read, :class:`UnusableId` when the order
        in it has no usable id (both refused with a 4xx: nothing is stored)."""
        webhook_id = headers.get("x-shopify-webhook-id")
        topic = headers.get("x-shopify-topic", "")
        if not webhook_id:
            raise ValueError("no X-Shopify-Webhook-Id header")
        for name, value, limit in (
            ("X-Shopify-Webhook-Id", webhook_id, limits.WEBHOOK_ID),
            ("X-Shopify-Topic", topic, limits.WEBHOOK_TOPIC),
        ):
            if len(value) > limit.max_chars or limits.storable(value) != value:
                raise ValueError(f"the {name} header is not a valid value (at most {limit.max_chars} characters)")
        # within the receiver's JSON limits (boundedjson): malformed is a 400, beyond a limit a 422
        payload: Any = boundedjson.loads(body)
        if not isinstance(payload, dict):
            raise ValueError("the body is not an order object")
        external_id = order_id(payload.get("id"))  # one order, whichever form its id came in
        triggered = headers.get("x-shopify-triggered-at")
        triggered_at = parse_time(triggered, "X-Shopify-Triggered-At") if triggered else None
        record = None if topic == "orders/delete" else order_from_rest(payload)
        return WebhookDelivery(webhook_id, topic, triggered_at, external_id, record)


ADAPTER = ShopifyWebhooks()
