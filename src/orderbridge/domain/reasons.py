"""Typed hold and skip reasons: a stable code, the exact value, a message and the fix.

A reason is the unit of "visible, with the reason and the fix": the CLI, the digest and the
portal group by ``(code, value)`` so that "37 orders blocked by SKU ABC-1 — map it" is one line.
The ``value`` is what a fix releases: adding the SKU mapping ``ABC-1`` releases every order held
with ``(sku_unmapped, "ABC-1")``.

The fix is data (:class:`orderbridge.fixes.Fix`: an action with its parameters and a sentence),
never a command: the CLI renders ``Fix(map_sku, sku=ABC-1, destination=wh)`` as
``orderbridge mappings set sku 'ABC-1' <destination SKU> --destination wh``, the portal as a form.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from orderbridge.domain import limits
from orderbridge.fixes import Fix, FixAction


class HoldCode(StrEnum):
    SKU_UNMAPPED = "sku_unmapped"
    SKU_MISSING = "sku_missing"
    SHIPPING_METHOD_UNMAPPED = "shipping_method_unmapped"
    SHIPPING_METHOD_MISSING = "shipping_method_missing"
    REQUIRED_FIELD_MISSING = "required_field_missing"
    DESTINATION_REJECTED = "destination_rejected"
    CONNECTION_AUTH_FAILED = "connection_auth_failed"
    INVALID_ORDER = "invalid_order"
    # shipment pushes back to the channel
    TRACKING_NUMBER_MISSING = "tracking_number_missing"
    CARRIER_MISSING = "carrier_missing"
    CHANNEL_REJECTED = "channel_rejected"
    DESTINATION_FIELD_TOO_LONG = "destination_field_too_long"
    # task E (fulfilment): shipment lines the push cannot carry as they are
    SHIPMENT_LINE_UNMATCHED = "shipment_line_unmatched"
    SHIPMENT_WITHOUT_LINES = "shipment_without_lines"
    # issue #10 a-validation: the input limits (domain/limits.py)
    VALUE_TOO_LONG = "value_too_long"
    TOO_MANY_VALUES = "too_many_values"
    INVALID_TEXT = "invalid_text"
    INVALID_QUANTITY = "invalid_quantity"
    INVALID_AMOUNT = "invalid_amount"
    TOTALS_INCONSISTENT = "totals_inconsistent"
    UNKNOWN_STATUS = "unknown_status"
    # poison-pill isolation (issue #10 item 2)
    STORAGE_REFUSED = "storage_refused"
    # issue #15 item 5: a file-export destination's file the package has not taken in time
    EXPORT_NOT_PICKED_UP = "export_not_picked_up"
    # order updates (issue #15): a later version of an order a destination holds, awaiting a person
    UPDATE_NEEDS_REVIEW = "update_needs_review"
    # issue #16: pushes to a channel its rules do not allow as they are (the push planner)
    SHIPPING_DATA_MISSING = "shipping_data_missing"
    TRANSITION_NOT_ALLOWED = "transition_not_allowed"
    ACTION_NOT_SUPPORTED = "action_not_supported"
    # issue #16: a marketplace order the auto-accept policy would not accept (an SKU not mapped)
    ACCEPTANCE_HELD = "acceptance_held"
    # issue #17: POS destinations' pre-flight checks
    POS_EMPLOYEE_INACTIVE = "pos_employee_inactive"
    POS_REQUIRED_PRODUCT_MISSING = "pos_required_product_missing"
    POS_LOCATION_INACTIVE = "pos_location_inactive"
    POS_TOTAL_MISMATCH = "pos_total_mismatch"
    #: posted, but the POS could not complete it: inventory is not adjusted there yet
    POS_ORDER_INCOMPLETE = "pos_order_incomplete"


class SkipCode(StrEnum):
    FINANCIAL_STATUS_NOT_DOWNLOADED = "financial_status_not_downloaded"
    FULFILMENT_STATUS_NOT_DOWNLOADED = "fulfillment_status_not_downloaded"
    TEST_ORDER = "test_order"
    CLOSED_ORDER = "closed_order"
    CANCELLED_ORDER = "cancelled_order"
    BEFORE_EARLIEST_DATE = "before_earliest_date"
    # task E (fulfilment): an order the channel has already fulfilled in full
    NOTHING_TO_FULFIL = "nothing_to_fulfil"
    # issue #16 (WooCommerce): the channel's own status is not one the connection takes
    CHANNEL_STATE_NOT_DOWNLOADED = "channel_state_not_downloaded"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    value: str
    message: str
    fix: Fix

    def __post_init__(self) -> None:
        # a reason is stored (order_reasons.value is bounded; no text column takes NUL): whatever
        # a channel put in the value, the reason itself always fits
        value = limits.shorten(limits.storable(self.value), limits.REASON_VALUE.max_chars)
        if value is not self.value:
            object.__setattr__(self, "value", value)
        message = limits.storable(self.message)
        if message is not self.message:
            object.__setattr__(self, "message", message)
        fix = _storable_fix(self.fix)
        if fix is not self.fix:
            object.__setattr__(self, "fix", fix)

    @property
    def key(self) -> tuple[str, str]:
        return (self.code, self.value)


def _storable_fix(fix: Fix) -> Fix:
    """The fix with its text and parameter values storable (a SKU from the channel may hold a NUL)."""
    text = limits.storable(fix.text)
    params = tuple((k, limits.storable(v)) for k, v in fix.params)
    if text is fix.text and all(a[1] is b[1] for a, b in zip(params, fix.params, strict=True)):
        return fix
    return Fix(fix.action, text, params)


def _in_channel(text: str, field: str | None = None) -> Fix:
    return Fix.of(FixAction.EDIT_ORDER_AT_CHANNEL, text, field=field)


def _in_3pl(text: str, shipment: str) -> Fix:
    return Fix.of(FixAction.EDIT_SHIPMENT_AT_DESTINATION, text, shipment=shipment)


def _download_rules(text: str) -> Fix:
    return Fix.of(FixAction.EDIT_DOWNLOAD_RULES, text)


def _nothing(text: str) -> Fix:
    return Fix.of(FixAction.NONE, text)


# --- holds -------------------------------------------------------------------------------------


def sku_unmapped(sku: str, destination: str) -> Reason:
    return Reason(
        HoldCode.SKU_UNMAPPED,
        sku,
        f"SKU {sku!r} has no mapping for destination {destination!r}",
        Fix.of(
            FixAction.MAP_SKU,
            f"Map SKU {sku!r} to a SKU of destination {destination!r}.",
            sku=sku,
            destination=destination,
        ),
    )


def sku_missing(line_title: str, line_id: str) -> Reason:
    return Reason(
        HoldCode.SKU_MISSING,
        line_id,
        f"line {line_title!r} (id {line_id}) has no SKU",
        _in_channel("Give the product variant a SKU in the channel; the next sync picks the change up.", "sku"),
    )


def shipping_method_unmapped(method: str, destination: str) -> Reason:
    return Reason(
        HoldCode.SHIPPING_METHOD_UNMAPPED,
        method,
        f"shipping method {method!r} has no mapping for destination {destination!r}",
        Fix.of(
            FixAction.MAP_SHIPPING_METHOD,
            f"Map shipping method {method!r} to a carrier and service of destination {destination!r}.",
            method=method,
            destination=destination,
        ),
    )


def shipping_method_missing(destination: str) -> Reason:
    return Reason(
        HoldCode.SHIPPING_METHOD_MISSING,
        "",
        f"the order has no shipping line, and destination {destination!r} needs a shipping service",
        Fix.of(
            FixAction.MAP_SHIPPING_METHOD,
            f"Set a default carrier and service for destination {destination!r}.",
            method="*",
            destination=destination,
        ),
    )


def required_field_missing(field: str, destination: str) -> Reason:
    return Reason(
        HoldCode.REQUIRED_FIELD_MISSING,
        field,
        f"field {field!r} is required by destination {destination!r} and is empty",
        Fix.of(
            FixAction.SET_REQUIRED_FIELD,
            f"Fill in {field!r} on the order in the channel; the next sync re-evaluates it.",
            field=field,
            destination=destination,
        ),
    )


def destination_rejected(destination: str, message: str) -> Reason:
    return Reason(
        HoldCode.DESTINATION_REJECTED,
        destination,
        f"destination {destination!r} rejected the order: {message}",
        Fix.of(
            FixAction.RETRY_ORDER,
            "Correct what the destination names, then retry the order.",
            destination=destination,
        ),
    )


def invalid_order(problem: str) -> Reason:
    return Reason(
        HoldCode.INVALID_ORDER,
        problem[:120],
        f"the channel sent an order OrderBridge cannot read: {problem}",
        _in_channel("Correct the order in the channel; the raw payload is kept on the order page."),
    )


def tracking_number_missing(shipment: str) -> Reason:
    return Reason(
        HoldCode.TRACKING_NUMBER_MISSING,
        shipment,
        f"shipment {shipment} has no tracking number",
        _in_3pl("Add the tracking number in the 3PL; the next shipment poll pushes it.", shipment),
    )


def carrier_missing(shipment: str) -> Reason:
    return Reason(
        HoldCode.CARRIER_MISSING,
        shipment,
        f"shipment {shipment} has no carrier",
        _in_3pl("Set the carrier on the shipment in the 3PL; the next shipment poll pushes it.", shipment),
    )


def channel_rejected(channel: str, message: str) -> Reason:
    return Reason(
        HoldCode.CHANNEL_REJECTED,
        channel,
        f"channel {channel!r} rejected the fulfilment: {message}",
        _in_channel("Correct what the channel names; the push is retried on the next back-sync."),
    )


# --- d-output: destination field limits ---------------------------------------------------------


def destination_field_too_long(destination: str, field: str, length: int, limit: int, value: str) -> Reason:
    """A field the destination limits, too long to shorten without changing what it means (a SKU,
    an order number, a street): the order is held, nothing is sent. ``field`` is the pattern
    (``items[].sku``), so every order held for the same field is one group."""
    shown = value if len(value) <= 40 else value[:40] + "…"
    return Reason(
        HoldCode.DESTINATION_FIELD_TOO_LONG,
        field,
        f"{destination} accepts at most {limit} characters in {field}; this order's is {length}: {shown!r}",
        Fix.of(
            FixAction.RETRY_ORDER,
            f"Shorten it to {limit} characters where it comes from (the order in the channel, or the mapping "
            "for a SKU or shipping service), then retry the order.",
            destination=destination,
            field=field,
        ),
    )


# --- issue #15 (qbo): an accounting destination's own references ------------------------------


def destination_item_unknown(system: str, sku: str, item: str, message: str, destination: str = "") -> Reason:
    """The destination has no item for a line (QuickBooks: no Item of that name, or its 400 "Invalid
    Reference Id" on an ``ItemRef``). Held as ``destination_rejected`` — so retrying or resetting the
    order asks the destination again — with the destination's words and the fix *map the SKU*. Made
    by a connector, which does not know its connection's name: the poster fills ``destination`` in
    (:func:`addressed`)."""
    return Reason(
        HoldCode.DESTINATION_REJECTED,
        destination,
        f"{system} has no item {item!r} for SKU {sku!r}: {message}",
        Fix.of(
            FixAction.MAP_SKU,
            f"Map SKU {sku!r} to an item that exists in {system} (its name or Id), then retry the order.",
            sku=sku,
            destination=destination or None,
        ),
    )


def destination_setting_unknown(system: str, setting: str, message: str, destination: str = "") -> Reason:
    """A connection setting names something the destination does not have (a tax code, an account)."""
    return Reason(
        HoldCode.DESTINATION_REJECTED,
        destination,
        f"{system} refused the order: {message}",
        Fix.of(
            FixAction.SET_SETTING,
            f"Set the connection's {setting} to one that exists in {system}, then retry the order.",
            setting=setting,
            connection=destination or None,
        ),
    )


def addressed(reason: Reason, destination: str) -> Reason:
    """A ``destination_rejected`` reason made by a connector, with its connection's name filled in
    (its value — what a retry or a release of that destination matches — and its fix's parameter)."""
    if reason.code != HoldCode.DESTINATION_REJECTED or reason.value:
        return reason
    param = "connection" if reason.fix.action is FixAction.SET_SETTING else "destination"
    return Reason(reason.code, destination, reason.message, reason.fix.with_params(**{param: destination}))


# --- skips -------------------------------------------------------------------------------------


def financial_status_not_downloaded(status: str, allowed: frozenset[str]) -> Reason:
    return Reason(
        SkipCode.FINANCIAL_STATUS_NOT_DOWNLOADED,
        status,
        f"payment status {status!r} is not downloaded (downloaded: {', '.join(sorted(allowed))})",
        _download_rules(
            f"If orders with payment status {status!r} should go, add it to the connection's download rules."
        ),
    )


def fulfilment_status_not_downloaded(status: str, allowed: frozenset[str]) -> Reason:
    switch = {"fulfilled": "processed", "unfulfilled": "unprocessed", "partial": "unprocessed"}.get(status)
    how = (
        f"Turn on the {switch!r} download switch (Download {switch} orders) of the connection, or add "
        f"{status!r} to its download rules; what it skipped is re-evaluated at once."
        if switch
        else f"If orders with fulfilment status {status!r} should go, add it to the connection's download rules."
    )
    return Reason(
        SkipCode.FULFILMENT_STATUS_NOT_DOWNLOADED,
        status,
        f"fulfilment status {status!r} is not downloaded (downloaded: {', '.join(sorted(allowed))})"
        + (f": the {switch!r} download switch is off" if switch else ""),
        Fix.of(FixAction.EDIT_DOWNLOAD_RULES, how, switch=switch),
    )


def test_order() -> Reason:
    return Reason(
        SkipCode.TEST_ORDER,
        "test",
        "test orders are not downloaded: the 'test' download switch is off",
        Fix.of(
            FixAction.EDIT_DOWNLOAD_RULES,
            "Turn on the 'test' download switch (Download test orders) of the connection; what it skipped is "
            "re-evaluated at once.",
            switch="test",
        ),
    )


def closed_order() -> Reason:
    return Reason(
        SkipCode.CLOSED_ORDER,
        "closed",
        "closed/archived orders are not downloaded: the 'archived' download switch is off",
        Fix.of(
            FixAction.EDIT_DOWNLOAD_RULES,
            "Turn on the 'archived' download switch (Download archived orders) of the connection; what it skipped "
            "is re-evaluated at once.",
            switch="archived",
        ),
    )


def cancelled_order() -> Reason:
    return Reason(
        SkipCode.CANCELLED_ORDER,
        "cancelled",
        "the order was cancelled in the channel before it was posted: the 'cancelled' download switch is off",
        Fix.of(
            FixAction.EDIT_DOWNLOAD_RULES,
            "Nothing to do if it should not ship; re-open it in the channel if it should, or turn on the "
            "'cancelled' download switch (Download cancelled orders) of the connection to post cancelled orders too.",
            switch="cancelled",
        ),
    )


def before_earliest_date(created: str, earliest: str) -> Reason:
    return Reason(
        SkipCode.BEFORE_EARLIEST_DATE,
        earliest,
        f"the order was created {created}, before the earliest date {earliest}",
        _download_rules("Move the connection's earliest date back if older orders should go."),
    )


# --- task E (fulfilment): shipment lines and what is left to fulfil -----------------------------


def shipment_line_unmatched(shipment: str, line_key: str | None, sku: str | None, quantity: int, why: str) -> Reason:
    """A shipment line the push cannot carry: it matches no line of the order, or its quantity is no
    quantity. The push is held whole — a fulfilment without the line would under-report what shipped,
    and one without any lines would fulfil the entire order."""
    line = ", ".join(
        part for part in (f"line key {line_key!r}" if line_key else "", f"SKU {sku!r}" if sku else "") if part
    )
    line = line or "a line with neither line key nor SKU"
    return Reason(
        HoldCode.SHIPMENT_LINE_UNMATCHED,
        f"{shipment}:{line_key or sku or '?'}"[:300],
        f"shipment {shipment} has {line} × {quantity} that {why}",
        _in_3pl(
            "Correct the shipment's items in the 3PL (the push is checked again when the shipment changes), "
            "or record this fulfilment in the channel by hand.",
            shipment,
        ),
    )


def shipment_without_lines(shipment: str) -> Reason:
    return Reason(
        HoldCode.SHIPMENT_WITHOUT_LINES,
        shipment,
        f"shipment {shipment} lists no items, so which lines it fulfils is unknown",
        _in_3pl(
            "Add the shipped items to the shipment in the 3PL (the push is checked again when it changes); "
            "OrderBridge never fulfils a whole order for a shipment that does not say what it holds.",
            shipment,
        ),
    )


def nothing_to_fulfil() -> Reason:
    return Reason(
        SkipCode.NOTHING_TO_FULFIL,
        "fulfilled",
        "every line of the order is already fulfilled in the channel: nothing is left to send",
        _nothing(
            "Nothing to do; if the channel re-opens a line (a fulfilment cancelled), the next sync sends what is open."
        ),
    )


# --- issue #10 a-validation: the input limits ------------------------------------------------------


def _quote(value: object) -> str:
    return repr(limits.shorten(str(value), limits.QUOTE_CHARS))


def value_too_long(field: str, value: str, max_chars: int) -> Reason:
    return Reason(
        HoldCode.VALUE_TOO_LONG,
        f"{field}={limits.shorten(value, limits.QUOTE_CHARS)}",
        f"{field} is {len(value)} characters long, more than the {max_chars} OrderBridge accepts: {_quote(value)}",
        _in_channel(
            f"Shorten {field} in the channel to at most {max_chars} characters; the next sync re-evaluates the "
            "order (the raw payload is kept on the order page).",
            field,
        ),
    )


def too_many_values(field: str, count: int, maximum: int) -> Reason:
    return Reason(
        HoldCode.TOO_MANY_VALUES,
        field,
        f"the order has {count} {field}, more than the {maximum} OrderBridge accepts",
        _in_channel(f"Split the order in the channel so that it has at most {maximum} {field}.", field),
    )


def invalid_text(field: str, value: str) -> Reason:
    return Reason(
        HoldCode.INVALID_TEXT,
        f"{field}={limits.shorten(value, limits.QUOTE_CHARS)}",
        f"{field} contains characters no database can store (NUL or an unpaired surrogate): {_quote(value)}",
        _in_channel(f"Correct {field} in the channel; the next sync re-evaluates the order.", field),
    )


def invalid_quantity(line_id: str, quantity: int) -> Reason:
    return Reason(
        HoldCode.INVALID_QUANTITY,
        line_id,
        f"line {line_id} has quantity {quantity}; a line ships between {limits.MIN_QUANTITY} and "
        f"{limits.MAX_QUANTITY:,} units",
        _in_channel(
            "Correct the line's quantity in the channel (remove the line if nothing ships); the next sync "
            "re-evaluates the order.",
            "quantity",
        ),
    )


def invalid_amount(field: str, amount: Decimal, problem: str) -> Reason:
    return Reason(
        HoldCode.INVALID_AMOUNT,
        field,
        f"{field} is {limits.shorten(str(amount), limits.QUOTE_CHARS)}: {problem}",
        _in_channel(
            f"Correct {field} in the channel (a refund or credit is not an order line); the next sync "
            "re-evaluates the order.",
            field,
        ),
    )


def totals_inconsistent(
    field: str, amount: Decimal, low: Decimal | None, high: Decimal | None, currency: str
) -> Reason:
    bound = f"at least {low}" if high is None else f"at most {high}" if low is None else f"{low} to {high}"
    return Reason(
        HoldCode.TOTALS_INCONSISTENT,
        f"{field}={amount}",
        f"the order's {field} {amount} {currency} does not agree with its parts: it should be {bound} {currency} "
        f"(within {limits.TOTAL_TOLERANCE} per rounded part)",
        _in_channel(
            "Check the order's amounts in the channel; correct them there and the next sync re-evaluates the order.",
            field,
        ),
    )


def unknown_status(field: str, value: str, known: frozenset[str]) -> Reason:
    return Reason(
        HoldCode.UNKNOWN_STATUS,
        f"{field}={value}",
        f"{field} {_quote(value) if value else '(none)'} is not one OrderBridge knows "
        f"(known: {', '.join(sorted(known))}), so the download rules cannot decide the order",
        Fix.of(
            FixAction.UPGRADE,
            "Upgrade OrderBridge if the channel added a status; the order is kept held, with the value, until then.",
            field=field,
        ),
    )


# --- poison-pill isolation (issue #10 item 2) ----------------------------------------------------

#: per kind of refusal (``storage.refusals.Refusal.kind``): what the database refused, in plain
#: words, and the fix
STORAGE_REFUSALS: dict[str, tuple[str, str]] = {
    "value_too_long": (
        "a value longer than its column allows",
        "Shorten the value in the channel (the order's name, a SKU, a title); the next sync stores the "
        "order whole and re-evaluates it.",
    ),
    "nul_character": (
        "a NUL character (\\u0000), which its text columns cannot hold",
        "Remove the NUL character from the order in the channel (often pasted from another system); the "
        "next sync stores the order whole.",
    ),
    "invalid_text": (
        "text it cannot encode (a lone UTF-16 surrogate, an invalid byte sequence)",
        "Correct the text in the channel; the next sync stores the order whole.",
    ),
    "number_out_of_range": (
        "a number outside the range of its column",
        "Correct the number in the channel; the next sync stores the order whole.",
    ),
    "value_too_large": (
        "a value too large for the database to store or index",
        "Shorten the value in the channel; the next sync stores the order whole.",
    ),
    "value_not_storable": (
        "a value the JSON columns cannot hold (an integer beyond 64 bits, a lone surrogate)",
        "Correct the value in the channel; the next sync stores the order whole.",
    ),
    "refused_by_trigger": (
        "the row: a trigger or rule in the database raised an error for it",
        "Read the database's message above: fix the order in the channel, or the trigger or rule that "
        "refuses it (a database administrator's); the next sync stores the order whole.",
    ),
    "constraint": (
        "the row: it breaks a constraint of the ledger",
        "Read the database's message above and correct the order in the channel; if the order is right, "
        "report the constraint as a bug.",
    ),
    "invalid_value": (
        "a value it cannot take",
        "Read the database's message above and correct the value in the channel; the next sync stores the order whole.",
    ),
}


def storage_refused(kind: str, database: str, detail: str, *, kept: str) -> Reason:
    """The database refused to store the order as sent: ``kind`` is the refusal's stable code (the
    reason's value, so "3 orders refused: a value too long" is one group), ``detail`` the database's
    own words, ``kept`` what the ledger kept instead."""
    what, fix = STORAGE_REFUSALS.get(kind, STORAGE_REFUSALS["invalid_value"])
    return Reason(
        HoldCode.STORAGE_REFUSED,
        kind,
        f"the database ({database}) refused to store the order as sent — {what}: {detail}; {kept}",
        _in_channel(fix),
    )


def storage_refused_fix(kind: str) -> Fix:
    """The fix of a refusal of ``kind`` (also that of orders quarantined for it)."""
    return _in_channel(STORAGE_REFUSALS.get(kind, STORAGE_REFUSALS["invalid_value"])[1])


# --- issue #10 g-adversarial: found by the adversarial suite ------------------------------------------


def duplicate_line_id(line_id: str, count: int) -> Reason:
    """Lines are told apart by their channel id (the SKU mapping, the 3PL's line key, a shipment
    matched back to its line): two lines with one id would be posted as one product twice."""
    return Reason(
        HoldCode.INVALID_ORDER,
        f"lines.external_id={limits.shorten(line_id, limits.QUOTE_CHARS)}",
        f"{count} lines share the id {_quote(line_id)}, so OrderBridge cannot tell them apart "
        "(their SKUs, quantities and shipments would be mixed up)",
        _in_channel(
            "Correct the order in the channel so that each line has its own id; the raw payload is kept on the "
            "order page.",
            "lines.external_id",
        ),
    )


# --- issue #15 item 5: file-export destinations (what the package did with a file) -----------------


def export_not_picked_up(destination: str, file: str, hours: float) -> Reason:
    """A file the package should have taken by now is still in the drop directory: the package's
    import is not running, or reads another folder. Released by itself once the file is taken."""
    return Reason(
        HoldCode.EXPORT_NOT_PICKED_UP,
        destination,
        f"file {file!r} written for {destination!r} was not picked up by the package after {hours:g} hours",
        Fix.of(
            FixAction.TEST_CONNECTION,
            "Check that the package's import job is running and that it reads the connection's drop directory "
            "(the directory setting); the hold is released by itself once the file is picked up.",
            connection=destination,
        ),
    )


def export_rejected(destination: str, file: str, message: str) -> Reason:
    """The package refused a file and said why in its error file (its words: data). A rejection
    like any destination's (``destination_rejected``): retrying writes the order to a new file."""
    return Reason(
        HoldCode.DESTINATION_REJECTED,
        destination,
        f"the package importing from {destination!r} refused file {file!r}: {message}",
        Fix.of(
            FixAction.RETRY_ORDER,
            "Correct what the package names, in the package or on the order in the channel, then reset the "
            "order to pending (retry): it is written to a new file.",
            destination=destination,
        ),
    )


# --- order updates (issue #15) ---------------------------------------------------------------------


def update_needs_review(update_id: int, classes: str, accepting: str) -> Reason:
    """A later version of a posted order waits for a person: ``classes`` names what changed (in a
    merchant's words), ``accepting`` what accepting does at each destination (the plan's sentences)."""
    return Reason(
        HoldCode.UPDATE_NEEDS_REVIEW,
        # grouped by what changed ("lines, totals"): one root cause on the dashboard, whatever the order
        limits.shorten(limits.storable(classes), 120),
        limits.storable(f"the order changed after it was posted ({classes}): the update waits for review"),
        _storable_fix(
            Fix.of(
                FixAction.REVIEW_UPDATE,
                limits.storable(f"Accept, ignore or cancel the update. Accepting will: {accepting}"),
                update=update_id,
            )
        ),
    )


# --- issue #16: pushes the channel's rules refuse (domain/push_plan.py) -----------------------------


def shipping_data_missing(channel: str, field: str) -> Reason:
    """A push the channel cannot take without ``field`` (tracking number, carrier, tracking URL)."""
    names = {"tracking_number": "tracking number", "carrier": "carrier", "tracking_url": "tracking URL"}
    what = names.get(field, field)
    extra = " (the carrier is not one the channel knows)" if field == "tracking_url" else ""
    return Reason(
        HoldCode.SHIPPING_DATA_MISSING,
        field,
        f"{channel!r} needs the {what} to mark the order shipped{extra}",
        Fix.of(
            FixAction.FILL_SHIPPING_DATA,
            f"Add the {what} to the shipment at the 3PL, or fill it in on the order's page and send it again; "
            "the push is sent as soon as it is there.",
            field=field,
        ),
    )


def transition_not_allowed(channel: str, state: str, wanted: str, url: str, what_to_do: str) -> Reason:
    """A push the channel's state machine forbids from the order's current state."""
    return Reason(
        HoldCode.TRANSITION_NOT_ALLOWED,
        f"{state}->{wanted}",
        f"{channel!r} does not allow {wanted} from state {state}: {what_to_do}",
        Fix.of(FixAction.ACT_IN_BACK_OFFICE, what_to_do[:1].upper() + what_to_do[1:] + ".", url=url),
    )


def action_not_supported(channel: str, action: str, back_office: str, url: str, *, detail: str = "") -> Reason:
    """A push the channel's API does not offer (``detail``: why, when it depends on the order)."""
    where = back_office or f"the {channel} back office"
    because = f": {detail}" if detail else ""
    return Reason(
        HoldCode.ACTION_NOT_SUPPORTED,
        action,
        f"{channel!r} does not offer {action} through its API{because}",
        Fix.of(
            FixAction.ACT_IN_BACK_OFFICE,
            f"Do it by hand in {where}; OrderBridge marks it done once the channel shows it.",
            url=url,
        ),
    )


# --- issue #17: POS destinations' pre-flight checks (services/preflight.py) -------------------------
#
# A connector builds these without knowing its connection's name (``destination=""``); the hub fills
# it in (:func:`pos_addressed`) before it stores a hold. Connection-level causes (the acting
# employee, the helper items, the location) carry the destination in their value — "shop-pos:
# employee 'Online orders'" — so every order held for one cause is one group on the dashboard, and
# the fix of that cause releases the whole group at the next post run. Order-level causes keep the
# values the rest of the hub groups by: the SKU (``sku_unmapped``, as for a 3PL), the field
# (``required_field_missing``), the destination (``pos_total_mismatch``, ``pos_order_incomplete``).

#: the hold codes a POS's connection-level checks make: their value is ``"<destination>: <cause>"``
POS_CONNECTION_CODES = frozenset(
    {HoldCode.POS_EMPLOYEE_INACTIVE, HoldCode.POS_REQUIRED_PRODUCT_MISSING, HoldCode.POS_LOCATION_INACTIVE}
)
#: every hold code a POS's pre-flight checks (connection and order) can make
PREFLIGHT_CODES = POS_CONNECTION_CODES | {
    HoldCode.POS_TOTAL_MISMATCH,
    HoldCode.REQUIRED_FIELD_MISSING,
    HoldCode.SKU_UNMAPPED,
}


def pos_employee_inactive(system: str, employee: str, setting: str, *, state: str = "inactive") -> Reason:
    """The employee / team member the connection acts as is archived, inactive or gone (seed 001)."""
    return Reason(
        HoldCode.POS_EMPLOYEE_INACTIVE,
        f"employee {employee}",
        f"{system}: the employee the sync acts as ({employee}) is {state}, so {system} refuses the orders it would "
        "create",
        Fix.of(
            FixAction.SET_SETTING,
            f"Create a dedicated member such as 'Online orders' in {system} (or reactivate {employee}) and select it "
            f"here in the connection's {setting} setting; the held orders are released at the next post run.",
            setting=setting,
        ),
    )


def pos_required_product_missing(system: str, missing: list[str] | tuple[str, ...]) -> Reason:
    """Helper items the sync puts on a sale (shipping, discount, refund, fees…) are not in the POS."""
    names = ", ".join(repr(m) for m in missing)
    return Reason(
        HoldCode.POS_REQUIRED_PRODUCT_MISSING,
        "helper items",
        f"{system} lacks the helper item(s) the sync needs for shipping, discount and refund lines: {names}",
        Fix.of(
            FixAction.CREATE_HELPER_ITEMS,
            f"Create them now: OrderBridge creates the missing helper items in {system} (not inventoried, not "
            "taxed; one that exists is left as it is), then checks again and releases the held orders.",
        ),
    )


def pos_location_inactive(system: str, location: str, setting: str, *, state: str = "inactive") -> Reason:
    """The location / station the sales are entered at is inactive or gone."""
    return Reason(
        HoldCode.POS_LOCATION_INACTIVE,
        f"location {location}",
        f"{system}: the location the sales are entered at ({location}) is {state}",
        Fix.of(
            FixAction.SET_SETTING,
            f"Reactivate {location} in {system}, or select an active one in the connection's {setting} setting; the "
            "held orders are released at the next post run.",
            setting=setting,
        ),
    )


def pos_required_field_missing(system: str, field: str, requirement: str, setting: str) -> Reason:
    """A custom field the POS requires on a sale (``requirement``: the POS setting that says so) has
    no value: not on the order, not mapped from an order field, no default (seed 001)."""
    return Reason(
        HoldCode.REQUIRED_FIELD_MISSING,
        field,
        f"{system} requires field {field!r} on every sale ({requirement}) and the order gives it no value",
        Fix.of(
            FixAction.SET_SETTING,
            f"Set a default for {field!r} (or map it from an order field) in the connection's {setting} setting, "
            f"or switch 'required' off for it in {system} ({requirement}); the held orders are released at the "
            "next post run.",
            setting=setting,
            field=field,
        ),
    )


def pos_total_mismatch(system: str, ours: str, theirs: str, why: str = "") -> Reason:
    """The total the POS would compute (tax rounding, percentage-only taxes) differs from the order's by
    more than a cent: posting it would record a sale for another amount."""
    because = f" ({why})" if why else ""
    return Reason(
        HoldCode.POS_TOTAL_MISMATCH,
        "",
        f"{system} would compute a total of {theirs} for an order of {ours}{because}: more than a cent apart, so it "
        "is not posted with a wrong total",
        Fix.of(
            FixAction.RETRY_ORDER,
            f"Check the tax settings in {system} (a rate that reproduces the channel's tax), or enter this sale by "
            "hand there; then retry the order.",
        ),
    )


def pos_order_incomplete(system: str, document: str, state: str, destination: str = "") -> Reason:
    """Posted, but the POS could not complete the sale: it sits ``pending`` (or open, unpaid), and a
    POS adjusts inventory only for completed sales — the stock shown there is not yet true. The hub
    reads the document again at every post run and releases the hold once it is completed."""
    return Reason(
        HoldCode.POS_ORDER_INCOMPLETE,
        destination,
        f"{system} holds the order as document {document} in state {state}: inventory is not yet adjusted there",
        Fix.of(
            FixAction.ACT_IN_POS,
            f"Complete (invoice) document {document} in {system}, or remove what blocks it there (a required field); "
            "OrderBridge reads it again at every post run and releases the hold once it is completed.",
        ),
    )


def pos_order_unfinished(system: str, document: str, state: str, destination: str = "") -> Reason:
    """The connector created document ``document`` but the POS refused a later step of the same post
    (its payment, a custom attribute): the posting is rejected and the document is left unpaid there.
    ``pos_order_incomplete`` like a pending sale, but its fix is a retry, which finishes that same
    document (the same idempotency keys), never a second one (decision 242)."""
    return Reason(
        HoldCode.POS_ORDER_INCOMPLETE,
        destination,
        f"{system} holds the order as document {document} in state {state}: inventory is not yet adjusted there",
        Fix.of(
            FixAction.RETRY_ORDER,
            f"Remove what {system} refused (its words are above) — or complete document {document} in {system} — "
            f"then retry the order: OrderBridge finishes that same document in {system}, it never creates a "
            "second one.",
        ),
    )


def pos_order_voided(system: str, document: str, destination: str = "") -> Reason:
    """The POS document of a posted order was voided (cancelled) there while the order was not: the
    sale is not in the POS and its inventory is not adjusted, so the order is not ``posted``
    (decision 243). Not posted again by itself: a person decides."""
    return Reason(
        HoldCode.POS_ORDER_INCOMPLETE,
        destination,
        f"{system} voided document {document}: the sale is cancelled there and inventory is not adjusted for this "
        "order, which the channel did not cancel",
        Fix.of(
            FixAction.ACT_IN_POS,
            f"A voided document cannot be completed. Enter the sale again in {system} and release this hold, or "
            "cancel the order in the channel; OrderBridge does not post it a second time by itself.",
        ),
    )


def pos_addressed(reason: Reason, destination: str) -> Reason:
    """A pre-flight reason made by a connector, with its connection's name filled in: in the value of
    a connection-level cause (``"<destination>: <cause>"``), of a total mismatch or an incomplete
    order (the destination), and in the fix's parameters (``connection`` for a setting or an action
    of the connection, ``destination`` for a mapping or a retry)."""
    value = reason.value
    if reason.code in POS_CONNECTION_CODES and not value.startswith(f"{destination}: "):
        value = f"{destination}: {value}" if value else destination
    elif reason.code in (HoldCode.POS_TOTAL_MISMATCH, HoldCode.POS_ORDER_INCOMPLETE) and not value:
        value = destination
    fix = reason.fix
    own = (FixAction.SET_SETTING, FixAction.CREATE_HELPER_ITEMS, FixAction.TEST_CONNECTION, FixAction.ACT_IN_POS)
    param = "connection" if fix.action in own else "destination"
    if fix.action in (*own, FixAction.MAP_SKU, FixAction.SET_REQUIRED_FIELD, FixAction.RETRY_ORDER) and not fix.param(
        param
    ):
        fix = fix.with_params(**{param: destination})
    if value == reason.value and fix is reason.fix:
        return reason
    return Reason(reason.code, value, reason.message, fix)


def of_destination(code: str, value: str, destination: str) -> bool:
    """Whether an open hold ``(code, value)`` is one a POS destination's checks made (see above):
    re-checked and released by that destination's post runs."""
    if code in POS_CONNECTION_CODES:
        return value == destination or value.startswith(f"{destination}: ")
    if code in (HoldCode.POS_TOTAL_MISMATCH, HoldCode.POS_ORDER_INCOMPLETE):
        return value == destination
    return False


# --- issue #17: the Square POS destination's pre-flight checks (connectors/square) -------------------
# The Square connector makes the POS reasons above; this one says the SKU was looked up as a Square
# variation SKU. Made without the connection's name: the hub fills it in (``pos_addressed``).


def square_sku_not_found(sku: str, searched: str) -> Reason:
    """A line's SKU (``searched``: the destination SKU looked up) matches no item variation in Square."""
    also = f" (looked up as {searched!r})" if searched != sku else ""
    return Reason(
        HoldCode.SKU_UNMAPPED,
        sku,
        f"Square has no item variation with SKU {sku!r}{also}",
        Fix.of(
            FixAction.MAP_SKU,
            f"Give the item variation in Square the SKU {searched!r}, or map SKU {sku!r} to the SKU of a variation "
            "that exists (or allow ad-hoc lines on the connection, which do not move stock); the order is released "
            "once it resolves.",
            sku=sku,
        ),
    )


def pos_item_unknown(system: str, sku: str, item: str, destination: str = "") -> Reason:
    """A line whose SKU resolves to no usable POS item (no item with that Item #, or an archived one):
    ``sku_unmapped`` by the channel's SKU, so mapping it releases every order held for it."""
    return Reason(
        HoldCode.SKU_UNMAPPED,
        sku,
        f"{system} has no active item with Item # {item!r} (SKU {sku!r})",
        Fix.of(
            FixAction.MAP_SKU,
            f"Map SKU {sku!r} to an Item # that exists in {system} (or create or restore the item there); the "
            "held orders are released at the next post run.",
            sku=sku,
            destination=destination or None,
        ),
    )


# --- issue #16 (WooCommerce): the channel's own status as a download rule ----------------------------


def channel_state_not_downloaded(state: str, allowed: frozenset[str]) -> Reason:
    """An order whose channel status (WooCommerce's ``on-hold``) the connection does not take."""
    return Reason(
        SkipCode.CHANNEL_STATE_NOT_DOWNLOADED,
        state,
        f"status {state!r} is not downloaded (downloaded: {', '.join(sorted(allowed))})",
        _download_rules(
            f"If orders in status {state!r} should go, add it to the connection's download rules (channel_states); "
            "an order skipped now is taken when it reaches a downloaded status."
        ),
    )


# --- issue #16 (planner): the auto-accept policy and what a person asked of the channel ------------


def acceptance_held(channel: str, why: str, url: str, due: str = "") -> Reason:
    """The auto-accept policy would not accept the order (``why``: what holds it, e.g. an SKU not
    mapped at a destination); a person fixes that — it is then accepted by itself — or accepts or
    refuses it in the back office, before the acceptance deadline ``due`` (when known)."""
    before = f" before {due}" if due else ""
    return Reason(
        HoldCode.ACCEPTANCE_HELD,
        channel,
        limits.storable(f"{channel!r}: the order is not accepted automatically: {why}"),
        _storable_fix(
            Fix.of(
                FixAction.ACT_IN_BACK_OFFICE,
                limits.storable(
                    f"Fix what holds the order ({why}): it is then accepted by itself; or accept or refuse it in "
                    f"the channel's back office{before}, where a missed acceptance deadline refuses it."
                ),
                url=url,
            )
        ),
    )
