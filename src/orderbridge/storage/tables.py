"""The schema. Database constraints, not application look-ups, do the deduplication.

- ``orders``: unique ``(connection_id, external_id)`` — the binder; two webhook retries racing
  each other cannot create two orders.
- ``postings``: unique ``idempotency_key`` (order, destination, version) — one posting row per
  order version per destination, whatever crashes in between.
- ``shipments``: unique ``(destination_id, external_id)``; ``fulfilment_pushes``: unique
  ``shipment_id``.
- ``events``, ``posting_attempts`` and ``user_actions`` (0009) are append-only: triggers (added by
  the migrations) refuse UPDATE and DELETE on both SQLite and PostgreSQL.
- ``pending_rereads``: unique ``(connection_id, external_id)`` — an order whose tie on
  ``updated_at`` the channel could not settle yet, re-read by each sync until it answers.
- ``ingest_failures``: unique ``(connection_id, external_id)`` — an order the database refused to
  store as sent (one open row per order while it lasts; see ``services/ingest.py``).
- ``leases``: one row per named lease (``sync:<connection>``) so only one sync per connection runs
  at a time across processes.
- ``users`` (unique e-mail across the hub: sign-in is by e-mail), ``web_sessions`` and ``api_tokens``
  (unique SHA-256 of the secret: the secret itself is never stored), ``login_attempts``,
  ``user_actions`` (the audit trail) and ``tenant_settings`` — 0009 (``services/auth.py``).

Every row carries ``tenant_id`` from the first migration (but ``login_attempts``: a sign-in attempt
comes before any tenant is known). Bounded text columns that take values from
outside (ids, hold values, mapping keys, webhook headers) have their sizes declared once more in
``domain/limits.py``, which a test compares with this module; free text is unbounded (0005).
"""

from __future__ import annotations

from sqlalchemy import (
    DOUBLE_PRECISION,
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ColumnElement,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    cast,
    func,
    literal_column,
    text,
)

from orderbridge.storage.types import DecimalAmount, FixJSON, FixList, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

# BigInteger ids on PostgreSQL, INTEGER PRIMARY KEY (rowid) on SQLite.
Id = BigInteger().with_variant(Integer(), "sqlite")

