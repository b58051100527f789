"""Issue #12: the Shopify connector stays on a supported API version and notices when it is not.

Every GraphQL document the connector sends — its constants, the list query for every lines hint,
and each one it actually sent during a sync, a backfill, a push, a tracking update, webhook
management and an audit — is valid against the published schema of every version the sandbox
serves. Its default version is the newest one; a response that says the version is deprecated or
retired is read on every call and kept as the connection's deprecation.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from graphql import OperationDefinitionNode, parse, validate

from orderbridge.connectors.base import FulfilmentLine, FulfilmentRequest
from orderbridge.connectors.shopify import connector as shopify_connector
from orderbridge.connectors.shopify.client import API_VERSION, support_ends
from orderbridge.connectors.shopify.connector import DEFAULT_SETTINGS, ShopifyChannel, list_query
from orderbridge.domain.order import Order
from orderbridge.sandboxes.base import in_process_client
from orderbridge.sandboxes.shopify import create_sandbox
from orderbridge.sandboxes.shopify.schema import newest_version, schema, served_versions

BASE = "http://sandbox.local"
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def _documents_in_the_module() -> dict[str, str]:
    found = {}
    for name, value in vars(shopify_connector).items():
        if not isinstance(value, str) or "{" not in value:
            continue
        try:
            doc = parse(value)
        except Exception:  # noqa: BLE001 - not GraphQL: some other constant
            continue
        if any(isinstance(d, OperationDefinitionNode) for d in doc.definitions):
            found[name] = value
    for hint in (1, 5, 50):
        found[f"list_query({hint})"] = list_query(hint)
    return found


def test_the_default_version_is_the_newest_the_sandbox_serves() -> None:
    assert DEFAULT_SETTINGS["api_version"] == API_VERSION == newest_version()
    assert support_ends(API_VERSION) is not None and support_ends(API_VERSION) > date(2027, 1, 1)  # type: ignore[operator]


@pytest.mark.parametrize("version", served_versions())
def test_every_document_in_the_connector_is_valid_against_each_served_version(version: str) -> None:
    documents = _documents_in_the_module()
    assert {"BULK_QUERY", "BULK_RUN", "FULFILLMENT_CREATE", "STAMPS_QUERY", "WEBHOOK_CREATE"} <= set(documents)
    for name, text in documents.items():
        errors = validate(schema(version), parse(text))
        assert not errors, f"{name} is not valid against {version}: {[e.message for e in errors]}"


def test_every_document_the_connector_sends_is_valid_against_each_served_version() -> None:
    state, app = create_sandbox(orders=30, seed=9, limits=False, bulk_seconds=0.0)
    sent: list[str] = []
    http = in_process_client(app, BASE)
    http.event_hooks["request"] = [
        lambda request: (
            sent.append(json.loads(request.content)["query"]) if request.url.path.endswith("graphql.json") else None
        )
    ]
    connector = ShopifyChannel(BASE, {"access_token": "shpat_sandbox"}, {}, http=http, sleep=lambda _s: None)
    try:
        list(connector.list_changed(LONG_AGO))  # bulk backfill
        connector.settings["bulk_backfill"] = False
        list(connector.list_changed(LONG_AGO))  # pages
        order = connector.fetch_order(str(state.add_order()["id"]))
        assert isinstance(order, Order)
        lines = tuple(FulfilmentLine(li.external_id, li.open_quantity) for li in order.lines if li.open_quantity)
        fid = connector.push_fulfilment(FulfilmentRequest(order.external_id, lines, "T-1", "UPS"))
        connector.push_fulfilment(FulfilmentRequest(order.external_id, (), "T-2", "UPS", replaces_fulfilment_id=fid))
        connector.register_webhooks("http://hub.local/webhooks/shopify")
        connector.remove_webhooks()
        list(connector.list_order_stamps(LONG_AGO, datetime.now(UTC)))
        connector.check()
    finally:
        http.close()
    assert len(set(sent)) >= 10
    for text in set(sent):
        for version in served_versions():
            errors = validate(schema(version), parse(text))
            assert not errors, f"sent a document invalid against {version}: {[e.message for e in errors]}\n{text}"
    assert connector.client.served_version == API_VERSION and connector.client.deprecation is None


def test_a_retired_version_is_noticed_on_the_response_that_says_so() -> None:
    state, app = create_sandbox(orders=3, seed=9, limits=False)
    http = in_process_client(app, BASE)
    connector = ShopifyChannel(
        BASE, {"access_token": "shpat_sandbox"}, {"api_version": "2025-01"}, http=http, sleep=lambda _s: None
    )
    try:
        connector.check()
        found = connector.client.deprecation
        assert found is not None and found.retired
        assert (found.requested, found.served) == ("2025-01", served_versions()[0])
        assert found.ends == date(2026, 1, 1) and "2025-01" in found.message() and "2026-01-01" in found.message()
        # a version still served but flagged as deprecated
        state.deprecated_versions[served_versions()[0]] = "support for this version ends soon"
        connector.client.api_version = served_versions()[0]
        connector.client.endpoint = f"{BASE}/admin/api/{served_versions()[0]}/graphql.json"
        connector.check()
        flagged = connector.client.deprecation
        assert flagged is not None and not flagged.retired and flagged.reason == "support for this version ends soon"
        del state.deprecated_versions[served_versions()[0]]
        connector.check()
        assert connector.client.deprecation is None  # the next clean response clears it
    finally:
        http.close()
