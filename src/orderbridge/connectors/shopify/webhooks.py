"""Shopify webhook facts the hub needs: the signature check and the topic names.

``verify_signature`` is what the hub's receiver calls before it trusts a byte of a delivery.
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
