"""Helpers for end-to-end tests: sandboxes in their own processes, the CLI as a subprocess, and an
independent oracle that computes, from the Shopify sandbox's own REST API, which orders should reach
the 3PL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx

TOKEN = "shpat_sandbox"
API = "/admin/api/2025-01"


def all_shopify_orders(base_url: str) -> list[dict[str, Any]]:
    """Every order in the sandbox, read over REST with Link pagination (not through OrderBridge)."""
    out: list[dict[str, Any]] = []
    url: str | None = f"{base_url}{API}/orders.json?status=any&limit=250"
    with httpx.Client(headers={"X-Shopify-Access-Token": TOKEN}, timeout=30) as client:
        while url:
            response = client.get(url)
            response.raise_for_status()
            out.extend(response.json()["orders"])
            url = response.links.get("next", {}).get("url")
    return out


def downloadable(order: dict[str, Any], mapped_skus: set[str], mapped_methods: set[str]) -> bool:
    """Seed 000's rules restated independently: paid, unfulfilled/partial, open, live, every line
    left to fulfil mapped."""
    if order.get("test") or order.get("cancelled_at") or order.get("closed_at"):
        return False
    if order.get("financial_status") != "paid" or order.get("fulfillment_status") not in (None, "partial"):
        return False
    # only what is left to fulfil is sent: a line fulfilled in Shopify needs no mapping, and an order
    # with nothing left is not posted
    lines = [li for li in order.get("line_items") or [] if li.get("fulfillable_quantity", li.get("quantity", 0)) > 0]
    if not lines or any(not li.get("sku") or li["sku"] not in mapped_skus for li in lines):
        return False
    ship = order.get("shipping_lines") or []
    method = (ship[0].get("code") or ship[0].get("title")) if ship else None
    return method in mapped_methods and Decimal(str(order["total_price"])) >= 0


def ledger_entries(base_url: str, kind: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base_url}/_sandbox/ledger", params={"kind": kind}, timeout=30)
    response.raise_for_status()
    entries: list[dict[str, Any]] = response.json()
    return entries


def cli(
    env: dict[str, str], *args: str, crash_at: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env}
    full_env.pop("ORDERBRIDGE_CRASH_AT", None)
    if crash_at:
        full_env["ORDERBRIDGE_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "orderbridge.cli.main", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]
