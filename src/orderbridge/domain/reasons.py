"""Typed hold and skip reasons: a stable code, the exact value, a message and the fix.

A reason is the unit of "visible, with the reason and the fix": the CLI, the digest and the
portal group by ``(code, value)`` so that "37 orders blocked by SKU ABC-1 — map it" is one line.
The ``value`` is what a fix releases: adding the SKU mapping ``ABC-1`` releases every order held
with ``(sku_unmapped, "ABC-1")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
    # poison-pill isolation (issue #10 item 2)
    STORAGE_REFUSED = "storage_refused"


class SkipCode(StrEnum):
    FINANCIAL_STATUS_NOT_DOWNLOADED = "financial_status_not_downloaded"
    FULFILMENT_STATUS_NOT_DOWNLOADED = "fulfillment_status_not_downloaded"
    TEST_ORDER = "test_order"
    CLOSED_ORDER = "closed_order"
    CANCELLED_ORDER = "cancelled_order"
    BEFORE_EARLIEST_DATE = "before_earliest_date"


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    value: str
    message: str
    fix: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.code, self.value)


# --- holds -------------------------------------------------------------------------------------


def sku_unmapped(sku: str, destination: str) -> Reason:
    return Reason(
        HoldCode.SKU_UNMAPPED,
        sku,
        f"SKU {sku!r} has no mapping for destination {destination!r}",
        f"Map it: orderbridge mappings set sku {sku!r} <destination SKU> --destination {destination}",
    )


def sku_missing(line_title: str, line_id: str) -> Reason:
    return Reason(
        HoldCode.SKU_MISSING,
        line_id,
        f"line {line_title!r} (id {line_id}) has no SKU",
        "Give the product variant a SKU in the channel; the next sync picks the change up.",
    )


def shipping_method_unmapped(method: str, destination: str) -> Reason:
    return Reason(
        HoldCode.SHIPPING_METHOD_UNMAPPED,
        method,
        f"shipping method {method!r} has no mapping for destination {destination!r}",
        f"Map it: orderbridge mappings set shipping {method!r} <carrier>:<service> --destination {destination}",
    )


def shipping_method_missing(destination: str) -> Reason:
    return Reason(
        HoldCode.SHIPPING_METHOD_MISSING,
        "",
        f"the order has no shipping line, and destination {destination!r} needs a shipping service",
        f"Set a default: orderbridge mappings set shipping '*' <carrier>:<service> --destination {destination}",
    )


def required_field_missing(field: str, destination: str) -> Reason:
    return Reason(
        HoldCode.REQUIRED_FIELD_MISSING,
        field,
        f"field {field!r} is required by destination {destination!r} and is empty",
        f"Fill in {field!r} on the order in the channel; the next sync re-evaluates it.",
    )


def destination_rejected(destination: str, message: str) -> Reason:
    return Reason(
        HoldCode.DESTINATION_REJECTED,
        destination,
        f"destination {destination!r} rejected the order: {message}",
        "Correct what the destination names, then: orderbridge orders retry <order>",
    )


def invalid_order(problem: str) -> Reason:
    return Reason(
        HoldCode.INVALID_ORDER,
        problem[:120],
        f"the channel sent an order OrderBridge cannot read: {problem}",
        "Correct the order in the channel; the raw payload is kept on the order page.",
    )


def tracking_number_missing(shipment: str) -> Reason:
    return Reason(
        HoldCode.TRACKING_NUMBER_MISSING,
        shipment,
        f"shipment {shipment} has no tracking number",
        "Add the tracking number in the 3PL; the next shipment poll pushes it.",
    )


def carrier_missing(shipment: str) -> Reason:
    return Reason(
        HoldCode.CARRIER_MISSING,
        shipment,
        f"shipment {shipment} has no carrier",
        "Set the carrier on the shipment in the 3PL; the next shipment poll pushes it.",
    )


def channel_rejected(channel: str, message: str) -> Reason:
    return Reason(
        HoldCode.CHANNEL_REJECTED,
        channel,
        f"channel {channel!r} rejected the fulfilment: {message}",
        "Correct what the channel names; the push is retried on the next back-sync.",
    )


# --- skips -------------------------------------------------------------------------------------


def financial_status_not_downloaded(status: str, allowed: frozenset[str]) -> Reason:
    return Reason(
        SkipCode.FINANCIAL_STATUS_NOT_DOWNLOADED,
        status,
        f"payment status {status!r} is not downloaded (downloaded: {', '.join(sorted(allowed))})",
        f"If orders with payment status {status!r} should go, add it to the connection's download rules.",
    )


def fulfilment_status_not_downloaded(status: str, allowed: frozenset[str]) -> Reason:
    return Reason(
        SkipCode.FULFILMENT_STATUS_NOT_DOWNLOADED,
        status,
        f"fulfilment status {status!r} is not downloaded (downloaded: {', '.join(sorted(allowed))})",
        f"If orders with fulfilment status {status!r} should go, add it to the connection's download rules.",
    )


def test_order() -> Reason:
    return Reason(
        SkipCode.TEST_ORDER,
        "test",
        "test orders are not downloaded",
        "Turn on 'include test orders' in the connection's download rules.",
    )


def closed_order() -> Reason:
    return Reason(
        SkipCode.CLOSED_ORDER,
        "closed",
        "closed/archived orders are not downloaded",
        "Turn on 'include closed orders' in the connection's download rules.",
    )


def cancelled_order() -> Reason:
    return Reason(
        SkipCode.CANCELLED_ORDER,
        "cancelled",
        "the order was cancelled in the channel before it was posted",
        "Nothing to do; re-open the order in the channel if it should ship.",
    )


def before_earliest_date(created: str, earliest: str) -> Reason:
    return Reason(
        SkipCode.BEFORE_EARLIEST_DATE,
        earliest,
        f"the order was created {created}, before the earliest date {earliest}",
        "Move the connection's earliest date back if older orders should go.",
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
        fix,
    )
