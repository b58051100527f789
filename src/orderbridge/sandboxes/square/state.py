"""State of the Square sandbox: locations, team members, catalog, orders, payments, custom attributes.

What it emulates (``/work/shared/api-facts.md``, "POS destinations → Square"), and the settings
that stand for each fact the docs leave open (a ``(?)``):

- **Idempotency** (:meth:`SquareState.idempotent`). A write's ``idempotency_key`` is remembered
  with the request body and the answer: the same key with the same body gets the first answer
  again, byte for byte, and makes nothing; the same key with another body is refused with
  ``IDEMPOTENCY_KEY_REUSED``. Only answers that succeeded are remembered (a refused request may be
  corrected and sent again under its key). Keys are scoped per endpoint (``idempotency_scope``:
  ``endpoint`` or ``seller`` — the (?) of api-facts) and never expire.
- **Orders** are priced by :mod:`.pricing` (Bankers' Rounding, one rounding per tax); a catalog
  line takes its variation's name and price unless it names ``base_price_money``; an unknown or
  deleted variation id, or an item id where a variation id belongs, refuses the whole order with
  ``INVALID_VALUE`` (failure #4). At most one fulfillment on create; ``reference_id`` ≤ 40;
  ``metadata`` ≤ 10 keys. An order at an INACTIVE location is refused (``reject_inactive_location``).
- **Payments** with ``source_id: "EXTERNAL"`` need ``external_details{type, source}``; the amount
  must equal what the order still owes, else Square's refusal (failure #1); an INACTIVE
  ``team_member_id`` is refused when ``reject_inactive_team_member`` (seed 001's trap; no proof
  Square refuses it, so it is a setting). Paying in full completes the order when it has no open
  fulfillment (else it stays OPEN, shown in the POS to fulfil) and moves stock of every line that
  references a variation with ``track_inventory`` (the inventory ledger); ad-hoc lines never move
  stock.
- **Order search** (``POST /v2/orders/search``): newest first, at most 500 orders a page (the
  default limit; ``orders_page_max`` answers fewer, as Square may), and a ``cursor`` while more
  match — opaque, bound to the query it pages (another query with it is refused).
- **Catalog**: search by ``ITEM_VARIATION`` with ``exact_query`` (case-insensitive and, with
  ``exact_query_partial``, matching a word prefix — "sma" finds "Small" — as the forum reports) or
  ``set_query`` (exact, case-insensitive, ≤ 250 values); a search for ``ITEM`` objects by SKU finds
  nothing (failure #5). Upserts take ``#temporary`` ids, answer ``id_mappings``, need the current
  ``version`` to change an object (``VERSION_MISMATCH``) and happen one at a time per seller: a
  write while another is running is answered 429 (``catalog_busy`` makes the next N writes meet a
  running one, as another app's sync would).
- **Team members** ACTIVE/INACTIVE, **locations** ACTIVE/INACTIVE (seed traps: set them with the
  control routes or at creation).
- **Order custom attributes**: definitions (≤ 100, no "required" flag — Square has none) and
  values per order, only from ``Square-Version`` 2022-11-16 on.
- **Square-Version**: a request without the header runs at the app's ``pinned_version``; a header
  not shaped ``YYYY-MM-DD`` is refused (``INVALID_SQUARE_VERSION_FORMAT``); every ledger entry
  records the version it ran at.

The ledger (``record``) holds one entry per call (``call``) and per object made or changed
(``order_created``, ``payment_created``, ``catalog_object_upserted``, ``custom_attribute_upserted``,
``definition_created``, ``inventory_adjusted``), plus ``idempotent_replay`` for each answer given
again — which is how tests prove one order and one payment per order under retries.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson

from orderbridge.sandboxes.base import SandboxState
from orderbridge.sandboxes.square import pricing

Json = dict[str, Any]

REFERENCE_ID_MAX = 40
METADATA_MAX_KEYS = 10
PAYMENT_KEY_MAX = 45
ORDER_KEY_MAX = 192
SET_QUERY_MAX = 250
DEFINITIONS_MAX = 100
#: SearchOrders answers at most this many orders a page (its default limit too), with a ``cursor``
#: for the next page while more match
SEARCH_ORDERS_MAX = 500
CUSTOM_ATTRIBUTES_SINCE = "2022-11-16"
VERSION_SHAPE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class SquareError(Exception):
    """One of Square's errors: the HTTP status and ``{category, code, detail, field}``."""

    def __init__(self, status: int, code: str, detail: str, field: str = "", category: str = "") -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.category = category or _category(status)

    def body(self) -> Json:
        error: Json = {"category": self.category, "code": self.code, "detail": self.detail}
        if self.field:
            error["field"] = self.field
        return {"errors": [error]}


