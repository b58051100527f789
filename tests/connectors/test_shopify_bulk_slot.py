"""Shopify's one bulk slot per app and shop: the connector adopts its own export, cancels anybody
else's, resolves a lost start by looking, and waits a bounded time — proven from the sandbox's
ledger of bulk operations started and cancelled, on the sandbox's clock (no real sleeping)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from graphql import parse, print_ast

from orderbridge.connectors.base import ChannelBatch
from orderbridge.connectors.shopify import ShopifyChannel
from orderbridge.connectors.shopify.connector import BULK_QUERY, BulkOperationBusy
from orderbridge.sandboxes.base import ASGIThreadTransport, Fault
from orderbridge.sandboxes.shopify import ShopifyState, create_sandbox
from tests.connectors.conftest import FakeClock

BASE = "http://sandbox.local"
FOREIGN_QUERY = "{ orders { edges { node { id name } } } }"
RUN = """mutation($q: String!) { bulkOperationRunQuery(query: $q) {
    bulkOperation { id createdAt } userErrors { message } } }"""


class LoseTheAnswerToTheBulkStart(httpx.BaseTransport):
    """Queues the sandbox's ``truncate`` fault (applied, then the response cut) for the first
    ``bulkOperationRunQuery`` that passes, so exactly that request loses its answer."""

    def __init__(self, inner: httpx.BaseTransport, state: ShopifyState, kind: str) -> None:
        self.inner, self.state, self.kind = inner, state, kind
        self.armed = True

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.armed and b"bulkOperationRunQuery" in request.read():
            self.armed = False
            self.state.add_fault(Fault(self.kind, path="/admin", count=1, delay=5.0))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


@dataclass
class Shop:
    state: ShopifyState
    connector: ShopifyChannel
    http: httpx.Client
    clock: FakeClock

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.post(
            "/admin/api/2025-01/graphql.json",
            json={"query": query, "variables": variables or {}},
            headers={"X-Shopify-Access-Token": "shpat_sandbox"},
        )
        body: dict[str, Any] = response.json()["data"]
        return body

    def start(self, query: str) -> dict[str, Any]:
        """A bulk query started by someone else (or by a sync that was killed after starting it)."""
        op: dict[str, Any] = self.gql(RUN, {"q": query})["bulkOperationRunQuery"]["bulkOperation"]
        return op

    def backfill(self) -> list[ChannelBatch]:
        return list(self.connector.list_changed(None))

    def started(self) -> list[str]:
        return [str(e.data["query"]) for e in self.state.entries("bulk_operation")]

    def cancelled(self) -> list[str]:
        return [e.key for e in self.state.entries("bulk_operation_cancel")]


@pytest.fixture
def shop(request: pytest.FixtureRequest) -> Iterator[Shop]:
    state, app = create_sandbox(orders=25, seed=9, limits=False, bulk_seconds=30.0)
    clock = FakeClock()
    state.monotonic = clock.monotonic  # the connector's sleeps are the time that passes in the shop
    lose = getattr(request, "param", None)
    transport: httpx.BaseTransport = ASGIThreadTransport(app)
    if lose:
        transport = LoseTheAnswerToTheBulkStart(transport, state, lose)
    http = httpx.Client(transport=transport, base_url=BASE, timeout=2.0)
    connector = ShopifyChannel(BASE, {"access_token": "shpat_sandbox"}, {}, http=http, sleep=clock.sleep)
    connector.client.monotonic = clock.monotonic
    yield Shop(state, connector, http, clock)
    http.close()


def _records(batches: list[ChannelBatch]) -> set[str]:
    return {r.external_id for b in batches for r in b.records}


def _cursor(batches: list[ChannelBatch]) -> datetime | None:
    cursors = [b.cursor_after for b in batches if b.cursor_after is not None]
    assert len(cursors) <= 1, "only the last batch of a bulk export carries the cursor"
    return cursors[0] if cursors else None


def test_an_export_of_this_hubs_query_left_running_by_a_killed_sync_is_adopted_not_run_again(shop: Shop) -> None:
    left = shop.start(BULK_QUERY)
    batches = shop.backfill()
    assert _records(batches) == {str(i) for i in shop.state.orders}
    assert _cursor(batches) == datetime.fromisoformat(left["createdAt"]), "the adopted export's createdAt"
    assert shop.started() == [BULK_QUERY], "one export, the adopted one"
    assert shop.cancelled() == []


def test_this_hubs_query_laid_out_differently_is_still_recognised_as_its_own(shop: Shop) -> None:
    shop.start(print_ast(parse(BULK_QUERY)))  # the same document over many lines, indented
    assert _records(shop.backfill()) == {str(i) for i in shop.state.orders}
    assert len(shop.started()) == 1 and shop.cancelled() == []


def test_a_recently_completed_export_of_this_hubs_query_is_used_as_it_is(shop: Shop) -> None:
    left = shop.start(BULK_QUERY)
    shop.clock.sleep(31.0)  # it completed while no sync was running
    batches = shop.backfill()
    assert _records(batches) == {str(i) for i in shop.state.orders}
    assert _cursor(batches) == datetime.fromisoformat(left["createdAt"])
    assert shop.started() == [BULK_QUERY]


def test_a_completed_export_older_than_an_hour_is_not_adopted_a_fresh_one_runs(shop: Shop) -> None:
    shop.start(BULK_QUERY)
    shop.clock.sleep(31.0)
    shop.connector.clock = lambda: datetime.now(UTC) + timedelta(hours=2)
    batches = shop.backfill()
    assert _records(batches) == {str(i) for i in shop.state.orders}
    assert shop.started() == [BULK_QUERY, BULK_QUERY]
    assert shop.cancelled() == []


def test_a_foreign_bulk_query_running_is_cancelled_and_a_fresh_export_started(shop: Shop) -> None:
    foreign = shop.start(FOREIGN_QUERY)
    batches = shop.backfill()
    assert _records(batches) == {str(i) for i in shop.state.orders}
    assert shop.cancelled() == [foreign["id"]]
    assert shop.started() == [FOREIGN_QUERY, BULK_QUERY]
    fresh = shop.state.bulk
    assert fresh is not None and _cursor(batches) == datetime.fromisoformat(fresh.created_at)
    assert [b for b in batches if not b.records and b.cursor_after is None], "the waits renew the lease"


@pytest.mark.parametrize("shop", ["truncate"], indirect=True)
def test_a_lost_answer_to_the_bulk_start_is_settled_by_reading_the_current_operation(shop: Shop) -> None:
    batches = shop.backfill()
    assert shop.state.faults == [], "the start's answer was cut"
    assert _records(batches) == {str(i) for i in shop.state.orders}
    assert shop.started() == [BULK_QUERY], "the applied start was found, not sent again"
    assert _cursor(batches) is not None


def test_an_export_that_will_not_finish_cancelling_fails_the_sync_after_a_bounded_wait_and_is_not_cancelled_again(
    shop: Shop,
) -> None:
    shop.state.bulk_cancel_seconds = 10_000.0
    foreign = shop.start(FOREIGN_QUERY)
    for _ in range(2):
        before = shop.clock.now
        with pytest.raises(BulkOperationBusy) as caught:
            shop.backfill()
        assert (caught.value.operation_id, caught.value.status) == (foreign["id"], "CANCELING")
        assert caught.value.code == "shopify_bulk_busy" and caught.value.retry_after
        assert foreign["id"] in str(caught.value)
        assert 60.0 <= shop.clock.now - before <= 70.0, "bounded by BULK_CANCEL_WAIT_S"
    assert shop.cancelled() == [foreign["id"]], "cancelled once; the next sync only waits"
    assert shop.started() == [FOREIGN_QUERY]
    shop.clock.sleep(10_000.0)  # it lets go at last: the next sync runs its own
    assert _records(shop.backfill()) == {str(i) for i in shop.state.orders}
    assert shop.started() == [FOREIGN_QUERY, BULK_QUERY]


def test_a_failed_foreign_export_is_left_alone_and_a_fresh_one_started(shop: Shop) -> None:
    shop.start("{ webhookSubscriptions { edges { node { id } } } }")  # not orders: the sandbox fails it
    shop.clock.sleep(31.0)
    assert shop.gql("{ currentBulkOperation { status } }")["currentBulkOperation"]["status"] == "FAILED"
    assert _records(shop.backfill()) == {str(i) for i in shop.state.orders}
    assert shop.cancelled() == [] and len(shop.started()) == 2
