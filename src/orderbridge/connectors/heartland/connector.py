"""Heartland Retail (ex-Springboard) as a POS destination: each order one sale, exactly once, checked first.

**Two ways to post**, chosen per connection (``posting_mode``):

- ``sales_order`` (the e-commerce path, the default): the multi-call flow — create the order
  ``pending`` → add its lines → its taxes and discounts → its payment → ``PUT {status: "open"}`` →
  (``auto_invoice``) an invoice with its lines, ``PUT {status: "complete"}``. Shipping is the
  order's ``shipping_charge``.
- ``ticket``: one call, a completed ticket with its item lines (shipping and order discounts as
  lines on the helper items), tax lines and an external payment.

**Exactly once without an idempotency key.** Heartland has none (api-facts). The sale's
``public_id`` is the channel order's number (``public_id_format``), and every step is *derived
from what Heartland holds for that public_id*, never from memory: before posting, the connector
looks the sale up; found, it reads its lines, taxes, discounts, payments and invoice and goes on at
the first step not done (lines are compared position by position with the ones it would send, so
one it added is never added twice). A write whose answer is lost (timeout, reset, 5xx, a cut
body: :class:`OutcomeUnknown` from the client) is never resent blindly: the connector waits
``timeout_settle_s`` (a request that timed out may still be applied late), reads Heartland again
and resumes from what it finds. A process killed between any two calls therefore resumes at the
next step on the next run and never makes a second order, a line twice or a second payment —
proven from the sandbox's own ledger under SIGKILL at every write
(``tests/connectors/heartland/test_kill.py``; the crash point ``heartland.after_write`` follows each
write). A resumed sale says so in the result's ``notes`` (the order's timeline): what Heartland
held and the step posting went on at. Residual risk, documented: a request delayed beyond
``timeout_settle_s`` inside Heartland could still land after the lookup; ``unique_public_id`` in
Heartland (where it is enforced, a ``(?)``) closes that gap and is honoured — a "has already been
taken" answer is read back as the sale itself.

**Pre-flight** (``PREFLIGHT``, issue #17): :meth:`preflight_connection` — the acting user exists
and is active (``pos_employee_inactive``), every helper item (seed 001: ``NO PRODUCT FOUND``,
``Shopify Shipping``, ``Shopify Refund``, ``Shopify Discount``, ``Shopify: Duties``, ``Shopify:
Additional Fees``, ``Shopify Gift Card``; the ``helper_items`` setting) exists, is active and keeps
its name (``pos_required_product_missing``, action ``create_helper_items``), the station and its
location are active (``pos_location_inactive``). :meth:`preflight_order` — every required custom
field of the transaction groups and the three POS settings has a value from the order, the
connection's ``custom_field_map`` or its ``custom_field_defaults`` (``required_field_missing``
naming the field and the Heartland setting), every SKU resolves to an active item
(``sku_unmapped``), and the total Heartland would compute is the channel's within a cent
(``pos_total_mismatch``). ``post_orders`` runs the order checks itself (``check_before_post``)
and refuses, before anything is sent, an order they hold. If Heartland still leaves a sale
pending (a required field it did not list), the result holds the order ``pos_order_incomplete``
— inventory is not adjusted there — and a later post completes the same sale.

Errors: 401 → :class:`AuthFailed`, 403 → :class:`PermissionDenied`, 429/5xx/timeouts → retried
(reads) or settled by reading (writes); a validation answer holds the order with Heartland's words;
404 on a collection → :class:`SettingsError` (base URL).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import httpx

from orderbridge.connectors.base import (
    Capability,
    CredentialField,
    Declaration,
    OutgoingOrder,
    PosDocument,
    PostResult,
    PreflightCheck,
    Role,
    Setting,
    SettingScope,
)
from orderbridge.connectors.heartland import mapper
from orderbridge.connectors.heartland.client import SYSTEM, HeartlandClient, created_id, filter_param
from orderbridge.domain import reasons as R
from orderbridge.domain.mappings import MappingKind
from orderbridge.domain.money import Money
from orderbridge.domain.order import Order
from orderbridge.domain.reasons import Reason
from orderbridge.errors import DestinationRejected, OutcomeUnknown, RemoteUnavailable, SettingsError
from orderbridge.fixes import update_credentials
from orderbridge.seams import crashpoint

DEFAULT_BASE_URL = "https://example.retail.heartland.us"
TRANSACTION = "sales.transaction"
LINE_ITEM = "sales.transaction.line_item"
POS_SETTINGS = {
    "customer": "pos.tickets.customer_required",
    "sales_rep": "pos.tickets.sales_rep_required",
    "price_reason": "pos.tickets.reason_of_adjusting_price_required",
}
#: Mortar's helper items (seed 001), by the role each plays
DEFAULT_HELPERS: dict[str, str] = {
    "no_product_found": "NO PRODUCT FOUND",
    "shipping": "Shopify Shipping",
    "refund": "Shopify Refund",
    "discount": "Shopify Discount",
    "duties": "Shopify: Duties",
    "fees": "Shopify: Additional Fees",
    "gift_card": "Shopify Gift Card",
}
#: the description a helper item is created with (and must keep: a renamed one is restored)
HELPER_NAMES: dict[str, str] = {
    "NO PRODUCT FOUND": "No product found",
}
MODES = ("sales_order", "ticket")


class _Refused(Exception):
    def __init__(self, result: PostResult) -> None:
        super().__init__(result.error.message if result.error else "refused")
        self.result = result


@dataclass
class _Facts:
    """What one batch reads once: the acting user, the station, custom fields, settings, items."""

    user: Mapping[str, Any] | None
    station: Mapping[str, Any] | None
    fields: list[dict[str, Any]]
    pos: dict[str, bool]
    items: dict[str, dict[str, Any]] = field(default_factory=dict)


class HeartlandDestination:
    declaration = Declaration(
        kind="heartland",
        role=Role.DESTINATION,
        title="Heartland Retail",
        capabilities=frozenset({Capability.POST_ORDERS, Capability.PREFLIGHT}),
        credentials=(
            CredentialField(
                "api_token",
                "Heartland Retail API token (My Account → API Tokens; shown once) of the user the sync acts as",
                example="<api token>",
            ),
        ),
        settings=(
            Setting(
                "posting_mode",
                "'sales_order' (pending → lines → taxes/discounts → payment → open → invoice) or "
                "'ticket' (one completed ticket)",
                "sales_order",
            ),
            Setting(
                "acting_user",
                "login of the Heartland user every sale is made by (its name is the sales rep): "
                "a dedicated member such as 'Online orders'",
                "online-orders",
            ),
            Setting(
                "station_id",
                "id of the Heartland station (register) sales are made at; its location is the source location",
                None,
            ),
            Setting(
                "payment_type", "name of the Heartland payment type the channel's payment is recorded as", "External"
            ),
            Setting(
                "auto_invoice", "invoice each sales order once open, so inventory is reduced (as Mortar does)", True
            ),
            Setting(
                "helper_items",
                "the helper items the sync needs, by role → Item # (seed 001's by default)",
                DEFAULT_HELPERS,
            ),
            Setting(
                "custom_field_map",
                "required custom field key → where its value comes from when the order has none: an order field "
                "(note, email, number, tags, shipping_address.city…), 'custom:<key>' or 'property:<name>'",
                {},
            ),
            Setting("custom_field_defaults", "required custom field key → the value sent when the order has none", {}),
            Setting(
                "price_adjustment_reason",
                "the reason sent with a discounted line when Heartland's "
                "pos.tickets.reason_of_adjusting_price_required is on",
                "",
            ),
            Setting("currency", "the account's currency (Heartland keeps one): what its totals are in", "USD"),
            Setting(
                "public_id_format",
                "the sale's public_id from the channel order: {number} (with #) or {digits}",
                "{number}",
            ),
            Setting(
                "check_before_post", "run the order pre-flight checks inside post_orders (refuse before sending)", True
            ),
            Setting(
                "timeout_settle_s",
                "seconds to wait after a lost answer before reading Heartland again (a "
                "timed-out request may still be applied late)",
                5.0,
            ),
            Setting("max_resumes", "lost answers settled per order in one run before it is left for the next run", 4),
            Setting(
                "toggle_required_item_fields",
                "when creating helper items, turn required item custom fields off "
                "for the call and back on after (as Heartland's own importer does)",
                True,
            ),
            Setting(
                "sku_mapping",
                "'identity' (the default: a SKU is the Heartland Item #) or 'required'",
                "identity",
                SettingScope.HUB,
            ),
            Setting("shipping_mapping", "Heartland takes no shipping service: 'none'", "none", SettingScope.HUB),
        ),
        mapping_kinds=frozenset({MappingKind.SKU}),
        document_key="ob-{channel_id}-{external_id}",
        docs="docs/connectors/heartland.md",
    )
    max_batch = 10

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not credentials.get("api_token"):
            raise SettingsError(
                "Heartland Retail credentials missing: api_token",
                hint="Create an API token in Heartland (My Account → API Tokens) and store it as api_token.",
                fix=update_credentials("Set the connection's Heartland API token.", credential="api_token"),
            )
        merged = {**self.declaration.default_settings, **settings}
        self.mode = str(merged["posting_mode"])
        if self.mode not in MODES:
            raise SettingsError(
                f"posting_mode {self.mode!r} is not one Heartland takes", hint="Use 'sales_order' or 'ticket'."
            )
        self.settings = merged
        self.helpers: dict[str, str] = {**DEFAULT_HELPERS, **dict(merged.get("helper_items") or {})}
        self._sleep = sleep
        self._payment_type_id: int | None = None
        self.currency = str(merged.get("currency") or "USD")
        self.client = HeartlandClient(base_url or DEFAULT_BASE_URL, credentials["api_token"], http=http, sleep=sleep)

    # --- Connector -----------------------------------------------------------------------------
    def check(self) -> str:
        status, body = self.client.get("/api/users", {"per_page": 1})
        self._expect(status, body, "/api/users")
        total = body.get("total") if isinstance(body, Mapping) else None
        return f"Heartland Retail account reachable ({total if total is not None else '?'} users)"

    def close(self) -> None:
        self.client.close()

    # --- reads ---------------------------------------------------------------------------------
    def _list(self, path: str, condition: Mapping[str, Any] | None = None, **params: Any) -> list[dict[str, Any]]:
        query = dict(params)
        if condition:
            query["_filter"] = filter_param(condition)
        found: list[dict[str, Any]] = []
        for status, body in self.client.pages(path, query):
            self._expect(status, body, path)
            results = body.get("results") if isinstance(body, Mapping) else None
            if not isinstance(results, list):
                raise RemoteUnavailable(f"{SYSTEM} answered {path} without a results list")
            found += [r for r in results if isinstance(r, dict)]
        return found

    def _one(self, path: str) -> dict[str, Any] | None:
        status, body = self.client.get(path)
        if status == 404:
            return None
        self._expect(status, body, path)
        if not isinstance(body, dict):
            raise RemoteUnavailable(f"{SYSTEM} answered {path} without a record")
        return body

    def _user(self) -> dict[str, Any] | None:
        login = str(self.settings.get("acting_user") or "")
        found = self._list("/api/users", {"login": login}) if login else []
        return found[0] if found else None

    def _station(self) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        wanted = str(self.settings.get("station_id") or "")
        for location in self._list("/api/locations", None, **{"_include[]": "stations"}):
            for station in location.get("stations") or []:
                if wanted and str(station.get("id")) == wanted:
                    return station, location
        return None, None

    def _items(self, public_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        wanted = sorted(set(public_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), 50):
            chunk = wanted[start : start + 50]
            for item in self._list("/api/items", {"public_id": {"$in": chunk}}):
                current = found.get(str(item.get("public_id")))
                if current is None or (item.get("active") and not current.get("active")):
                    found[str(item.get("public_id"))] = item
        return found

    def _facts(self, skus: Iterable[str] = ()) -> _Facts:
        station, location = self._station()
        if station is not None and location is not None and not location.get("active", True):
            station = {**station, "active": False}
        fields = self._list(
            "/api/custom_fields",
            {"$or": [{"group_id": TRANSACTION}, {"group_id": LINE_ITEM}], "required": True},
        )
        pos = {}
        for name, key in POS_SETTINGS.items():
            status, body = self.client.get(f"/api/settings/{key}")
            pos[name] = status == 200 and isinstance(body, Mapping) and body.get("value") is True
        return _Facts(self._user(), station, fields, pos, self._items(skus))

    # --- pre-flight: the connection --------------------------------------------------------------
    def preflight_connection(self) -> list[PreflightCheck]:
        return [self._employee_check(self._user()), self._helpers_check(), self._station_check(self._station()[0:2])]

    def _employee_check(self, user: Mapping[str, Any] | None) -> PreflightCheck:
        login = str(self.settings.get("acting_user") or "")
        if not login:
            return PreflightCheck(
                "employee",
                "no acting user is set",
                R.pos_employee_inactive(SYSTEM, "(none)", "acting_user", state="not set"),
            )
        if user is None:
            return PreflightCheck(
                "employee",
                f"user {login!r} not found",
                R.pos_employee_inactive(SYSTEM, repr(login), "acting_user", state="missing"),
            )
        if not user.get("active"):
            return PreflightCheck(
                "employee",
                f"user {login!r} is archived",
                R.pos_employee_inactive(SYSTEM, repr(login), "acting_user", state="archived"),
            )
        return PreflightCheck("employee", f"user {login!r} ({_full_name(user)}) is active")

    def _helper_problems(self) -> dict[str, tuple[str, dict[str, Any] | None]]:
        """Each helper Item # that is not usable → (what is wrong, the item when it exists)."""
        items = self._items(self.helpers.values())
        problems: dict[str, tuple[str, dict[str, Any] | None]] = {}
        for sku in self.helpers.values():
            item = items.get(sku)
            if item is None:
                problems[sku] = ("does not exist (missing, deleted or given another Item #)", None)
            elif not item.get("active", True):
                problems[sku] = ("is archived", item)
            elif str(item.get("description") or "") != HELPER_NAMES.get(sku, sku):
                problems[sku] = (f"was renamed to {item.get('description')!r}", item)
        return problems

    def _helpers_check(self) -> PreflightCheck:
        problems = self._helper_problems()
        if not problems:
            return PreflightCheck("helper_items", f"all {len(self.helpers)} helper items exist and are active")
        detail = "; ".join(f"{s!r} {w}" for s, (w, _) in problems.items())
        return PreflightCheck(
            "helper_items",
            f"{len(problems)} helper item(s) unusable: {detail}",
            R.pos_required_product_missing(SYSTEM, list(problems)),
            action="create_helper_items",
        )

    def _station_check(self, found: Sequence[Mapping[str, Any] | None]) -> PreflightCheck:
        station, location = found[0], found[1]
        wanted = str(self.settings.get("station_id") or "")
        if not wanted:
            return PreflightCheck(
                "location",
                "no station is set",
                R.pos_location_inactive(SYSTEM, "station (none)", "station_id", state="not set"),
            )
        if station is None or location is None:
            return PreflightCheck(
                "location",
                f"station {wanted} not found",
                R.pos_location_inactive(SYSTEM, f"station {wanted}", "station_id", state="missing"),
            )
        if not station.get("active", True):
            return PreflightCheck(
                "location",
                f"station {wanted} is inactive",
                R.pos_location_inactive(SYSTEM, f"station {wanted}", "station_id"),
            )
        if not location.get("active", True):
            return PreflightCheck(
                "location",
                f"location {location.get('name')!r} of station {wanted} is inactive",
                R.pos_location_inactive(SYSTEM, f"station {wanted} at location {location.get('name')!r}", "station_id"),
            )
        return PreflightCheck("location", f"station {station.get('name')!r} at {location.get('name')!r} is active")

    def create_helper_items(self) -> list[str]:
        problems = self._helper_problems()
        if not problems:
            return []
        made: list[str] = []
        toggled: list[dict[str, Any]] = []
        try:
            for sku, (_, item) in problems.items():
                name = HELPER_NAMES.get(sku, sku)
                if item is not None:  # archived or renamed: restored in place, never a second one
                    status, body, _ = self.client.write(
                        "PUT", f"/api/items/{item['id']}", {"active": True, "description": name}
                    )
                    self._expect(status, body, "/api/items")
                    made.append(sku)
                    continue
                body_ = {
                    "public_id": sku,
                    "description": name,
                    "cost": Decimal("0"),
                    "price": Decimal("0"),
                    "prompt_for_price": True,
                    "track_inventory": False,
                    "taxable": False,
                }
                status, body, _ = self.client.write("POST", "/api/items", body_)
                if status != 201 and mapper.custom_keys(body) and self.settings.get("toggle_required_item_fields"):
                    toggled += self._toggle_item_fields(off=True)
                    status, body, _ = self.client.write("POST", "/api/items", body_)
                if status != 201 and "already been taken" in mapper.error_text(body, ""):
                    continue  # made by a call whose answer was lost: it is there
                self._expect(status, body, "/api/items")
                made.append(sku)
        except OutcomeUnknown:
            # the next call reads the items again: one that was made is left as it is
            raise
        finally:
            if toggled:
                self._toggle_item_fields(off=False, fields=toggled)
        return made

    def _toggle_item_fields(self, *, off: bool, fields: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
        """Turn the required custom fields of the item group off (and, given them, back on)."""
        targets = (
            fields if fields is not None else self._list("/api/custom_fields", {"group_id": "item", "required": True})
        )
        for target in targets:
            status, body, _ = self.client.write("PUT", f"/api/custom_fields/{target['id']}", {"required": not off})
            self._expect(status, body, "/api/custom_fields")
        return targets

    # --- pre-flight: one order -------------------------------------------------------------------
    def preflight_order(self, order: OutgoingOrder) -> list[PreflightCheck]:
        sale = mapper.sale_from(order, public_id_format=str(self.settings["public_id_format"]))
        facts = self._facts(line.item for line in sale.lines)
        return self._order_checks(order, sale, facts)

    def _order_checks(self, outgoing: OutgoingOrder, sale: mapper.Sale, facts: _Facts) -> list[PreflightCheck]:
        order = outgoing.resolved.order
        return [
            self._fields_check(order, sale, facts),
            self._skus_check(outgoing, facts),
            self._totals_check(sale),
        ]

    def _fields_check(self, order: Order, sale: mapper.Sale, facts: _Facts) -> PreflightCheck:
        missing: list[tuple[str, str]] = []
        for f in facts.fields:
            key = str(f.get("key"))
            where = f"Settings › Custom fields › {f.get('name') or key}: required"
            if f.get("group_id") == TRANSACTION:
                if self._custom_value(key, order) in (None, ""):
                    missing.append((key, where))
            elif any(self._custom_value(key, order, line) in (None, "") for line in sale.lines):
                missing.append((key, where + " (on every line)"))
        if facts.pos.get("customer") and (not order.email or mapper.complete_address(order) is None):
            missing.append(("customer (e-mail and complete address)", POS_SETTINGS["customer"]))
        if facts.pos.get("sales_rep") and not self.settings.get("acting_user"):
            missing.append(("sales rep", POS_SETTINGS["sales_rep"]))
        if facts.pos.get("price_reason") and sale.adjusted and not self.settings.get("price_adjustment_reason"):
            missing.append(("price adjustment reason", POS_SETTINGS["price_reason"]))
        if not missing:
            return PreflightCheck("required_fields", f"{len(facts.fields)} required custom field(s) have values")
        key, where = missing[0]
        return PreflightCheck(
            "required_fields",
            "no value for " + ", ".join(f"{k!r} ({w})" for k, w in missing),
            R.pos_required_field_missing(SYSTEM, key, where, "custom_field_defaults"),
        )

    def _custom_value(self, key: str, order: Order, line: mapper.SaleLine | None = None) -> Any:
        """A custom field's value for the order (decision 214's order): the order's own value of that
        key (a line property for a line-item field, else the order's custom field), then the order
        field ``custom_field_map`` maps it from (``email``, ``shipping_address.city``,
        ``custom:<key>`` / ``attribute:<name>``, ``property:<name>``), then ``custom_field_defaults``."""
        own = dict(line.properties).get(key) if line is not None else None
        value: Any = own or dict(order.custom_fields).get(key)
        source = str((self.settings.get("custom_field_map") or {}).get(key) or "")
        if value in (None, "") and source:
            for prefix in ("attribute:", "custom:"):
                if source.startswith(prefix):
                    value = dict(order.custom_fields).get(source[len(prefix) :])
                    break
            else:
                if source.startswith("property:"):
                    value = dict(line.properties).get(source[len("property:") :]) if line is not None else None
                elif not source.startswith("_"):
                    value = _dotted(order, source)
                    if isinstance(value, tuple):
                        value = ", ".join(str(v) for v in value)
        if value in (None, ""):
            value = (self.settings.get("custom_field_defaults") or {}).get(key)
        return value

    def _customs(self, group: str, facts: _Facts, order: Order, line: mapper.SaleLine | None = None) -> dict[str, Any]:
        keys = {str(f.get("key")) for f in facts.fields if f.get("group_id") == group}
        if group == TRANSACTION:
            keys |= set(self.settings.get("custom_field_map") or {}) | set(
                self.settings.get("custom_field_defaults") or {}
            )
            keys -= {str(f.get("key")) for f in facts.fields if f.get("group_id") == LINE_ITEM}
        values = {k: self._custom_value(k, order, line) for k in sorted(keys)}
        return {k: v for k, v in values.items() if v not in (None, "")}

    def _skus_check(self, outgoing: OutgoingOrder, facts: _Facts) -> PreflightCheck:
        bad = []
        for line in outgoing.resolved.lines:
            item = facts.items.get(line.destination_sku)
            if item is None or not item.get("active", True):
                bad.append(line)
        if not bad:
            return PreflightCheck("skus", f"all {len(outgoing.resolved.lines)} SKU(s) resolve to active items")
        first = bad[0]
        return PreflightCheck(
            "skus",
            "no active item for " + ", ".join(f"{b.channel_sku!r} (Item # {b.destination_sku!r})" for b in bad),
            R.pos_item_unknown(SYSTEM, first.channel_sku, first.destination_sku),
        )

    def _totals_check(self, sale: mapper.Sale) -> PreflightCheck:
        problem = mapper.total_problem(sale)
        if sale.channel_total is None:
            return PreflightCheck("totals", "not compared: part of the order was fulfilled in the channel already")
        if problem is None:
            return PreflightCheck(
                "totals", f"Heartland's total {sale.pos_total} matches the channel's {sale.channel_total}"
            )
        return PreflightCheck(
            "totals",
            f"Heartland would total {sale.pos_total} {sale.currency}, the channel says {sale.channel_total}",
            R.pos_total_mismatch(
                SYSTEM, f"{sale.channel_total} {sale.currency}", f"{sale.pos_total} {sale.currency}", problem
            ),
        )

    # --- posting -------------------------------------------------------------------------------
    def post_orders(self, orders: Sequence[OutgoingOrder]) -> list[PostResult]:
        fmt = str(self.settings["public_id_format"])
        sales = [mapper.sale_from(o, public_id_format=fmt) for o in orders]
        facts = self._facts(line.item for sale in sales for line in sale.lines)
        results = []
        unsettled: OutcomeUnknown | None = None
        for outgoing, sale in zip(orders, sales, strict=True):
            try:
                results.append(self._post_one(outgoing, sale, facts))
            except _Refused as refused:
                results.append(refused.result)
            except OutcomeUnknown as exc:
                # left for the next run, which reads Heartland first; the batch's other orders still go
                # (the next run finds them made and records them without a write)
                unsettled = unsettled or exc
        if unsettled is not None:
            raise unsettled
        return results

    def _refusal(self, outgoing: OutgoingOrder, message: str, hold: Reason | None = None, **kw: Any) -> _Refused:
        return _Refused(
            PostResult(outgoing.order_key, None, DestinationRejected(message, status=kw.get("status")), hold=hold)
        )

    def _post_one(self, outgoing: OutgoingOrder, sale: mapper.Sale, facts: _Facts) -> PostResult:
        number = outgoing.resolved.order.number
        if self.settings.get("check_before_post"):
            failed = [c for c in self._order_checks(outgoing, sale, facts) if not c.ok]
            if failed:
                raise self._refusal(
                    outgoing,
                    f"{SYSTEM} cannot take order {number} as it is: " + "; ".join(c.detail for c in failed),
                    failed[0].reason,
                )
        missing = [line.item for line in sale.lines if line.item not in facts.items]
        if missing:
            raise self._refusal(
                outgoing,
                f"{SYSTEM} has no item with Item # {', '.join(repr(m) for m in missing)} (order {number})",
                R.pos_item_unknown(SYSTEM, missing[0], missing[0]),
            )
        if facts.station is None:
            raise SettingsError(
                f"{SYSTEM} has no station {self.settings.get('station_id')!r}",
                hint="Set the connection's station_id to an active Heartland station.",
            )
        notes: list[str] = []
        settle = float(self.settings.get("timeout_settle_s") or 0)
        last: OutcomeUnknown | None = None
        for _ in range(max(1, int(self.settings.get("max_resumes") or 1))):
            try:
                if self.mode == "ticket":
                    result = self._ticket(outgoing, sale, facts, notes)
                else:
                    result = self._sales_order(outgoing, sale, facts, notes)
                return replace(result, notes=(*notes, *result.notes))
            except OutcomeUnknown as exc:
                last = exc
                notes.append(
                    f"a call to {SYSTEM} lost its answer ({exc.message}); {SYSTEM} was read again before anything "
                    "was sent again"
                )
                if settle:
                    self._sleep(settle)
        assert last is not None
        raise last

    # --- the sales-order flow --------------------------------------------------------------------
    def _find(self, path: str, sale: mapper.Sale, notes: list[str]) -> dict[str, Any] | None:
        found = sorted(self._list(path, {"public_id": sale.public_id}), key=lambda r: int(r["id"]))
        if len(found) > 1:
            note = (
                f"{SYSTEM} holds {len(found)} sales with public_id {sale.public_id!r} "
                f"(ids {', '.join(str(r['id']) for r in found)}); the oldest is this order's — void the others there"
            )
            if note not in notes:
                notes.append(note)
        return found[0] if found else None

    def _write(
        self, method: str, path: str, body: Mapping[str, Any], outgoing: OutgoingOrder
    ) -> tuple[int, Any, httpx.Headers]:
        status, answer, headers = self.client.write(method, path, body)
        if 200 <= status < 300:
            crashpoint("heartland.after_write")
            return status, answer, headers
        if status in (404, 405):
            raise SettingsError(
                f"{SYSTEM} has no {path} at {self.client.base_url} (HTTP {status})",
                hint=f"Check the connection's base URL ({DEFAULT_BASE_URL}).",
            )
        raise self._refusal(
            outgoing,
            f"{SYSTEM} refused {method} {path} for order {outgoing.resolved.order.number}: "
            + mapper.error_text(answer, f"HTTP {status}"),
            status=status,
        )

    def _create(self, path: str, body: Mapping[str, Any], outgoing: OutgoingOrder) -> int:
        status, answer, headers = self._write("POST", path, body, outgoing)
        made = created_id(status, answer, headers)
        if made is None:
            raise OutcomeUnknown(f"{SYSTEM} answered POST {path} without the new record's Location")
        return made

    def _customer(self, order: Order, outgoing: OutgoingOrder) -> tuple[int | None, int | None]:
        """The Heartland customer (found by e-mail, else created) and its address, when the order has
        an e-mail (and a complete address: Mortar's rule); (None, None) otherwise."""
        if not order.email:
            return None, None
        address = mapper.complete_address(order)
        found = self._list("/api/customers", {"email": order.email})
        if found:
            customer_id = int(sorted(found, key=lambda c: int(c["id"]))[0]["id"])
        else:
            customer_id = self._create("/api/customers", mapper.customer_body(order), outgoing)
        if address is None:
            return customer_id, None
        addresses = self._list(f"/api/customers/{customer_id}/addresses")
        if addresses:
            return customer_id, int(addresses[0]["id"])
        return customer_id, self._create(
            f"/api/customers/{customer_id}/addresses", mapper.address_body(address), outgoing
        )

    def _sales_rep(self, facts: _Facts) -> str:
        return _full_name(facts.user) if facts.user is not None else str(self.settings.get("acting_user") or "")

    def _sales_order(self, outgoing: OutgoingOrder, sale: mapper.Sale, facts: _Facts, notes: list[str]) -> PostResult:
        order = outgoing.resolved.order
        assert facts.station is not None
        station = facts.station
        found = self._find("/api/sales/orders", sale, notes)
        custom = self._customs(TRANSACTION, facts, order)
        if found is None:
            customer_id, address_id = self._customer(order, outgoing)
            body = mapper.order_body(
                sale,
                station=station,
                customer_id=customer_id,
                address_id=address_id,
                sales_rep=self._sales_rep(facts),
                custom=custom,
            )
            status, answer, headers = self.client.write("POST", "/api/sales/orders", body)
            if status not in (200, 201) and "already been taken" in mapper.error_text(answer, ""):
                raise OutcomeUnknown(f"{SYSTEM} says public_id {sale.public_id!r} is taken: reading it back")
            if 200 <= status < 300:
                crashpoint("heartland.after_write")
            else:
                self._write_refused(status, answer, "/api/sales/orders", outgoing)
            made = created_id(status, answer, headers)
            if made is None:
                raise OutcomeUnknown(f"{SYSTEM} answered the sales order without its Location")
            record: dict[str, Any] = {"id": made, "status": "pending", "custom": custom}
        else:
            record = found
        oid = int(record["id"])
        document = mapper.document_id(mapper.ORDER, oid)
        if record.get("status") == "pending":
            self._pending_parts(outgoing, sale, facts, record, notes, resumed=found is not None)
            status, answer, _ = self.client.write("PUT", f"/api/sales/orders/{oid}", {"status": "open"})
            if 200 <= status < 300:
                crashpoint("heartland.after_write")
                record["status"] = "open"
            elif mapper.custom_keys(answer):
                return self._incomplete(outgoing, document, "pending", answer)
            else:
                self._write_refused(status, answer, f"/api/sales/orders/{oid}", outgoing)
        elif found is not None:
            notes.append(
                f"{SYSTEM} already held sales order {oid} for {sale.public_id} ({record.get('status')}): "
                "posting went on from there"
            )
        if self.settings.get("auto_invoice") and record.get("status") == "open":
            self._invoice(outgoing, sale, facts, record, notes)
        return PostResult(outgoing.order_key, document)

    def _write_refused(self, status: int, answer: Any, path: str, outgoing: OutgoingOrder) -> None:
        if status in (404, 405):
            raise SettingsError(f"{SYSTEM} has no {path} at {self.client.base_url} (HTTP {status})")
        raise self._refusal(
            outgoing,
            f"{SYSTEM} refused order {outgoing.resolved.order.number}: " + mapper.error_text(answer, f"HTTP {status}"),
            status=status,
        )

    def _incomplete(self, outgoing: OutgoingOrder, document: str, state: str, answer: Any) -> PostResult:
        """Heartland took the sale but left it ``state`` (pending): it *is* the order's document — posted,
        so no later run makes another — and the hub, reading :meth:`document_state`, holds the order
        ``pos_order_incomplete`` (inventory not adjusted) until it is completed. A later post of the
        same order (a retry, once the field has a value) completes this same sale."""
        fields = ", ".join(mapper.custom_keys(answer)) or "a required field"
        text = mapper.error_text(answer, "required fields are empty")
        return PostResult(
            outgoing.order_key,
            document,
            notes=(
                f"{SYSTEM} left {document} {state} ({text}): required field(s) {fields} have no value, and "
                f"inventory is not adjusted in {SYSTEM} until the sale is completed",
            ),
        )

    def _pending_parts(
        self,
        outgoing: OutgoingOrder,
        sale: mapper.Sale,
        facts: _Facts,
        record: Mapping[str, Any],
        notes: list[str],
        *,
        resumed: bool,
    ) -> None:
        order = outgoing.resolved.order
        oid = int(record["id"])
        assert facts.station is not None
        location = int(facts.station["location_id"])
        base = f"/api/sales/orders/{oid}"
        have_custom = dict(record.get("custom") or {})
        custom = self._customs(TRANSACTION, facts, order)
        if resumed and any(have_custom.get(k) != v for k, v in custom.items()):
            self._write("PUT", base, {"custom": custom}, outgoing)
        reason = str(self.settings.get("price_adjustment_reason") or "")
        wanted_lines = [
            mapper.line_body(
                line,
                item_id=int(facts.items[line.item]["id"]),
                location_id=location,
                custom=self._customs(LINE_ITEM, facts, order, line),
                adjustment_reason=reason,
            )
            for line in sale.lines
        ]
        done = {"lines": 0, "taxes": 0, "discounts": 0, "payments": 0}
        wanted: dict[str, list[dict[str, Any]]] = {
            "lines": wanted_lines,
            "taxes": [{"description": d, "value": v} for d, v in sale.taxes],
            "discounts": [{"description": d, "value": v} for d, v in sale.discounts],
            "payments": [
                {
                    "type": "CustomPayment",
                    "payment_type_id": self._payment_type(outgoing),
                    "amount": sale.pos_total,
                    "deposit": False,
                }
            ],
        }
        for part in ("lines", "taxes", "discounts", "payments"):
            have = self._list(f"{base}/{part}") if resumed else []
            for i, existing in enumerate(have):
                if i >= len(wanted[part]) or not _same(part, existing, wanted[part][i]):
                    raise self._refusal(
                        outgoing,
                        f"{SYSTEM} sales order {oid} ({sale.public_id}) has {part} OrderBridge did not make "
                        f"(changed in Heartland?): it is left as it is",
                    )
            done[part] = len(have)
            for body in wanted[part][len(have) :]:
                self._create(f"{base}/{part}", body, outgoing)
        if resumed:
            step = next((p for p in ("lines", "taxes", "discounts", "payments") if done[p] < len(wanted[p])), "open")
            notes.append(
                f"{SYSTEM} already held sales order {oid} for {sale.public_id}, pending with "
                f"{done['lines']} of {len(wanted_lines)} line(s) and {done['payments']} payment(s): posting went on at "
                f"'{step}'"
            )

    def _payment_type(self, outgoing: OutgoingOrder) -> int:
        name = str(self.settings.get("payment_type") or "External")
        if self._payment_type_id is None:
            found = self._list("/api/payment_types", {"name": name})
            if found:
                self._payment_type_id = int(found[0]["id"])
            else:
                self._payment_type_id = self._create("/api/payment_types", {"name": name}, outgoing)
        return self._payment_type_id

    def _invoice(
        self, outgoing: OutgoingOrder, sale: mapper.Sale, facts: _Facts, record: Mapping[str, Any], notes: list[str]
    ) -> None:
        oid = int(record["id"])
        invoices = sorted(self._list("/api/sales/invoices", {"order_id": oid}), key=lambda r: int(r["id"]))
        if invoices and all(i.get("status") == "complete" for i in invoices):
            return
        assert facts.station is not None
        if invoices:
            invoice_id = int(invoices[0]["id"])
            have = self._list(f"/api/sales/invoices/{invoice_id}/lines")
        else:
            invoice_id = self._create(
                "/api/sales/invoices",
                {
                    "order_id": oid,
                    "customer_id": record.get("customer_id"),
                    "station_id": facts.station["id"],
                    "total": sale.pos_total,
                },
                outgoing,
            )
            have = []
        wanted = [
            {"type": "ItemLine", "item_id": int(facts.items[line.item]["id"]), "qty": line.qty} for line in sale.lines
        ]
        for body in wanted[len(have) :]:
            self._create(f"/api/sales/invoices/{invoice_id}/lines", body, outgoing)
        self._write("PUT", f"/api/sales/invoices/{invoice_id}", {"status": "complete"}, outgoing)

    # --- the one-call ticket ---------------------------------------------------------------------
    def _ticket(self, outgoing: OutgoingOrder, sale: mapper.Sale, facts: _Facts, notes: list[str]) -> PostResult:
        order = outgoing.resolved.order
        assert facts.station is not None
        custom = self._customs(TRANSACTION, facts, order)
        found = self._find("/api/sales/tickets", sale, notes)
        if found is None:
            helpers = self._items([self.helpers["shipping"], self.helpers["discount"]])
            ids = {
                role: int(helpers[self.helpers[role]]["id"])
                for role in ("shipping", "discount")
                if self.helpers[role] in helpers
            }
            if (sale.shipping and "shipping" not in ids) or (sale.discounts and "discount" not in ids):
                role = "shipping" if sale.shipping and "shipping" not in ids else "discount"
                raise self._refusal(
                    outgoing,
                    f"{SYSTEM} has no helper item {self.helpers[role]!r} for the order's {role}",
                    R.pos_required_product_missing(SYSTEM, [self.helpers[role]]),
                )
            customer_id, _ = self._customer(order, outgoing)
            body = mapper.ticket_body(
                sale,
                items={k: int(v["id"]) for k, v in facts.items.items()},
                line_custom=[self._customs(LINE_ITEM, facts, order, line) for line in sale.lines],
                helpers=ids,
                station=facts.station,
                customer_id=customer_id,
                sales_rep=self._sales_rep(facts),
                custom=custom,
                payment_type_id=self._payment_type(outgoing),
                adjustment_reason=str(self.settings.get("price_adjustment_reason") or ""),
            )
            status, answer, headers = self.client.write("POST", "/api/sales/tickets", body)
            if status not in (200, 201) and "already been taken" in mapper.error_text(answer, ""):
                raise OutcomeUnknown(f"{SYSTEM} says public_id {sale.public_id!r} is taken: reading it back")
            if not 200 <= status < 300:
                self._write_refused(status, answer, "/api/sales/tickets", outgoing)
            crashpoint("heartland.after_write")
            made = created_id(status, answer, headers)
            if made is None:
                raise OutcomeUnknown(f"{SYSTEM} answered the ticket without its Location")
            found = self._one(f"/api/sales/tickets/{made}")
            if found is None:
                raise OutcomeUnknown(f"{SYSTEM} does not show ticket {made} it just made")
        else:
            notes.append(f"{SYSTEM} already held ticket {found['id']} for {sale.public_id} ({found.get('status')})")
        tid = int(found["id"])
        document = mapper.document_id(mapper.TICKET, tid)
        if found.get("status") != "complete":
            status, answer, _ = self.client.write(
                "PUT", f"/api/sales/tickets/{tid}", {"status": "complete", "custom": custom}
            )
            if not 200 <= status < 300:
                return self._incomplete(outgoing, document, "pending", answer)
            crashpoint("heartland.after_write")
            if (answer or {}).get("status") != "complete":
                return self._incomplete(outgoing, document, "pending", answer)
        return PostResult(outgoing.order_key, document)

    # --- the posted document ---------------------------------------------------------------------
    def document_state(self, document_id: str) -> PosDocument | None:
        parsed = mapper.parse_document(document_id)
        if parsed is None:
            return None
        kind, rid = parsed
        path = "/api/sales/orders" if kind == mapper.ORDER else "/api/sales/tickets"
        record = self._one(f"{path}/{rid}")
        if record is None:
            return None
        invoices = self._list("/api/sales/invoices", {"order_id": rid}) if kind == mapper.ORDER else []
        state, moved = mapper.pos_state(kind, record, invoices)
        total = record.get("total")
        return PosDocument(
            document_id,
            state,
            moved,
            number=str(record.get("public_id") or "") or None,
            total=Money(Decimal(str(total)), self.currency) if total is not None else None,
        )

    # -------------------------------------------------------------------------------------------
    def _expect(self, status: int, body: Any, path: str) -> None:
        if 200 <= status < 300:
            return
        message = mapper.error_text(body, f"HTTP {status}")
        if status in (404, 405):
            raise SettingsError(
                f"{SYSTEM} has no {path} at {self.client.base_url} (HTTP {status}): {message}",
                hint=f"Check the connection's base URL ({DEFAULT_BASE_URL}: your subdomain).",
            )
        raise DestinationRejected(f"{SYSTEM} refused {path} (HTTP {status}): {message}", status=status)


def _full_name(user: Mapping[str, Any]) -> str:
    name = f"{user.get('first_name') or ''} {user.get('last_name') or ''}".strip()
    return name or str(user.get("login") or "")


def _dotted(order: Order, dotted: str) -> Any:
    value: Any = order
    for part in dotted.split("."):
        if value is None:
            return None
        value = getattr(value, part, None)
    return value


def _same(part: str, existing: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether a part Heartland holds is the one OrderBridge would send at that position."""
    if part == "lines":
        return str(existing.get("item_id")) == str(wanted["item_id"]) and Decimal(str(existing.get("qty"))) == Decimal(
            str(wanted["qty"])
        )
    if part == "payments":
        return Decimal(str(existing.get("amount"))) == Decimal(str(wanted["amount"]))
    return Decimal(str(existing.get("value"))) == Decimal(str(wanted["value"]))
