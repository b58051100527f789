"""The adversarial suite's harness: a real world to attack, the four outcomes, and the tally.

A :class:`World` is what a hostile store meets in production: a Shopify sandbox (orders reach the
hub by GraphQL pages, a bulk export or REST webhooks, all served over real HTTP), the hub's own
webhook receiver on a real port, a real database (SQLite or PostgreSQL, from ``tests/conftest.py``)
and a ShipStation sandbox as destination, whose own ledger says what was posted.

Every input the suite tries is judged against exactly one expected :class:`Expect`:

- ``posted``: stored, and the 3PL created its document exactly once (its ledger, not ours);
- ``held``: stored, held, with an open reason of that code whose value names the field or value;
- ``skipped``: stored, skipped, with the reason naming the rule;
- ``refused``: a 4xx (or, from a sync, counted as refused), and nothing stored — no order row, no
  delivery row, nothing posted.

:data:`TALLY` counts what was judged, by source (hand-written or generated) and outcome; the
root ``conftest.py`` prints it (tests/summaries.py) in pytest's terminal summary so CI output says how many
inputs the suite tried.
"""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from sqlalchemy import func, select
from typer.testing import CliRunner

from orderbridge.connectors.shopify.webhooks import signature
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shipstation.state import ShipStationState
from orderbridge.sandboxes.shopify import generator
from orderbridge.sandboxes.shopify.app import create_sandbox as shopify_sandbox
from orderbridge.sandboxes.shopify.state import ShopifyState
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.storage.tables import connections, cursors, order_reasons, orders, webhook_deliveries
from orderbridge.web.app import create_app
from tests.scoped import cid, tenant
from tests.web.hostile import Logs, captured_logs

SECRET = "shpss_adversarial"
TOKEN = "shpat_sandbox"
KINDS = ("posted", "held", "skipped", "refused")

#: raw bytes no terminal must receive from channel text: ESC, BEL, CSI (C1), DEL-less C1 range
RAW_CONTROLS = re.compile("[\x1b\x07\x80-\x9f\u202a-\u202e\u2066-\u2069]")


@dataclass(frozen=True, slots=True)
class Expect:
    """What one input must end as. ``code``: the reason code (held, skipped); ``value``: a substring
    the reason's value (or message) must contain — the field or value named; ``status``: the 4xx a
    refused webhook gets (``None``: refused by a sync, reported in its counts)."""

    kind: str
    code: str = ""
    value: str = ""
    status: int | None = None
    #: further reason codes a held order must also carry (a generated order may break several rules)
    also: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        assert self.kind in (*KINDS, "held_again"), self.kind


def posted() -> Expect:
    return Expect("posted")


def held(code: str, value: str = "") -> Expect:
    return Expect("held", code, value)


def held_again(code: str, value: str = "") -> Expect:
    """Posted once, then held (a later version a destination must not be sent as it is)."""
    return Expect("held_again", code, value)


def skipped(code: str) -> Expect:
    return Expect("skipped", code)


def refused(status: int | None = None, value: str = "") -> Expect:
    return Expect("refused", value=value, status=status)


SOURCES = ("hand-written", "generated")
#: (source, kind) → inputs judged; the summary counts the SOURCES (plain orders and re-judging are not inputs)
TALLY: Counter[tuple[str, str]] = Counter()


def summary_line(tally: Counter[tuple[str, str]] | None = None) -> str:
    tally = TALLY if tally is None else tally
    hand = sum(n for (s, _k), n in tally.items() if s == "hand-written")
    gen = sum(n for (s, _k), n in tally.items() if s == "generated")
    counted = {key: n for key, n in tally.items() if key[0] in SOURCES}
    by_kind = ", ".join(f"{k} {sum(n for (_s, kk), n in counted.items() if kk == k)}" for k in KINDS)
    return f"adversarial suite: {hand + gen} inputs tried ({hand} hand-written, {gen} generated), outcomes: {by_kind}"


# --- the world ---------------------------------------------------------------------------------------


