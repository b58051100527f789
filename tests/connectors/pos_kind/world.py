"""The world the POS tests run in: a TinyShop channel and a TinyPOS destination, both over real HTTP,
connected to the hub as ``shop`` and ``pos``; helpers that read the ledger as a person would."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from orderbridge.runtime.worker import CycleReport, run_cycle
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.storage.tables import events, order_reasons, orders
from tests.connectors.extra_kind.sandbox import SHOP_SECRET, SHOP_TOKEN, TinyShopState, shop_app
from tests.connectors.pos_kind.sandbox import POS_TOKEN, TinyPosState, pos_app
from tests.scoped import cid, tenant


@dataclass
class World:
    hub: Hub
    shop: TinyShopState
    pos: TinyPosState
    shop_id: int

    def cycle(self) -> CycleReport:
        report = run_cycle(tenant(self.hub))
        assert report.crashed == [], report.crashed
        return report

    def post_report(self, report: CycleReport) -> dict[str, Any]:
        return next(p for p in report.posts if p["destination"] == "pos")

    def state(self, external_id: str) -> str:
        with self.hub.db.read() as conn:
            return str(conn.execute(select(orders.c.state).where(orders.c.external_id == external_id)).scalar_one())

    def holds(self, external_id: str) -> dict[tuple[str, str], dict[str, Any]]:
        """The order's open reasons: (code, value) → message and fix."""
        with self.hub.db.read() as conn:
            rows = conn.execute(
                select(order_reasons.c.code, order_reasons.c.value, order_reasons.c.message, order_reasons.c.fix)
                .join(orders, orders.c.id == order_reasons.c.order_id)
                .where(orders.c.external_id == external_id, order_reasons.c.released_at.is_(None))
            ).all()
        return {(r.code, r.value): {"message": r.message, "fix": r.fix} for r in rows}

    def timeline(self, external_id: str, kind: str) -> list[dict[str, Any]]:
        with self.hub.db.read() as conn:
            rows = conn.execute(
                select(events.c.message, events.c.data)
                .join(orders, orders.c.id == events.c.order_id)
                .where(orders.c.external_id == external_id, events.c.kind == kind)
                .order_by(events.c.id)
            ).all()
        return [{"message": r.message, **(r.data or {})} for r in rows]

    def sale(self, external_id: str) -> dict[str, Any] | None:
        return self.pos.sale_of(f"pos-{external_id}@{self.shop_id}")

    @property
    def pos_id(self) -> int:
        return cid(self.hub, "pos")


@pytest.fixture
def world(hub: Hub) -> Iterator[World]:
    # held orders checked again at every run (the throttle of decision 211 is its own test)
    hub.settings = hub.settings.model_copy(update={"preflight_recheck_s": 0.0})
    shop, pos = TinyShopState(), TinyPosState()
    with run_in_thread(shop_app(shop)) as shop_http, run_in_thread(pos_app(pos)) as pos_http:
        credentials = {"token": SHOP_TOKEN, "signing_secret": SHOP_SECRET}
        row = add_connection(tenant(hub), "shop", "tinyshop", shop_http.base_url, credentials)
        add_connection(tenant(hub), "pos", "tinypos", pos_http.base_url, {"token": POS_TOKEN})
        yield World(hub, shop, pos, row.id)