def _category(status: int) -> str:
    if status == 401:
        return "AUTHENTICATION_ERROR"
    if status == 429:
        return "RATE_LIMIT_ERROR"
    if status >= 500:
        return "API_ERROR"
    return "INVALID_REQUEST_ERROR"


def invalid(detail: str, field: str = "", code: str = "INVALID_VALUE") -> SquareError:
    return SquareError(400, code, detail, field)


@dataclass
class AfterApply:
    """A fault that strikes *after* the request was applied: its answer is replaced by ``status``."""

    path: str
    status: int = 500
    count: int = 1
    method: str = "POST"


class SquareState(SandboxState):
    def __init__(
        self,
        *,
        access_token: str,
        currency: str,
        pinned_version: str,
        tax_rounding: str,
        reject_inactive_team_member: bool,
        reject_inactive_location: bool,
        idempotency_scope: str,
        exact_query_partial: bool,
        clock: Callable[[], datetime],
    ) -> None:
        super().__init__(credentials={access_token})
        self.currency = currency
        self.pinned_version = pinned_version
        self.tax_rounding = tax_rounding
        self.reject_inactive_team_member = reject_inactive_team_member
        self.reject_inactive_location = reject_inactive_location
        self.idempotency_scope = idempotency_scope
        self.exact_query_partial = exact_query_partial
        self.clock = clock
        self.locations: dict[str, Json] = {}
        self.team_members: dict[str, Json] = {}
        self.catalog: dict[str, Json] = {}
        self.orders: dict[str, Json] = {}
        self.payments: dict[str, Json] = {}
        self.definitions: dict[str, Json] = {}
        self.attributes: dict[tuple[str, str], Json] = {}
        self.inventory: dict[str, Decimal] = {}
        self.keys: dict[tuple[str, str], tuple[bytes, int, bytes]] = {}
        self.after_apply: list[AfterApply] = []
        self.catalog_busy = 0
        #: SearchOrders may answer fewer orders than its limit (Square: "it is possible to receive
        #: fewer results than the specified limit on a given page"): the most it answers here
        self.orders_page_max = SEARCH_ORDERS_MAX
        self.catalog_write = threading.Lock()
        self._ids = itertools.count(1)

    # --- ids and time ----------------------------------------------------------------------------
    def now(self) -> str:
        return self.clock().astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def new_id(self, prefix: str) -> str:
        n = next(self._ids)
        digest = hashlib.sha256(f"{prefix}{n}".encode()).hexdigest().upper()
        return f"{prefix}{digest[:20]}"

    # --- seeding -----------------------------------------------------------------------------------
    def add_location(self, location_id: str, name: str, status: str = "ACTIVE") -> Json:
        with self.lock:
            location = {
                "id": location_id,
                "name": name,
                "status": status,
                "currency": self.currency,
                "country": "US",
                "type": "PHYSICAL",
                "capabilities": ["CREDIT_CARD_PROCESSING"],
                "created_at": self.now(),
            }
            self.locations[location_id] = location
            return location

    def add_team_member(self, member_id: str, given: str, family: str = "", status: str = "ACTIVE") -> Json:
        with self.lock:
            member = {
                "id": member_id,
                "given_name": given,
                "family_name": family,
                "status": status,
                "is_owner": False,
                "assigned_locations": {"assignment_type": "ALL_CURRENT_AND_FUTURE_LOCATIONS"},
                "created_at": self.now(),
                "updated_at": self.now(),
            }
            self.team_members[member_id] = member
            return member

    def add_item(
        self, sku: str, name: str, price: int | None, *, track_inventory: bool = True, stock: int = 100
    ) -> tuple[str, str]:
        """An ITEM with one ITEM_VARIATION of ``sku``: returns (item id, variation id)."""
        with self.lock:
            item_id, variation_id = self.new_id("I"), self.new_id("V")
            variation_data: Json = {
                "item_id": item_id,
                "name": "Regular",
                "sku": sku,
                "pricing_type": "FIXED_PRICING" if price is not None else "VARIABLE_PRICING",
                "track_inventory": track_inventory,
            }
            if price is not None:
                variation_data["price_money"] = pricing.money(price, self.currency)
            variation = self._object("ITEM_VARIATION", variation_id, {"item_variation_data": variation_data})
            item = self._object("ITEM", item_id, {"item_data": {"name": name, "variations": [variation]}})
            self.catalog[item_id] = item
            self.catalog[variation_id] = variation
            if track_inventory:
                self.inventory[variation_id] = Decimal(stock)
            return item_id, variation_id

    def _object(self, kind: str, object_id: str, data: Json) -> Json:
        return {
            "type": kind,
            "id": object_id,
            "updated_at": self.now(),
            "version": self._version(),
            "is_deleted": False,
            "present_at_all_locations": True,
            **data,
        }

    def _version(self) -> int:
        return 1_700_000_000_000 + next(self._ids)

    # --- idempotency -------------------------------------------------------------------------------
    def idempotent(
        self, endpoint: str, key: Any, body: Mapping[str, Any], apply: Callable[[], tuple[int, Json]]
    ) -> tuple[int, bytes]:
        """Run ``apply`` once per key: the stored answer for the same key and body, Square's refusal
        for the same key and another body."""
        if not isinstance(key, str) or not key:
            raise invalid("Field must be set", "idempotency_key", "MISSING_REQUIRED_PARAMETER")
        scope = endpoint if self.idempotency_scope == "endpoint" else "*"
        fingerprint = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).digest()
        with self.lock:
            seen = self.keys.get((scope, key))
            if seen is not None:
                if seen[0] != fingerprint:
                    raise invalid(
                        "The idempotency key can only be retried with the same request data.",
                        "idempotency_key",
                        "IDEMPOTENCY_KEY_REUSED",
                    )
                self.record("idempotent_replay", key, endpoint=endpoint)
                return seen[1], seen[2]
            status, answer = apply()
            encoded = orjson.dumps(answer)
            self.keys[(scope, key)] = (fingerprint, status, encoded)
            return status, encoded

    def take_after_apply(self, method: str, path: str) -> AfterApply | None:
        with self.lock:
            for fault in self.after_apply:
                if path.startswith(fault.path) and (not fault.method or fault.method == method):
                    fault.count -= 1
                    if fault.count <= 0:
                        self.after_apply.remove(fault)
                    return fault
            return None

    # --- locations and team --------------------------------------------------------------------------
    def location(self, location_id: str) -> Json:
        found = self.locations.get(location_id)
        if found is None:
            raise SquareError(404, "NOT_FOUND", f"Location `{location_id}` not found.", "location_id")
        return found

    def team_member(self, member_id: str) -> Json:
        found = self.team_members.get(member_id)
        if found is None:
            raise SquareError(404, "NOT_FOUND", f"Team member with id `{member_id}` not found.", "team_member_id")
        return found

    # --- catalog -----------------------------------------------------------------------------------
    def search_catalog(self, body: Mapping[str, Any]) -> Json:
        types = body.get("object_types") or []
        if not isinstance(types, list):
            raise invalid("object_types must be a list.", "object_types")
        query = body.get("query") or {}
        exact, many = query.get("exact_query"), query.get("set_query")
        limit = body.get("limit", 100)
        if not isinstance(limit, int) or not 1 <= limit <= 1000:
            raise invalid("Limit must be between 1 and 1000.", "limit")
        with self.lock:
            candidates = [
                o for o in self.catalog.values() if (not types or o["type"] in types) and not o.get("is_deleted")
            ]
            if exact is not None:
                name, wanted = str(exact.get("attribute_name", "")), str(exact.get("attribute_value", "")).lower()
                candidates = [o for o in candidates if self._exact(_attribute(o, name), wanted)]
            elif many is not None:
                values = many.get("attribute_values") or []
                if not isinstance(values, list) or len(values) > SET_QUERY_MAX:
                    raise invalid(f"At most {SET_QUERY_MAX} attribute_values.", "query.set_query.attribute_values")
                name = str(many.get("attribute_name", ""))
                lowered = {str(v).lower() for v in values}
                candidates = [o for o in candidates if (_attribute(o, name) or "").lower() in lowered]
            cursor = body.get("cursor")
            start = int(cursor) if isinstance(cursor, str) and cursor.isdigit() else 0
            page = candidates[start : start + limit]
            answer: Json = {"objects": [_copy(o) for o in page]} if page else {}
            if start + limit < len(candidates):
                answer["cursor"] = str(start + limit)
            return answer

    def _exact(self, value: str | None, wanted: str) -> bool:
        if value is None:
            return False
        text = value.lower()
        if text == wanted:
            return True
        return self.exact_query_partial and any(word.startswith(wanted) for word in re.split(r"[\s\-_/]+", text))

    def upsert_catalog(self, body: Mapping[str, Any]) -> Json:
        """One catalog write (the caller holds :attr:`catalog_write`)."""
        obj = body.get("object")
        if not isinstance(obj, Mapping) or not obj.get("type") or not obj.get("id"):
            raise invalid("object with type and id is required.", "object", "MISSING_REQUIRED_PARAMETER")
        mappings: list[Json] = []
        with self.lock:
            stored = self._store_object(dict(obj), mappings, parent=None)
            self.record("catalog_object_upserted", stored["id"], type=stored["type"], sku=_attribute(stored, "sku"))
        return {"catalog_object": _copy(stored), "id_mappings": mappings}

    def _store_object(self, obj: Json, mappings: list[Json], parent: str | None) -> Json:
        client_id = str(obj["id"])
        if client_id.startswith("#"):
            object_id = self.new_id("V" if obj["type"] == "ITEM_VARIATION" else "I")
            mappings.append({"client_object_id": client_id, "object_id": object_id})
        else:
            object_id = client_id
            current = self.catalog.get(object_id)
            if current is None:
                raise SquareError(404, "NOT_FOUND", f"Object `{object_id}` not found.", "object.id")
            if obj.get("version") != current["version"]:
                raise invalid(
                    "Object version does not match latest database version.", "object.version", "VERSION_MISMATCH"
                )
        stored = {**obj, "id": object_id, "version": self._version(), "updated_at": self.now(), "is_deleted": False}
        if obj["type"] == "ITEM":
            data = dict(stored.get("item_data") or {})
            variations = []
            for variation in data.get("variations") or []:
                v = dict(variation)
                vdata = dict(v.get("item_variation_data") or {})
                vdata["item_id"] = object_id
                v["item_variation_data"] = vdata
                variations.append(self._store_object(v, mappings, parent=object_id))
            data["variations"] = variations
            stored["item_data"] = data
        elif obj["type"] == "ITEM_VARIATION":
            vdata = dict(stored.get("item_variation_data") or {})
            if parent is None and vdata.get("item_id", "").startswith("#"):
                raise invalid("A variation needs an existing item_id.", "object.item_variation_data.item_id")
            stored["item_variation_data"] = vdata
            if vdata.get("track_inventory"):
                self.inventory.setdefault(object_id, Decimal(0))
        self.catalog[object_id] = stored
        return stored

    # --- orders ------------------------------------------------------------------------------------
    def create_order(self, body: Mapping[str, Any], version: str) -> Json:
        given = body.get("order")
        if not isinstance(given, Mapping):
            raise invalid("Field must be set", "order", "MISSING_REQUIRED_PARAMETER")
        order: Json = orjson.loads(orjson.dumps(given))
        location_id = order.get("location_id")
        if not location_id:
            raise invalid("Field must be set", "order.location_id", "MISSING_REQUIRED_PARAMETER")
        with self.lock:
            location = self.locations.get(str(location_id))
            if location is None:
                raise SquareError(404, "NOT_FOUND", f"Location `{location_id}` not found.", "order.location_id")
            if location["status"] != "ACTIVE" and self.reject_inactive_location:
                raise invalid(f"Location `{location_id}` is not active.", "order.location_id")
            reference = order.get("reference_id")
            if reference is not None and (not isinstance(reference, str) or len(reference) > REFERENCE_ID_MAX):
                raise invalid(
                    f"Field must not be greater than {REFERENCE_ID_MAX} length", "order.reference_id", "VALUE_TOO_LONG"
                )
            metadata = order.get("metadata") or {}
            if not isinstance(metadata, Mapping) or len(metadata) > METADATA_MAX_KEYS:
                raise invalid(f"At most {METADATA_MAX_KEYS} metadata entries.", "order.metadata")
            fulfillments = order.get("fulfillments") or []
            if len(fulfillments) > 1:
                raise invalid("Only one fulfillment can be specified on an order.", "order.fulfillments")
            for i, f in enumerate(fulfillments):
                if f.get("type") not in ("SHIPMENT", "PICKUP", "DELIVERY", "DIGITAL", "SIMPLE"):
                    raise invalid(f"Invalid fulfillment type {f.get('type')!r}.", f"order.fulfillments[{i}].type")
                f.setdefault("uid", f"F{i}")
                f.setdefault("state", "PROPOSED")
            if not order.get("line_items"):
                raise invalid(
                    "An order must have at least one line item.", "order.line_items", "MISSING_REQUIRED_PARAMETER"
                )
            for i, item in enumerate(order["line_items"]):
                self._line(item, i)
            for i, key in enumerate(("taxes", "discounts", "service_charges")):
                for j, part in enumerate(order.get(key) or []):
                    part.setdefault("uid", f"{key[0].upper()}{i}{j}")
            try:
                pricing.price(order, self.currency, tax_rounding=self.tax_rounding)
            except pricing.PricingError as exc:
                raise invalid(exc.detail, exc.field, exc.code) from None
            now = self.now()
            order.update(
                {
                    "id": self.new_id("O"),
                    "state": order.get("state") or "OPEN",
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                    "tenders": [],
                    "net_amount_due_money": dict(order["total_money"]),
                    "source": order.get("source") or {"name": "Sandbox app"},
                }
            )
            if order["state"] not in ("OPEN", "DRAFT"):
                raise invalid("An order can only be created OPEN or DRAFT.", "order.state")
            self.orders[order["id"]] = order
            self.record(
                "order_created",
                order["id"],
                reference_id=order.get("reference_id"),
                total=order["total_money"]["amount"],
                tax=order["total_tax_money"]["amount"],
                square_version=version,
            )
            return order

    def _line(self, item: Json, i: int) -> None:
        where = f"order.line_items[{i}]"
        item.setdefault("uid", f"L{i}")
        catalog_id = item.get("catalog_object_id")
        if catalog_id:
            found = self.catalog.get(str(catalog_id))
            if found is None or found.get("is_deleted") or found["type"] != "ITEM_VARIATION":
                what = (
                    "an item, not an item variation" if found is not None and found["type"] == "ITEM" else "not found"
                )
                raise invalid(
                    f"Item variation with catalog object ID `{catalog_id}` {what}.", where + ".catalog_object_id"
                )
            data = found["item_variation_data"]
            parent = self.catalog.get(str(data.get("item_id")), {})
            item.setdefault("name", (parent.get("item_data") or {}).get("name", ""))
            item.setdefault("variation_name", data.get("name", ""))
            item["catalog_version"] = found["version"]
            item["item_type"] = "ITEM"
            if "base_price_money" not in item:
                if data.get("pricing_type") == "VARIABLE_PRICING" or "price_money" not in data:
                    raise invalid(
                        "A variable-priced item variation needs base_price_money.",
                        where + ".base_price_money",
                        "MISSING_REQUIRED_PARAMETER",
                    )
                item["base_price_money"] = dict(data["price_money"])
        else:
            if not item.get("name"):
                raise invalid("Field must be set", where + ".name", "MISSING_REQUIRED_PARAMETER")
            if "base_price_money" not in item:
                raise invalid("Field must be set", where + ".base_price_money", "MISSING_REQUIRED_PARAMETER")
            item["item_type"] = "CUSTOM_AMOUNT"

    def order(self, order_id: str) -> Json:
        found = self.orders.get(order_id)
        if found is None:
            raise SquareError(404, "NOT_FOUND", f"Order `{order_id}` not found.", "order_id")
        return found

    def search_orders(self, body: Mapping[str, Any]) -> Json:
        location_ids = set(body.get("location_ids") or [])
        if not location_ids:
            raise invalid("location_ids must be set.", "location_ids", "MISSING_REQUIRED_PARAMETER")
        flt = (body.get("query") or {}).get("filter") or {}
        sources = set((flt.get("source_filter") or {}).get("source_names") or [])
        states = set((flt.get("state_filter") or {}).get("states") or [])
        with self.lock:
            found = [
                _copy(o)
                for o in self.orders.values()
                if o["location_id"] in location_ids
                and (not sources or (o.get("source") or {}).get("name") in sources)
                and (not states or o["state"] in states)
            ]
        found.sort(key=lambda o: (o["created_at"], o["id"]), reverse=True)
        limit = body.get("limit", SEARCH_ORDERS_MAX)
        if not isinstance(limit, int) or limit < 1:
            raise invalid("Limit must be a positive integer.", "limit")
        page_size = min(limit, SEARCH_ORDERS_MAX, self.orders_page_max)
        # the cursor is opaque and bound to the query it pages (Square: "use the original query")
        asked = hashlib.sha256(
            orjson.dumps({k: v for k, v in body.items() if k not in ("cursor", "limit")}, option=orjson.OPT_SORT_KEYS)
        ).hexdigest()[:16]
        cursor = body.get("cursor")
        if cursor:
            after = _read_cursor(cursor, asked)
            found = [o for o in found if (o["created_at"], o["id"]) < after]
        page = found[:page_size]
        answer: Json = {"orders": page} if page else {}
        if len(found) > page_size:
            last = page[-1]
            answer["cursor"] = _cursor(asked, last["created_at"], last["id"])
        return answer

    # --- payments ----------------------------------------------------------------------------------
    def create_payment(self, body: Mapping[str, Any], version: str) -> Json:
        key = body.get("idempotency_key")
        if isinstance(key, str) and len(key) > PAYMENT_KEY_MAX:
            raise invalid(
                f"Field must not be greater than {PAYMENT_KEY_MAX} length", "idempotency_key", "VALUE_TOO_LONG"
            )
        source = body.get("source_id")
        if not source:
            raise invalid("Field must be set", "source_id", "MISSING_REQUIRED_PARAMETER")
        amount = body.get("amount_money")
        if not isinstance(amount, Mapping) or not isinstance(amount.get("amount"), int):
            raise invalid("Field must be set", "amount_money", "MISSING_REQUIRED_PARAMETER")
        details = body.get("external_details")
        if source == "EXTERNAL":
            if not isinstance(details, Mapping) or not details.get("type") or not details.get("source"):
                raise invalid(
                    "external_details with type and source is required for EXTERNAL payments.",
                    "external_details",
                    "MISSING_REQUIRED_PARAMETER",
                )
        else:
            raise SquareError(
                400,
                "INVALID_CARD_DATA",
                "The sandbox takes EXTERNAL payments only.",
                "source_id",
                "PAYMENT_METHOD_ERROR",
            )
        with self.lock:
            location_id = str(body.get("location_id") or next(iter(self.locations)))
            self.location(location_id)
            member_id = body.get("team_member_id")
            if member_id:
                member = self.team_members.get(str(member_id))
                if member is None:
                    raise SquareError(404, "NOT_FOUND", f"Team member `{member_id}` not found.", "team_member_id")
                if member["status"] != "ACTIVE" and self.reject_inactive_team_member:
                    raise invalid(f"Team member `{member_id}` is not active.", "team_member_id")
            order = None
            order_id = body.get("order_id")
            if order_id:
                order = self.order(str(order_id))
                if order["location_id"] != location_id:
                    raise invalid(
                        "The order's location does not match the payment's.", "location_id", "LOCATION_MISMATCH"
                    )
                if order["state"] != "OPEN":
                    raise invalid(f"Order `{order_id}` is {order['state']} and cannot be paid.", "order_id")
                due = order["net_amount_due_money"]["amount"]
                if amount["amount"] != due or amount.get("currency") != order["total_money"]["currency"]:
                    raise invalid(
                        "The payment total does not match the order total: "
                        f"{amount['amount']} {amount.get('currency')} paid, "
                        f"{due} {order['total_money']['currency']} due.",
                        "amount_money",
                    )
            now = self.now()
            payment: Json = {
                "id": self.new_id("P"),
                "created_at": now,
                "updated_at": now,
                "amount_money": dict(amount),
                "total_money": dict(amount),
                "approved_money": dict(amount),
                "status": "COMPLETED",
                "source_type": "EXTERNAL",
                "external_details": dict(details or {}),
                "location_id": location_id,
                "order_id": order_id,
                "reference_id": body.get("reference_id"),
                "team_member_id": member_id,
                "employee_id": member_id,
                "note": body.get("note"),
                "version_token": self.new_id("T"),
            }
            self.payments[payment["id"]] = payment
            self.record(
                "payment_created", payment["id"], order_id=order_id, amount=amount["amount"], square_version=version
            )
            if order is not None:
                self._paid(order, payment)
            return payment

    def _paid(self, order: Json, payment: Json) -> None:
        order["tenders"].append(
            {
                "id": payment["id"],
                "location_id": order["location_id"],
                "created_at": payment["created_at"],
                "amount_money": dict(payment["amount_money"]),
                "type": "OTHER",
                "payment_id": payment["id"],
            }
        )
        due = order["net_amount_due_money"]["amount"] - payment["amount_money"]["amount"]
        order["net_amount_due_money"] = pricing.money(due, order["total_money"]["currency"])
        order["version"] += 1
        order["updated_at"] = payment["updated_at"]
        if due != 0:
            return
        for item in order["line_items"]:
            variation = item.get("catalog_object_id")
            if variation and variation in self.inventory:
                self.inventory[variation] -= Decimal(item["quantity"])
                self.record("inventory_adjusted", variation, order_id=order["id"], quantity=item["quantity"])
        if all(f.get("state") == "COMPLETED" for f in order.get("fulfillments") or []):
            order["state"] = "COMPLETED"
            order["closed_at"] = payment["updated_at"]

    # --- custom attributes --------------------------------------------------------------------------
    def create_definition(self, body: Mapping[str, Any]) -> Json:
        definition = body.get("custom_attribute_definition")
        if not isinstance(definition, Mapping) or not definition.get("key"):
            raise invalid("Field must be set", "custom_attribute_definition.key", "MISSING_REQUIRED_PARAMETER")
        key = str(definition["key"])
        with self.lock:
            if key in self.definitions:
                raise SquareError(
                    409,
                    "CONFLICT",
                    f"A custom attribute definition with key `{key}` already exists.",
                    "custom_attribute_definition.key",
                )
            if len(self.definitions) >= DEFINITIONS_MAX:
                raise invalid(
                    f"At most {DEFINITIONS_MAX} order custom attribute definitions.", "custom_attribute_definition"
                )
            now = self.now()
            stored = {
                "key": key,
                "schema": definition.get("schema") or {},
                "name": definition.get("name") or key,
                "description": definition.get("description") or "",
                "visibility": definition.get("visibility") or "VISIBILITY_HIDDEN",
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            self.definitions[key] = stored
            self.record("definition_created", key)
            return stored

    def upsert_attribute(self, order_id: str, key: str, body: Mapping[str, Any]) -> Json:
        given = body.get("custom_attribute")
        if not isinstance(given, Mapping) or "value" not in given:
            raise invalid("Field must be set", "custom_attribute.value", "MISSING_REQUIRED_PARAMETER")
        with self.lock:
            self.order(order_id)
            definition = self.definitions.get(key)
            if definition is None:
                raise SquareError(404, "NOT_FOUND", f"Custom attribute definition `{key}` not found.", "key")
            current = self.attributes.get((order_id, key))
            if "version" in given and current is not None and given["version"] != current["version"]:
                raise invalid(
                    "Version does not match the current version.", "custom_attribute.version", "VERSION_MISMATCH"
                )
            now = self.now()
            stored = {
                "key": key,
                "value": given["value"],
                "version": (current or {}).get("version", 0) + 1,
                "visibility": definition["visibility"],
                "definition": None,
                "created_at": (current or {}).get("created_at", now),
                "updated_at": now,
            }
            self.attributes[(order_id, key)] = stored
            self.record("custom_attribute_upserted", f"{order_id}:{key}", value=given["value"])
            return stored

    def control_extra(self) -> dict[str, Any]:
        with self.lock:
            return {"orders": len(self.orders), "payments": len(self.payments), "catalog_objects": len(self.catalog)}


def _cursor(query: str, created_at: str, order_id: str) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([query, created_at, order_id])).decode()


def _read_cursor(cursor: Any, query: str) -> tuple[str, str]:
    """The position after which a SearchOrders cursor goes on; refused when it is not one this
    search returned (another query, or not a cursor at all)."""
    try:
        asked, created_at, order_id = orjson.loads(base64.urlsafe_b64decode(str(cursor).encode()))
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise invalid("Invalid cursor.", "cursor") from None
    if asked != query:
        raise invalid("The cursor was issued for another query: send the original query with it.", "cursor")
    return str(created_at), str(order_id)


def _attribute(obj: Mapping[str, Any], name: str) -> str | None:
    if name == "sku":
        value = (obj.get("item_variation_data") or {}).get("sku")
    elif name == "name":
        value = (obj.get("item_variation_data") or obj.get("item_data") or {}).get("name")
    else:
        value = None
    return str(value) if value is not None else None


def _copy(obj: Json) -> Json:
    copied: Json = orjson.loads(orjson.dumps(obj))
    return copied
