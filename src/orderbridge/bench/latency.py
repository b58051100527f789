"""``orderbridge bench latency``: from an order placed in the channel to the order posted to the 3PL.

Everything is a separate process talking real HTTP on localhost, as in production: the Shopify
sandbox (it sends signed webhooks), the ShipStation sandbox (rate limit off — at ShipStation's
40 requests/minute no hub could post 20 single orders a second; the figure measured here is the
hub's own latency), and ``orderbridge serve`` (HTTP receiver + scheduler + poster) on SQLite.

For each mode, orders are created in the Shopify sandbox at a steady ``rate`` through its control
API; the creation time is taken just before the request. The posted time is the ShipStation
sandbox's own ledger timestamp of the ``createorder`` that carried the order. Both clocks are this
machine's wall clock.

- ``webhook``: the hub subscribes to the sandbox's webhooks at start (polling still runs at its
  default interval, as in production).
- ``poll``: no webhooks; the hub polls every ``poll_interval`` seconds — the latency is then about
  half the interval on average, which is the point of the comparison.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from orderbridge.bench.procs import sandbox_process
from orderbridge.crypto import generate_key
from orderbridge.sandboxes.base import free_port
from orderbridge.sandboxes.shopify import generator
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.scope import Scope
from orderbridge.settings import Settings

TOKEN = "shpat_sandbox"
SECRET = "shpss_sandbox"


def run(
    *,
    orders: int = 1000,
    rate: float = 20.0,
    poll_interval: float = 60.0,
    webhooks: bool = True,
    poll: bool = True,
    quiet: bool = False,
) -> dict[str, Any]:
    def say(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    result: dict[str, Any] = {"orders": orders, "rate_per_s": rate, "poll_interval_s": poll_interval}
    modes = [m for m, on in (("webhook", webhooks), ("poll", poll)) if on]
    for mode in modes:
        say(f"{mode}: {orders} orders at {rate:g}/s …")
        lat, unposted = _run_mode(mode, orders, rate, poll_interval)
        result[f"{mode}_posted"] = len(lat)
        result[f"{mode}_unposted"] = unposted
        result.update(_percentiles(mode, lat))
    return result


def _percentiles(mode: str, latencies_ms: list[float]) -> dict[str, float | None]:
    if len(latencies_ms) < 2:
        return {f"{mode}_{k}_ms": None for k in ("p50", "p95", "p99", "max")}
    q = statistics.quantiles(latencies_ms, n=100, method="inclusive")
    return {
        f"{mode}_p50_ms": round(statistics.median(latencies_ms), 1),
        f"{mode}_p95_ms": round(q[94], 1),
        f"{mode}_p99_ms": round(q[98], 1),
        f"{mode}_max_ms": round(max(latencies_ms), 1),
    }


def _run_mode(mode: str, n: int, rate: float, poll_interval: float) -> tuple[list[float], int]:
    with (
        tempfile.TemporaryDirectory(prefix="ob-latency-") as tmp,
        sandbox_process("shopify", "--orders", "0", "--no-limits", "--api-secret", SECRET) as shop_url,
        sandbox_process("shipstation", "--no-limits", "--ship-after", "86400") as ss_url,
    ):
        key = generate_key()
        settings = Settings(data_dir=Path(tmp), secret_key=key)
        hub = Hub.from_settings(settings)
        scope = Scope.named(hub, "default")  # the fresh ledger's one tenant
        shop_id = add_connection(scope, "shop", "shopify", shop_url, {"access_token": TOKEN, "api_secret": SECRET}).id
        warehouse = add_connection(
            scope, "warehouse", "shipstation", ss_url, {"api_key": "ss_key", "api_secret": "ss_secret"}
        ).id
        for sku, _title, _price in generator.CATALOG:
            set_mapping(scope, "sku", sku, sku, warehouse)
        set_mapping(scope, "shipping", "*", "ups:ups_ground", warehouse)
        hub.close()
        port = free_port()
        env = {
            **os.environ,
            "ORDERBRIDGE_DATA_DIR": tmp,
            "ORDERBRIDGE_SECRET_KEY": key,
            "ORDERBRIDGE_POLL_INTERVAL_S": str(poll_interval if mode == "poll" else 60.0),
            "ORDERBRIDGE_SHIPMENT_POLL_INTERVAL_S": "3600",
            "ORDERBRIDGE_WEBHOOKS": "true" if mode == "webhook" else "false",
            "ORDERBRIDGE_CURSOR_OVERLAP_S": "5",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "orderbridge.cli.main", "serve", "--port", str(port), "--tick", "0.5"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            client = httpx.Client(timeout=10)
            _wait_ready(client, proc, f"http://127.0.0.1:{port}/healthz", shop_url, mode)
            created: dict[str, datetime] = {}
            start = time.perf_counter()
            for i in range(n):
                delay = start + i / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                at = datetime.now(UTC)
                order = client.post(f"{shop_url}/_sandbox/orders", json={}).json()
                created[f"ob-{shop_id}-{order['id']}"] = at
            deadline = time.monotonic() + (poll_interval if mode == "poll" else 0) + 60
            posted: dict[str, datetime] = {}
            while time.monotonic() < deadline:
                for e in client.get(f"{ss_url}/_sandbox/ledger", params={"kind": "order_created"}).json():
                    if e["key"] in created and e["key"] not in posted:
                        posted[e["key"]] = datetime.fromisoformat(e["at"])
                if len(posted) == len(created):
                    break
                time.sleep(0.5)
            client.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                _out, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _out, err = proc.communicate()
            if proc.returncode not in (0, -signal.SIGTERM):
                print(err.decode()[-3000:], file=sys.stderr)
        latencies = [(posted[k] - created[k]).total_seconds() * 1000 for k in posted]
        return latencies, len(created) - len(posted)


def _wait_ready(client: httpx.Client, proc: subprocess.Popen[bytes], healthz: str, shop_url: str, mode: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"orderbridge serve exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            ready = client.get(healthz).status_code in (200, 503)
            if ready and mode == "webhook":
                subs = client.get(f"{shop_url}/_sandbox/webhooks").json()
                ready = bool(subs.get("subscriptions"))
            if ready:
                time.sleep(1.0)  # let the first (empty) sync finish
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("orderbridge serve did not become ready within 60 s")


def render(result: dict[str, Any], console: Console) -> None:
    table = Table("mode", "posted", "p50 ms", "p95 ms", "p99 ms", "max ms")
    for mode in ("webhook", "poll"):
        if f"{mode}_posted" in result:
            table.add_row(
                mode,
                f"{result[f'{mode}_posted']} ({result[f'{mode}_unposted']} not posted)",
                *(str(result.get(f"{mode}_{k}_ms")) for k in ("p50", "p95", "p99", "max")),
            )
    console.print(
        f"{result['orders']} orders at {result['rate_per_s']:g}/s; polling mode every {result['poll_interval_s']:g}s"
    )
    console.print(table)
