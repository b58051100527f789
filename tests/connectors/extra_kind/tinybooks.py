"""The TinyBooks destination: invoices upserted by key (client, mapper and declaration in one module).

Issue #15: TinyBooks is also an accounting destination that amends what it holds
(``AMEND_DOCUMENTS``): an address, customer or note change updates the invoice in place (a PATCH
with its revision), changed lines or totals void it and post a new one, a cancellation voids it,
a refund is a refund document against it — every call carrying its idempotency key as
``Request-Id`` so a repeat is answered, never done twice."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import httpx

from orderbridge.connectors.base import (
    Adjustment,
    Amendment,
    Capability,
    CredentialField,
    Declaration,
    OutgoingOrder,
    PostedDocument,
    PostResult,
    RemoteDocument,
    Role,
    Setting,
    SettingScope,
)
from orderbridge.connectors.http import RetryPolicy, call_with_retries, json_body, send
from orderbridge.domain.changes import ChangeClass
from orderbridge.domain.mappings import MappingKind
from orderbridge.domain.money import Money
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
        capabilities=frozenset({Capability.POST_ORDERS, Capability.AMEND_DOCUMENTS}),
        credentials=(CredentialField("api_key", "TinyBooks API key"),),
        settings=(
            Setting("book", "the book invoices are filed in", "sales"),
            Setting("document_type", "what TinyBooks calls a posted document", "invoice"),
            Setting("required_fields", "an invoice names the customer by e-mail", ["email"], SettingScope.HUB),
        ),
        # invoices carry items, not shipping services: SKUs are mapped, shipping methods are not
        mapping_kinds=frozenset({MappingKind.SKU}),
        document_key="tiny-{external_id}@{channel_id}",
        amendments=MappingProxyType(
            {
                ChangeClass.SHIPPING_ADDRESS: Amendment.UPDATE_IN_PLACE,
                ChangeClass.CUSTOMER: Amendment.UPDATE_IN_PLACE,
                ChangeClass.NOTES: Amendment.UPDATE_IN_PLACE,
                ChangeClass.PAYMENT_CAPTURED: Amendment.UPDATE_IN_PLACE,
                ChangeClass.LINES: Amendment.VOID_AND_REPOST,
                ChangeClass.LINES_CANCELLED: Amendment.VOID_AND_REPOST,
                ChangeClass.TOTALS: Amendment.VOID_AND_REPOST,
                ChangeClass.CANCELLED: Amendment.VOID_AND_REPOST,
                ChangeClass.REFUNDED: Amendment.ADJUST,
                ChangeClass.PARTIALLY_REFUNDED: Amendment.ADJUST,
            }
        ),
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

    def _send(self, method: str, path: str, request_id: str | None = None, **kw: Any) -> httpx.Response:
        headers = {"X-Books-Key": self.key, **({"Request-Id": request_id} if request_id else {})}

        def once() -> httpx.Response:
            request = self.http.build_request(method, f"{self.base_url}{path}", headers=headers, **kw)
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

    # --- amendments (AMEND_DOCUMENTS) -----------------------------------------------------------

    def find_document(self, order_key: str) -> RemoteDocument | None:
        response = self._send("GET", f"/v1/invoices/{order_key}")
        body = json_body(response, system=SYSTEM)
        if response.status_code == 404:
            return None
        return RemoteDocument(
            order_key,
            str(body["id"]),
            str(body["status"]),
            version_token=str(body["revision"]),
            number=str(body.get("number", "")),
            total=Money.parse(str(body.get("total", "0")), str(body.get("currency", "EUR"))),
        )

    def _result(self, order_key: str, response: httpx.Response, what: str) -> PostResult:
        body = json_body(response, system=SYSTEM)
        if response.status_code >= 400:
            return PostResult(order_key, None, DestinationRejected(f"{SYSTEM} refused {what}: {body.get('error')}"))
        return PostResult(order_key, str(body["id"]))

    def update_document(self, document: PostedDocument, order: OutgoingOrder) -> PostResult:
        remote = self.find_document(document.order_key)
        revision = int(remote.version_token or 0) if remote is not None else 0
        body = {**invoice_body(order, self.book), "id": document.document_id, "revision": revision}
        response = self._send("PATCH", f"/v1/invoices/{document.order_key}", order.idempotency_key, json=body)
        return self._result(document.order_key, response, f"the update of {document.document_id}")

    def void_document(self, document: PostedDocument, idempotency_key: str) -> PostResult:
        response = self._send(
            "POST", f"/v1/invoices/{document.order_key}/void", idempotency_key, json={"id": document.document_id}
        )
        return self._result(document.order_key, response, f"the void of {document.document_id}")

    def post_adjustment(self, document: PostedDocument, adjustment: Adjustment) -> PostResult:
        remote = self.find_document(document.order_key)
        against = remote.document_id if remote is not None and remote.state == "live" else document.document_id
        body = {
            "id": against,
            "amount": str(adjustment.amount.amount),
            "currency": adjustment.amount.currency,
            "memo": adjustment.reason,
        }
        response = self._send(
            "POST", f"/v1/invoices/{document.order_key}/refunds", adjustment.idempotency_key, json=body
        )
        return self._result(document.order_key, response, f"the refund against {against}")
