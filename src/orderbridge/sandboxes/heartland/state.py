"""State of the Heartland Retail sandbox: one account's users, stations, items, custom fields, settings,
customers, sales orders, invoices, tickets and inventory — and the traps of seed 001.

What it emulates (Heartland Retail's REST API, ex-Springboard, as ``/work/shared/api-facts.md``
restates it — nothing copied):

- **Records.** ``users {id, login, first_name, last_name, active}``; ``locations {id, name, active}``
  with their ``stations {id, location_id, name, active}``; ``items {id, public_id, description,
  cost, price, active, track_inventory, taxable, custom}`` (the Item # is ``public_id``);
  ``custom_fields {id, key, name, group_id, required, unique}`` in the groups ``item``,
  ``sales.transaction`` and ``sales.transaction.line_item``; the three POS settings
  ``pos.tickets.customer_required``, ``pos.tickets.sales_rep_required`` and
  ``pos.tickets.reason_of_adjusting_price_required``; ``payment_types``; ``customers`` with their
  ``addresses``.
- **Sales orders**, built in several calls and so never atomic: created ``pending``, then lines,
  taxes, discounts and payments added one call each, then ``PUT {status: "open"}``; an invoice
  (created, its lines, ``PUT {status: "complete"}``) closes it. **Tickets** are one call
  (``status: "complete"``). The total of each is computed here from its parts, cent-rounded.
- **Inventory** per item and location: a pending order moves nothing; an open one *commits* its
  quantities (still on hand); a completed invoice and a completed ticket reduce on-hand (unless
  ``affect_inventory: false``). Items with ``track_inventory: false`` (the helper items) never move.
- **Validation** answers ``{error: "validation_error", message, details: {field: [..]}}`` with
  :attr:`HeartlandState.validation_status` (422 by default, a ``(?)``): a station that does not
  exist or is inactive (or whose location is), an item that does not exist or is archived, a
  customer without e-mail or an address without street, city, postal code or country (Mortar's
  rule), a sale whose sales rep is not an active user while ``pos.tickets.sales_rep_required``, a
  sale without a customer while ``pos.tickets.customer_required``, a line whose price was adjusted
  without an ``adjustment_reason`` while ``pos.tickets.reason_of_adjusting_price_required``, and a
  **required custom field without a value**.

The seed-001 traps, each reachable through the admin calls (``/_sandbox/heartland/…``):

- an **archived user** (``users/{login}/active``);
- **required custom fields**: each field's sandbox-only ``on_missing`` says what a missing value
  does — ``block`` (the sale is refused: the order or ticket is never created) or ``pending``
  (a sales order is created but cannot be opened; a ticket is saved ``pending`` instead of
  complete) — api-facts: "block an order or leave it pending";
- **missing, archived or renamed helper items** (``items`` create/archive/rename/delete);
- **pending orders that do not move inventory** (the inventory table shows it).

``(?)`` facts, each a setting of :class:`HeartlandState`: ``unique_public_id`` (whether Heartland
refuses a second sale with one ``public_id``; off by default, so the connector's own lookups are
what is proven), ``validation_status``, ``create_returns_body`` (a create answers ``201`` +
``Location`` only, or with the record), ``per_page_max``, ``sales_rep_v2`` (a sales rep matching
no active user is stored as ``Unknown(name)``), ``inactive_owner_token`` (whether the API token of
an archived user still works), ``accepts_item_flags`` (whether ``track_inventory``/``taxable`` can be
set when an item is created), ``pos_settings_apply_to_orders``.

Ledger kinds (besides ``call``, one per API request with its method, path and status):
``order_created``, ``order_line_added``, ``order_tax_added``, ``order_discount_added``,
``order_payment_added``, ``order_opened``, ``invoice_created``, ``invoice_line_added``,
``invoice_completed``, ``ticket_created``, ``ticket_completed``, ``item_created``,
``item_updated``, ``customer_created``, ``address_created``, ``custom_field_updated``,
``inventory_moved`` — keyed by the sale's ``public_id`` where there is one.

Faults beyond the shared ones (``sandboxes/base.py``): ``fail_after_commit`` answers the next N
writes with a 503 *after* they were applied — what a proxy in front of a busy server does — so a
test can prove that a write whose answer is lost is read back, never made twice.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from orderbridge.sandboxes.base import SandboxState

Json = dict[str, Any]
CENT = Decimal("0.01")

#: Mortar's helper items (seed 001 and api-facts): created on demand, not inventoried, not taxed
HELPER_ITEMS: tuple[tuple[str, str], ...] = (
    ("NO PRODUCT FOUND", "No product found"),
    ("Shopify Shipping", "Shopify Shipping"),
    ("Shopify Refund", "Shopify Refund"),
    ("Shopify Discount", "Shopify Discount"),
    ("Shopify: Duties", "Shopify: Duties"),
    ("Shopify: Additional Fees", "Shopify: Additional Fees"),
    ("Shopify Gift Card", "Shopify Gift Card"),
)
POS_SETTINGS = (
    "pos.tickets.customer_required",
    "pos.tickets.sales_rep_required",
    "pos.tickets.reason_of_adjusting_price_required",
)
TRANSACTION_GROUPS = ("sales.transaction", "sales.transaction.line_item")


class Invalid(Exception):
    """A Heartland validation error: ``details`` maps each field to its messages."""

    def __init__(self, details: Mapping[str, list[str]], message: str = "Validation failed", kind: str = "") -> None:
        super().__init__(message)
        self.details = dict(details)
        self.message = message
        self.kind = kind or "validation_error"


class Missing(Exception):
    """No such record (404)."""


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def dec(value: Any, field: str) -> Decimal:
    try:
        if isinstance(value, float):
            value = str(value)
        return Decimal(str(value if value is not None else "0"))
    except ArithmeticError:
        raise Invalid({field: ["is not a number"]}) from None


@dataclass
class Settings:
    """The sandbox's own settings: one per ``(?)`` of api-facts (see the module docstring)."""

    unique_public_id: bool = False
    validation_status: int = 422
    create_returns_body: bool = False
    per_page_max: int = 1000
    sales_rep_v2: bool = True
    inactive_owner_token: bool = True
    accepts_item_flags: bool = True
    pos_settings_apply_to_orders: bool = True


