"""The TinyShop channel: client, mapper and declaration in one module (a real connector splits them
into ``client.py``, ``mapper.py`` and ``connector.py``). It imports what a connector package may:
``connectors.base``/``connectors.http``, the domain and the errors — nothing of the hub."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx
import orjson

from orderbridge.connectors.base import (
    Capability,
    ChannelBatch,
    ChannelRecord,
    CredentialField,
    Declaration,
    OrderStamp,
    Role,
    Setting,
    SettingScope,
    StampBatch,
    UnreadableOrder,
    WebhookDelivery,
    WebhookSource,
    WebhookSubscription,
)
from orderbridge.connectors.http import RetryPolicy, call_with_retries, json_body, send
from orderbridge.domain.money import Money
from orderbridge.domain.order import Address, FulfilmentStatus, Order, OrderLine, PaymentStatus, ShippingLine
from orderbridge.errors import NotFound, SettingsError

SYSTEM = "TinyShop"
EVENTS = ("order.created", "order.updated")


# --- mapper (pure) ---------------------------------------------------------------------------------


def _time(value: Any) -> datetime:
    when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(f"time {value!r} has no zone")
    return when


def _money(value: Any, currency: str, what: str) -> Money:
    try:
        return Money(Decimal(str(value)), currency)
    except (InvalidOperation, ValueError) as exc:
        raise ValueError(f"{what} {value!r} is not an amount") from exc


def order_from_json(data: Mapping[str, Any]) -> ChannelRecord:
    """A TinyShop order → the canonical order, or an :class:`UnreadableOrder` naming the problem."""
    external_id = str(data.get("id") or "")
    try:
        currency = str(data["currency"])
        lines = tuple(
            OrderLine(
                external_id=str(item["id"]),
                sku=item.get("sku") or None,
                title=str(item["title"]),
                quantity=int(item["qty"]),
                unit_price=_money(item["price"], currency, "price"),
            )
            for item in data["items"]
        )
        subtotal = sum((li.unit_price.amount * li.quantity for li in lines), Decimal("0"))
        shipping = data.get("shipping") or None
        ship_lines = (
            (ShippingLine(shipping["method"], shipping["method"], _money(shipping["price"], currency, "shipping")),)
            if shipping
            else ()
        )
        tax = _money(data.get("tax", "0"), currency, "tax")
        to = data.get("ship_to") or {}
        address = Address(
            name=str(to.get("name", "")),
            address1=str(to.get("street", "")),
            city=str(to.get("city", "")),
            postal_code=str(to.get("zip", "")),
            country_code=str(to.get("country", "")),
        )
        updated = _time(data["updated"])
        state = data.get("state")
        total = Money(subtotal + tax.amount + sum((s.price.amount for s in ship_lines), Decimal("0")), currency)
        # issue #15: "refunded" is the amount the shop refunded so far (absent: nothing)
        refunded = Money(Decimal(str(data["refunded"])), currency) if data.get("refunded") else None
        payment = PaymentStatus.PAID if data.get("paid") else PaymentStatus.PENDING
        if refunded is not None:
            full = refunded.amount >= total.amount
            payment = PaymentStatus.REFUNDED if full else PaymentStatus.PARTIALLY_REFUNDED
        return Order(
            external_id=external_id,
            number=str(data["name"]),
            currency=currency,
            created_at=_time(data["created"]),
            updated_at=updated,
            payment_status=payment,
            refunded=refunded,
            fulfilment_status=FulfilmentStatus.FULFILLED if state == "shipped" else FulfilmentStatus.UNFULFILLED,
            lines=lines,
            subtotal=Money(subtotal, currency),
            total_tax=tax,
            total=total,
            shipping_lines=ship_lines,
            cancelled_at=updated if state == "cancelled" else None,
            test=bool(data.get("test")),
            email=str(data.get("email") or ""),
            customer_name=str(data.get("customer") or ""),
            shipping_address=address,
            billing_address=address,
            note=str(data.get("note") or ""),
            raw=dict(data),
        )
    except (KeyError, TypeError, ValueError) as exc:
        updated_at = None
        with contextlib.suppress(TypeError, ValueError):
            updated_at = _time(data.get("updated"))
        return UnreadableOrder(external_id, str(data.get("name", "")), updated_at, str(exc), dict(data))


# --- webhooks (the kind's WebhookAdapter) -------------------------------------------------------------


class TinyShopWebhooks:
    secret_credential = "signing_secret"
    topics = EVENTS

    def verify(self, source: WebhookSource, headers: Mapping[str, str], body: bytes) -> str:
        sent = headers.get("x-tiny-signature", "")
        if not sent:
            return "unsigned: no X-Tiny-Signature header"
        expected = "sha256=" + hmac.new(source.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), sent.strip().encode("ascii", "replace")):
            return "forged: X-Tiny-Signature does not match the body"
        return ""

    def parse(self, headers: Mapping[str, str], body: bytes) -> WebhookDelivery:
        delivery_id = headers.get("x-tiny-delivery")
        if not delivery_id:
            raise ValueError("no X-Tiny-Delivery header")
        payload = orjson.loads(body)
        if not isinstance(payload, dict):
            raise ValueError("the body is not an order object")
        record = order_from_json(payload)
        return WebhookDelivery(delivery_id, headers.get("x-tiny-event", ""), None, record.external_id, record)


# --- the connector -----------------------------------------------------------------------------------


class TinyShopChannel:
    declaration = Declaration(
        kind="tinyshop",
        role=Role.CHANNEL,
        title="TinyShop",
        capabilities=frozenset(
            {Capability.LIST_CHANGED, Capability.FETCH_ORDER, Capability.LIST_ORDER_STAMPS, Capability.WEBHOOKS}
        ),
        credentials=(
            CredentialField("token", "API token (Settings → API)", example="tiny_…"),
            CredentialField("signing_secret", "signs the shop's webhook deliveries", required=False),
        ),
        settings=(
            Setting("page_size", "orders per page of a listing", 50),
            Setting(
                "download_rules",
                "TinyShop's default: paid orders not yet shipped",
                {"financial_statuses": ["paid"], "fulfillment_statuses": ["unfulfilled"]},
                SettingScope.HUB,
            ),
        ),
        webhooks=TinyShopWebhooks(),
        docs="tests/connectors/extra_kind/__init__.py",
    )
    webhook_topics = EVENTS

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = credentials["token"]
        self.page_size = int(settings["page_size"])
        self.http = http or httpx.Client(timeout=10)
        self.sleep = sleep
        self.requests = 0

    # --- client (the only code that speaks HTTP) ------------------------------------------------------
    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        def once() -> httpx.Response:
            self.requests += 1
            request = self.http.build_request(
                method, f"{self.base_url}{path}", headers={"Authorization": f"Bearer {self.token}"}, **kw
            )
            response = send(self.http, request, system=SYSTEM)
            if response.status_code != 404 and response.status_code >= 400:
                raise SettingsError(f"{SYSTEM} refused {method} {path} (HTTP {response.status_code})")
            if response.status_code != 404:
                json_body(response, system=SYSTEM)  # a truncated body is retried here, not half-used
            return response

        return call_with_retries(once, RetryPolicy(attempts=4, base_delay=0.01), sleep=self.sleep)

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        response = self._call(method, path, **kw)
        if response.status_code == 404:
            raise NotFound(f"{SYSTEM} has no {path}", hint="Check the id.")
        return json_body(response, system=SYSTEM)

    # --- Connector -------------------------------------------------------------------------------------
    def check(self) -> str:
        self._json("GET", "/v1/orders", params={"limit": 1})
        return f"{SYSTEM} at {self.base_url}"

    def close(self) -> None:
        self.http.close()

    def list_changed(self, since: datetime | None, until: datetime | None = None) -> Iterator[ChannelBatch]:
        page = 1
        while True:
            params: dict[str, Any] = {"page": page, "limit": self.page_size}
            if since is not None:
                params["updated_min"] = since.isoformat()
            data = self._json("GET", "/v1/orders", params=params)
            records = [order_from_json(o) for o in data["orders"]]
            stamps = [r.updated_at for r in records if r.updated_at is not None]
            if records:
                yield ChannelBatch(records, max(stamps) if stamps else None, cost=1)
            if not data["has_more"]:
                return
            page += 1

    def fetch_order(self, external_id: str) -> ChannelRecord:
        return order_from_json(self._json("GET", f"/v1/orders/{external_id}"))

    def list_order_stamps(self, since: datetime, until: datetime) -> Iterator[StampBatch]:
        page = 1
        while True:
            params = {"from": since.isoformat(), "to": until.isoformat(), "page": page}
            data = self._json("GET", "/v1/order-stamps", params=params)
            yield StampBatch(
                [OrderStamp(s["id"], _time(s["updated"]), s["name"]) for s in data["stamps"]], requests=1, cost=1
            )
            if not data["has_more"]:
                return
            page += 1

    def api_cost_spent(self) -> int:
        return 0  # TinyShop has no cost accounting

    def list_webhooks(self) -> list[WebhookSubscription]:
        return [WebhookSubscription(h["id"], h["event"], h["url"]) for h in self._json("GET", "/v1/hooks")["hooks"]]

    def register_webhooks(self, address: str) -> list[WebhookSubscription]:
        have = {s.topic: s for s in self.list_webhooks() if s.address == address}
        for topic in self.webhook_topics:
            if topic not in have:
                hook = self._json("POST", "/v1/hooks", json={"url": address, "event": topic})
                have[topic] = WebhookSubscription(hook["id"], hook["event"], hook["url"])
        return [have[t] for t in self.webhook_topics]

    def remove_webhooks(self, address: str | None = None) -> int:
        removed = 0
        for sub in self.list_webhooks():
            if address is None or sub.address == address:
                self._call("DELETE", f"/v1/hooks/{sub.id}")
                removed += 1
        return removed