tenants = Table(
    "tenants",
    metadata,
    Column("id", Id, primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
)

connections = Table(
    "connections",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("name", String(100), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("role", String(20), nullable=False),
    Column("base_url", String(500), nullable=False),
    Column("credentials", Text, nullable=False),  # Fernet token
    Column("settings", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("health", String(20), nullable=False, default="unknown"),
    Column("health_message", Text, nullable=False, default=""),
    Column("last_success_at", UTCDateTime()),
    Column("last_error_at", UTCDateTime()),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime(), nullable=False),
    # added by 0002: when health last changed, the newest order seen, the usual gap between orders
    Column("health_since", UTCDateTime()),
    Column("last_order_at", UTCDateTime()),
    Column("usual_gap_s", Float),
    UniqueConstraint("tenant_id", "name", name="uq_connections_tenant_name"),
)

#: 0003: health per job of a connection (sync, post, shipments, push, audit, check, webhooks); the
#: connection's own ``health`` columns are the worst of these, and each job has its own alert
connection_jobs = Table(
    "connection_jobs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("connection_id", Id, ForeignKey("connections.id"), nullable=False),
    Column("job", String(20), nullable=False),
    Column("health", String(20), nullable=False),
    Column("message", Text, nullable=False),
    Column("consecutive_failures", Integer, nullable=False),
    Column("code", String(60)),  # the last failure's error code (connection_auth_failed settles on any success)
    Column("since", UTCDateTime(), nullable=False),
    Column("last_success_at", UTCDateTime()),
    Column("last_error_at", UTCDateTime()),
    UniqueConstraint("connection_id", "job", name="uq_connection_jobs_connection_job"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("connection_id", Id, ForeignKey("connections.id"), primary_key=True),
    Column("name", String(40), primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("value", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("connection_id", Id, ForeignKey("connections.id"), nullable=False),
    Column("external_id", String(100), nullable=False),
    Column("number", Text, nullable=False),  # 0005: unbounded (domain/limits.py)
    Column("state", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("channel_created_at", UTCDateTime()),
    Column("channel_updated_at", UTCDateTime()),
    Column("currency", String(3)),
    Column("total", DecimalAmount()),
    Column("canonical", JSON),  # domain.canonical.order_to_json; null when unreadable
    Column("raw", JSON, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    # 0010, derived from the content by its one writer (storage/repos/orders.py), for the inbox: the
    # customer's e-mail lower-cased (its search), and when the order counts as placed — the
    # channel's creation time, else (an unreadable order) when the hub received it: never null
    Column("email", Text),
    Column("placed_at", UTCDateTime()),
    UniqueConstraint("connection_id", "external_id", name="uq_orders_connection_external"),
    Index("ix_orders_tenant_state", "tenant_id", "state"),  # the poster reads ready orders by id through it
    Index("ix_orders_connection_updated", "connection_id", "channel_updated_at"),  # 0002: audits
    # 0010: the inbox's (decision 96): tenant first, a sort key and id, so a first page and the page
    # after any cursor are one range scan; the state one carries the connection, so a walk filtered
    # by both reads only the index
    Index("ix_orders_inbox_created", "tenant_id", "placed_at", "id"),
    Index("ix_orders_inbox_state", "tenant_id", "state", "placed_at", "id", "connection_id"),
    Index("ix_orders_inbox_updated", "tenant_id", "updated_at", "id"),
    # number COLLATE "C" on PostgreSQL (the migration says so): SQLite's order, and a prefix is a range
    Index("ix_orders_inbox_number", "tenant_id", "number", "id"),
    Index("ix_orders_inbox_email", "tenant_id", "email"),
)

#: 0010: the inbox's total as a number (SQLite stores amounts as text); an order without one sorts
#: below every amount. Its index is on this very expression: a query must use it as written here.
INBOX_TOTAL: ColumnElement[float] = func.coalesce(
    cast(orders.c.total, DOUBLE_PRECISION()), literal_column("-1e300"), type_=DOUBLE_PRECISION()
)
Index("ix_orders_inbox_total", orders.c.tenant_id, INBOX_TOTAL, orders.c.id)
#: 0019, PostgreSQL only: an order's tenant and placing time by its id, read from the index alone
#: when a narrow filter (a SKU, a hold reason) gives the inbox its order ids to sort — from the
#: table's pages, scattered over a million orders, each id cost a random heap read (decision 148).
#: SQLite's rows are found by their rowid already, and its pages are the database file's cache.
Index("ix_orders_keys", orders.c.id, postgresql_include=["tenant_id", "placed_at"]).ddl_if(dialect="postgresql")

#: 0010: each distinct SKU of an order's current version (the inbox's SKU search). One b-tree, by
#: (tenant, SKU, order): it lists a SKU's orders and answers "does this order have it"; no foreign
#: keys — its one writer writes a row with its order, and checking each would cost ingest a search
#: per SKU (decision 96)
order_skus = Table(
    "order_skus",
    metadata,
    Column("tenant_id", Id, primary_key=True),
    Column("sku", Text, primary_key=True),
    Column("order_id", Id, primary_key=True),
    sqlite_with_rowid=False,
)

#: 0017: every version of every order (issue #15; decision 150): one row per (order, version),
#: appended by the orders writer in the transaction that writes the version (storage/repos/orders.py
#: through storage/repos/order_versions.py). ``canonical``: the version's content once a later
#: version replaced it in the order row (null before: the order row holds it; null after: it was
#: unreadable); ``updated_at`` the channel's time of the version, ``recorded_at`` the hub's. No
#: foreign keys, as ``order_skus``: its one writer writes a row with its order, and checking each
#: would cost ingest a look-up per order.
order_versions = Table(
    "order_versions",
    metadata,
    Column("tenant_id", Id, nullable=False),
    Column("order_id", Id, nullable=False),
    Column("version", Integer, nullable=False),
    Column("canonical", JSON),
    Column("content_hash", String(64), nullable=False),
    Column("updated_at", UTCDateTime()),
    Column("recorded_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("order_id", "version"),
)

#: 0014: how many orders are in each state, by the hour they were received in (null: earlier) —
#: signed deltas appended by the order writer with each state it writes (storage/repos/orders.py),
#: summed by the dashboard, folded together by the housekeeping (decision 110)
order_tallies = Table(
    "order_tallies",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("state", String(20), nullable=False),
    Column("hour", UTCDateTime()),
    Column("n", Integer, nullable=False),
    Index("ix_order_tallies_tenant_id", "tenant_id", "hour"),
)

pending_rereads = Table(  # 0004: ties the channel could not settle yet (decision 37)
    "pending_rereads",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("connection_id", Id, ForeignKey("connections.id"), nullable=False),
    Column("external_id", String(100), nullable=False),
    Column("since", UTCDateTime(), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_attempt_at", UTCDateTime(), nullable=False),
    Column("last_error", Text, nullable=False),
    UniqueConstraint("connection_id", "external_id", name="uq_pending_rereads_connection_external"),
)

ingest_failures = Table(  # 0006: records the database refused to store as sent (poison-pill isolation)
    "ingest_failures",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("connection_id", Id, ForeignKey("connections.id"), nullable=False),
    # made storable (storage.refusals.storable_text): the channel's id may itself be what was refused
    Column("external_id", String(300), nullable=False),
    Column("number", String(300), nullable=False),
    # held: stored in a minimal form and held · kept: an already-posted order's new version, raw kept
    # · quarantined: not in orders at all (even the minimal form was refused); raw only here
    Column("stage", String(20), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=True),
    Column("kind", String(40), nullable=False),  # storage.refusals.Refusal.kind
    Column("error", Text, nullable=False),  # the database's own words, made storable
    Column("content_hash", String(64), nullable=False),  # of the version refused
    Column("channel_updated_at", UTCDateTime()),
    Column("raw", LargeBinary, nullable=False),  # the payload's bytes, exactly
    Column("attempts", Integer, nullable=False),
    Column("first_at", UTCDateTime(), nullable=False),
    Column("last_at", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime()),  # a later version of the order was stored whole
    UniqueConstraint("connection_id", "external_id", name="uq_ingest_failures_connection_external"),
)

order_reasons = Table(
    "order_reasons",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("kind", String(10), nullable=False),  # hold | skip | push (0008: a held fulfilment push's)
    Column("code", String(60), nullable=False),
    Column("value", String(300), nullable=False),
    Column("message", Text, nullable=False),
    Column("fix", FixJSON(), nullable=False),  # 0007: the fix as data {action, params, text}, never a command
    Column("created_at", UTCDateTime(), nullable=False),
    Column("released_at", UTCDateTime()),
    # 0008: the held fulfilment push the reason is about (kind 'push'); null for the order's own
    Column("push_id", Id, ForeignKey("fulfilment_pushes.id"), nullable=True),
    Index("ix_order_reasons_order", "order_id"),
    # 0014: the open reasons by cause (was (tenant, code, value, released_at), 0001) — partial: every
    # lookup by cause reads open reasons only, and the released history no longer fills the index
    Index(
        "ix_order_reasons_open",
        "tenant_id",
        "code",
        "value",
        "kind",
        "order_id",
        sqlite_where=text("released_at IS NULL"),
        postgresql_where=text("released_at IS NULL"),
    ),
    # partial: an order's own reasons (push_id null, nearly all rows) are not in it, so writing them costs nothing more
    Index(
        "ix_order_reasons_push",
        "push_id",
        sqlite_where=text("push_id IS NOT NULL"),
        postgresql_where=text("push_id IS NOT NULL"),
    ),
)

#: 0019: how many open reasons each cause (tenant, kind, code, value) has — signed deltas appended
#: by the reasons' writer (storage/repos/order_reasons.py) with each reason it opens or releases,
#: summed by the holds grouping (the dashboard), folded together by the housekeeping (decision 147)
reason_tallies = Table(
    "reason_tallies",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("kind", String(10), nullable=False),
    Column("code", String(60), nullable=False),
    Column("value", String(300), nullable=False),
    Column("n", Integer, nullable=False),
    Index("ix_reason_tallies_cause", "tenant_id", "kind", "code", "value"),
)

events = Table(
    "events",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=True),
    Column("connection_id", Id, ForeignKey("connections.id"), nullable=True),
    Column("kind", String(40), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("message", Text, nullable=False),
    Column("data", JSON),
    Index("ix_events_order", "order_id", "id"),
)

postings = Table(
    "postings",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("destination_id", Id, ForeignKey("connections.id"), nullable=False),
    Column("order_version", Integer, nullable=False),
    Column("idempotency_key", String(120), nullable=False, unique=True),
    Column("order_key", String(120), nullable=False),
    Column("status", String(20), nullable=False),  # domain.states.PostingState (pending, posted, …)
    Column("document_id", String(120)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("posted_at", UTCDateTime()),
    # 0018: post (the first document) | update | void | adjust (domain.update_plan.Action), and the
    # posting whose document an amendment amends
    Column("action", String(10), nullable=False, server_default="post"),
    Column("amends_id", Id, ForeignKey("postings.id")),
    Index("ix_postings_status", "destination_id", "status"),
    Index("ix_postings_order_key", "destination_id", "order_key"),
    Index("ix_postings_order", "order_id", "destination_id", "order_version"),
)

posting_attempts = Table(
    "posting_attempts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("posting_id", Id, ForeignKey("postings.id"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("outcome", String(20), nullable=False),  # sent | posted | rejected | retry | auth_failed
    Column("message", Text, nullable=False),
    # 0011: the document the connector sent in this attempt (null: before 0011, or not reported)
    Column("sent", JSON),
    Index("ix_posting_attempts_posting", "posting_id"),  # 0011: an order's page reads its attempts
)

mappings = Table(
    "mappings",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("destination_id", Id, ForeignKey("connections.id"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("source_value", String(300), nullable=False),
    Column("target_value", String(300), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("destination_id", "kind", "source_value", name="uq_mappings_destination_kind_source"),
)

shipments = Table(
    "shipments",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("destination_id", Id, ForeignKey("connections.id"), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=True),
    Column("external_id", String(100), nullable=False),
    Column("order_key", String(120), nullable=False),
    # 0005: unbounded (a tracking number cut short is a wrong one)
    Column("tracking_number", Text),
    Column("carrier", Text),
    Column("service", Text),
    Column("tracking_url", Text),
    Column("ship_date", UTCDateTime()),
    Column("voided", Boolean, nullable=False, default=False),
    Column("lines", JSON, nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("destination_id", "external_id", name="uq_shipments_destination_external"),
    Index("ix_shipments_order", "order_id"),  # 0011: an order's page reads its shipments
)

fulfilment_pushes = Table(
    "fulfilment_pushes",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("shipment_id", Id, ForeignKey("shipments.id"), nullable=False, unique=True),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("channel_id", Id, ForeignKey("connections.id"), nullable=False),
    # domain.states.PushState (0008: a CHECK names them): pending | pushed | unknown | retry | held |
    # recheck | voided | waiting (0020)
    Column("status", String(20), nullable=False),
    Column("channel_fulfilment_id", String(200)),
    Column("reason_code", String(60)),
    Column("message", Text, nullable=False, default=""),
    Column("attempts", Integer, nullable=False, default=0),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_fulfilment_pushes_status", "channel_id", "status"),
    CheckConstraint(
        "status IN ('pending', 'pushed', 'unknown', 'retry', 'held', 'recheck', 'voided', 'waiting')", name="status"
    ),
)

#: 0020 (issue #16): what a user (or the auto-accept policy) asked of an order at its channel —
#: cancel (whole or lines), refund (to a total), accept, refuse — planned and sent like a shipment's
#: push, one row per request; ``calls`` lists every call made for it, in order
channel_intents = Table(
    "channel_intents",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("channel_id", Id, ForeignKey("connections.id"), nullable=False),
    # domain.channel_rules.Outcome: cancelled | refunded | accepted | refused
    Column("outcome", String(20), nullable=False),
    Column("lines", JSON, nullable=False),
    Column("refund_total", String(40)),
    Column("note", Text, nullable=False, default=""),
    # domain.states.PushState, as a shipment's push
    Column("status", String(20), nullable=False),
    Column("reason_code", String(60)),
    Column("message", Text, nullable=False, default=""),
    Column("reason", JSON),
    Column("calls", JSON, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("requested_by", String(300), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index("ix_channel_intents_status", "channel_id", "status"),
    Index("ix_channel_intents_order", "order_id"),
    CheckConstraint(
        "status IN ('pending', 'pushed', 'unknown', 'retry', 'held', 'recheck', 'voided', 'waiting')", name="status"
    ),
)

leases = Table(
    "leases",
    metadata,
    Column("name", String(120), primary_key=True),
    Column("holder", String(120), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("connection_id", Id, ForeignKey("connections.id"), nullable=False),
    Column("kind", String(20), nullable=False),  # orders | post | shipments | push
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("outcome", String(20), nullable=False),  # running | ok | failed
    Column("counts", JSON, nullable=False),
    Column("error", Text),
    Index("ix_sync_runs_connection", "connection_id", "kind", "id"),  # 0014: a connection's last run
)

# --- 0002: webhooks, reconciliation, alerts -------------------------------------------------------

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("connection_id", Id, ForeignKey("connections.id"), nullable=False),
    Column("webhook_id", String(120), nullable=False),
    Column("topic", String(60), nullable=False),
    Column("external_id", String(100)),
    Column("triggered_at", UTCDateTime()),
    Column("received_at", UTCDateTime(), nullable=False),
    # inserted | changed | unchanged | stale | ignored | refused | quarantined; 0024: queued (its
    # ingest job has not run yet) | ingested (by that job, in a batch) | failed (the job could not)
    Column("outcome", String(20), nullable=False),
    #: 0024: a queued delivery's raw body and the headers its adapter reads; cleared once ingested
    Column("body", LargeBinary),
    Column("headers", JSON),
    UniqueConstraint("connection_id", "webhook_id", name="uq_webhook_deliveries_connection_webhook"),
    Index("ix_webhook_deliveries_order", "connection_id", "external_id"),
    Index(
        "ix_webhook_deliveries_queued",
        "tenant_id",
        "connection_id",
        "id",
        sqlite_where=text("outcome = 'queued'"),
        postgresql_where=text("outcome = 'queued'"),
    ),
)

reconciliation_runs = Table(
    "reconciliation_runs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("connection_id", Id, ForeignKey("connections.id"), nullable=False),
    Column("kind", String(20), nullable=False),  # hourly | daily | manual
    Column("window_start", UTCDateTime(), nullable=False),
    Column("window_end", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime()),
    Column("outcome", String(20), nullable=False),  # running | ok | failed
    Column("channel_count", Integer, nullable=False, default=0),
    Column("ledger_count", Integer, nullable=False, default=0),
    Column("recovered", Integer, nullable=False, default=0),
    Column("refreshed", Integer, nullable=False, default=0),
    Column("missing", Integer, nullable=False, default=0),
    Column("api_requests", Integer, nullable=False, default=0),
    Column("api_cost", Integer, nullable=False, default=0),
    Column("findings", JSON, nullable=False),  # [{external_id, number, updated_at, cause, action}]
    Column("error", Text),
    Index("ix_reconciliation_runs_connection", "connection_id", "kind", "started_at"),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("key", String(300), nullable=False),  # the cause: one alert per key while it is open
    Column("kind", String(40), nullable=False),
    Column("connection_id", Id, ForeignKey("connections.id"), nullable=True),
    Column("subject", String(300), nullable=False),
    Column("body", Text, nullable=False),  # plain words: no command, no link (each presentation renders fixes)
    # 0007 (was ``link``): what to do, as data, the first one first (the one its e-mail links to)
    Column("fixes", FixList(), nullable=False, server_default=text("'[]'")),
    Column("data", JSON),
    Column("state", String(20), nullable=False),  # open | resolved
    Column("generation", Integer, nullable=False, default=1),  # +1 each time a resolved cause recurs
    Column("occurrences", Integer, nullable=False, default=1),
    Column("first_at", UTCDateTime(), nullable=False),
    Column("last_at", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime()),
    Column("dispatched_at", UTCDateTime()),  # null: this generation still has to be sent
    # 0013: an operator took the current episode in hand (cleared when a resolved cause comes back)
    Column("acknowledged_at", UTCDateTime()),
    Column("acknowledged_by", String(300)),
    UniqueConstraint("tenant_id", "key", name="uq_alerts_tenant_key"),
    Index("ix_alerts_pending", "tenant_id", "dispatched_at"),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("alert_id", Id, ForeignKey("alerts.id"), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("target", String(500), nullable=False),  # email:addr | webhook:url
    Column("status", String(20), nullable=False),  # sent | retrying | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text),
    Column("at", UTCDateTime(), nullable=False),
    UniqueConstraint("alert_id", "generation", "target", name="uq_alert_deliveries_alert_generation_target"),
)

# --- 0009: users, sessions, API tokens, sign-in attempts, the audit trail, tenant settings --------

#: a user belongs to one tenant; sign-in is by e-mail, so the address (stored lower-cased) is unique
#: across the hub. Never deleted: disabling keeps who did what in the audit trail readable.
users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("email", String(254), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("password_hash", Text, nullable=False),  # argon2id, PHC string ($argon2id$v=19$m=…)
    Column("role", String(20), nullable=False),  # domain.roles.Role
    Column("locale", String(10), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("disabled_at", UTCDateTime()),
    Column("password_changed_at", UTCDateTime(), nullable=False),
    CheckConstraint("role IN ('admin', 'operator', 'viewer')", name="role"),
    Index("ix_users_tenant", "tenant_id", "id"),
)

#: a signed-in browser: only the SHA-256 of its cookie token is stored (a copy of the table signs
#: no one in); ``expires_at`` is absolute, ``last_seen_at`` measures the idle expiry
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("last_seen_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
    Column("address", String(100)),
    Column("user_agent", String(300)),
    Index("ix_web_sessions_user", "user_id", "ended_at"),
)

#: REST API tokens of a tenant: ``obt_`` + random; only the SHA-256 is stored, and the first
#: characters (``prefix``) so a list can tell them apart
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("label", String(100), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("role", String(20), nullable=False),  # domain.roles.Role
    Column("created_by", String(300), nullable=False),  # the creator's name as the audit trail shows it
    Column("created_at", UTCDateTime(), nullable=False),
    Column("last_used_at", UTCDateTime()),
    Column("revoked_at", UTCDateTime()),
    CheckConstraint("role IN ('admin', 'operator', 'viewer')", name="role"),
    Index("ix_api_tokens_tenant", "tenant_id", "id"),
)

#: every sign-in attempt, for the rate limits (per account, per address); before a tenant is known
login_attempts = Table(
    "login_attempts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("email", String(254), nullable=False),
    Column("address", String(100)),
    Column("at", UTCDateTime(), nullable=False),
    Column("ok", Boolean, nullable=False),
    Index("ix_login_attempts_email", "email", "at"),
    Index("ix_login_attempts_address", "address", "at"),
)

#: the audit trail: who (a user, a token, the CLI) did what to which object, when, from where
user_actions = Table(
    "user_actions",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("actor_kind", String(10), nullable=False),  # user | token | cli
    Column("actor_id", Id),  # users.id or api_tokens.id; null for the CLI
    Column("actor_name", String(300), nullable=False),
    Column("address", String(100)),
    Column("action", String(60), nullable=False),
    Column("object_type", String(40), nullable=False),
    Column("object_id", String(100)),
    Column("summary", Text, nullable=False),
    Column("detail", JSON),
    CheckConstraint("actor_kind IN ('user', 'token', 'cli')", name="actor_kind"),
    Index("ix_user_actions_object", "tenant_id", "object_type", "object_id", "id"),
    Index("ix_user_actions_tenant", "tenant_id", "id"),
)

#: per-tenant settings the portal edits (notification recipients, webhook targets …), one JSON value a key
tenant_settings = Table(
    "tenant_settings",
    metadata,
    Column("tenant_id", Id, ForeignKey("tenants.id"), primary_key=True),
    Column("key", String(100), primary_key=True),
    Column("value", JSON, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(300), nullable=False),
)

#: 0018: a later version of an order some destination already holds, and what was decided about it
#: (issue #15, decisions 160–169): written only by storage/repos/order_updates.py
order_updates = Table(
    "order_updates",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("order_id", Id, ForeignKey("orders.id"), nullable=False),
    Column("from_version", Integer, nullable=False),  # the newest version a destination holds
    Column("to_version", Integer, nullable=False),
    Column("classes", JSON, nullable=False),  # change classes, in ChangeClass order
    Column("changes", JSON, nullable=False),  # [{path, before, after, change}]
    Column("policy", String(10), nullable=False),  # apply | review | ignore
    Column("policies", JSON, nullable=False),  # [{change, policy, overridden, why}]
    Column("status", String(20), nullable=False),  # review | applying | applied | ignored | cancelled | superseded
    Column("cancel", Boolean, nullable=False, server_default=text("false")),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("decided_at", UTCDateTime()),
    Column("decided_by", String(300)),
    Column("applied_at", UTCDateTime()),
    UniqueConstraint("order_id", "to_version", name="uq_order_updates_order_id"),
    Index("ix_order_updates_status", "tenant_id", "status"),
)

APPEND_ONLY = ("events", "posting_attempts", "user_actions")  # user_actions: 0009

#: 0015: the answer given to each idempotency key a tenant sent with a request that changes something
#: (``POST /api/v1/orders``'s ``Idempotency-Key`` header, the place-order form's hidden token): the
#: same key with the same request (``request_hash``) is answered again from here, with another
#: request refused (decision 131). One row per (tenant, scope, key), claimed before the work it covers.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("scope", String(40), nullable=False),  # what the key is for: "place_order"
    Column("key", String(200), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer),  # the answer's HTTP status; null while the request is being answered
    Column("response", JSON),
    Column("order_id", Id, ForeignKey("orders.id")),
    Column("created_at", UTCDateTime(), nullable=False),
    UniqueConstraint("tenant_id", "scope", "key", name="uq_idempotency_keys_tenant_scope_key"),
)

#: 0015: the last number given to a manual order placed without one (``M-<n>``), per tenant
manual_numbers = Table(
    "manual_numbers",
    metadata,
    Column("tenant_id", Id, ForeignKey("tenants.id"), primary_key=True),
    Column("last", Integer, nullable=False),
)

#: 0016: a CSV file uploaded for import, kept between its preview and its confirmation (decision 141):
#: found by its random ``token`` within its tenant, usable until ``expires_at``; ``report`` is the
#: per-row report once it was confirmed (a second confirmation answers it again, importing nothing)
import_uploads = Table(
    "import_uploads",
    metadata,
    Column("id", Id, primary_key=True),
    Column("tenant_id", Id, ForeignKey("tenants.id"), nullable=False),
    Column("token", String(64), nullable=False, unique=True),
    Column("filename", String(300), nullable=False),
    Column("encoding", String(20)),  # as chosen; null: detected
    Column("delimiter", String(1)),  # as chosen; null: detected
    Column("size", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("created_by", String(300), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("rows_done", Integer, nullable=False, default=0),  # progress while it is being confirmed
    Column("confirmed_at", UTCDateTime()),
    Column("confirmed_by", String(300)),
    Column("report", JSON),
    Index("ix_import_uploads_tenant", "tenant_id", "created_at"),
)

#: 0016: the bytes of an upload, in chunks of at most 1 MiB (read back one at a time: bounded memory)
import_chunks = Table(
    "import_chunks",
    metadata,
    Column("upload_id", Id, ForeignKey("import_uploads.id", ondelete="CASCADE"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("data", LargeBinary, nullable=False),
)
