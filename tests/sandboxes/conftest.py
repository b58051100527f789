"""Shared fixtures for sandbox tests: a small realistic Shopify store behind an in-process client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from orderbridge.sandboxes.base import in_process_client
from orderbridge.sandboxes.shopify import ShopifyState, create_sandbox

TOKEN = "shpat_sandbox"


@pytest.fixture
def shopify() -> Iterator[tuple[ShopifyState, httpx.Client]]:
    state, app = create_sandbox(orders=120, seed=11, limits=False)
    client = in_process_client(app)
    client.headers["X-Shopify-Access-Token"] = TOKEN
    yield state, client
    client.close()


def gql(client: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post("/admin/api/2026-07/graphql.json", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
