"""Square as a POS destination: each online order becomes one paid Square order, never two.

**Pre-flight** (``PREFLIGHT``, issue #17). Before anything is sent, and on "test connection":

- *employee* — the connection's ``team_member_id`` exists and is ``ACTIVE`` (the external payment
  is recorded as that member's sale; seed 001's archived employee) → ``pos_employee_inactive``;
- *location* — ``location_id`` exists and is ``ACTIVE`` → ``pos_location_inactive``;
- *helper_items* — only where the connection's settings post on helper items (``shipping_as =
  helper_item``, ``unmatched_lines = helper_item``); Square mostly needs none (shipping is a service
  charge, discounts are discounts, an unmatched product may be an ad-hoc line) →
  ``pos_required_product_missing`` with the action ``create_helper_items`` (a catalog upsert with
  an idempotency key, one catalog write at a time);

and per order:

- *skus* — every line's SKU resolves to an ``ITEM_VARIATION`` (Catalog search by SKU; an
  ``exact_query`` answer is re-checked for equality, since Square's exact query ignores case and
  matches word prefixes; many SKUs go in one ``set_query``) → ``sku_unmapped`` naming each SKU,
  unless the connection allows ad-hoc lines;
- *required_fields* — every order custom attribute the connection requires has a value
  (:func:`~orderbridge.domain.pos_fields.field_value`: the order's own custom field of that key,
  else the source ``custom_attributes`` names, else ``attribute_defaults``). Square has no
  "required" flag on a custom attribute, so the requirement is a hub-side setting
  (``required_attributes``) → ``required_field_missing``;
- *totals* — what Square will compute from the percentage taxes, with its rounding
  (:func:`mapper.predict`), against the channel's tax and total: a difference over
  ``total_tolerance`` (a cent by default) → ``pos_total_mismatch`` with both figures. Such an order
  is held, never posted with a total the channel did not charge.

``post_orders`` runs the same checks itself, so it never sends an order a check refuses, whether or
not the hub ran them first.

**Posting**, per order: ``POST /v2/orders`` with ``idempotency_key`` = the posting's key (stable
per order version) → the order's custom attribute values (definitions created once, when missing)
→ ``POST /v2/payments`` ``{source_id: "EXTERNAL", external_details, amount_money = the total Square
answered, order_id, location_id, team_member_id}`` with its own key (a digest: 45 characters at
most). Every write is resent with the same key after a 429, 5xx, timeout or cut answer, and Square
answers a repeat with its first answer — one order, one payment, proven from the sandbox's ledger.
A CreateOrder key Square calls reused (the body changed under the same key: the catalog moved) is
settled by reading the hub's order back (``metadata.ob_order_key``, every page of the search by its
``cursor``) rather than by a second order. An order created whose payment is refused is read again
(paid in Square meanwhile: posted), else returned with its id and held (``pos_employee_inactive``
or ``pos_order_unfinished`` — ``pos_order_incomplete`` with a retry as its fix): retrying it sends
the same keys again, which pays the same order (decision 242).

**Document state** (``document_state``): see :func:`mapper.document` for the Square state →
pending / open / completed / voided table and when stock moved.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal, InvalidOperation
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
from orderbridge.connectors.square import mapper
from orderbridge.connectors.square.client import SYSTEM, SquareClient, unexpected
from orderbridge.domain import pos_fields
from orderbridge.domain import reasons as R
from orderbridge.domain.mappings import MappingKind
from orderbridge.domain.reasons import Reason
from orderbridge.errors import DestinationRejected, SettingsError
from orderbridge.fixes import Fix, FixAction, update_credentials

DEFAULT_BASE_URL = "https://connect.squareup.com"
#: the remote's own address of the JSON schema a string custom attribute declares (Square's ``$ref``)
STRING_SCHEMA_BASE_URL = "https://developer-production-s.squarecdn.com/schemas/v1/common.json#squareup.common.String"
#: the Square API version the connector is written and tested against
SQUARE_VERSION = "2026-09-16"
#: order custom attributes exist from this Square-Version on
CUSTOM_ATTRIBUTES_SINCE = "2022-11-16"
SET_QUERY_MAX = 250
#: SearchOrders' page size: Square's default, and the most it returns in one page
SEARCH_ORDERS_LIMIT = 500
UNMATCHED = ("hold", "ad_hoc", "helper_item")
SHIPPING_AS = ("service_charge", "helper_item")
DEFAULT_HELPER_SKUS = {"shipping": "Shopify Shipping", "no_product": "NO PRODUCT FOUND"}
#: what an order custom attribute may be filled from (``custom:<name>``: a custom field of the order)
#: what requires an order custom attribute (Square has no "required" flag of its own)
REQUIREMENT = "this connection's required_attributes setting: Square itself marks no custom attribute required"
ATTRIBUTE_SOURCES = ("number", "email", "note", "tags", "customer_name", "channel_state")


class _Refused(Exception):
    def __init__(self, result: PostResult) -> None:
        super().__init__(str(result.error))
        self.result = result


def _setting_error(setting: str, text: str) -> SettingsError:
    return SettingsError(
        f"Square connection setting {setting}: {text}",
        hint=f"Correct the connection's {setting} setting.",
        fix=Fix.of(FixAction.SET_SETTING, f"Correct the connection's {setting} setting.", setting=setting),
    )


class SquareDestination:
    declaration = Declaration(
        kind="square",
        role=Role.DESTINATION,
        title="Square (POS)",
        capabilities=frozenset({Capability.POST_ORDERS, Capability.PREFLIGHT}),
        credentials=(
            CredentialField(
                "access_token",
                "the seller's access token (OAuth, renewed every 30 days at most; or the app's personal token)",
                example="EAAA…",
            ),
        ),
        settings=(
            Setting("location_id", "the Square location (ACTIVE) orders are created at", ""),
            Setting(
                "team_member_id",
                "the Square team member (ACTIVE) external payments are recorded as — a dedicated one such as "
                "'Online orders'",
                "",
            ),
            Setting("square_version", "the Square-Version header sent with every call", SQUARE_VERSION),
            Setting(
                "unmatched_lines",
                "a line whose SKU matches no item variation: 'hold' (sku_unmapped), 'ad_hoc' (an ad-hoc line: "
                "no stock moved) or 'helper_item' (on the no-product helper item)",
                "hold",
            ),
            Setting("shipping_as", "shipping lines as 'service_charge' or as a 'helper_item' line", "service_charge"),
            Setting("shipping_taxable", "whether Square applies the order's taxes to shipping", False),
            Setting(
                "helper_skus",
                "the SKUs of the helper items, by role (shipping, no_product), used only where a setting posts on them",
                DEFAULT_HELPER_SKUS,
            ),
            Setting("taxes_included", "prices include tax: taxes go as INCLUSIVE instead of ADDITIVE", False),
            Setting(
                "derive_tax_rate",
                "an order with tax but no rate gets one order-level rate that reproduces its tax cents",
                True,
            ),
            Setting(
                "total_tolerance",
                "how far (in the order's currency) Square's computed tax or total may be from the channel's before "
                "the order is held pos_total_mismatch",
                "0.01",
            ),
            Setting(
                "payment_source", "external_details.source of the external payment (the channel's name)", "Shopify"
            ),
            Setting(
                "payment_type", "external_details.type of the external payment (OTHER, EXTERNAL, CARD …)", "EXTERNAL"
            ),
            Setting(
                "custom_attributes",
                "order custom attributes to set: {key: source} with source number, email, note, tags, "
                "customer_name, channel_state or custom:<order custom field>",
                {},
            ),
            Setting(
                "required_attributes",
                "keys of custom_attributes an order must have a value for (Square has no 'required' flag: this "
                "connection's rule) — else held required_field_missing",
                [],
            ),
            Setting("attribute_defaults", "{key: value} used when an order gives a custom attribute no value", {}),
            Setting(
                "sku_mapping",
                "'identity' (default): a SKU is looked up as the SKU of a Square item variation; 'required': every "
                "SKU needs a mapping",
                "identity",
                SettingScope.HUB,
            ),
            Setting(
                "shipping_mapping",
                "Square needs no shipping-method mapping (shipping is a service charge): 'none' by default",
                "none",
                SettingScope.HUB,
            ),
        ),
        mapping_kinds=frozenset({MappingKind.SKU}),
        document_key="ob-{channel_id}-{external_id}",
        docs="docs/connectors/square.md",
    )
    max_batch = 20

    def __init__(
        self,
        base_url: str,
        credentials: Mapping[str, str],
        settings: Mapping[str, Any],
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        token = credentials.get("access_token")
        if not token:
            raise SettingsError(
                "Square credentials missing: access_token",
                hint="Set the connection's access_token (the seller's OAuth access token).",
                fix=update_credentials("Set the connection's Square access token.", credential="access_token"),
            )
        merged = {**self.declaration.default_settings, **settings}
        self.location_id = str(merged["location_id"] or "")
        self.team_member_id = str(merged["team_member_id"] or "")
        self.unmatched = str(merged["unmatched_lines"])
        self.shipping_as = str(merged["shipping_as"])
        if self.unmatched not in UNMATCHED:
            raise _setting_error("unmatched_lines", f"{self.unmatched!r} is not one of {', '.join(UNMATCHED)}")
        if self.shipping_as not in SHIPPING_AS:
            raise _setting_error("shipping_as", f"{self.shipping_as!r} is not one of {', '.join(SHIPPING_AS)}")
        try:
            self.tolerance = Decimal(str(merged["total_tolerance"]))
        except InvalidOperation:
            raise _setting_error("total_tolerance", f"{merged['total_tolerance']!r} is not an amount") from None
        self.helper_skus = {**DEFAULT_HELPER_SKUS, **dict(merged["helper_skus"] or {})}
        self.attributes: dict[str, str] = {str(k): str(v) for k, v in dict(merged["custom_attributes"] or {}).items()}
        self.required: list[str] = [str(k) for k in merged["required_attributes"] or []]
        self.defaults: dict[str, str] = {str(k): str(v) for k, v in dict(merged["attribute_defaults"] or {}).items()}
        for key, source in self.attributes.items():
            if source not in ATTRIBUTE_SOURCES and not source.startswith("custom:"):
                raise _setting_error("custom_attributes", f"{key!r}: source {source!r} is not one OrderBridge reads")
        version = str(merged["square_version"] or SQUARE_VERSION)
        if (self.attributes or self.required) and version < CUSTOM_ATTRIBUTES_SINCE:
            raise _setting_error(
                "square_version",
                f"order custom attributes need Square-Version {CUSTOM_ATTRIBUTES_SINCE} or later; it is {version}",
            )
        self.settings = merged
        self.client = SquareClient(base_url or DEFAULT_BASE_URL, token, version=version, http=http, sleep=sleep)
        self._lock = threading.Lock()
        self._variations: dict[str, str | None] = {}
        self._definitions: set[str] | None = None
        self._definitions_lock = threading.Lock()

    # --- Connector -----------------------------------------------------------------------------
    def check(self) -> str:
        status, body = self.client.get("locations")
        if status != 200:
            raise unexpected(status, body, "the locations")
        names = {str(loc.get("id")): str(loc.get("name")) for loc in body.get("locations") or []}
        where = names.get(self.location_id)
        return (
            f"Square reachable: location {where!r} ({self.location_id})"
            if where
            else f"Square reachable: {len(names)} location(s)"
        )

    def close(self) -> None:
        self.client.close()

    # --- pre-flight: the connection ----------------------------------------------------------------
    def preflight_connection(self) -> list[PreflightCheck]:
        return [self._employee(), self._location(), self._helpers()]

    def _employee(self) -> PreflightCheck:
        member = self.team_member_id
        if not member:
            return PreflightCheck("employee", "no team member is selected", _member("(none selected)", "not set"))
        status, body = self.client.get(f"team-members/{member}")
        if status == 404:
            return PreflightCheck("employee", f"team member {member!r} not found", _member(repr(member), "not found"))
        if status != 200:
            raise unexpected(status, body, "the team member")
        found = body.get("team_member") or {}
        name = " ".join(p for p in (found.get("given_name"), found.get("family_name")) if p) or member
        state = str(found.get("status") or "")
        detail = f"team member {name!r} ({member}) is {state}"
        return PreflightCheck(
            "employee", detail, None if state == "ACTIVE" else _member(f"{name!r} ({member})", state.lower())
        )

    def _location(self) -> PreflightCheck:
        location = self.location_id
        if not location:
            return PreflightCheck("location", "no location is selected", _place("(none selected)", "not set"))
        status, body = self.client.get(f"locations/{location}")
        if status == 404:
            return PreflightCheck("location", f"location {location!r} not found", _place(repr(location), "not found"))
        if status != 200:
            raise unexpected(status, body, "the location")
        found = body.get("location") or {}
        state = str(found.get("status") or "")
        detail = f"location {found.get('name', location)!r} ({location}) is {state}"
        return PreflightCheck(
            "location",
            detail,
            None if state == "ACTIVE" else _place(f"{found.get('name', location)!r} ({location})", state.lower()),
        )

    def needed_helpers(self) -> list[str]:
        """The helper-item SKUs this connection's settings post on (usually none in Square)."""
        roles = (["shipping"] if self.shipping_as == "helper_item" else []) + (
            ["no_product"] if self.unmatched == "helper_item" else []
        )
        return [self.helper_skus[r] for r in roles]

    def _helpers(self) -> PreflightCheck:
        needed = self.needed_helpers()
        if not needed:
            return PreflightCheck(
                "helper_items",
                "none needed: shipping goes as a service charge, discounts as discounts"
                + (", unmatched lines as ad-hoc lines" if self.unmatched == "ad_hoc" else ""),
            )
        found = self._resolve(needed, fresh=True)
        missing = [sku for sku in needed if found.get(sku) is None]
        if missing:
            return PreflightCheck(
                "helper_items",
                f"helper items missing in Square: {', '.join(missing)}",
                R.pos_required_product_missing(SYSTEM, missing),
                action="create_helper_items",
            )
        return PreflightCheck("helper_items", f"helper items present: {', '.join(needed)}")

    def create_helper_items(self) -> list[str]:
        needed = self.needed_helpers()
        found = self._resolve(needed, fresh=True)
        created: list[str] = []
        for sku in needed:  # one catalog write at a time: Square refuses concurrent ones (429, retried)
            if found.get(sku) is not None:
                continue
            body = {
                "idempotency_key": mapper.helper_key(sku),
                "object": {
                    "type": "ITEM",
                    "id": "#helper",
                    "item_data": {
                        "name": sku,
                        "description": "Created by OrderBridge for online orders; not tracked in stock.",
                        "variations": [
                            {
                                "type": "ITEM_VARIATION",
                                "id": "#helper-variation",
                                "item_variation_data": {
                                    "item_id": "#helper",
                                    "name": "Regular",
                                    "sku": sku,
                                    "pricing_type": "VARIABLE_PRICING",
                                    "track_inventory": False,
                                },
                            }
                        ],
                    },
                },
            }
            status, answer = self.client.post("catalog/object", body)
            if status != 200:
                raise DestinationRejected(
                    f"{SYSTEM} refused to create the helper item {sku!r}: {mapper.problem(status, answer).text()}",
                    status=status,
                )
            variations = (answer.get("catalog_object") or {}).get("item_data", {}).get("variations") or []
            with self._lock:
                self._variations[sku] = str(variations[0]["id"]) if variations else None
            created.append(sku)
        return created

    # --- pre-flight: an order -------------------------------------------------------------------
    def preflight_order(self, order: OutgoingOrder) -> list[PreflightCheck]:
        checks, _ = self._order_checks(order)
        return checks

    def _order_checks(self, outgoing: OutgoingOrder) -> tuple[list[PreflightCheck], mapper.Built | None]:
        lines = mapper.open_lines(outgoing)
        skus = [sku for _, sku in lines]
        found = self._resolve(skus)
        checks: list[PreflightCheck] = []
        missing = [(line.sku or sku, sku) for line, sku in lines if found.get(sku) is None]
        if missing and self.unmatched == "hold":
            seen: set[str] = set()
            for channel_sku, sku in missing:
                if channel_sku in seen:
                    continue
                seen.add(channel_sku)
                checks.append(
                    PreflightCheck(
                        "skus",
                        f"SKU {sku!r} matches no Square item variation",
                        R.square_sku_not_found(channel_sku, sku),
                    )
                )
        elif missing:
            checks.append(
                PreflightCheck(
                    "skus",
                    f"{len(missing)} line(s) go as ad-hoc lines (no stock moved): "
                    + ", ".join(sorted({s for _, s in missing})),
                )
            )
        else:
            checks.append(PreflightCheck("skus", f"all {len(skus)} SKU(s) resolve to Square item variations"))
        checks += self._attribute_checks(outgoing)
        built: mapper.Built | None = None
        try:
            built = self._build(outgoing, found)
        except mapper.NotRepresentable as exc:
            checks.append(
                PreflightCheck(
                    "totals", str(exc), R.pos_total_mismatch(SYSTEM, str(outgoing.resolved.order.total), "?", str(exc))
                )
            )
            return checks, None
        checks.append(self._totals(outgoing, built))
        return checks, built

    def _attribute_checks(self, outgoing: OutgoingOrder) -> list[PreflightCheck]:
        values = self._attribute_values(outgoing)
        checks = []
        for key in self.required:
            if values.get(key):
                checks.append(PreflightCheck("required_fields", f"custom attribute {key!r} has a value"))
            else:
                checks.append(
                    PreflightCheck(
                        "required_fields",
                        f"custom attribute {key!r} has no value",
                        R.pos_required_field_missing(SYSTEM, key, REQUIREMENT, "attribute_defaults"),
                    )
                )
        if not self.required:
            checks.append(PreflightCheck("required_fields", "no custom attribute is required by this connection"))
        return checks

    def _attribute_values(self, outgoing: OutgoingOrder) -> dict[str, str]:
        """Each configured attribute's value (decision 214, :func:`pos_fields.field_value`): the
        order's own custom field of that key, else the order field ``custom_attributes`` names, else
        ``attribute_defaults``."""
        order = outgoing.resolved.order
        values: dict[str, str] = {}
        for key in sorted({*self.attributes, *self.required}):
            value = pos_fields.field_value(order, key, self.attributes, self.defaults)
            if value:
                values[key] = value[:1000]
        return values

    def _totals(self, outgoing: OutgoingOrder, built: mapper.Built) -> PreflightCheck:
        order = outgoing.resolved.order
        currency = order.currency
        predicted = mapper.predict(built.body)
        square_tax = mapper.from_minor(predicted.tax, currency)
        square_total = mapper.from_minor(predicted.total, currency)
        partly = any(line.open_quantity < line.quantity for line in order.lines)
        if partly:
            return PreflightCheck(
                "totals",
                f"part of the order was fulfilled already: Square will total {square_total} for the open lines",
            )
        rates = ", ".join(f"{t['percentage']}%" for t in built.body.get("taxes") or []) or "none"
        for name, channel, square in (
            ("tax", order.total_tax, square_tax),
            ("total", order.total, square_total),
        ):
            if abs(channel.amount - square.amount) > self.tolerance:
                why = (
                    f"Square applies the percentage tax(es) ({rates}) once over the order and rounds half to even, "
                    f"which cannot give the channel's {order.total_tax}"
                    if name == "tax"
                    else "the order's lines, discounts and shipping do not add up to the channel's total"
                )
                return PreflightCheck(
                    "totals",
                    f"{name}: channel {channel}, Square {square}",
                    R.pos_total_mismatch(
                        SYSTEM, f"{order.total} (tax {order.total_tax})", f"{square_total} (tax {square_tax})", why
                    ),
                )
        return PreflightCheck(
            "totals", f"Square will compute tax {square_tax} (rates: {rates}) and total {square_total}"
        )

    def _build(self, outgoing: OutgoingOrder, found: Mapping[str, str | None]) -> mapper.Built:
        helpers = self._resolve(self.needed_helpers()) if self.needed_helpers() else {}
        options = mapper.Options(
            location_id=self.location_id,
            unmatched_lines=self.unmatched,
            shipping_as=self.shipping_as,
            shipping_variation=helpers.get(self.helper_skus["shipping"]),
            no_product_variation=helpers.get(self.helper_skus["no_product"]),
            shipping_taxable=bool(self.settings["shipping_taxable"]),
            taxes_included=bool(self.settings["taxes_included"]),
            derive_tax_rate=bool(self.settings["derive_tax_rate"]),
        )
        return mapper.build(outgoing, found, options)

    # --- the catalog -------------------------------------------------------------------------------
    def _resolve(self, skus: Sequence[str], *, fresh: bool = False) -> dict[str, str | None]:
        """SKU → variation id (None: none has it). Found ids are cached; a miss is asked again each
        time (the merchant may have just added it)."""
        wanted = list(dict.fromkeys(s for s in skus if s))
        with self._lock:
            known = {s: self._variations[s] for s in wanted if not fresh and self._variations.get(s) is not None}
        ask = [s for s in wanted if s not in known]
        if len(ask) == 1:
            known[ask[0]] = self._search_exact(ask[0])
        elif ask:
            for start in range(0, len(ask), SET_QUERY_MAX):
                known.update(self._search_set(ask[start : start + SET_QUERY_MAX]))
        with self._lock:
            self._variations.update({k: v for k, v in known.items() if v is not None})
        return known

    def _search(self, query: Mapping[str, Any]) -> list[dict[str, Any]]:
        objects: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            body: dict[str, Any] = {"object_types": ["ITEM_VARIATION"], "query": query, "limit": 1000}
            if cursor:
                body["cursor"] = cursor
            status, answer = self.client.post("catalog/search", body)
            if status != 200:
                raise unexpected(status, answer, "the catalog search")
            objects += [o for o in answer.get("objects") or [] if not o.get("is_deleted")]
            cursor = answer.get("cursor")
            if not cursor:
                return objects

    def _search_exact(self, sku: str) -> str | None:
        """``exact_query`` ignores case and may match a word prefix: keep only an equal SKU (the same
        case first)."""
        found = self._search({"exact_query": {"attribute_name": "sku", "attribute_value": sku}})
        same = [o for o in found if _sku(o) == sku] or [o for o in found if _sku(o).casefold() == sku.casefold()]
        return str(same[0]["id"]) if same else None

    def _search_set(self, skus: Sequence[str]) -> dict[str, str | None]:
        found = self._search({"set_query": {"attribute_name": "sku", "attribute_values": list(skus)}})
        out: dict[str, str | None] = {}
        for sku in skus:
            same = [o for o in found if _sku(o) == sku] or [o for o in found if _sku(o).casefold() == sku.casefold()]
            out[sku] = str(same[0]["id"]) if same else None
        return out

    # --- posting -------------------------------------------------------------------------------
    def post_orders(self, orders: Sequence[OutgoingOrder]) -> list[PostResult]:
        failing = [c for c in self.preflight_connection() if not c.ok]
        if failing:
            return [self._held(o, failing[0].reason, failing[0].detail) for o in orders]
        return [self._post(o) for o in orders]

    def _held(self, outgoing: OutgoingOrder, reason: Reason | None, detail: str) -> PostResult:
        return PostResult(
            outgoing.order_key,
            None,
            DestinationRejected(f"{SYSTEM}: order {outgoing.resolved.order.number} not sent: {detail}"),
            hold=reason,
        )

    def _post(self, outgoing: OutgoingOrder) -> PostResult:
        order = outgoing.resolved.order
        if len(order.number) > mapper.REFERENCE_ID_MAX:
            return PostResult(
                outgoing.order_key,
                None,
                DestinationRejected(
                    f"{SYSTEM} limits reference_id to {mapper.REFERENCE_ID_MAX} characters; order number "
                    f"{order.number!r} has {len(order.number)}, so it was not sent"
                ),
                hold=R.destination_field_too_long(
                    SYSTEM, "reference_id", len(order.number), mapper.REFERENCE_ID_MAX, order.number
                ),
            )
        checks, built = self._order_checks(outgoing)
        failing = [c for c in checks if not c.ok]
        if failing or built is None:
            first = failing[0]
            return self._held(outgoing, first.reason, first.detail)
        try:
            square_order = self._create(outgoing, built)
            self._set_attributes(outgoing, square_order)
            return self._pay(outgoing, built, square_order)
        except _Refused as refused:
            return replace(refused.result, sent=built.body)

    def _create(self, outgoing: OutgoingOrder, built: mapper.Built) -> dict[str, Any]:
        body = {"idempotency_key": mapper.order_key(outgoing.idempotency_key), "order": built.body}
        status, answer = self.client.post("orders", body)
        if status == 200 and isinstance(answer.get("order"), Mapping):
            return dict(answer["order"])
        problem = mapper.problem(status, answer)
        if problem.code == "IDEMPOTENCY_KEY_REUSED":
            existing = self.find(outgoing.order_key)
            if existing is not None:
                return existing
        if status in (400, 404, 409):
            raise _Refused(self._refusal(outgoing, problem))
        raise unexpected(status, answer, "the order")

    def find(self, order_key: str) -> dict[str, Any] | None:
        """Read only: the order the hub created in Square for ``order_key`` (its metadata), if any —
        every page of the search, following Square's ``cursor`` (the same query each time, as
        Square requires) until the order is found or no cursor is left."""
        query = {"filter": {"source_filter": {"source_names": [mapper.SOURCE_NAME]}}}
        cursor: str | None = None
        while True:
            body: dict[str, Any] = {"location_ids": [self.location_id], "query": query, "limit": SEARCH_ORDERS_LIMIT}
            if cursor:
                body["cursor"] = cursor
            status, answer = self.client.post("orders/search", body)
            if status != 200:
                raise unexpected(status, answer, "the order search")
            for found in answer.get("orders") or []:
                if (found.get("metadata") or {}).get("ob_order_key") == order_key:
                    return dict(found)
            cursor = answer.get("cursor") or None
            if cursor is None:
                return None

    def _refusal(self, outgoing: OutgoingOrder, problem: mapper.SquareProblem) -> PostResult:
        order = outgoing.resolved.order
        error = DestinationRejected(f"{SYSTEM} refused order {order.number}: {problem.text()}", status=problem.status)
        hold: Reason | None = None
        if problem.field.startswith("order.line_items") and "catalog_object_id" in problem.field:
            with self._lock:
                self._variations.clear()  # a stale id: search again next time
        if problem.field == "team_member_id":
            hold = _member(repr(self.team_member_id), f"refused by Square ({problem.detail})")
        elif problem.field.endswith("location_id") and problem.code != "LOCATION_MISMATCH":
            hold = _place(repr(self.location_id), f"refused by Square ({problem.detail})")
        return PostResult(outgoing.order_key, None, error, hold=hold)

    def _set_attributes(self, outgoing: OutgoingOrder, square_order: Mapping[str, Any]) -> None:
        values = self._attribute_values(outgoing)
        if not values:
            return
        self._ensure_definitions(values)
        order_id = str(square_order["id"])
        for key, value in sorted(values.items()):
            status, answer = self.client.post(
                f"orders/{order_id}/custom-attributes/{key}",
                {
                    "custom_attribute": {"value": value},
                    "idempotency_key": mapper.attribute_key(outgoing.idempotency_key, key, value),
                },
            )
            if status != 200:
                problem = mapper.problem(status, answer)
                raise _Refused(
                    PostResult(
                        outgoing.order_key,
                        order_id,
                        DestinationRejected(
                            f"{SYSTEM} refused custom attribute {key!r} on order {order_id}: {problem.text()}",
                            status=status,
                        ),
                        hold=R.pos_order_unfinished(
                            SYSTEM, order_id, f"OPEN, unpaid (custom attribute {key!r}: {problem.detail})"
                        ),
                    )
                )

    def _ensure_definitions(self, values: Mapping[str, str]) -> None:
        with self._definitions_lock:  # the hub may share one connector between threads
            self._ensure_definitions_locked(values)

    def _ensure_definitions_locked(self, values: Mapping[str, str]) -> None:
        if self._definitions is None:
            status, answer = self.client.get("orders/custom-attribute-definitions")
            if status != 200:
                raise unexpected(status, answer, "the custom attribute definitions")
            self._definitions = {str(d.get("key")) for d in answer.get("custom_attribute_definitions") or []}
        for key in sorted(set(values) - self._definitions):
            status, answer = self.client.post(
                "orders/custom-attribute-definitions",
                {
                    "custom_attribute_definition": {
                        "key": key,
                        "name": key,
                        "schema": {"$ref": STRING_SCHEMA_BASE_URL},
                        "visibility": "VISIBILITY_READ_WRITE_VALUES",
                        "description": "Set by OrderBridge from the online order",
                    },
                    "idempotency_key": mapper.helper_key("definition:" + key),
                },
            )
            if status not in (200, 409):
                raise DestinationRejected(
                    f"{SYSTEM} refused the custom attribute definition {key!r}: "
                    f"{mapper.problem(status, answer).text()}",
                    status=status,
                )
            self._definitions.add(key)

    def _pay(self, outgoing: OutgoingOrder, built: mapper.Built, square_order: Mapping[str, Any]) -> PostResult:
        order = outgoing.resolved.order
        order_id = str(square_order["id"])
        total = dict(square_order.get("total_money") or {})
        due = dict(square_order.get("net_amount_due_money") or total)
        answered = mapper.from_minor(int(total.get("amount", 0)), str(total.get("currency") or order.currency))
        notes = list(built.notes)
        predicted = mapper.from_minor(mapper.predict(built.body).total, order.currency)
        if answered != predicted:
            # the prediction the totals check passed on missed: the order is left unpaid rather than
            # paid with a total nobody compared with the channel's
            return PostResult(
                outgoing.order_key,
                order_id,
                DestinationRejected(
                    f"{SYSTEM} computed {answered} for order {order.number} where {predicted} was expected; "
                    "it was not paid"
                ),
                hold=R.pos_total_mismatch(
                    SYSTEM, str(predicted), str(answered), f"Square order {order_id} was created and left unpaid"
                ),
                sent=built.body,
            )
        partly = any(line.open_quantity < line.quantity for line in order.lines)
        if answered.amount != order.total.amount and not partly:
            notes.append(
                f"Square: the order totals {answered} where the channel's totals {order.total} (within the tolerance)"
            )
        if int(due.get("amount", 0)) == 0 and square_order.get("tenders"):
            return PostResult(outgoing.order_key, order_id, notes=tuple(notes), sent=built.body)
        payment: dict[str, Any] = {
            "idempotency_key": mapper.payment_key(outgoing.idempotency_key),
            "source_id": "EXTERNAL",
            "external_details": {
                "type": str(self.settings["payment_type"]),
                "source": str(self.settings["payment_source"]),
                "source_id": order.external_id[:255],
            },
            "amount_money": {
                "amount": int(due.get("amount", 0)),
                "currency": str(due.get("currency") or order.currency),
            },
            "order_id": order_id,
            "location_id": self.location_id,
            "reference_id": order.number,
            "note": f"Online order {order.number}"[:500],
        }
        if self.team_member_id:
            payment["team_member_id"] = self.team_member_id
        status, answer = self.client.post("payments", payment)
        if status == 200:
            return PostResult(outgoing.order_key, order_id, notes=tuple(notes), sent=built.body)
        problem = mapper.problem(status, answer)
        if status in (400, 402, 404, 409):
            if self._paid_meanwhile(order_id):
                # the order was paid in Square since the answer read (a retry after someone took the
                # payment there replays CreateOrder's first, unpaid answer): it is the document, done
                notes.append(f"Square: order {order_id} was paid in Square already; no payment was added")
                return PostResult(outgoing.order_key, order_id, notes=tuple(notes), sent=built.body)
            hold = (
                _member(repr(self.team_member_id), f"refused by Square ({problem.detail})")
                if problem.field == "team_member_id"
                else R.pos_order_unfinished(SYSTEM, order_id, f"OPEN, unpaid ({problem.text()})")
            )
            return PostResult(
                outgoing.order_key,
                order_id,
                DestinationRejected(
                    f"{SYSTEM} created order {order_id} for {order.number} but refused its payment: {problem.text()}",
                    status=status,
                ),
                hold=hold,
                sent=built.body,
            )
        raise unexpected(status, answer, "the payment")

    def _paid_meanwhile(self, order_id: str) -> bool:
        """Whether Square holds ``order_id`` paid in full now (read again after a refused payment)."""
        status, answer = self.client.get(f"orders/{order_id}")
        if status != 200:
            return False
        found = answer.get("order") or {}
        due = int((found.get("net_amount_due_money") or {}).get("amount", -1))
        return due == 0 and bool(found.get("tenders")) and found.get("state") in ("OPEN", "COMPLETED")

    # --- the posted document ---------------------------------------------------------------------
    def document_state(self, document_id: str) -> PosDocument | None:
        status, answer = self.client.get(f"orders/{document_id}")
        if status == 404:
            return None
        if status != 200:
            raise unexpected(status, answer, "the order")
        return mapper.document(answer.get("order") or {})


def _member(who: str, state: str) -> Reason:
    return R.pos_employee_inactive(SYSTEM, who, "team_member_id", state=state)


def _place(where: str, state: str) -> Reason:
    return R.pos_location_inactive(SYSTEM, where, "location_id", state=state)


def _sku(obj: Mapping[str, Any]) -> str:
    return str((obj.get("item_variation_data") or {}).get("sku") or "")
