"""The hub's HTTP server on a real port, with a Shopify channel whose webhooks it verifies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shopify import generator
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.storage.repos import connections as connection_repo
from orderbridge.web.app import create_app
from orderbridge.web.metrics import HubMetrics
from tests.scoped import cid, tenant

SECRET = "shpss_test_secret"


@dataclass
class Server:
    hub: Hub
    url: str
    client: httpx.Client
    metrics: HubMetrics
    wakes: list[float]

    def deliver(
        self,
        payload: dict[str, Any],
        *,
        topic: str = "orders/updated",
        webhook_id: str | None = None,
        secret: str | None = SECRET,
        body: bytes | None = None,
        connection: str = "shop",
        domain: str = "sandbox.myshopify.com",
    ) -> httpx.Response:
        raw = body if body is not None else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Shop-Domain": domain,
            "X-Shopify-API-Version": "2025-01",
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
        }
        if secret is not None:
            signed = raw if body is None else json.dumps(payload).encode()
            headers["X-Shopify-Hmac-Sha256"] = sign(secret, signed)
        return self.client.post(f"{self.url}{self.path(connection)}", content=raw, headers=headers)

    def path(self, connection: str) -> str:
        """The receiver's path for the default tenant's connection ``connection``: by its id, as
        ``webhooks register`` subscribes it (decision 82); a name no connection has stays a name."""
        with self.hub.db.read() as conn:
            row = connection_repo.by_name(conn, tenant(self.hub).tenant_id, connection)
        return f"/webhooks/shopify/{row.id if row is not None else connection}"


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@pytest.fixture
def server(hub: Hub) -> Iterator[Server]:
    add_connection(
        tenant(hub), "shop", "shopify", "http://127.0.0.1:9", {"access_token": "shpat_x", "api_secret": SECRET}
    )
    add_connection(tenant(hub), "wh", "shipstation", "http://127.0.0.1:9", {"api_key": "k", "api_secret": "s"})
    for sku, _t, _p in generator.CATALOG:
        set_mapping(tenant(hub), "sku", sku, sku, cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "*", "ups:ups_ground", cid(hub, "wh"))
    metrics = HubMetrics(hub)
    hub.observer = metrics
    wakes: list[float] = []
    app = create_app(hub, metrics=metrics, wake=lambda: wakes.append(1.0))
    with run_in_thread(app) as running, httpx.Client(timeout=30) as client:  # type: ignore[arg-type]
        yield Server(hub, running.base_url, client, metrics, wakes)
