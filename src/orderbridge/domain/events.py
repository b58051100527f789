"""Timeline events: append-only facts about an order, named as things that happened."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    RECEIVED = "received"
    VERSION_CHANGED = "version_changed"
    SKIPPED = "skipped"
    HELD = "held"
    RELEASED = "released"
    READY = "ready"
    POST_ATTEMPT_FAILED = "post_attempt_failed"
    POSTED = "posted"
    CANCELLED = "cancelled"
    SHIPMENT_RECEIVED = "shipment_received"
    SHIPMENT_VOIDED = "shipment_voided"
    FULFILMENT_PUSHED = "fulfilment_pushed"
    FULFILMENT_PUSH_HELD = "fulfilment_push_held"
    FULFILLED = "fulfilled"
    USER_ACTION = "user_action"
    #: an admin released one hold reason of the order's current version (decision 107): the data
    #: names it (``code``, ``value``, ``version``) and the pipeline and the poster read it back
    HOLD_RELEASED = "hold_released"
    RECOVERED = "recovered"
    DELETED_IN_CHANNEL = "deleted_in_channel"
    AUDITED = "audited"
    HEALTH_CHANGED = "health_changed"
    TIE_UNSETTLED = "tie_unsettled"
    FIELD_SHORTENED = "field_shortened"
    #: issue #10 a-validation: a channel record with no usable id, not stored (a connection event)
    RECORD_REFUSED = "record_refused"
    # poison-pill isolation (issue #10 item 2): an order the database refused even in a minimal form
    INGEST_QUARANTINED = "ingest_quarantined"
    #: issue #14: a manual order was submitted — placed by a user or imported from a file row; the
    #: data names the source (``via``, ``by``, ``file``, ``row``) and the message says it in words
    SUBMITTED = "submitted"
    #: issue #15 item 5: the package took a file-export destination's file (moved, deleted or
    #: acknowledged it); the data names the destination and the file
    EXPORT_IMPORTED = "export_imported"
    #: issue #15: an order update was decided (by policy or by a person: applied, held for review,
    #: ignored, cancelled); the data names the update, its classes and the policy
    ORDER_UPDATE = "order_update"
    #: issue #15: a destination's document was amended (updated, voided, re-posted, adjusted)
    AMENDED = "amended"
    #: issue #16: one call the push planner made to a channel (the data names the call, the push or
    #: intent, and what the channel answered with)
    PUSH_CALL = "push_call"
    #: issue #16: a push waits for the channel to move the order on by itself (the note says what)
    PUSH_WAITING = "push_waiting"
    #: issue #16: a cancel, refund, accept or refuse asked of the channel (by a user or a policy)
    CHANNEL_INTENT = "channel_intent"