@dataclass
class World:
    hub: Hub
    shop: ShopifyState
    ss: ShipStationState
    receiver: str
    client: httpx.Client
    logs: Logs
    statuses: Counter[int] = field(default_factory=Counter)

    # what the 3PL has (its own ledger)
    def posted(self) -> Counter[str]:
        """external id → how many times the ShipStation sandbox created its document."""
        return Counter(e.key.split("-", 2)[2] for e in self.ss.entries("order_created") if e.key.startswith("ob-"))

    def document(self, external_id: str) -> dict[str, Any] | None:
        for key, doc in self.ss.orders_by_key().items():
            if key.startswith("ob-") and key.split("-", 2)[2] == external_id:
                return doc
        return None

    # what the hub has
    def rows(self) -> dict[str, Any]:
        with self.hub.db.read() as conn:
            return {r.external_id: r for r in conn.execute(select(orders))}

    def reasons(self) -> dict[str, list[tuple[str, str, str]]]:
        """external id → open (code, value, message)."""
        out: dict[str, list[tuple[str, str, str]]] = {}
        with self.hub.db.read() as conn:
            q = (
                select(orders.c.external_id, order_reasons.c.code, order_reasons.c.value, order_reasons.c.message)
                .join(orders, orders.c.id == order_reasons.c.order_id)
                .where(order_reasons.c.released_at.is_(None))
            )
            for ext, code, value, message in conn.execute(q):
                out.setdefault(ext, []).append((code, value, message))
        return out

    def deliveries(self) -> int:
        with self.hub.db.read() as conn:
            return int(conn.execute(select(func.count()).select_from(webhook_deliveries)).scalar_one())

    def cursor(self) -> datetime | None:
        with self.hub.db.read() as conn:
            value: datetime | None = conn.execute(
                select(func.max(cursors.c.value))
                .join(connections, connections.c.id == cursors.c.connection_id)
                .where(connections.c.name == "shop")
            ).scalar_one()
        return value

    # the receiver
    def deliver(
        self,
        payload: Any = None,
        *,
        body: bytes | None = None,
        topic: str = "orders/updated",
        webhook_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        raw = json.dumps(payload).encode() if body is None else body
        sent = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Shop-Domain": "sandbox.myshopify.com",
            "X-Shopify-API-Version": "2025-01",
            "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
            "X-Shopify-Hmac-Sha256": signature(SECRET, raw),
            **(headers or {}),
        }
        response = self.client.post(f"{self.receiver}/webhooks/shopify/shop", content=raw, headers=sent)
        self.statuses[response.status_code] += 1
        assert response.status_code < 500, (response.status_code, response.text[:500])
        return response

    # the operator's terminal
    def cli(self, *args: str) -> str:
        """Run a CLI command in-process against this hub; return everything it printed."""
        from orderbridge.cli import common, main

        saved_hub, saved_close = common.make_hub, self.hub.close
        saved_widths = main.console.width, main.err.width
        saved_logging = structlog.get_config()
        common.make_hub = lambda: self.hub
        self.hub.close = lambda: None  # type: ignore[method-assign]
        main.console.width = main.err.width = 2000
        try:
            result = CliRunner().invoke(main.app, list(args))
        finally:
            common.make_hub = saved_hub
            self.hub.close = saved_close  # type: ignore[method-assign]
            main.console.width, main.err.width = saved_widths
            structlog.configure(**saved_logging)
        assert result.exit_code in (0, 1), (args, result.output[-2000:], result.exception)
        return result.output


def connect(hub: Hub, shop_url: str, ss_url: str, *, bulk: bool) -> None:
    credentials = {"access_token": TOKEN, "api_secret": SECRET}
    add_connection(tenant(hub), "shop", "shopify", shop_url, credentials, {"bulk_backfill": bulk})
    add_connection(tenant(hub), "warehouse", "shipstation", ss_url, {"api_key": "ss_key", "api_secret": "ss_secret"})
    for sku, _t, _p in generator.CATALOG:
        set_mapping(tenant(hub), "sku", sku, sku, cid(hub, "warehouse"))
    set_mapping(tenant(hub), "shipping", "*", "ups:ups_ground", cid(hub, "warehouse"))


@contextmanager
def world(hub: Hub, *, bulk: bool) -> Iterator[World]:
    shop, shop_app = shopify_sandbox(orders=0, seed=17, limits=False, api_secret=SECRET)
    ss, ss_app = shipstation_sandbox(limits=False, ship_after_seconds=3600.0)
    with (
        captured_logs() as logs,
        run_in_thread(shop_app) as s,
        run_in_thread(ss_app) as w,
    ):
        connect(hub, s.base_url, w.base_url, bulk=bulk)
        app = create_app(hub, wake=lambda: None)
        with run_in_thread(app) as receiver, httpx.Client(timeout=30) as client:
            yield World(hub, shop, ss, receiver.base_url, client, logs)


# --- judging -------------------------------------------------------------------------------------


def judge(w: World, cases: dict[str, Expect], *, source: str, labels: dict[str, str] | None = None) -> None:
    """Assert every input's outcome (``cases``: external id → what it must end as), then tally them.

    All failures are collected first, so one run shows every case that broke, not just the first."""
    rows, open_reasons, sent = w.rows(), w.reasons(), w.posted()
    wrong: list[str] = []
    for ext, expect in cases.items():
        row = rows.get(ext)
        reasons = open_reasons.get(ext, [])
        got = f"state={getattr(row, 'state', None)} reasons={[(c, v[:80]) for c, v, _m in reasons]} sent={sent[ext]}"
        if expect.kind == "refused":
            ok = row is None and sent[ext] == 0
        elif row is None:
            ok = False
        elif expect.kind == "posted":
            ok = row.state == "posted" and sent[ext] == 1 and not reasons
        else:
            want = "skipped" if expect.kind == "skipped" else "held"
            named = [(c, v, m) for c, v, m in reasons if c == expect.code and (expect.value in v or expect.value in m)]
            missing = expect.also - {c for c, _v, _m in reasons}
            once = 1 if expect.kind == "held_again" else 0
            ok = row.state == want and bool(named) and not missing and sent[ext] == once
        if not ok:
            wrong.append(f"{ext} ({(labels or {}).get(ext, '')}): expected {expect}, got {got}")
        TALLY[(source, "held" if expect.kind == "held_again" else expect.kind)] += 1
    assert not wrong, "\n".join(wrong)


def assert_quiet(w: World) -> None:
    """No error-level log record, no 5xx, anywhere in the run."""
    assert w.logs.errors() == [], w.logs.errors()[:10]
    assert all(status < 500 for status in w.statuses), w.statuses


def assert_terminal_safe(w: World, external_ids: list[str]) -> None:
    """What the operator reads — ``holds`` and ``orders show`` — carries no raw control byte."""
    outputs = {"holds": w.cli("holds"), "holds --skipped": w.cli("holds", "--skipped")}
    rows = w.rows()
    for ext in external_ids:
        if ext in rows:
            outputs[f"orders show {ext}"] = w.cli("orders", "show", ext)
    for what, out in outputs.items():
        found = RAW_CONTROLS.search(out)
        assert found is None, f"{what} printed a raw {found.group()!r}: {out[max(0, found.start() - 80) :][:200]!r}"
