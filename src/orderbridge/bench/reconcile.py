"""``orderbridge bench reconcile``: a 60-day audit of a large store, against the Shopify sandbox.

1. A fresh SQLite ledger backfills N orders (the sandbox spreads them over the last 50 days; its
   rate limits are off) through a connector wrapper that loses a share of the orders on the way —
   what dropped webhooks and a cursor gap look like from the ledger's side.
2. The audit (the daily one: the last 60 days) lists the channel's ids and update times, compares
   them with the ledger, fetches and ingests what is missing, and stores its report.
3. A second audit over the same window finds nothing: its time is the cost of proving "0 missing".

Printed: the audit times, the listing's API requests and cost (GraphQL points) as stored in the
report, and what was recovered.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from orderbridge.bench.procs import sandbox_process
from orderbridge.connectors.base import ChannelBatch
from orderbridge.crypto import generate_key
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.reconcile import reconcile
from orderbridge.services.scope import Scope
from orderbridge.services.sync import sync_channel
from orderbridge.settings import Settings

TOKEN = "shpat_sandbox"


class Lossy:
    """Wraps the real channel connector and drops ``rate`` of the orders its listing returns."""

    def __init__(self, inner: Any, rate: float, seed: int = 3) -> None:
        self.inner = inner
        self.rate = rate
        self.rng = random.Random(seed)
        self.lost: set[str] = set()
        self.declaration = inner.declaration

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def list_changed(self, since: datetime | None, until: datetime | None = None) -> Iterator[ChannelBatch]:
        for batch in self.inner.list_changed(since, until):
            kept = []
            for r in batch.records:
                if self.rng.random() < self.rate:
                    self.lost.add(r.external_id)
                else:
                    kept.append(r)
            yield ChannelBatch(kept, batch.cursor_after, batch.cost)


def run(*, orders: int = 100_000, lost: float = 0.001, quiet: bool = False) -> dict[str, Any]:
    def say(msg: str) -> None:
        if not quiet:
            print(msg, file=sys.stderr, flush=True)

    with (
        tempfile.TemporaryDirectory(prefix="ob-reconcile-") as tmp,
        sandbox_process("shopify", "--orders", str(orders), "--no-limits", "--lines", "3") as shop_url,
    ):
        hub = Hub.from_settings(Settings(data_dir=Path(tmp), secret_key=generate_key()))
        try:
            scope = Scope.named(hub, "default")  # the fresh ledger's one tenant
            row = add_connection(scope, "shop", "shopify", shop_url, {"access_token": TOKEN})
            lossy = Lossy(scope.channel(row), lost)
            hub.connectors[row.id] = lossy
            say(f"backfilling {orders} orders (losing {lost:.1%} on the way) …")
            t0 = time.perf_counter()
            sync = sync_channel(scope, row.id)
            backfill_s = time.perf_counter() - t0
            if sync.error:
                raise sync.error
            hub.connectors.pop(row.id)
            since = hub.now() - timedelta(days=60)
            say("auditing the last 60 days …")
            first = reconcile(scope, row.id, since=since, kind="daily")
            say("auditing again …")
            second = reconcile(scope, row.id, since=since, kind="daily")
        finally:
            hub.close()
    return {
        "orders": orders,
        "backfill_s": round(backfill_s, 2),
        "lost_on_the_way": len(lossy.lost),
        "audit_s": round(first.seconds, 2),
        "audit_channel_count": first.channel_count,
        "audit_recovered": first.recovered,
        "audit_missing_after": first.missing,
        "audit_api_requests": first.api_requests,
        "audit_api_cost": first.api_cost,
        "audit_summary": first.summary,
        "clean_audit_s": round(second.seconds, 2),
        "clean_audit_api_requests": second.api_requests,
        "clean_audit_api_cost": second.api_cost,
        "clean_audit_summary": second.summary,
        "target_s": 30,
    }


def render(result: dict[str, Any], console: Console) -> None:
    table = Table("audit", "seconds", "API requests", "API cost", "report")
    table.add_row(
        "with losses",
        str(result["audit_s"]),
        str(result["audit_api_requests"]),
        str(result["audit_api_cost"]),
        result["audit_summary"],
    )
    table.add_row(
        "clean",
        str(result["clean_audit_s"]),
        str(result["clean_audit_api_requests"]),
        str(result["clean_audit_api_cost"]),
        result["clean_audit_summary"],
    )
    console.print(
        f"{result['orders']} orders backfilled in {result['backfill_s']}s, {result['lost_on_the_way']} lost on the way"
    )
    console.print(table)
