"""The words the portal shows for the ledger's codes: states, hold reasons, fixes.

The ledger stores codes (``held``, ``sku_unmapped``, ``map_sku``) and the domain's messages are
English sentences built where the reason arises (with the remote's own words in them). The portal
shows a translated *label* for every code — a state, the cause of a hold, the button that makes a
fix — and the domain's sentence under it as the detail, so a French reader always sees French for
what OrderBridge itself says, and the remote's words as they were said.

A code without a label (added by a later connector) shows as the code itself, never as nothing;
``tests/web/test_labels.py`` fails when an enum member has no label here.
"""

from __future__ import annotations

from orderbridge.domain.reasons import HoldCode, SkipCode
from orderbridge.domain.states import OrderState, PostingState, PushState
from orderbridge.fixes import Fix, FixAction
from orderbridge.web.i18n import N_, gettext

STATES: dict[str, str] = {
    OrderState.RECEIVED: N_("Received"),
    OrderState.SKIPPED: N_("Skipped"),
    OrderState.HELD: N_("Held"),
    OrderState.READY: N_("Ready to post"),
    OrderState.POSTED: N_("Posted"),
    OrderState.FULFILLED: N_("Fulfilled"),
    OrderState.CLOSED: N_("Closed"),
    OrderState.CANCELLED: N_("Cancelled"),
}

POSTING_STATES: dict[str, str] = {
    PostingState.PENDING: N_("Pending"),
    PostingState.POSTED: N_("Posted"),
    PostingState.REJECTED: N_("Rejected"),
    PostingState.SUPERSEDED: N_("Superseded"),
}

PUSH_STATES: dict[str, str] = {
    PushState.PENDING: N_("Pending"),
    PushState.PUSHED: N_("Pushed"),
    PushState.UNKNOWN: N_("Outcome unknown — checking"),
    PushState.RETRY: N_("Will retry"),
    PushState.HELD: N_("Held"),
    PushState.RECHECK: N_("Re-checking"),
    PushState.VOIDED: N_("Voided"),
    # issue #16: the planner waits for the channel to move the order on by itself
    PushState.WAITING: N_("Waiting for the channel"),
}

#: a POS document's state (issue #17: the order page shows it, with whether stock moved)
POS_STATES: dict[str, str] = {
    "pending": N_("Pending (not completed)"),
    "open": N_("Open"),
    "invoiced": N_("Invoiced"),
    "completed": N_("Completed"),
    "voided": N_("Voided"),
}

REASONS: dict[str, str] = {
    HoldCode.SKU_UNMAPPED: N_("SKU not mapped at the destination"),
    HoldCode.SKU_MISSING: N_("A line has no SKU"),
    HoldCode.SHIPPING_METHOD_UNMAPPED: N_("Shipping method not mapped"),
    HoldCode.SHIPPING_METHOD_MISSING: N_("No shipping method"),
    HoldCode.REQUIRED_FIELD_MISSING: N_("A required field is missing"),
    HoldCode.DESTINATION_REJECTED: N_("Rejected by the destination"),
    HoldCode.CONNECTION_AUTH_FAILED: N_("Connection credentials rejected"),
    HoldCode.INVALID_ORDER: N_("The order cannot be read"),
    HoldCode.TRACKING_NUMBER_MISSING: N_("No tracking number"),
    HoldCode.CARRIER_MISSING: N_("No carrier"),
    HoldCode.CHANNEL_REJECTED: N_("Rejected by the channel"),
    HoldCode.DESTINATION_FIELD_TOO_LONG: N_("A value is too long for the destination"),
    HoldCode.SHIPMENT_LINE_UNMATCHED: N_("A shipped line matches no order line"),
    HoldCode.SHIPMENT_WITHOUT_LINES: N_("A shipment names no lines"),
    HoldCode.VALUE_TOO_LONG: N_("A value is too long"),
    HoldCode.TOO_MANY_VALUES: N_("Too many values"),
    HoldCode.INVALID_TEXT: N_("Unreadable text"),
    HoldCode.INVALID_QUANTITY: N_("Impossible quantity"),
    HoldCode.INVALID_AMOUNT: N_("Impossible amount"),
    HoldCode.TOTALS_INCONSISTENT: N_("Totals do not add up"),
    HoldCode.UNKNOWN_STATUS: N_("Unknown status from the channel"),
    HoldCode.STORAGE_REFUSED: N_("The database refused the order"),
    HoldCode.EXPORT_NOT_PICKED_UP: N_("The package has not picked up the file"),
    HoldCode.UPDATE_NEEDS_REVIEW: N_("An order update awaits review"),
    # issue #17: POS destinations' pre-flight checks (French in pos.po)
    HoldCode.POS_EMPLOYEE_INACTIVE: N_("The POS employee the sync acts as is inactive"),
    HoldCode.POS_REQUIRED_PRODUCT_MISSING: N_("Helper items missing in the POS"),
    HoldCode.POS_LOCATION_INACTIVE: N_("The POS location is inactive"),
    HoldCode.POS_TOTAL_MISMATCH: N_("The POS would compute another total"),
    HoldCode.POS_ORDER_INCOMPLETE: N_("Not completed in the POS: inventory not adjusted"),
    # issue #16: what the channel's rules refuse
    HoldCode.SHIPPING_DATA_MISSING: N_("Shipping data the channel needs is missing"),
    HoldCode.TRANSITION_NOT_ALLOWED: N_("The channel does not allow it from the order's state"),
    HoldCode.ACTION_NOT_SUPPORTED: N_("The channel's API does not offer it"),
    HoldCode.ACCEPTANCE_HELD: N_("Not accepted automatically"),
    SkipCode.FINANCIAL_STATUS_NOT_DOWNLOADED: N_("Payment status not downloaded (rule)"),
    SkipCode.FULFILMENT_STATUS_NOT_DOWNLOADED: N_("Fulfilment status not downloaded (rule)"),
    SkipCode.TEST_ORDER: N_("Test order"),
    SkipCode.CLOSED_ORDER: N_("Closed order"),
    SkipCode.CANCELLED_ORDER: N_("Cancelled order"),
    SkipCode.BEFORE_EARLIEST_DATE: N_("Older than the earliest date to download"),
    SkipCode.NOTHING_TO_FULFIL: N_("Nothing to fulfil"),
    SkipCode.CHANNEL_STATE_NOT_DOWNLOADED: N_("Channel status not downloaded (rule)"),
}