class HeartlandState(SandboxState):
    def __init__(
        self,
        *,
        token: str,
        token_owner: str,
        helper_items: bool,
        items: Iterable[tuple[str, str, Decimal]],
        settings: Settings,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(credentials={token})
        self.token = token
        self.options = settings
        self.clock = clock or (lambda: datetime.now(UTC))
        self._ids = itertools.count(1)
        self.users: dict[int, Json] = {}
        self.locations: dict[int, Json] = {}
        self.stations: dict[int, Json] = {}
        self.items: dict[int, Json] = {}
        self.custom_fields: dict[int, Json] = {}
        self.settings: dict[str, bool] = {key: False for key in POS_SETTINGS}
        self.payment_types: dict[int, Json] = {}
        self.customers: dict[int, Json] = {}
        self.addresses: dict[int, Json] = {}
        self.orders: dict[int, Json] = {}
        self.invoices: dict[int, Json] = {}
        self.tickets: dict[int, Json] = {}
        #: (item id, location id) → {"on_hand", "committed"}
        self.inventory: dict[tuple[int, int], dict[str, Decimal]] = {}
        self.add_user(token_owner, "Online", "orders")
        self.add_user("manager", "Store", "Manager")
        location = self.add_location("Main Street")
        self.add_station(location, "Register 1")
        self.add_payment_type("External")
        for public_id, description, price in items:
            self.add_item(public_id, description, price, stock=Decimal("100"))
        if helper_items:
            for public_id, description in HELPER_ITEMS:
                self.add_item(public_id, description, Decimal("0"), track_inventory=False, taxable=False)
        self.token_owner = token_owner
        #: called with ``(method, path)`` before each API request is handled: a test's way of making
        #: someone change the account at that very moment (the merchant switching a field to required
        #: between OrderBridge's check and its sale)
        self.before_call: Callable[[str, str], None] | None = None
        #: the next N writes are answered 503 *after* they were applied (the answer lost, the change made)
        self.fail_after_commit = 0

    # --- ids, time -----------------------------------------------------------------------------
    def next_id(self) -> int:
        return next(self._ids)

    def stamp(self) -> str:
        return self.clock().astimezone(UTC).isoformat(timespec="seconds")

    # --- seeding / admin -------------------------------------------------------------------------
    def add_user(self, login: str, first: str, last: str, *, active: bool = True) -> Json:
        with self.lock:
            uid = self.next_id()
            user = {"id": uid, "login": login, "first_name": first, "last_name": last, "active": active}
            self.users[uid] = user
            return user

    def user_by_login(self, login: str) -> Json | None:
        return next((u for u in self.users.values() if u["login"] == login), None)

    def set_user_active(self, login: str, active: bool) -> Json:
        with self.lock:
            user = self.user_by_login(login)
            if user is None:
                raise Missing(f"no user {login!r}")
            user["active"] = active
            return user

    def add_location(self, name: str, *, active: bool = True) -> int:
        with self.lock:
            lid = self.next_id()
            self.locations[lid] = {"id": lid, "name": name, "active": active}
            return lid

    def add_station(self, location_id: int, name: str, *, active: bool = True) -> Json:
        with self.lock:
            sid = self.next_id()
            station = {"id": sid, "location_id": location_id, "name": name, "active": active}
            self.stations[sid] = station
            return station

    def add_payment_type(self, name: str) -> Json:
        with self.lock:
            pid = self.next_id()
            self.payment_types[pid] = {"id": pid, "name": name, "active": True}
            return self.payment_types[pid]

    def add_item(
        self,
        public_id: str,
        description: str,
        price: Decimal,
        *,
        stock: Decimal = Decimal("0"),
        track_inventory: bool = True,
        taxable: bool = True,
        custom: Mapping[str, Any] | None = None,
    ) -> Json:
        with self.lock:
            iid = self.next_id()
            item = {
                "id": iid,
                "public_id": public_id,
                "description": description,
                "cost": Decimal("0"),
                "price": price,
                "active": True,
                "track_inventory": track_inventory,
                "taxable": taxable,
                "custom": dict(custom or {}),
            }
            self.items[iid] = item
            if track_inventory:
                for lid in self.locations:
                    self.inventory[(iid, lid)] = {"on_hand": stock, "committed": Decimal("0")}
            return item

    def item_by_public_id(self, public_id: str) -> Json | None:
        return next((i for i in self.items.values() if i["public_id"] == public_id), None)

    def add_custom_field(self, key: str, group_id: str, *, required: bool, on_missing: str = "block") -> Json:
        if on_missing not in ("block", "pending"):
            raise ValueError("on_missing is 'block' or 'pending'")
        with self.lock:
            fid = self.next_id()
            field = {
                "id": fid,
                "key": key,
                "name": key.replace("_", " ").title(),
                "group_id": group_id,
                "required": required,
                "unique": False,
                "on_missing": on_missing,
            }
            self.custom_fields[fid] = field
            return field

    def required_fields(self, group: str) -> list[Json]:
        return [f for f in self.custom_fields.values() if f["group_id"] == group and f["required"]]

    def stock(self, public_id: str) -> dict[str, Decimal]:
        """On hand and committed of one item, summed over the locations (tests read it)."""
        item = self.item_by_public_id(public_id)
        total = {"on_hand": Decimal("0"), "committed": Decimal("0")}
        if item is None:
            return total
        for (iid, _), row in self.inventory.items():
            if iid == item["id"]:
                total["on_hand"] += row["on_hand"]
                total["committed"] += row["committed"]
        return total

    # --- credentials ---------------------------------------------------------------------------
    def token_ok(self, presented: str | None) -> bool:
        if not self.credentials_ok(presented):
            return False
        if self.options.inactive_owner_token:
            return True
        owner = self.user_by_login(self.token_owner)
        return owner is not None and bool(owner["active"])

    # --- validation shared by sales -----------------------------------------------------------------
    def _station(self, value: Any) -> Json:
        station = self.stations.get(_int(value))
        if station is None:
            raise Invalid({"station_id": ["is invalid"]}, "Station not found")
        location = self.locations.get(station["location_id"])
        if not station["active"] or location is None or not location["active"]:
            raise Invalid({"station_id": ["is inactive"]}, "Station or its location is inactive")
        return station

    def _item(self, value: Any, field: str = "item_id") -> Json:
        item = self.items.get(_int(value))
        if item is None:
            raise Invalid({field: ["is invalid"]}, "Item not found")
        if not item["active"]:
            raise Invalid({field: ["is archived"]}, f"Item {item['public_id']} is archived")
        return item

    def _sales_rep(self, body: Mapping[str, Any], *, applies: bool) -> str:
        rep = str(body.get("sales_rep") or "")
        active = {f"{u['first_name']} {u['last_name']}".strip() for u in self.users.values() if u["active"]} | {
            u["login"] for u in self.users.values() if u["active"]
        }
        if applies and self.settings["pos.tickets.sales_rep_required"]:
            if not rep:
                raise Invalid({"sales_rep": ["is required"]}, "A sales rep is required")
            if self.options.sales_rep_v2 and rep not in active:
                raise Invalid({"sales_rep": ["is not an active user"]}, f"Sales rep {rep!r} is not an active user")
        if rep and self.options.sales_rep_v2 and rep not in active:
            return f"Unknown({rep})"
        return rep

    def _customer(self, body: Mapping[str, Any], *, applies: bool) -> int | None:
        value = body.get("customer_id")
        if value in (None, ""):
            if applies and self.settings["pos.tickets.customer_required"]:
                raise Invalid({"customer_id": ["is required"]}, "A customer is required")
            return None
        if _int(value) not in self.customers:
            raise Invalid({"customer_id": ["is invalid"]}, "Customer not found")
        return _int(value)

    def _custom_values(self, body: Mapping[str, Any]) -> dict[str, Any]:
        values = dict(body.get("custom") or {})
        for key, value in body.items():
            if key.startswith("custom@"):
                values[key[len("custom@") :]] = value
        return values

    def _missing_required(self, group: str, values: Mapping[str, Any]) -> list[Json]:
        return [f for f in self.required_fields(group) if values.get(f["key"]) in (None, "")]

    def _adjusted(self, original: Decimal, adjusted: Decimal, line: Mapping[str, Any], *, applies: bool) -> None:
        if (
            applies
            and self.settings["pos.tickets.reason_of_adjusting_price_required"]
            and adjusted != original
            and not line.get("adjustment_reason")
        ):
            raise Invalid({"adjustment_reason": ["is required"]}, "A reason for adjusting the price is required")

    # --- customers -----------------------------------------------------------------------------
    def create_customer(self, body: Mapping[str, Any]) -> Json:
        with self.lock:
            problems: dict[str, list[str]] = {}
            if not str(body.get("email") or "").strip():
                problems["email"] = ["is required"]
            if not (str(body.get("first_name") or "") or str(body.get("last_name") or "")):
                problems["last_name"] = ["is required"]
            if problems:
                raise Invalid(problems, "Customer is invalid")
            cid = self.next_id()
            customer = {
                "id": cid,
                "public_id": str(body.get("public_id") or cid),
                "first_name": str(body.get("first_name") or ""),
                "last_name": str(body.get("last_name") or ""),
                "email": str(body["email"]).strip(),
                "address_ids": [],
                "active": True,
            }
            self.customers[cid] = customer
            self.record("customer_created", str(customer["email"]), id=cid)
            return customer

    def create_address(self, customer_id: int, body: Mapping[str, Any]) -> Json:
        with self.lock:
            customer = self.customers.get(customer_id)
            if customer is None:
                raise Missing("no such customer")
            needed = ("line_1", "city", "postal_code", "country")
            problems = {k: ["is required"] for k in needed if not str(body.get(k) or "").strip()}
            if problems:
                raise Invalid(problems, "Address is incomplete")
            aid = self.next_id()
            address = {"id": aid, "customer_id": customer_id, **{k: body.get(k) for k in (*needed, "line_2", "state")}}
            address.update({"first_name": body.get("first_name"), "last_name": body.get("last_name")})
            self.addresses[aid] = address
            customer["address_ids"].append(aid)
            self.record("address_created", customer["email"], id=aid, customer_id=customer_id)
            return address

    # --- items, custom fields, settings --------------------------------------------------------
    def create_item(self, body: Mapping[str, Any]) -> Json:
        with self.lock:
            public_id = str(body.get("public_id") or "").strip()
            if not public_id:
                raise Invalid({"public_id": ["is required"]})
            if self.item_by_public_id(public_id) is not None:
                raise Invalid({"public_id": ["has already been taken"]}, "Item # already used")
            custom = self._custom_values(body)
            missing = self._missing_required("item", custom)
            if missing:
                raise Invalid({f"custom@{f['key']}": ["is required"] for f in missing}, "Item is invalid")
            flags = self.options.accepts_item_flags
            item = self.add_item(
                public_id,
                str(body.get("description") or public_id),
                dec(body.get("price"), "price"),
                track_inventory=bool(body.get("track_inventory", True)) if flags else True,
                taxable=bool(body.get("taxable", True)) if flags else True,
                custom=custom,
            )
            item["cost"] = dec(body.get("cost"), "cost")
            item["prompt_for_price"] = bool(body.get("prompt_for_price", False))
            self.record("item_created", public_id, id=item["id"])
            return item

    def update_item(self, item_id: int, body: Mapping[str, Any]) -> Json:
        with self.lock:
            item = self.items.get(item_id)
            if item is None:
                raise Missing("no such item")
            for key in ("description", "active", "public_id"):
                if key in body:
                    item[key] = body[key]
            self.record("item_updated", str(item["public_id"]), id=item_id, changes=sorted(body))
            return item

    def update_custom_field(self, field_id: int, body: Mapping[str, Any]) -> Json:
        with self.lock:
            field = self.custom_fields.get(field_id)
            if field is None:
                raise Missing("no such custom field")
            if "required" in body:
                field["required"] = bool(body["required"])
            self.record("custom_field_updated", field["key"], required=field["required"])
            return field

    def put_setting(self, key: str, value: Any) -> Json:
        with self.lock:
            if key not in self.settings:
                raise Missing(f"no setting {key!r}")
            self.settings[key] = bool(value)
            return {"key": key, "value": self.settings[key]}

    # --- sales orders --------------------------------------------------------------------------
    def _unique(self, public_id: str) -> None:
        if not self.options.unique_public_id or not public_id:
            return
        taken = any(o["public_id"] == public_id for o in self.orders.values()) or any(
            t["public_id"] == public_id for t in self.tickets.values()
        )
        if taken:
            raise Invalid({"public_id": ["has already been taken"]}, "public_id already used")

    def create_order(self, body: Mapping[str, Any]) -> Json:
        with self.lock:
            applies = self.options.pos_settings_apply_to_orders
            station = self._station(body.get("station_id"))
            public_id = str(body.get("public_id") or "")
            self._unique(public_id)
            custom = self._custom_values(body)
            blocking = [f for f in self._missing_required("sales.transaction", custom) if f["on_missing"] == "block"]
            if blocking:
                raise Invalid({f"custom@{f['key']}": ["is required"] for f in blocking}, "Order is invalid")
            if str(body.get("status") or "pending") != "pending":
                raise Invalid({"status": ["must be pending when an order is created"]})
            oid = self.next_id()
            order = {
                "id": oid,
                "public_id": public_id,
                "status": "pending",
                "station_id": station["id"],
                "source_location_id": _int(body.get("source_location_id")) or station["location_id"],
                "customer_id": self._customer(body, applies=applies),
                "billing_address_id": body.get("billing_address_id"),
                "shipping_address_id": body.get("shipping_address_id"),
                "shipping_charge": cents(dec(body.get("shipping_charge"), "shipping_charge")),
                "sales_rep": self._sales_rep(body, applies=applies),
                "custom": custom,
                "lines": [],
                "taxes": [],
                "discounts": [],
                "payments": [],
                "created_at": self.stamp(),
            }
            self.orders[oid] = order
            self.record("order_created", public_id, id=oid)
            return order

    def order(self, order_id: int) -> Json:
        order = self.orders.get(order_id)
        if order is None:
            raise Missing("no such order")
        return order

    def _editable(self, order: Json) -> None:
        if order["status"] != "pending":
            raise Invalid({"status": [f"is {order['status']}: the order cannot be changed"]})

    def add_order_line(self, order_id: int, body: Mapping[str, Any]) -> Json:
        with self.lock:
            order = self.order(order_id)
            self._editable(order)
            item = self._item(body.get("item_id"))
            qty = dec(body.get("qty"), "qty")
            if qty <= 0 or qty != qty.to_integral_value():
                raise Invalid({"qty": ["must be a whole number greater than 0"]})
            original = cents(dec(body.get("original_unit_price", item["price"]), "original_unit_price"))
            adjusted = cents(dec(body.get("adjusted_unit_price", original), "adjusted_unit_price"))
            self._adjusted(original, adjusted, body, applies=self.options.pos_settings_apply_to_orders)
            custom = self._custom_values(body)
            blocking = [
                f for f in self._missing_required("sales.transaction.line_item", custom) if f["on_missing"] == "block"
            ]
            if blocking:
                raise Invalid({f"custom@{f['key']}": ["is required"] for f in blocking}, "Line is invalid")
            line = {
                "id": self.next_id(),
                "item_id": item["id"],
                "qty": qty,
                "original_unit_price": original,
                "adjusted_unit_price": adjusted,
                "total_tax": cents(dec(body.get("total_tax"), "total_tax")),
                "description": str(body.get("description") or item["description"]),
                "custom": custom,
                "invoiced_qty": Decimal("0"),
            }
            order["lines"].append(line)
            self.record("order_line_added", order["public_id"], order_id=order_id, item=item["public_id"], qty=str(qty))
            return line

    def add_order_part(self, order_id: int, part: str, body: Mapping[str, Any]) -> Json:
        """A tax, a discount or a payment (``part``: ``taxes``, ``discounts``, ``payments``)."""
        with self.lock:
            order = self.order(order_id)
            self._editable(order)
            if part == "payments":
                if body.get("type") not in ("CustomPayment", "Payments::ExternalPayment"):
                    raise Invalid({"type": ["is not a payment type the API takes"]})
                if _int(body.get("payment_type_id")) not in self.payment_types:
                    raise Invalid({"payment_type_id": ["is invalid"]})
                record = {
                    "id": self.next_id(),
                    "type": body["type"],
                    "payment_type_id": _int(body.get("payment_type_id")),
                    "amount": cents(dec(body.get("amount"), "amount")),
                    "deposit": bool(body.get("deposit", False)),
                }
            else:
                record = {
                    "id": self.next_id(),
                    "description": str(body.get("description") or ""),
                    "value": cents(dec(body.get("value"), "value")),
                }
            order[part].append(record)
            kind = {"taxes": "order_tax_added", "discounts": "order_discount_added", "payments": "order_payment_added"}
            self.record(kind[part], order["public_id"], order_id=order_id, **{k: str(v) for k, v in record.items()})
            return record

    def order_total(self, order: Json) -> Decimal:
        lines = sum((cents(li["qty"] * li["adjusted_unit_price"]) + li["total_tax"] for li in order["lines"]), CENT * 0)
        taxes = sum((t["value"] for t in order["taxes"]), CENT * 0)
        discounts = sum((d["value"] for d in order["discounts"]), CENT * 0)
        return cents(lines + taxes - discounts + order["shipping_charge"])

    def update_order(self, order_id: int, body: Mapping[str, Any]) -> Json:
        with self.lock:
            order = self.order(order_id)
            if "custom" in body or any(k.startswith("custom@") for k in body):
                if order["status"] != "pending":
                    raise Invalid({"custom": ["cannot be changed once the order is open"]})
                order["custom"].update(self._custom_values(body))
            status = body.get("status")
            if status is None or status == order["status"]:
                return order
            if status != "open" or order["status"] != "pending":
                raise Invalid({"status": [f"cannot go from {order['status']} to {status}"]})
            missing = self._missing_required("sales.transaction", order["custom"])
            line_missing = [
                f for li in order["lines"] for f in self._missing_required("sales.transaction.line_item", li["custom"])
            ]
            if missing or line_missing:
                keys = sorted({f["key"] for f in missing + line_missing})
                raise Invalid(
                    {f"custom@{k}": ["is required"] for k in keys}, "The order stays pending: required fields are empty"
                )
            if not order["lines"]:
                raise Invalid({"lines": ["an order needs at least one line"]})
            order["status"] = "open"
            for line in order["lines"]:
                self._move(line["item_id"], order["source_location_id"], committed=line["qty"])
            self.record("order_opened", order["public_id"], order_id=order_id, total=str(self.order_total(order)))
            return order

    # --- invoices ------------------------------------------------------------------------------
    def create_invoice(self, body: Mapping[str, Any]) -> Json:
        with self.lock:
            order = self.orders.get(_int(body.get("order_id")))
            if order is None:
                raise Invalid({"order_id": ["is invalid"]})
            if order["status"] != "open":
                raise Invalid({"order_id": [f"the order is {order['status']}: only open orders are invoiced"]})
            station = self._station(body.get("station_id") or order["station_id"])
            customer = order["customer_id"]
            if customer is not None and not self.customers[customer]["address_ids"]:
                raise Invalid({"customer_id": ["has no address: an invoice needs a complete address"]})
            iid = self.next_id()
            invoice = {
                "id": iid,
                "order_id": order["id"],
                "public_id": order["public_id"],
                "customer_id": customer,
                "station_id": station["id"],
                "status": "pending",
                "lines": [],
                "total": cents(dec(body.get("total"), "total")),
            }
            self.invoices[iid] = invoice
            self.record("invoice_created", order["public_id"], id=iid, order_id=order["id"])
            return invoice

    def invoice(self, invoice_id: int) -> Json:
        found = self.invoices.get(invoice_id)
        if found is None:
            raise Missing("no such invoice")
        return found

    def add_invoice_line(self, invoice_id: int, body: Mapping[str, Any]) -> Json:
        with self.lock:
            invoice = self.invoice(invoice_id)
            if invoice["status"] != "pending":
                raise Invalid({"status": ["the invoice is complete"]})
            order = self.orders[invoice["order_id"]]
            item = self._item(body.get("item_id"))
            qty = dec(body.get("qty"), "qty")
            open_qty = sum((li["qty"] - li["invoiced_qty"] for li in order["lines"] if li["item_id"] == item["id"]), 0)
            taken = sum((li["qty"] for li in invoice["lines"] if li["item_id"] == item["id"]), 0)
            if qty <= 0 or qty > open_qty - taken:
                raise Invalid({"qty": [f"must be between 1 and {open_qty - taken}"]})
            line = {"id": self.next_id(), "type": "ItemLine", "item_id": item["id"], "qty": qty}
            invoice["lines"].append(line)
            self.record("invoice_line_added", str(invoice["public_id"]), invoice_id=invoice_id, item=item["public_id"])
            return line

    def update_invoice(self, invoice_id: int, body: Mapping[str, Any]) -> Json:
        with self.lock:
            invoice = self.invoice(invoice_id)
            status = body.get("status")
            if status is None or status == invoice["status"]:
                return invoice
            if status != "complete":
                raise Invalid({"status": [f"cannot become {status}"]})
            if not invoice["lines"]:
                raise Invalid({"lines": ["an invoice needs at least one line"]})
            order = self.orders[invoice["order_id"]]
            for inv_line in invoice["lines"]:
                left = inv_line["qty"]
                for line in order["lines"]:
                    if line["item_id"] != inv_line["item_id"] or left <= 0:
                        continue
                    take = min(left, line["qty"] - line["invoiced_qty"])
                    line["invoiced_qty"] += take
                    left -= take
                self._move(
                    inv_line["item_id"],
                    order["source_location_id"],
                    on_hand=-inv_line["qty"],
                    committed=-inv_line["qty"],
                )
            invoice["status"] = "complete"
            if all(li["invoiced_qty"] >= li["qty"] for li in order["lines"]):
                order["status"] = "closed"
            self.record("invoice_completed", invoice["public_id"], id=invoice_id, order_status=order["status"])
            return invoice

    # --- tickets -------------------------------------------------------------------------------
    def create_ticket(self, body: Mapping[str, Any]) -> Json:
        with self.lock:
            station = self._station(body.get("station_id"))
            public_id = str(body.get("public_id") or "")
            self._unique(public_id)
            custom = self._custom_values(body)
            missing = self._missing_required("sales.transaction", custom)
            if [f for f in missing if f["on_missing"] == "block"]:
                raise Invalid(
                    {f"custom@{f['key']}": ["is required"] for f in missing if f["on_missing"] == "block"},
                    "Ticket is invalid",
                )
            lines: list[Json] = []
            for raw in body.get("item_lines") or []:
                lines.append(self._ticket_line(raw))
            if not lines:
                raise Invalid({"item_lines": ["a ticket needs at least one line"]})
            taxes = [
                {"description": str(t.get("description") or ""), "value": cents(dec(t.get("value"), "value"))}
                for t in body.get("tax_lines") or []
            ]
            payments = []
            for p in body.get("payments") or []:
                if _int(p.get("payment_type_id")) not in self.payment_types:
                    raise Invalid({"payments.payment_type_id": ["is invalid"]})
                payments.append({"type": p.get("type"), "amount": cents(dec(p.get("amount"), "amount"))})
            tid = self.next_id()
            ticket = {
                "id": tid,
                "public_id": public_id,
                "station_id": station["id"],
                "location_id": station["location_id"],
                "customer_id": self._customer(body, applies=True),
                "sales_rep": self._sales_rep(body, applies=True),
                "custom": custom,
                "item_lines": lines,
                "tax_lines": taxes,
                "payments": payments,
                "affect_inventory": bool(body.get("affect_inventory", True)),
                "status": "pending",
                "created_at": self.stamp(),
            }
            ticket["total"] = self.ticket_total(ticket)
            self.tickets[tid] = ticket
            self.record("ticket_created", public_id, id=tid)
            if str(body.get("status") or "") == "complete" and not missing:
                self._complete_ticket(ticket)
            return ticket

    def _ticket_line(self, raw: Mapping[str, Any]) -> Json:
        kind = raw.get("type", "ItemLine")
        if kind != "ItemLine":
            raise Invalid({"item_lines.type": [f"{kind!r} is not a line type the API takes"]})
        item = self._item(raw.get("item_id"), "item_lines.item_id")
        qty = dec(raw.get("qty"), "qty")
        if qty <= 0 or qty != qty.to_integral_value():
            raise Invalid({"qty": ["must be a whole number greater than 0"]})
        original = cents(dec(raw.get("original_unit_price", item["price"]), "original_unit_price"))
        unit = cents(dec(raw.get("unit_price", original), "unit_price"))
        self._adjusted(original, unit, raw, applies=True)
        custom = self._custom_values(raw)
        blocking = [
            f for f in self._missing_required("sales.transaction.line_item", custom) if f["on_missing"] == "block"
        ]
        if blocking:
            raise Invalid({f"custom@{f['key']}": ["is required"] for f in blocking}, "Line is invalid")
        return {
            "type": "ItemLine",
            "item_id": item["id"],
            "qty": qty,
            "unit_price": unit,
            "original_unit_price": original,
            "description": str(raw.get("description") or item["description"]),
            "custom": custom,
        }

    def ticket_total(self, ticket: Json) -> Decimal:
        lines = sum((cents(li["qty"] * li["unit_price"]) for li in ticket["item_lines"]), CENT * 0)
        return cents(lines + sum((t["value"] for t in ticket["tax_lines"]), CENT * 0))

    def update_ticket(self, ticket_id: int, body: Mapping[str, Any]) -> Json:
        with self.lock:
            ticket = self.tickets.get(ticket_id)
            if ticket is None:
                raise Missing("no such ticket")
            if ticket["status"] == "complete":
                if body.get("status", "complete") != "complete":
                    raise Invalid({"status": ["a complete ticket cannot change"]})
                return ticket
            ticket["custom"].update(self._custom_values(body))
            if body.get("status") == "complete":
                missing = self._missing_required("sales.transaction", ticket["custom"])
                if missing:
                    raise Invalid(
                        {f"custom@{f['key']}": ["is required"] for f in missing},
                        "The ticket stays pending: required fields are empty",
                    )
                self._complete_ticket(ticket)
            return ticket

    def _complete_ticket(self, ticket: Json) -> None:
        ticket["status"] = "complete"
        if ticket["affect_inventory"]:
            for line in ticket["item_lines"]:
                self._move(line["item_id"], ticket["location_id"], on_hand=-line["qty"])
        self.record("ticket_completed", ticket["public_id"], id=ticket["id"], total=str(ticket["total"]))

    # --- inventory -----------------------------------------------------------------------------
    def _move(
        self, item_id: int, location_id: int, *, on_hand: Decimal = Decimal("0"), committed: Decimal = Decimal("0")
    ) -> None:
        item = self.items[item_id]
        if not item["track_inventory"]:
            return
        row = self.inventory.setdefault((item_id, location_id), {"on_hand": Decimal("0"), "committed": Decimal("0")})
        row["on_hand"] += on_hand
        row["committed"] += committed
        self.record(
            "inventory_moved",
            str(item["public_id"]),
            location_id=location_id,
            on_hand=str(on_hand),
            committed=str(committed),
        )

    def control_extra(self) -> dict[str, Any]:
        with self.lock:
            return {"orders": len(self.orders), "tickets": len(self.tickets), "invoices": len(self.invoices)}


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
