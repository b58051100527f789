"""State of the Mirakl sandbox: a shop's orders and the marketplace's state machine around them.

What it emulates (Mirakl seller API, see ``/work/shared/api-facts.md``; each ``(?)`` there is a
setting of :class:`MiraklState`, listed in ``docs/connectors/mirakl.md``):

- **Orders** as OR11 shows them (``order_id, commercial_id, order_state, created_date,
  last_updated_date, shipping_deadline, can_cancel, currency_iso_code, price, total_price,
  shipping_price, shipping_tracking, shipping_carrier_code, customer, order_lines``) plus
  ``acceptance_deadline``, ``shipping_company`` and ``shipping_tracking_url`` — the sandbox's
  assumption of where Mirakl shows the acceptance due time and OR23's carrier name and URL.
  Money is ``Decimal`` throughout (served by :mod:`orderbridge.exactjson`).
- **The state machine.** Every shop call is checked against the order's state *before* it changes
  anything: OR21 only while the order and every line are ``WAITING_ACCEPTANCE`` (every line decided
  in one call; ≥1 accepted → ``WAITING_DEBIT``, none → ``REFUSED``), OR23 in ``SHIPPING`` or
  ``SHIPPED``, OR24 only in ``SHIPPING``, OR29 only in ``SHIPPING`` *and* while ``can_cancel``,
  OR28 from ``SHIPPED`` or ``RECEIVED`` (not ``CLOSED``) within what each line has left to refund.
  Anything else is refused with HTTP 400 and Mirakl's error body ``{"status": 400, "message": …}``
  (:class:`MiraklError`) and changes nothing.
- **The marketplace's own moves.** After acceptance the operator debits the customer:
  ``WAITING_DEBIT`` → (``WAITING_DEBIT_PAYMENT`` →) ``SHIPPING`` once ``debit_delay_s`` has passed
  (0: at once). An order still ``WAITING_ACCEPTANCE`` past its ``acceptance_deadline`` is refused
  automatically (its lines too). Both are applied lazily, whenever anyone looks (:meth:`tick`), as
  of their due time — results depend only on the clock.
- **The back office** (:meth:`move`, :meth:`set_can_cancel`, :meth:`create_order`): a person
  accepting, cancelling, receiving or closing an order by hand, or an order created in any state.
- **The ledger**: every request the shop API received (``call`` entries: method, path, query, body,
  answer status, and ``rejected`` — ``illegal_transition`` when the state machine refused it), and
  one ``transition`` entry per state change with who made it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from orderbridge.sandboxes.base import SandboxState

Json = dict[str, Any]

STATES = (
    "STAGING",
    "WAITING_ACCEPTANCE",
    "WAITING_DEBIT",
    "WAITING_DEBIT_PAYMENT",
    "SHIPPING",
    "SHIPPED",
    "TO_COLLECT",
    "RECEIVED",
    "CLOSED",
    "REFUSED",
    "CANCELED",
)
TERMINAL = frozenset({"REFUSED", "CANCELED", "CLOSED"})
#: moves the back office (an operator or the shop by hand, :meth:`MiraklState.move`) may make
BACK_OFFICE_MOVES: Mapping[str, frozenset[str]] = {
    "STAGING": frozenset({"WAITING_ACCEPTANCE", "REFUSED", "CANCELED"}),
    "WAITING_ACCEPTANCE": frozenset({"WAITING_DEBIT", "REFUSED", "CANCELED"}),
    "WAITING_DEBIT": frozenset({"WAITING_DEBIT_PAYMENT", "SHIPPING", "CANCELED"}),
    "WAITING_DEBIT_PAYMENT": frozenset({"SHIPPING", "CANCELED"}),
    "SHIPPING": frozenset({"SHIPPED", "TO_COLLECT", "CANCELED"}),
    "SHIPPED": frozenset({"RECEIVED", "CLOSED"}),
    "TO_COLLECT": frozenset({"RECEIVED"}),
    "RECEIVED": frozenset({"CLOSED"}),
}
TRACKING_STATES = frozenset({"SHIPPING", "SHIPPED"})
REFUND_STATES = frozenset({"SHIPPED", "RECEIVED"})
DEFAULT_CARRIERS = ("ups", "dhl", "dpd", "gls", "fedex", "colissimo", "chronopost")
#: OR11's page size when ``max`` is not given, and the largest it accepts (api-facts: cap 100 (?))
DEFAULT_MAX = 10


class MiraklError(Exception):
    """A call Mirakl answers with an error body: ``status`` and Mirakl's ``message``. ``illegal``:
    the state machine refused it (recorded in the ledger as ``illegal_transition``)."""

    def __init__(self, message: str, status: int = 400, *, illegal: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.illegal = illegal


@dataclass
class _Event:
    due: datetime
    seq: int
    order_id: str
    kind: str  # "debit" | "refuse"

    def __lt__(self, other: _Event) -> bool:
        return (self.due, self.seq) < (other.due, other.seq)


class MiraklState(SandboxState):
    def __init__(
        self,
        *,
        shop_key: str = "mirakl-shop-key",
        clock: Callable[[], datetime] | None = None,
        debit_delay_s: float = 0.0,
        debit_payment_step: bool = True,
        acceptance_window_s: float = 3 * 86400,
        shipping_window_s: float = 5 * 86400,
        can_cancel: bool = True,
        carriers: Iterable[str] = DEFAULT_CARRIERS,
        max_page: int = 100,
        back_office_base: str = "https://marketplace.example",
    ) -> None:
        super().__init__(credentials={shop_key})
        self.clock = clock or (lambda: datetime.now(UTC))
        self.debit_delay = timedelta(seconds=debit_delay_s)
        self.debit_payment_step = debit_payment_step
        self.acceptance_window = timedelta(seconds=acceptance_window_s)
        self.shipping_window = timedelta(seconds=shipping_window_s)
        self.can_cancel_default = can_cancel
        self.carriers = {c.lower() for c in carriers}
        self.max_page = max_page
        self.back_office_base = back_office_base.rstrip("/")
        self.orders: dict[str, Json] = {}
        self._events: list[_Event] = []
        self._seq = 0
        self._next = 1
        self._next_refund = 9001

    # --- time ----------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock().astimezone(UTC)

    @staticmethod
    def fmt(when: datetime) -> str:
        """Mirakl's timestamps: ISO 8601 in UTC with milliseconds and ``Z``."""
        return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"

    @staticmethod
    def parse(text: str) -> datetime:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if value.tzinfo is None:
            raise ValueError(f"{text!r} has no time zone")
        return value.astimezone(UTC)

    # --- the marketplace's own moves -----------------------------------------------------------
    def _schedule(self, due: datetime, order_id: str, kind: str) -> None:
        self._seq += 1
        heapq.heappush(self._events, _Event(due, self._seq, order_id, kind))

    def tick(self) -> None:
        """Apply every debit and auto-refusal due by now, each as of its due time."""
        now = self.now()
        with self.lock:
            while self._events and self._events[0].due <= now:
                event = heapq.heappop(self._events)
                order = self.orders.get(event.order_id)
                if order is None:
                    continue
                if event.kind == "refuse" and order["order_state"] == "WAITING_ACCEPTANCE":
                    self._set_state(order, "REFUSED", event.due, by="marketplace: acceptance deadline missed")
                elif event.kind == "debit" and order["order_state"] in ("WAITING_DEBIT", "WAITING_DEBIT_PAYMENT"):
                    if order["order_state"] == "WAITING_DEBIT" and self.debit_payment_step:
                        self._set_state(order, "WAITING_DEBIT_PAYMENT", event.due, by="operator: debit requested")
                    self._set_state(order, "SHIPPING", event.due, by="operator: customer debited")

    def _set_state(self, order: Json, state: str, at: datetime, *, by: str) -> None:
        before = order["order_state"]
        order["order_state"] = state
        for line in order["order_lines"]:
            if line["order_line_state"] in ("REFUSED", "CANCELED"):
                continue
            line["order_line_state"] = state
        if state == "SHIPPING" and order.get("shipping_deadline") is None:
            order["shipping_deadline"] = self.fmt(at + self.shipping_window)
        if state in TERMINAL or state in ("SHIPPED", "TO_COLLECT", "RECEIVED"):
            order["can_cancel"] = False
        self._touch(order, at)
        self.record("transition", order["order_id"], source=before, target=state, by=by)
        if state == "WAITING_DEBIT":
            self._schedule(at + self.debit_delay, order["order_id"], "debit")
            if self.debit_delay.total_seconds() == 0:
                self.tick()

    def _touch(self, order: Json, at: datetime | None = None) -> None:
        """Move ``last_updated_date`` forward (never back, and strictly: a change is always later)."""
        at = at or self.now()
        previous = self.parse(order["last_updated_date"]) if order.get("last_updated_date") else None
        if previous is not None and at <= previous:
            at = previous + timedelta(milliseconds=1)
        order["last_updated_date"] = self.fmt(at)

    # --- orders --------------------------------------------------------------------------------
    def create_order(
        self,
        *,
        state: str = "WAITING_ACCEPTANCE",
        lines: list[Mapping[str, Any]] | None = None,
        currency: str = "EUR",
        shipping_price: Decimal | str = "4.90",
        can_cancel: bool | None = None,
        created: datetime | None = None,
        acceptance_deadline: datetime | None = None,
        tracking: Mapping[str, str] | None = None,
        customer: Mapping[str, Any] | None = None,
        **extra: Any,
    ) -> Json:
        """A new order in any state (the admin API's ``POST /_sandbox/orders``). ``lines``: dicts of
        ``offer_sku``, ``quantity``, ``price_unit`` (and ``product_title``, ``product_sku``)."""
        now = created or self.now()
        with self.lock:
            n = self._next
            self._next += 1
            order_id = f"{100000 + n}-A"
            specs = lines or [{"offer_sku": f"OFFER-{n}", "quantity": 1, "price_unit": "19.90"}]
            order_lines = []
            for i, spec in enumerate(specs, start=1):
                quantity = int(spec.get("quantity", 1))
                unit = Decimal(str(spec.get("price_unit", "10.00")))
                order_lines.append(
                    {
                        "order_line_id": f"{order_id}-{i}",
                        "order_line_state": state,
                        "offer_sku": spec.get("offer_sku", f"OFFER-{n}-{i}"),
                        "product_sku": spec.get("product_sku", f"P{n:05d}{i}"),
                        "product_title": spec.get("product_title", f"Product {n}.{i}"),
                        "quantity": quantity,
                        "price_unit": unit,
                        "price": unit * quantity,
                        "refunds": [],
                    }
                )
            price = sum((ln["price"] for ln in order_lines), Decimal("0"))
            ship = Decimal(str(shipping_price))
            order: Json = {
                "order_id": order_id,
                "commercial_id": f"{100000 + n}",
                "order_state": state,
                "created_date": self.fmt(now),
                "last_updated_date": self.fmt(now),
                "acceptance_deadline": self.fmt(acceptance_deadline or now + self.acceptance_window),
                "shipping_deadline": self.fmt(now + self.shipping_window)
                if state not in ("STAGING", "WAITING_ACCEPTANCE")
                else None,
                "can_cancel": self.can_cancel_default if can_cancel is None else can_cancel,
                "currency_iso_code": currency,
                "price": price,
                "shipping_price": ship,
                "total_price": price + ship,
                "shipping_type_code": "STD",
                "shipping_type_label": "Standard delivery",
                "shipping_tracking": None,
                "shipping_carrier_code": None,
                "shipping_company": None,
                "shipping_tracking_url": None,
                "customer": dict(customer) if customer is not None else _customer(n),
                "order_lines": order_lines,
                **extra,
            }
            if state in TERMINAL or state in ("SHIPPED", "TO_COLLECT", "RECEIVED"):
                order["can_cancel"] = False
            if tracking:
                order["shipping_tracking"] = tracking.get("tracking_number")
                order["shipping_carrier_code"] = tracking.get("carrier_code")
                order["shipping_company"] = tracking.get("carrier_name")
                order["shipping_tracking_url"] = tracking.get("carrier_url")
            self.orders[order_id] = order
            self.record("order_created", order_id, state=state)
            if state == "WAITING_ACCEPTANCE":
                self._schedule(self.parse(order["acceptance_deadline"]), order_id, "refuse")
            elif state == "WAITING_DEBIT":
                self._schedule(now + self.debit_delay, order_id, "debit")
            self.tick()
            return order

    def get(self, order_id: str) -> Json:
        self.tick()
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                raise MiraklError(f"Order with id '{order_id}' not found", 404)
            return order

    def update(self, order_id: str, **changes: Any) -> Json:
        """Change fields of an order as the customer or operator would (the update time moves)."""
        with self.lock:
            order = self.get(order_id)
            order.update(changes)
            self._touch(order)
            return order

    def listing(
        self,
        *,
        order_ids: list[str] | None = None,
        states: set[str] | None = None,
        start_update: datetime | None = None,
        end_update: datetime | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        sort: str = "dateCreated",
        descending: bool = False,
    ) -> list[Json]:
        """OR11's filter and sort (the route pages it)."""
        self.tick()
        field = {"dateCreated": "created_date", "dateUpdated": "last_updated_date"}.get(sort)
        if field is None:
            raise MiraklError(f"Invalid sort '{sort}': expected dateCreated or dateUpdated")
        with self.lock:
            found = []
            for order in self.orders.values():
                if order_ids is not None and order["order_id"] not in order_ids:
                    continue
                if states is not None and order["order_state"] not in states:
                    continue
                updated = self.parse(order["last_updated_date"])
                created = self.parse(order["created_date"])
                if start_update is not None and updated < start_update:
                    continue
                if end_update is not None and updated > end_update:
                    continue
                if start_date is not None and created < start_date:
                    continue
                if end_date is not None and created > end_date:
                    continue
                found.append(order)
            found.sort(key=lambda o: (self.parse(o[field]), o["order_id"]), reverse=descending)
            return found

    # --- shop calls (each refuses what Mirakl refuses, before changing anything) ---------------
    def _require(self, order: Json, allowed: Iterable[str], call: str) -> None:
        if order["order_state"] not in set(allowed):
            raise MiraklError(
                f"{call}: order '{order['order_id']}' is in state {order['order_state']}; "
                f"expected {' or '.join(sorted(allowed))}",
                illegal=True,
            )

    def accept(self, order_id: str, body: Any) -> None:
        """OR21: every line of the order accepted or refused in one call."""
        with self.lock:
            order = self.get(order_id)
            decisions = body.get("order_lines") if isinstance(body, Mapping) else None
            if not isinstance(decisions, list) or not decisions:
                raise MiraklError("order_lines: must not be empty")
            self._require(order, ("WAITING_ACCEPTANCE",), "OR21")
            by_id = {ln["order_line_id"]: ln for ln in order["order_lines"]}
            chosen: dict[str, bool] = {}
            for d in decisions:
                if not isinstance(d, Mapping) or not isinstance(d.get("accepted"), bool):
                    raise MiraklError("order_lines: each line needs an id and accepted (true or false)")
                line = by_id.get(str(d.get("id")))
                if line is None:
                    raise MiraklError(f"Order line with id '{d.get('id')}' not found in order '{order_id}'")
                if line["order_line_state"] != "WAITING_ACCEPTANCE":
                    raise MiraklError(
                        f"Order line '{line['order_line_id']}' is in state {line['order_line_state']}; "
                        "expected WAITING_ACCEPTANCE",
                        illegal=True,
                    )
                chosen[line["order_line_id"]] = d["accepted"]
            undecided = sorted(set(by_id) - set(chosen))
            if undecided:
                raise MiraklError(f"All the order lines must be accepted or refused; missing: {', '.join(undecided)}")
            at = self.now()
            for line_id, accepted in chosen.items():
                if not accepted:
                    by_id[line_id]["order_line_state"] = "REFUSED"
            target = "WAITING_DEBIT" if any(chosen.values()) else "REFUSED"
            self._set_state(order, target, at, by="shop: OR21")

    def tracking(self, order_id: str, body: Any) -> None:
        """OR23: a registered carrier by code, another by name and full tracking URL."""
        with self.lock:
            order = self.get(order_id)
            if not isinstance(body, Mapping):
                raise MiraklError("The request body must be a JSON object")
            self._require(order, TRACKING_STATES, "OR23")
            code = _text(body.get("carrier_code"))
            name = _text(body.get("carrier_name"))
            url = _text(body.get("carrier_url"))
            number = _text(body.get("tracking_number"))
            if code and code.lower() not in self.carriers:
                raise MiraklError(f"Carrier with code '{code}' not found")
            if not code:
                if not name:
                    raise MiraklError("carrier_name: required when no carrier_code is given")
                if not url:
                    raise MiraklError(
                        "carrier_url: a full tracking URL is required for a carrier that is not registered"
                    )
            if not number and not url:
                raise MiraklError("tracking_number: required")
            order["shipping_tracking"] = number or None
            order["shipping_carrier_code"] = code or None
            order["shipping_company"] = name or (code.upper() if code else None)
            order["shipping_tracking_url"] = url or None
            self._touch(order)
            self.record("tracking", order_id, tracking_number=number, carrier_code=code, carrier_name=name)

    def ship(self, order_id: str) -> None:
        """OR24: the whole order, only from SHIPPING."""
        with self.lock:
            order = self.get(order_id)
            self._require(order, ("SHIPPING",), "OR24")
            self._set_state(order, "SHIPPED", self.now(), by="shop: OR24")

    def cancel(self, order_id: str) -> None:
        """OR29: only from SHIPPING and while the marketplace says ``can_cancel``."""
        with self.lock:
            order = self.get(order_id)
            self._require(order, ("SHIPPING",), "OR29")
            if not order.get("can_cancel"):
                raise MiraklError(f"Order '{order_id}' cannot be canceled (can_cancel is false)", illegal=True)
            self._set_state(order, "CANCELED", self.now(), by="shop: OR29")

    def refund(self, body: Any) -> list[Json]:
        """OR28: refunds of order lines; every one is checked before any is made."""
        with self.lock:
            items = body.get("refunds") if isinstance(body, Mapping) else None
            if not isinstance(items, list) or not items:
                raise MiraklError("refunds: must not be empty")
            self.tick()
            checked: list[tuple[Json, Json, Decimal, Mapping[str, Any]]] = []
            pending: dict[str, Decimal] = {}
            for item in items:
                if not isinstance(item, Mapping):
                    raise MiraklError("refunds: each refund must be an object")
                line_id = str(item.get("order_line_id"))
                order, line = self._line(line_id)
                self._require(order, REFUND_STATES, "OR28")
                try:
                    amount = Decimal(str(item.get("amount")))
                except ArithmeticError:
                    raise MiraklError(f"amount: {item.get('amount')!r} is not a number") from None
                if not amount.is_finite() or amount <= 0:
                    raise MiraklError(f"amount: must be positive, got {item.get('amount')}")
                left = line["price"] - sum((r["amount"] for r in line["refunds"]), Decimal("0"))
                left -= pending.get(line_id, Decimal("0"))
                if amount > left:
                    raise MiraklError(f"Order line '{line_id}': the refund amount {amount} is more than {left} left")
                pending[line_id] = pending.get(line_id, Decimal("0")) + amount
                checked.append((order, line, amount, item))
            made = []
            for order, line, amount, item in checked:
                refund = {
                    "id": str(self._next_refund),
                    "amount": amount,
                    "quantity": int(item.get("quantity") or 0),
                    "reason_code": _text(item.get("reason_code")) or "REFUND",
                    "state": "REFUNDED",
                    "created_date": self.fmt(self.now()),
                }
                self._next_refund += 1
                line["refunds"].append(refund)
                self._touch(order)
                made.append({"order_line_id": line["order_line_id"], "refund_id": refund["id"], "amount": amount})
                self.record("refund", order["order_id"], line=line["order_line_id"], amount=str(amount))
            return made

    def _line(self, line_id: str) -> tuple[Json, Json]:
        order_id = line_id.rsplit("-", 1)[0]
        order = self.orders.get(order_id)
        for line in order["order_lines"] if order else ():
            if line["order_line_id"] == line_id:
                return order, line  # type: ignore[return-value]
        raise MiraklError(f"Order line with id '{line_id}' not found", 404)

    # --- the back office -----------------------------------------------------------------------
    def move(self, order_id: str, target: str, *, by: str = "back office") -> Json:
        """A person (or the operator) moves an order by hand: accept, cancel, receive, close."""
        with self.lock:
            order = self.get(order_id)
            source = order["order_state"]
            if target not in BACK_OFFICE_MOVES.get(source, frozenset()):
                raise MiraklError(f"The back office cannot move order '{order_id}' from {source} to {target}")
            self._set_state(order, target, self.now(), by=by)
            return order

    def set_can_cancel(self, order_id: str, value: bool) -> None:
        with self.lock:
            order = self.get(order_id)
            order["can_cancel"] = value
            self._touch(order)

    def back_office_url(self, order_id: str) -> str:
        return f"{self.back_office_base}/mmp/shop/order/{order_id}"

    # --- for tests -----------------------------------------------------------------------------
    def calls(self, order_id: str | None = None) -> list[Json]:
        """The ``call`` ledger entries (of one order's paths when given), oldest first."""
        return [
            e.data
            for e in self.entries("call")
            if order_id is None or f"/api/orders/{order_id}/" in e.data["path"] or order_id in str(e.data["body"])
        ]

    def writes(self, order_id: str | None = None) -> list[Json]:
        return [c for c in self.calls(order_id) if c["method"] != "GET"]

    def control_extra(self) -> dict[str, Any]:
        with self.lock:
            states: dict[str, int] = {}
            for order in self.orders.values():
                states[order["order_state"]] = states.get(order["order_state"], 0) + 1
            return {"orders": len(self.orders), "states": states, "pending_events": len(self._events)}


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _customer(n: int) -> Json:
    address = {
        "firstname": "Camille",
        "lastname": f"Martin {n}",
        "company": None,
        "street_1": f"{n} rue de la Paix",
        "street_2": None,
        "city": "Paris",
        "zip_code": "75002",
        "state": None,
        "country_iso_code": "FRA",
        "phone": "+33100000000",
    }
    return {
        "customer_id": f"C{n:05d}",
        "firstname": "Camille",
        "lastname": f"Martin {n}",
        "billing_address": dict(address),
        "shipping_address": dict(address),
    }
