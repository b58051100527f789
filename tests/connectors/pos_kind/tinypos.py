"""The TinyPOS destination: a POS declaring ``PREFLIGHT`` (client, mapper and declaration in one
module, as the test kinds of ``extra_kind`` are).

Its checks are seed 001's traps, each read from the POS as it is now: the employee the sales are
entered as (``employee`` setting), the location (``location``), the helper items the sync puts
shipping and discounts on (:data:`~tests.connectors.pos_kind.sandbox.HELPERS`), the custom fields
the POS requires on a sale — a value from the order (``note``, ``email``, ``number``, or one of its
custom fields), a mapping (``field_map``: POS field → order field) or a default (``field_defaults``)
— the SKUs, and the total the POS will compute with its percentage tax."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx

from orderbridge.connectors.base import (
    Capability,
    CredentialField,
    Declaration,
    OutgoingOrder,
    PosDocument,
    PosDocumentState,
    PostResult,
    PreflightCheck,
    Role,
    Setting,
    SettingScope,
)
from orderbridge.connectors.http import RetryPolicy, call_with_retries, json_body, send
from orderbridge.domain import reasons as R
from orderbridge.domain.mappings import MappingKind
from orderbridge.domain.money import Money
from orderbridge.domain.order import Order
from orderbridge.domain.pos_fields import field_value
from orderbridge.errors import DestinationRejected
from tests.connectors.pos_kind.sandbox import HELPERS

SYSTEM = "TinyPOS"
CENT = Decimal("0.01")


class TinyPosDestination:
    declaration = Declaration(
        kind="tinypos",
        role=Role.DESTINATION,
        title=SYSTEM,
        capabilities=frozenset({Capability.POST_ORDERS, Capability.PREFLIGHT}),
        credentials=(CredentialField("token", "TinyPOS API token"),),
        settings=(
            Setting("employee", "the employee the sales are entered as", "E1"),
            Setting("location", "the location the sales are entered at", "L1"),
            Setting("field_map", "POS custom field → the order field it takes its value from", {}),
            Setting("field_defaults", "POS custom field → the value it takes when the order has none", {}),
            Setting("sku_mapping", "SKUs go as they are unless mapped", "identity", SettingScope.HUB),
        ),
        mapping_kinds=frozenset({MappingKind.SKU}),
        document_key="pos-{external_id}@{channel_id}",
        docs="tests/connectors/pos_kind/__init__.py",
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
        self.token = credentials["token"]
        self.employee = str(settings["employee"])
        self.location = str(settings["location"])
        self.field_map = dict(settings.get("field_map") or {})
        self.field_defaults = dict(settings.get("field_defaults") or {})
        self.http = http or httpx.Client(timeout=10)
        self.sleep = sleep
        self._item_ids: dict[str, str] = {}

    def _send(self, method: str, path: str, **kw: Any) -> tuple[int, dict[str, Any]]:
        def once() -> httpx.Response:
            request = self.http.build_request(
                method, f"{self.base_url}{path}", headers={"Authorization": f"Bearer {self.token}"}, **kw
            )
            response = send(self.http, request, system=SYSTEM)
            json_body(response, system=SYSTEM)
            return response

        response = call_with_retries(once, RetryPolicy(attempts=3, base_delay=0.01), sleep=self.sleep)
        return response.status_code, json_body(response, system=SYSTEM)

    def check(self) -> str:
        _status, data = self._send("GET", "/v1/ping")
        return f"{SYSTEM} reachable ({data['sales']} sales)"

    def close(self) -> None:
        self.http.close()

    # --- pre-flight ------------------------------------------------------------------------------

    def _item(self, sku: str) -> str | None:
        if sku not in self._item_ids:
            _status, data = self._send("GET", "/v1/items", params={"sku": sku})
            found = [i for i in data["results"] if i["sku"] == sku]
            if not found:
                return None
            self._item_ids[sku] = str(found[0]["id"])
        return self._item_ids[sku]

    def preflight_connection(self) -> list[PreflightCheck]:
        checks = []
        status, emp = self._send("GET", f"/v1/employees/{self.employee}")
        if status == 200 and emp.get("active"):
            checks.append(PreflightCheck("employee", f"employee {emp['name']!r} is active"))
        else:
            name = repr(emp["name"]) if status == 200 else self.employee
            state = "archived" if status == 200 else "not found"
            reason = R.pos_employee_inactive(SYSTEM, name, "employee", state=state)
            checks.append(PreflightCheck("employee", f"employee {name} is {state}", reason))
        self._item_ids.clear()  # read fresh: an archived or re-SKUed helper item blocks orders
        missing = [sku for sku in HELPERS if self._item(sku) is None]
        if missing:
            reason = R.pos_required_product_missing(SYSTEM, missing)
            checks.append(
                PreflightCheck("helper_items", f"missing: {', '.join(missing)}", reason, "create_helper_items")
            )
        else:
            checks.append(PreflightCheck("helper_items", f"all {len(HELPERS)} helper items exist"))
        status, loc = self._send("GET", f"/v1/locations/{self.location}")
        if status == 200 and loc.get("active"):
            checks.append(PreflightCheck("location", f"location {loc['name']!r} is active"))
        else:
            name = repr(loc["name"]) if status == 200 else self.location
            state = "inactive" if status == 200 else "not found"
            checks.append(
                PreflightCheck(
                    "location",
                    f"location {name} is {state}",
                    R.pos_location_inactive(SYSTEM, name, "location", state=state),
                )
            )
        return checks

    def _custom(self, order: Order) -> dict[str, str]:
        _status, data = self._send("GET", "/v1/custom-fields")
        return {
            f["key"]: field_value(order, f["key"], self.field_map, self.field_defaults)
            for f in data["results"]
            if f.get("required")
        }

    def pos_total(self, outgoing: OutgoingOrder) -> Decimal:
        """What TinyPOS will compute: its percentage tax of the lines, rounded half-up."""
        order = outgoing.resolved.order
        _status, data = self._send("GET", "/v1/taxes")
        items = sum((li.unit_price.amount * li.open_quantity for li in order.lines), Decimal("0"))
        tax = (items * Decimal(data["rate"]) / 100).quantize(CENT, rounding=ROUND_HALF_UP)
        return items + tax + sum((s.price.amount for s in order.shipping_lines), Decimal("0"))

    def preflight_order(self, order: OutgoingOrder) -> list[PreflightCheck]:
        checks = []
        for key, value in self._custom(order.resolved.order).items():
            if value:
                checks.append(PreflightCheck("required_fields", f"{key} = {value!r}"))
            else:
                requirement = "Settings > Custom fields: required = yes"
                reason = R.pos_required_field_missing(SYSTEM, key, requirement, "field_defaults")
                checks.append(PreflightCheck("required_fields", f"{key} has no value", reason))
        for line in order.resolved.lines:
            if self._item(line.destination_sku) is None:
                reason = R.sku_unmapped(line.channel_sku, "")
                checks.append(PreflightCheck("skus", f"no item {line.destination_sku!r}", reason))
        ours, theirs = order.resolved.order.total.amount, self.pos_total(order)
        if abs(ours - theirs) > CENT:
            currency = order.resolved.order.currency
            reason = R.pos_total_mismatch(
                SYSTEM, f"{ours} {currency}", f"{theirs} {currency}", "its tax is a percentage of the lines"
            )
            checks.append(PreflightCheck("totals", f"{ours} vs {theirs}", reason))
        return checks

    def create_helper_items(self) -> list[str]:
        created = []
        for sku in HELPERS:
            status, _item = self._send("POST", "/v1/items", json={"sku": sku, "name": f"Online {sku.lower()}"})
            if status == 201:
                created.append(sku)
        self._item_ids.clear()
        return created

    def document_state(self, document_id: str) -> PosDocument | None:
        status, sale = self._send("GET", f"/v1/sales/{document_id}")
        if status == 404:
            return None
        return PosDocument(
            str(sale["id"]),
            PosDocumentState(sale["state"]),
            bool(sale["stock_moved"]),
            number=str(sale["public_id"]),
            total=Money.parse(str(sale["total"]), "EUR"),
        )

    # --- posting ---------------------------------------------------------------------------------

    def post_orders(self, orders: Sequence[OutgoingOrder]) -> list[PostResult]:
        results = []
        for outgoing in orders:
            order = outgoing.resolved.order
            quantities = {li.external_id: li.open_quantity for li in order.lines}
            prices = {li.external_id: str(li.unit_price.amount) for li in order.lines}
            body = {
                "public_id": outgoing.order_key,
                "employee_id": self.employee,
                "location_id": self.location,
                "lines": [
                    {
                        "item_id": self._item(li.destination_sku),
                        "qty": quantities[li.line_key],
                        "price": prices[li.line_key],
                    }
                    for li in outgoing.resolved.lines
                ],
                "shipping": str(sum((s.price.amount for s in order.shipping_lines), Decimal("0"))),
                "custom": {k: v for k, v in self._custom(order).items() if v},
            }
            status, sale = self._send("POST", "/v1/sales", json=body)
            if status >= 400:
                error = DestinationRejected(f"{SYSTEM} refused the sale: {sale.get('error')}")
                results.append(PostResult(outgoing.order_key, None, error, sent=body))
            else:
                results.append(PostResult(outgoing.order_key, str(sale["id"]), sent=body))
        return results
