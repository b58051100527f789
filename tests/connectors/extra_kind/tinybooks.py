"""The TinyBooks destination: invoices upserted by key (client, mapper and declaration in one module)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from orderbridge.connectors.base import (
    Capability,
    CredentialField,
    Declaration,
    OutgoingOrder,
    PostResult,
    Role,
    Setting,
    SettingScope,
)
from orderbridge.connectors.http import RetryPolicy, call_with_retries, json_body, send
from orderbridge.domain.mappings import MappingKind
from orderbridge.errors import DestinationRejected

SYSTEM = "TinyBooks"


def invoice_body(outgoing: OutgoingOrder, book: str) -> dict[str, Any]:
    """Pure: the invoice an order becomes (the mapped SKU of each line still open)."""
    order = outgoing.resolved.order
    quantities = {line.external_id: line.open_quantity for line in order.lines}
    prices = {line.external_id: str(line.unit_price.amount) for line in order.lines}
    return {
        "number": order.number,
        "book": book,
        "currency": order.currency,
        "customer": order.email,
        "lines": [
            {"sku": line.destination_sku, "qty": quantities[line.line_key], "price": prices[line.line_key]}
            for line in outgoing.resolved.lines
        ],
        "total": str(order.total.amount),
    }


class TinyBooksDestination:
    declaration = Declaration(
        kind="tinybooks",
        role=Role.DESTINATION,
        title="TinyBooks",
        capabilities=frozenset({Capability.POST_ORDERS}),
        credentials=(CredentialField("api_key", "TinyBooks API key"),),
        settings=(
            Setting("book", "the book invoices are filed in", "sales"),
            Setting("required_fields", "an invoice names the customer by e-mail", ["email"], SettingScope.HUB),
        ),
        # invoices carry items, not shipping services: SKUs are mapped, shipping methods are not
        mapping_kinds=frozenset({MappingKind.SKU}),
        document_key="tiny-{external_id}@{channel_id}",
        docs="tests/connectors/extra_kind/__init__.py",
    )
    max_batch = 5

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = credentials["api_key"]
        self.book = str(settings["book"])
        self.http = http or httpx.Client(timeout=10)
        self.sleep = sleep

    def _send(self, method: str, path: str, **kw: Any) -> httpx.Response:
        def once() -> httpx.Response:
            request = self.http.build_request(method, f"{self.base_url}{path}", headers={"X-Books-Key": self.key}, **kw)
            response = send(self.http, request, system=SYSTEM)
            json_body(response, system=SYSTEM)  # a truncated answer is retried (the PUT is an upsert)
            return response

        return call_with_retries(once, RetryPolicy(attempts=4, base_delay=0.01), sleep=self.sleep)

    def check(self) -> str:
        data = json_body(self._send("GET", "/v1/ping"), system=SYSTEM)
        return f"{SYSTEM} reachable ({data['invoices']} invoices)"

    def close(self) -> None:
        self.http.close()

    def post_orders(self, orders: Sequence[OutgoingOrder]) -> list[PostResult]:
        results = []
        for outgoing in orders:
            response = self._send("PUT", f"/v1/invoices/{outgoing.order_key}", json=invoice_body(outgoing, self.book))
            body = json_body(response, system=SYSTEM)
            if response.status_code >= 400:
                error = DestinationRejected(f"{SYSTEM} refused the invoice: {body.get('error')}")
                results.append(PostResult(outgoing.order_key, None, error))
            else:
                results.append(PostResult(outgoing.order_key, str(body["id"])))
        return results