FIXES: dict[str, str] = {
    FixAction.MAP_SKU: N_("Map the SKU"),
    FixAction.MAP_SHIPPING_METHOD: N_("Map the shipping method"),
    FixAction.RETRY_ORDER: N_("Retry the order"),
    FixAction.SHOW_HOLDS: N_("See the held orders"),
    FixAction.UPDATE_CREDENTIALS: N_("Update the credentials"),
    FixAction.TEST_CONNECTION: N_("Test the connection"),
    FixAction.EDIT_DOWNLOAD_RULES: N_("Edit the download rules"),
    FixAction.SET_SETTING: N_("Change the setting"),
    FixAction.REGISTER_WEBHOOKS: N_("Register the webhooks again"),
    FixAction.RUN_AUDIT: N_("Run an audit now"),
    FixAction.SHOW_AUDIT: N_("Read the audit"),
    FixAction.ADD_CONNECTION: N_("Add the connection"),
    FixAction.INIT: N_("Initialise OrderBridge"),
    FixAction.GENERATE_KEY: N_("Generate a secret key"),
    FixAction.REVIEW_UPDATE: N_("Review the order update"),
    FixAction.FILL_SHIPPING_DATA: N_("Fill in the shipping data"),
    FixAction.CREATE_HELPER_ITEMS: N_("Create the helper items now"),
    FixAction.ACT_IN_POS: N_("Complete it in the POS"),
    FixAction.ACT_IN_BACK_OFFICE: N_("Do it in the channel's back office"),
    FixAction.EDIT_ORDER_AT_CHANNEL: N_("Correct the order in the channel"),
    FixAction.SET_REQUIRED_FIELD: N_("Fill in the required field"),
    FixAction.EDIT_SHIPMENT_AT_DESTINATION: N_("Correct the shipment at the destination"),
    FixAction.UPGRADE: N_("Upgrade OrderBridge"),
    FixAction.NONE: N_("Nothing to do"),
}


def _label(table: dict[str, str], code: str | None) -> str:
    if not code:
        return ""
    text = table.get(code)
    return gettext(text) if text else code


def state_label(state: str | None) -> str:
    return _label(STATES, state)


def posting_state_label(state: str | None) -> str:
    return _label(POSTING_STATES, state)


def push_state_label(state: str | None) -> str:
    return _label(PUSH_STATES, state)


def pos_state_label(state: str | None) -> str:
    """A POS document's state; None: the POS has no such document any more."""
    return _label(POS_STATES, state) if state else gettext("Not found in the POS")


def reason_label(code: str | None) -> str:
    return _label(REASONS, code)


def fix_label(fix: Fix | FixAction | str) -> str:
    """The button or link text of a fix: what a person does, in their language."""
    action = fix.action if isinstance(fix, Fix) else fix
    return _label(FIXES, str(action))


def fix_text(fix: Fix) -> str:
    """The fix's own sentence (made where the reason arose; English, with the remote's words)."""
    return fix.text
