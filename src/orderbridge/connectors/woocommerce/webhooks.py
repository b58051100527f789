"""WooCommerce's webhooks: the adapter the hub's receiver is given (:data:`ADAPTER`).

What WooCommerce sends (``shared/api-facts.md``): a POST of the order's v3 JSON with
``X-WC-Webhook-Source``, ``-Topic`` (``order.updated``), ``-Resource``, ``-Event``, ``-ID`` (the
webhook's id), ``-Delivery-ID`` and ``-Signature`` = base64(HMAC-SHA256(webhook secret, raw body)).
The signature is checked on the bytes as received, in constant time (:func:`hmac.compare_digest`).

Two WooCommerce habits shape this adapter:

- **The ping.** When a webhook is created or re-activated WooCommerce POSTs an *unsigned* form
  body ``webhook_id=<id>`` to the delivery URL and expects a 2xx. :meth:`WooCommerceWebhooks.verify`
  lets exactly that body through unsigned (nothing else), and :meth:`~WooCommerceWebhooks.parse`
  reads it as topic ``ping`` — not a subscribed topic, so the receiver answers 200 and stores
  nothing. A forger gains nothing from it: a ping carries no order.
- **Delivery ids are not unique.** WooCommerce makes ``X-WC-Webhook-Delivery-ID`` as a hash of the
  webhook id and the current *second*, so two orders changed in the same second reach the hub with
  one delivery id. Deduplicating on it alone would drop the second order's change. The delivery's
  key (what ``webhook_deliveries`` is unique on) is therefore the delivery id *and* a digest of the
  body: a replay of the same bytes is a duplicate, another event of the same second is not
  (decision 207).

Hand-written: it is a dozen lines of the standard library; the ``woocommerce`` package signs
requests but has no webhook code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any

from orderbridge import boundedjson
from orderbridge.connectors.base import WebhookDelivery, WebhookSource
from orderbridge.connectors.woocommerce.mapper import order_from_json, order_id
from orderbridge.domain import limits

ORDER_TOPICS: tuple[str, ...] = ("order.created", "order.updated", "order.deleted")
PING_TOPIC = "ping"
_PING = re.compile(rb"webhook_id=(\d{1,19})")


def signature(secret: str, body: bytes) -> str:
    """The ``X-WC-Webhook-Signature`` WooCommerce sends for ``body`` (for tests and tools)."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    if not secret or not header:
        return False
    try:
        given = header.strip().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(signature(secret, body).encode("ascii"), given)


def is_ping(headers: Mapping[str, str], body: bytes) -> bool:
    """WooCommerce's activation ping: exactly ``webhook_id=<digits>``, with no topic header."""
    return _PING.fullmatch(body.strip()) is not None and not headers.get("x-wc-webhook-topic")


class WooCommerceWebhooks:
    """How WooCommerce signs, names and shapes its webhooks (the kind's ``WebhookAdapter``)."""

    secret_credential = "webhook_secret"
    topics = ORDER_TOPICS

    def verify(self, source: WebhookSource, headers: Mapping[str, str], body: bytes) -> str:
        header = headers.get("x-wc-webhook-signature")
        if not header:
            if is_ping(headers, body):
                return ""  # read as topic "ping": answered 200, nothing stored
            return "unsigned: no X-WC-Webhook-Signature header"
        if not verify_signature(source.secret, body, header):
            return "forged: X-WC-Webhook-Signature does not match the body"
        return ""

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        if not headers.get("x-wc-webhook-signature") and is_ping(headers, body):
            found = _PING.fullmatch(body.strip())
            assert found is not None
            return WebhookDelivery(f"ping-{found[1].decode()}", PING_TOPIC, None, None, None)
        delivery = headers.get("x-wc-webhook-delivery-id", "").strip()
        topic = headers.get("x-wc-webhook-topic", "").strip()
        if not delivery:
            raise ValueError("no X-WC-Webhook-Delivery-ID header")
        if len(delivery) > 64 or limits.storable(delivery) != delivery:
            raise ValueError("the X-WC-Webhook-Delivery-ID header is not a valid value (at most 64 characters)")
        if len(topic) > limits.WEBHOOK_TOPIC.max_chars or limits.storable(topic) != topic:
            raise ValueError("the X-WC-Webhook-Topic header is not a valid value")
        key = f"{delivery}:{hashlib.sha256(body).hexdigest()[:32]}"
        payload: Any = boundedjson.loads(body)
        if not isinstance(payload, dict):
            raise ValueError("the body is not an order object")
        external_id = order_id(payload.get("id"))
        if topic not in ORDER_TOPICS:
            return WebhookDelivery(key, topic, None, external_id, None)
        record = None if topic == "order.deleted" else order_from_json(payload)
        return WebhookDelivery(key, topic, None, external_id, record)


ADAPTER = WooCommerceWebhooks()
