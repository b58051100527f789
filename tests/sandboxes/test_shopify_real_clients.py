"""Independently written Shopify clients from PyPI read the sandbox's orders, unchanged.

``tap-shopify`` (Singer, by singer-io/Stitch) is installed by ``make setup`` in a venv of its own
(``scripts/install-test-clients.sh``; its pins must not move the hub's). It builds its own
``https://<shop>.myshopify.com`` URLs, so it runs as a separate process whose only configuration
is the standard proxy and trust environment (:mod:`tests.sandboxes.tls`): every request it makes
reaches the sandbox through a loopback tunnel. Its orders stream is a GraphQL bulk export with
some 300 ``Order`` fields across connections, fragments on interfaces and unions (discount
applications), polled with ``node(id:)`` — the fidelity the published schema buys — after
``shop.json`` and the ``currentAppInstallation`` scopes at start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from orderbridge.sandboxes.shopify import create_sandbox
from tests.sandboxes.conftest import TOKEN
from tests.sandboxes.tls import serve_as_myshopify

ROOT = Path(__file__).resolve().parents[2]
TAP = ROOT / ".venv" / "clients" / "tap-shopify" / "bin" / "tap-shopify"


def _run(args: list[str], env: dict[str, str], cwd: Path) -> list[dict[str, Any]]:
    done = subprocess.run([str(TAP), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, f"tap-shopify failed:\n{done.stderr[-4000:]}"
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


@pytest.mark.slow
def test_tap_shopify_exports_every_order_by_bulk_query(tmp_path: Path) -> None:
    assert TAP.exists(), "tap-shopify is not installed: run `make setup` (scripts/install-test-clients.sh)"
    state, app = create_sandbox(orders=80, seed=41, bulk_seconds=0.0)
    # the tap reads ``updated_at < <its start, in whole seconds>``: an order updated in the second it
    # starts is its next run's, so the store's newest update must be at least a second older
    time.sleep(max(0.0, max(s.updated for s in state.orders.values()) + 1.05 - time.time()))
    with serve_as_myshopify(app, tmp_path) as tunnel:
        config = tmp_path / "config.json"
        start = (datetime.now(UTC) - timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
        config.write_text(
            json.dumps(
                {
                    "shop": "orderbridge-sandbox",
                    "access_token": TOKEN,
                    "start_date": start,
                    "date_window_size": 90,
                    "request_timeout": 60,
                }
            )
        )
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **tunnel.environment()}
        catalog = json.loads(
            subprocess.run(
                [str(TAP), "--config", str(config), "--discover"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=True,
            ).stdout
        )
        for stream in catalog["streams"]:  # the orders stream, every field of it
            for entry in stream["metadata"]:
                entry["metadata"]["selected"] = stream["tap_stream_id"] == "orders"
        (tmp_path / "catalog.json").write_text(json.dumps(catalog))
        messages = _run(["--config", str(config), "--catalog", str(tmp_path / "catalog.json")], env, tmp_path)
        assert tunnel.connects and all(t.endswith(".myshopify.com:443") for t in tunnel.connects)
    records = [m["record"] for m in messages if m.get("type") == "RECORD" and m.get("stream") == "orders"]
    missing = sorted(set(state.orders) - {int(r["legacyResourceId"]) for r in records})
    assert len(records) == len(state.orders) and not missing, (len(records), missing[:5])
    assert len(records[0]) > 100, sorted(records[0])  # the whole order, not a few fields
    for record in records:
        order = state.order(int(record["legacyResourceId"]))
        assert order is not None
        assert record["name"] == order["name"]
        assert Decimal(str(record["totalPriceSet"]["shopMoney"]["amount"])) == Decimal(order["total_price"])
        assert [li["sku"] for li in record["lineItems"]] == [li["sku"] for li in order["line_items"]]
    assert state.entries("bulk_operation"), "the tap read the orders through a bulk export"
