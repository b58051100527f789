"""The receiver, two tenants, one process (decisions 82, 84): a webhook URL addresses a connection
by id, and that connection's tenant is the only one the delivery can reach.

The ``server`` fixture's ``default`` tenant has ``shop`` (secret ``SECRET``); a second tenant
``globex`` gets its own ``shop`` with another secret. Same name, same order ids: only the URL's id
tells them apart.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx
from sqlalchemy import func, select

from orderbridge.sandboxes.shopify import create_sandbox
from orderbridge.services.connections import add_connection
from orderbridge.services.queries import accounting, show_order
from orderbridge.services.scope import Scope
from orderbridge.services.tenants import add_tenant
from orderbridge.services.webhooks import webhook_address
from orderbridge.storage.tables import orders, webhook_deliveries
from tests.scoped import tenant
from tests.web.conftest import SECRET, Server, sign

OTHER_SECRET = "shpss_globex_secret"


def globex(server: Server) -> tuple[Scope, int]:
    scope = add_tenant(server.hub, "globex", "Globex")
    row = add_connection(
        scope, "shop", "shopify", "http://127.0.0.1:9", {"access_token": "shpat_g", "api_secret": OTHER_SECRET}
    )
    return scope, row.id


def post(server: Server, path: str, payload: dict[str, object], secret: str) -> httpx.Response:
    raw = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Shop-Domain": "sandbox.myshopify.com",
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
        "X-Shopify-Hmac-Sha256": sign(secret, raw),
    }
    return server.client.post(f"{server.url}{path}", content=raw, headers=headers)


def per_tenant(server: Server, table: object) -> dict[int, int]:
    with server.hub.db.read() as conn:
        rows = conn.execute(select(table.c.tenant_id, func.count()).group_by(table.c.tenant_id))  # type: ignore[attr-defined]
        return {int(t): int(n) for t, n in rows}


def new_order() -> dict[str, object]:
    state, _app = create_sandbox(orders=0, seed=5, limits=False)
    order: dict[str, object] = state.add_order()
    return order


def test_a_delivery_reaches_only_the_tenant_whose_connection_its_url_names(server: Server) -> None:
    scope_b, shop_b = globex(server)
    default = tenant(server.hub)
    payload = new_order()
    assert webhook_address(scope_b, scope_b.load(shop_b)).endswith(f"/webhooks/shopify/{shop_b}")

    landed = post(server, f"/webhooks/shopify/{shop_b}", payload, OTHER_SECRET)
    assert landed.status_code == 200 and landed.json()["outcome"] == "inserted", landed.text
    assert per_tenant(server, orders) == {scope_b.tenant_id: 1}
    assert per_tenant(server, webhook_deliveries) == {scope_b.tenant_id: 1}
    assert show_order(scope_b, str(payload["id"])).state in ("ready", "held")
    assert accounting(default)["ledger_orders"] == 0

    # the default tenant's secret does not sign for globex's connection, nor globex's for the default's
    forged = post(server, f"/webhooks/shopify/{shop_b}", new_order(), SECRET)
    assert forged.status_code == 401 and forged.json()["outcome"] == "rejected_signature"
    crossed = post(server, server.path("shop"), payload, OTHER_SECRET)
    assert crossed.status_code == 401
    assert per_tenant(server, orders) == {scope_b.tenant_id: 1}

    # the same order, to the default tenant's own connection: a second order, in its own tenant
    own = post(server, server.path("shop"), payload, SECRET)
    assert own.status_code == 200 and own.json()["outcome"] == "inserted"
    assert per_tenant(server, orders) == {default.tenant_id: 1, scope_b.tenant_id: 1}

    # a legacy name address is answered only while the name is one connection's: "shop" is two now
    ambiguous = post(server, "/webhooks/shopify/shop", new_order(), SECRET)
    assert ambiguous.status_code == 404 and ambiguous.json()["outcome"] == "rejected_unknown"
    unknown_id = post(server, "/webhooks/shopify/987654", new_order(), SECRET)
    assert unknown_id.status_code == 404

    text = server.client.get(f"{server.url}/metrics").text
    assert 'orderbridge_webhook_deliveries_total{connection="shop",outcome="inserted",tenant="globex"} 1.0' in text
    assert 'orderbridge_webhook_deliveries_total{connection="shop",outcome="inserted",tenant="default"} 1.0' in text
    assert 'orderbridge_orders{connection="shop",state="' in text and 'tenant="globex"} 1.0' in text


def test_a_legacy_name_address_still_reaches_a_connection_whose_name_is_unique(server: Server) -> None:
    response = post(server, "/webhooks/shopify/shop", new_order(), SECRET)  # one "shop" in the hub
    assert response.status_code == 200 and response.json()["outcome"] == "inserted", response.text


def test_healthz_lists_every_tenants_connections_each_with_its_tenant(server: Server) -> None:
    scope_b, shop_b = globex(server)
    report = server.client.get(f"{server.url}/healthz").json()
    seen = {(c["tenant"], c["name"], c["id"]) for c in report["connections"]}
    default = tenant(server.hub)
    assert seen == {
        ("default", "shop", default.connection_id("shop")),
        ("default", "wh", default.connection_id("wh")),
        ("globex", "shop", shop_b),
    }
    assert scope_b.slug == "globex"
