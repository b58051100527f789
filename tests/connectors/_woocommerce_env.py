"""The WooCommerce channel over its sandbox, as the shared contract and the WooCommerce tests use it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orderbridge.connectors.woocommerce import WooCommerceChannel
from orderbridge.connectors.woocommerce.webhooks import signature
from orderbridge.sandboxes.base import Fault, in_process_client
from orderbridge.sandboxes.woocommerce import WooState, create_sandbox

KEY, SECRET, HOOK_SECRET = "ck_sandbox", "cs_sandbox", "whsec_contract"
CREDENTIALS = {"consumer_key": KEY, "consumer_secret": SECRET, "webhook_secret": HOOK_SECRET}


@dataclass
class WooEnv:
    state: WooState
    connector: WooCommerceChannel
    base_url: str
    webhook_secret: str = HOOK_SECRET

    def add_order(self, **overrides: Any) -> str:
        return str(self.state.add_order(**overrides)["id"])

    def update_order(self, external_id: str, **changes: Any) -> None:
        self.state.update_order(int(external_id), **changes)

    def add_unreadable_order(self) -> str:
        return self.add_order(total="12,50")

    def order_count(self) -> int:
        return sum(1 for o in self.state.orders.values() if o["status"] != "trash")

    def revoke(self) -> None:
        self.state.revoke()

    def restore(self) -> None:
        self.state.restore()

    def fault(self, kind: str, **kw: Any) -> None:
        self.state.add_fault(Fault(kind, path="/wp-json", retry_after=0.01, **kw))

    def signed_delivery(self, external_id: str, *, signed: bool = True) -> tuple[dict[str, str], bytes]:
        """The order as WooCommerce's ``order.updated`` delivery carries it, signed with the secret."""
        body = json.dumps(self.state.view(int(external_id)), separators=(",", ":")).encode()
        headers = {
            "x-wc-webhook-topic": "order.updated",
            "x-wc-webhook-resource": "order",
            "x-wc-webhook-event": "updated",
            "x-wc-webhook-id": "1",
            "x-wc-webhook-delivery-id": f"contract-{external_id}",
            "x-wc-webhook-source": self.base_url + "/",
        }
        if signed:
            headers["x-wc-webhook-signature"] = signature(self.webhook_secret, body)
        return headers, body

    def notes(self, external_id: str) -> list[dict[str, Any]]:
        return list(self.state.notes[int(external_id)])


def make_env(
    orders: int = 40, *, base_url: str = "http://sandbox.local", status_rules: str = "permissive", **settings: Any
) -> WooEnv:
    state, app = create_sandbox(orders=orders, status_rules=status_rules)
    http = in_process_client(app, base_url)
    connector = WooCommerceChannel(
        base_url, CREDENTIALS, {"per_page": 10, **settings}, http=http, sleep=lambda _s: None
    )
    return WooEnv(state, connector, base_url)


LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
