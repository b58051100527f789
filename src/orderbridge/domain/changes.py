"""What changed between two versions of an order, by class of change (issue #15).

Pure — no I/O, no clock. This module names the change classes every other part of order updates
speaks in: the diff (which fields moved between two canonical versions, each classified), the
update policies (per tenant and class: apply, review, ignore), and what each destination declares
it can do with a class (:attr:`orderbridge.connectors.base.Declaration.amendments`).
"""

from __future__ import annotations

from enum import StrEnum


class ChangeClass(StrEnum):
    """One class of change to an order, as a merchant would name it.

    The order is deliberate: when a change has several classes, the earliest is the one a summary
    leads with (a cancellation matters more than a new tag)."""

    CANCELLED = "cancelled"  # the whole order cancelled
    LINES_CANCELLED = "lines_cancelled"  # some lines (or quantities) cancelled or removed by the channel
    REFUNDED = "refunded"  # fully refunded
    PARTIALLY_REFUNDED = "partially_refunded"
    PAYMENT_CAPTURED = "payment_captured"  # pending/authorised → paid
    PAYMENT = "payment"  # any other payment status move (voided, expired …)
    LINES = "lines"  # lines added or removed, quantity or price changed
    TOTALS = "totals"  # subtotal, tax, total, shipping or discount amounts
    SHIPPING_ADDRESS = "shipping_address"
    CUSTOMER = "customer"  # e-mail, name, billing address
    FULFILMENT = "fulfilment"  # the channel's fulfilment status
    NOTES = "notes"  # note, tags, custom fields, line properties
