"""Webhook receivers: a channel's push notifications → the same idempotent upsert as polling.

Kind-agnostic (decision 72): what a kind's deliveries look like — headers, signature, topics,
payload — is its connector package's :class:`~orderbridge.connectors.base.WebhookAdapter`, declared
with ``WEBHOOKS``; this module names none of them.

Order of checks, each cheap before the next (the body's size was checked before it was read, by
``orderbridge.web.app``: 413 over ``webhook_max_body_bytes``):

1. the connection the URL addresses by id exists and is of the kind the URL names, and that kind
   declares webhooks (404 otherwise, so the channel's retries end and its subscription can be
   cleaned up); its tenant is the scope everything after runs in (:func:`addressed`);
2. the signature: the adapter's check over the *raw* body with the connection's signing secret
   (the credential the adapter names; Shopify: HMAC-SHA256 with ``api_secret``), compared in
   constant time; unsigned, forged, or no secret configured → 401 and nothing stored;
3. one transaction: insert the delivery id into ``webhook_deliveries`` (unique per connection, so
   a replay finds the row and is answered 200 without doing anything), then ingest the payload
   with :func:`orderbridge.services.ingest.ingest_records` — whose version check discards a stale
   delivery (older ``updated_at`` than the ledger's) and sets aside a tie (same ``updated_at``,
   other content) — and record the outcome. A tie is then settled by re-reading the order from the
   channel (``settle_ties``), after the delivery's transaction has committed. The delivery row
   and the order commit together: if anything fails the delivery is not recorded, the channel
   gets a 5xx, and its retry is processed as new. An order the database refuses to store as sent
   is not such a failure (decision 43): ingest stores it in a minimal form held ``storage_refused``
   (or quarantines its raw bytes), the delivery is recorded with outcome ``refused`` (or
   ``quarantined``) and answered 200 — a retry would meet the same refusal — and the sync job's
   health names it at once.

Between 2 and 3 the adapter reads the delivery: its JSON through :func:`orderbridge.boundedjson.loads`
(400 malformed, 422 beyond a declared limit), then its headers and order; a topic the hub does not
subscribe to is answered 200 and ignored. Reading is pure, so any
exception it raises is the delivery's fault and a 4xx. :func:`safely` turns whatever escapes the
rest into an answer: 422 for an input the database refuses, 503 (logged once, at error level) for
the hub's own failure — never a 500, which would also make the server drop the keep-alive
connection the channel's next delivery travels on.

Under the procrastinate engine (``webhook_ingest=job``, its default; decision 241) step 3 is split
in two so that the web process only checks and stores: the delivery is claimed ``queued`` with its
raw body and headers, and the connection's ``ingest`` job is deferred in the same transaction
(:meth:`~orderbridge.services.nudges.Nudges.deliveries_queued`); the channel gets its 200 once both
are committed. The job (:func:`ingest_queued`) reads the queued deliveries again with the same
adapter, ingests them as one batch — a storm of deliveries costs one ledger batch, not one each —
and records their outcome; a batch the hub cannot write is retried delivery by delivery, so one bad
delivery never holds back the others, and one that still fails is marked ``failed`` (logged at
error level; the next poll of the channel, which webhooks never advance, brings its order anyway).

A webhook never moves the poll cursor: polls and audits stay independent proofs that nothing was
missed (see ``docs/completeness.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import httpx
import structlog
from sqlalchemy import Connection, select, update
from sqlalchemy.exc import DataError, OperationalError

from orderbridge import boundedjson, fixes
from orderbridge.connectors import registry
from orderbridge.connectors.base import (
    Capability,
    ChannelRecord,
    Role,
    WebhookAdapter,
    WebhookChannel,
    WebhookDelivery,
    WebhookSource,
    WebhookSubscription,
)
from orderbridge.domain import limits
from orderbridge.domain.events import EventKind
from orderbridge.errors import InvalidInput, OrderBridgeError, SettingsError, UnusableId
from orderbridge.fixes import update_credentials
from orderbridge.services import notify
from orderbridge.services.connections import update_connection
from orderbridge.services.health import record_failure, record_ingest_failures, record_success
from orderbridge.services.hub import ConnectionRow, Hub
from orderbridge.services.ingest import ChannelContext, ingest_records, settle_ties
from orderbridge.services.ledger import add_events, event_row
from orderbridge.services.scope import Scope
from orderbridge.services.sync import channel_context
from orderbridge.storage.db import dialect_insert
from orderbridge.storage.repos import connections as connection_repo
from orderbridge.storage.repos import orders as order_repo
from orderbridge.storage.tables import webhook_deliveries

log = structlog.get_logger("orderbridge.webhooks")


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    status: int  # the HTTP status to answer with
    outcome: str  # inserted | changed | unchanged | stale | refused | quarantined | duplicate | ignored | rejected_*
    message: str
    external_id: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status < 300

    @property
    def wrote(self) -> bool:
        """Something new reached the ledger: the poster should look now, not at its next tick."""
        return self.outcome in ("inserted", "changed")


#: what the adapter read of a delivery (kept under its old name for the callers of this module)
Delivery = WebhookDelivery


def adapter_for(kind: str) -> WebhookAdapter | None:
    """The webhook adapter ``kind`` declares, or None (an unknown kind, or one without webhooks)."""
    try:
        return registry.declaration(kind).webhooks
    except InvalidInput:  # not a registered kind: the URL is the caller's
        return None


def _missing_secret(row: ConnectionRow, adapter: WebhookAdapter) -> str:
    return (
        f"connection {row.name!r} has no {adapter.secret_credential}, so webhook signatures cannot be checked — "
        f"set the connection's {adapter.secret_credential} credential"
    )


def addressed(hub: Hub, address: str) -> tuple[Scope, ConnectionRow] | None:
    """The connection a receiver URL addresses, with the scope of its tenant (decision 82).

    The URL's last segment is the connection's id (``/webhooks/shopify/42``), so the tenant is the
    connection's own: a delivery can only ever reach the tenant whose connection it names, and
    whose secret must have signed it. A legacy address naming the connection (registered before
    connections were addressed by id) is still answered while exactly one connection of any tenant
    has that name; ``webhooks register`` moves the subscription to the id address.
    """
    if address.isdigit():
        return Scope.of_connection(hub, int(address))
    with hub.db.read() as conn:
        ids = connection_repo.ids_named(conn, address)
    if len(ids) != 1:
        return None
    return Scope.of_connection(hub, ids[0])


def receive(hub: Hub, kind: str, address: str, headers: Mapping[str, str], body: bytes) -> WebhookOutcome:
    """Handle one delivery to the connection ``address`` names (:func:`addressed`); ``headers``
    must be case-insensitive (Starlette's are)."""
    adapter = adapter_for(kind)
    found = addressed(hub, address)
    if adapter is None or found is None or found[1].kind != kind or found[1].role is not Role.CHANNEL:
        # the labels are fixed: addresses in URLs are the caller's, and must not create metric series
        hub.observer.webhook(UNKNOWN, UNKNOWN, "rejected_unknown")
        return WebhookOutcome(404, "rejected_unknown", f"no {kind} channel connection {address!r}")
    scope, row = found
    name = row.name
    bound = log.bind(**scope.log_fields(row))
    credentials = scope.box.open(row.credentials_token, what=f"credentials of {name!r}")
    secret = credentials.get(adapter.secret_credential)
    problem = (
        adapter.verify(WebhookSource(row.name, row.base_url, secret, row.settings), headers, body)
        if secret
        else _missing_secret(row, adapter)
    )
    if problem:
        bound.warning("webhook.refused", reason=problem)
        return _rejected(scope, name, 401, "rejected_signature", problem)
    try:
        delivery = adapter.parse(headers, body)
    except boundedjson.JsonRefused as exc:
        bound.warning("webhook.unreadable", error=exc.message, limit=exc.limit)
        if exc.limit:  # well-formed, beyond a declared limit
            return _rejected(scope, name, 422, "rejected_limits", f"refused delivery: {exc.message}")
        return _rejected(scope, name, 400, "rejected_invalid", f"unreadable delivery: {exc.message}")
    except UnusableId as exc:  # the order has no id the ledger can key it by: a malformed order
        bound.warning("webhook.unusable_id", code=exc.code, error=exc.message)
        return _rejected(scope, name, 400, "rejected_invalid", f"refused delivery: {exc}")
    except InvalidInput as exc:  # any other typed refusal of the payload
        bound.warning("webhook.unreadable", error=str(exc), code=exc.code)
        return _rejected(scope, name, 422, "rejected_invalid", f"refused delivery: {exc}")
    except _UNREADABLE as exc:  # parsing is pure: whatever it raises, the delivery caused
        bound.warning("webhook.unreadable", error=str(exc), error_type=type(exc).__name__)
        return _rejected(scope, name, 400, "rejected_invalid", f"unreadable delivery: {_describe(exc)}")
    unstorable = _unstorable(delivery)  # the ledger's own limits, whatever the adapter checked
    if unstorable:
        bound.warning("webhook.unreadable", error=unstorable)
        return _rejected(scope, name, 400, "rejected_invalid", f"unreadable delivery: {unstorable}")
    if delivery.topic not in adapter.topics:  # not one the hub subscribes to: nothing to store
        bound.info("webhook.ignored", topic=delivery.topic)
        scope.observer.webhook(scope.slug, name, "ignored")
        return WebhookOutcome(200, "ignored", f"topic {delivery.topic!r} carries no order; nothing stored")
    if scope.hub.nudges.ingest_in_job:
        return _queue(scope, row, delivery, headers, body)
    ctx = channel_context(scope, row)
    now = scope.now()
    tied: list[str] = []
    refused = False
    with scope.db.transaction() as conn:
        claimed = conn.execute(
            dialect_insert(conn)(webhook_deliveries)
            .values(
                tenant_id=scope.tenant_id,
                connection_id=row.id,
                webhook_id=delivery.webhook_id,
                topic=delivery.topic,
                external_id=delivery.external_id,
                triggered_at=delivery.triggered_at,
                received_at=now,
                outcome="processing",
            )
            .on_conflict_do_nothing(index_elements=["connection_id", "webhook_id"])
            .returning(webhook_deliveries.c.id)
        ).scalar_one_or_none()
        if claimed is None:
            outcome = WebhookOutcome(200, "duplicate", f"delivery {delivery.webhook_id} was already processed")
        elif delivery.record is None:
            outcome = _deleted(conn, scope, row, delivery, now)
        else:
            counts = ingest_records(conn, scope.tenant_id, ctx, [delivery.record], now)
            tied = counts.tied_ids
            refused = bool(counts.refused or counts.quarantined)
            kind_ = next(
                k
                for k, n in (
                    ("quarantined", counts.quarantined),
                    ("refused", counts.refused),
                    ("inserted", counts.inserted),
                    ("changed", counts.changed),
                    ("stale", counts.stale),
                    ("tied", counts.tied),
                    ("unchanged", 1),
                )
                if n
            )
            text = {
                "refused": "refused by the database as sent: stored in a minimal form and held (storage_refused)",
                "quarantined": "refused by the database even in a minimal form: its raw payload is quarantined",
            }.get(kind_, kind_)
            outcome = WebhookOutcome(
                200, kind_, f"{delivery.topic}: order {delivery.external_id} {text}", delivery.external_id
            )
        if claimed is not None:
            conn.execute(
                update(webhook_deliveries).where(webhook_deliveries.c.id == claimed).values(outcome=outcome.outcome)
            )
            # the jobs this delivery needs commit with it (services/nudges.py): a post of what it
            # made ready, and one sync of the channel soon — a storm of deliveries is one pending sync
            if outcome.wrote:
                scope.hub.nudges.orders_ready(conn, scope.tenant_id)
            scope.hub.nudges.channel_changed(conn, scope.tenant_id, row.id)
    if refused:  # the delivery is recorded: the sync job's health names the refused order now
        record_ingest_failures(scope, row)
    if tied:  # the delivery is recorded: now ask the channel which of the two versions is newer
        settled = settle_ties(scope, ctx, scope.channel(row), tied)
        if settled.refused or settled.quarantined:  # the channel's version is one the database refuses
            record_ingest_failures(scope, row)
        final = "unsettled" if settled.unsettled else "changed" if settled.changed else "unchanged"
        outcome = WebhookOutcome(
            200,
            "unchanged" if final == "unsettled" else final,
            f"{delivery.topic}: order {delivery.external_id} has the ledger's updated_at with other content; "
            f"re-read from {row.name}: {final}",
            delivery.external_id,
        )
    scope.observer.webhook(scope.slug, name, outcome.outcome)
    bound.info(
        "webhook.received",
        topic=delivery.topic,
        webhook_id=delivery.webhook_id,
        outcome=outcome.outcome,
        external_id=delivery.external_id,
    )
    return outcome


# --- ingest by a job (the procrastinate engine; decision 241) ------------------------------------

#: headers a queued delivery does not keep: credentials a proxy may add (no adapter reads them)
_UNKEPT_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})
#: queued deliveries one ingest transaction takes (one ledger batch)
INGEST_BATCH = 200
#: a delivery queued this long without its job having run is ingested by the housekeeping
QUEUED_SWEEP_AFTER_S = 60.0


def _queue(
    scope: Scope, row: ConnectionRow, delivery: WebhookDelivery, headers: Mapping[str, str], body: bytes
) -> WebhookOutcome:
    """Store a verified, readable delivery ``queued`` and defer its connection's ingest job with it."""
    kept = {k.lower(): v for k, v in headers.items() if k.lower() not in _UNKEPT_HEADERS}
    with scope.db.transaction() as conn:
        claimed = conn.execute(
            dialect_insert(conn)(webhook_deliveries)
            .values(
                tenant_id=scope.tenant_id,
                connection_id=row.id,
                webhook_id=delivery.webhook_id,
                topic=delivery.topic,
                external_id=delivery.external_id,
                triggered_at=delivery.triggered_at,
                received_at=scope.now(),
                outcome="queued",
                body=body,
                headers=kept,
            )
            .on_conflict_do_nothing(index_elements=["connection_id", "webhook_id"])
            .returning(webhook_deliveries.c.id)
        ).scalar_one_or_none()
        if claimed is not None:
            scope.hub.nudges.deliveries_queued(conn, scope.tenant_id, row.id)
    if claimed is None:
        outcome = WebhookOutcome(200, "duplicate", f"delivery {delivery.webhook_id} was already processed")
    else:
        outcome = WebhookOutcome(
            200, "queued", f"{delivery.topic}: order {delivery.external_id} queued for ingest", delivery.external_id
        )
    scope.observer.webhook(scope.slug, row.name, outcome.outcome)
    log.info(
        "webhook.received",
        **scope.log_fields(row),
        topic=delivery.topic,
        webhook_id=delivery.webhook_id,
        outcome=outcome.outcome,
        external_id=delivery.external_id,
    )
    return outcome


@dataclass
class QueuedIngest:
    """What one :func:`ingest_queued` run did."""

    connection: str
    deliveries: int = 0
    inserted: int = 0
    changed: int = 0
    #: deliveries the job could not ingest (marked ``failed``; the next poll brings their orders)
    failed: int = 0

    def as_dict(self) -> dict[str, int | str]:
        return {
            "connection": self.connection,
            "deliveries": self.deliveries,
            "inserted": self.inserted,
            "changed": self.changed,
            "failed": self.failed,
        }


@dataclass
class _Written:
    tied: list[str]
    refused: bool


def ingest_queued(scope: Scope, connection_id: int) -> QueuedIngest:
    """Ingest the channel's ``queued`` deliveries, :data:`INGEST_BATCH` at a time, oldest first.

    Each batch is one transaction: the deliveries read again by the kind's adapter (pure: what it
    accepted in the request it accepts now), the orders written by :func:`ingest_records` as one
    batch, each delivery's outcome recorded and its body cleared, and the ``post`` jobs (and one
    sync soon) it needs deferred — so a crash leaves the batch queued, and a re-run ingests it then.
    A batch that fails for anything but the database going away is taken again one delivery per
    transaction; a delivery that still fails is marked ``failed`` and logged with its traceback."""
    row = scope.load(connection_id)
    report = QueuedIngest(row.name)
    adapter = adapter_for(row.kind)
    if adapter is None:  # the kind no longer declares webhooks: nothing to read them with
        return report
    ctx = channel_context(scope, row)
    while True:
        with scope.db.read() as conn:
            ids = list(
                conn.execute(
                    select(webhook_deliveries.c.id)
                    .where(
                        webhook_deliveries.c.tenant_id == scope.tenant_id,
                        webhook_deliveries.c.connection_id == row.id,
                        webhook_deliveries.c.outcome == "queued",
                    )
                    .order_by(webhook_deliveries.c.id)
                    .limit(INGEST_BATCH)
                ).scalars()
            )
        if not ids:
            return report
        written: list[_Written] = []
        try:
            written.append(_ingest_ids(scope, row, ctx, adapter, ids, report))
        except OperationalError:
            raise  # the database went away: the job ends, the deliveries stay queued for its re-run
        except Exception:
            log.warning("webhook.ingest_batch_failed", **scope.log_fields(row), deliveries=len(ids), exc_info=True)
            for one in ids:
                try:
                    written.append(_ingest_ids(scope, row, ctx, adapter, [one], report))
                except OperationalError:
                    raise
                except Exception:
                    log.exception("webhook.ingest_failed", **scope.log_fields(row), delivery_id=one)
                    with scope.db.transaction() as conn:
                        conn.execute(
                            update(webhook_deliveries)
                            .where(webhook_deliveries.c.id == one, webhook_deliveries.c.outcome == "queued")
                            .values(outcome="failed", body=None, headers=None)
                        )
                    report.failed += 1
        for w in written:
            if w.refused:  # recorded: the sync job's health names the refused order now
                record_ingest_failures(scope, row)
            if w.tied:  # recorded: now ask the channel which of the two versions is newer
                settled = settle_ties(scope, ctx, scope.channel(row), w.tied)
                if settled.refused or settled.quarantined:
                    record_ingest_failures(scope, row)
        if len(ids) < INGEST_BATCH:
            return report


def _ingest_ids(
    scope: Scope, row: ConnectionRow, ctx: ChannelContext, adapter: WebhookAdapter, ids: list[int], report: QueuedIngest
) -> _Written:
    """One transaction: the queued deliveries ``ids`` (those still queued: a re-run skips the rest)."""
    now = scope.now()
    outcomes: dict[str, list[int]] = {}
    with scope.db.transaction() as conn:
        rows = conn.execute(
            select(webhook_deliveries.c.id, webhook_deliveries.c.body, webhook_deliveries.c.headers)
            .where(webhook_deliveries.c.id.in_(ids), webhook_deliveries.c.outcome == "queued")
            .order_by(webhook_deliveries.c.id)
            .with_for_update()
        ).all()
        records: list[ChannelRecord] = []
        for r in rows:
            try:
                delivery = adapter.parse(httpx.Headers(r.headers or {}), bytes(r.body or b""))
            except (boundedjson.JsonRefused, UnusableId, InvalidInput, *_UNREADABLE) as exc:
                # read in the request, unreadable now: a change of the adapter between the two
                log.warning("webhook.unreadable", **scope.log_fields(row), delivery_id=r.id, error=str(exc))
                outcomes.setdefault("rejected_invalid", []).append(int(r.id))
                continue
            if delivery.record is None:
                outcomes.setdefault(_deleted(conn, scope, row, delivery, now).outcome, []).append(int(r.id))
                continue
            records.append(delivery.record)
            outcomes.setdefault("ingested", []).append(int(r.id))
        counts = ingest_records(conn, scope.tenant_id, ctx, records, now) if records else None
        for outcome, done in outcomes.items():
            conn.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id.in_(done))
                .values(outcome=outcome, body=None, headers=None)
            )
        if counts is not None and (counts.inserted or counts.changed):
            scope.hub.nudges.orders_ready(conn, scope.tenant_id)
        if rows:
            scope.hub.nudges.channel_changed(conn, scope.tenant_id, row.id)
    report.deliveries += len(rows)
    if counts is None:
        return _Written([], False)
    report.inserted += counts.inserted
    report.changed += counts.changed
    log.info(
        "webhook.ingested",
        **scope.log_fields(row),
        deliveries=len(rows),
        inserted=counts.inserted,
        changed=counts.changed,
        unchanged=counts.unchanged,
        stale=counts.stale,
        tied=counts.tied,
        refused=counts.refused,
    )
    return _Written(list(counts.tied_ids), bool(counts.refused or counts.quarantined))


def queued_channels(scope: Scope, *, older_than_s: float = 0.0) -> list[int]:
    """The channels of the tenant with deliveries still ``queued`` (received more than
    ``older_than_s`` ago): the periodic sweep defers their ingest job again (one whose job failed)."""
    cutoff = scope.now() - timedelta(seconds=older_than_s)
    with scope.db.read() as conn:
        return list(
            conn.execute(
                select(webhook_deliveries.c.connection_id)
                .where(
                    webhook_deliveries.c.tenant_id == scope.tenant_id,
                    webhook_deliveries.c.outcome == "queued",
                    webhook_deliveries.c.received_at <= cutoff,
                )
                .distinct()
            ).scalars()
        )


def _unstorable(delivery: WebhookDelivery) -> str:
    """Why the delivery's id or topic cannot be kept in ``webhook_deliveries`` ("" when they can)."""
    for what, value, limit in (
        ("delivery id", delivery.webhook_id, limits.WEBHOOK_ID),
        ("topic", delivery.topic, limits.WEBHOOK_TOPIC),
    ):
        if not isinstance(value, str) or len(value) > limit.max_chars or limits.storable(value) != value:
            return f"the {what} is not a valid value (at most {limit.max_chars} characters, no NUL)"
    if not delivery.webhook_id:
        return "the delivery has no id"
    return ""


#: what a pure parser raises on data it cannot read (a ``ValueError`` first of all)
_UNREADABLE = (ValueError, TypeError, KeyError, AttributeError, IndexError, ArithmeticError)


def _describe(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"field {exc.args[0]!r} is missing" if exc.args else "a field is missing"
    text = str(exc)
    return text if isinstance(exc, ValueError) and text else f"{type(exc).__name__}: {text}"


def refuse_oversized(hub: Hub, kind: str, address: str, message: str) -> WebhookOutcome:
    """413 for a body over ``webhook_max_body_bytes``: refused unread, so its signature is unknown."""
    found = addressed(hub, address)
    if found is None or found[1].kind != kind or adapter_for(kind) is None:
        # addresses in URLs are the caller's: they must not create metric series
        log.warning("webhook.too_large", connection=address, kind=kind, error=message)
        hub.observer.webhook(UNKNOWN, UNKNOWN, "rejected_too_large")
        return WebhookOutcome(413, "rejected_too_large", message)
    scope, row = found
    log.warning("webhook.too_large", **scope.log_fields(row), kind=kind, error=message)
    return _rejected(scope, row.name, 413, "rejected_too_large", message)


def _deleted(conn: Connection, scope: Scope, row: ConnectionRow, delivery: Delivery, now: datetime) -> WebhookOutcome:
    order_id = None if delivery.external_id is None else order_repo.id_by_external(conn, row.id, delivery.external_id)
    if order_id is not None:
        add_events(
            conn,
            [
                event_row(
                    scope.tenant_id,
                    order_id,
                    EventKind.DELETED_IN_CHANNEL,
                    now,
                    f"deleted in {row.name}; the ledger keeps it and nothing already posted is changed",
                )
            ],
        )
    return WebhookOutcome(200, "ignored", f"{delivery.topic}: order {delivery.external_id} noted", delivery.external_id)


#: the metric label of a delivery to no known connection
UNKNOWN = "_unknown"


def _rejected(scope: Scope, name: str, status: int, outcome: str, message: str) -> WebhookOutcome:
    scope.observer.webhook(scope.slug, name, outcome)
    return WebhookOutcome(status, outcome, message)


def safely(fn: Callable[[], WebhookOutcome]) -> WebhookOutcome:
    """Run a receive so that no failure becomes a 500 (and no connection is dropped with one).

    An exception that reaches here left the delivery's transaction rolled back (a tie is settled
    after the commit, and records its own failures), so nothing of the delivery is stored:

    - an :class:`InvalidInput` or a value the database refuses (``DataError``: too long, out of
      range) is the delivery's own fault and the same bytes would fail again — 422, a warning;
    - a typed error (the channel unreachable, a setting missing) — 503, a warning; the channel
      retries later;
    - anything else is the hub's bug or its database's failure — 503, the channel retries, and it
      is logged once, at error level, with its traceback.
    """
    try:
        return fn()
    except InvalidInput as exc:
        log.warning("webhook.refused", code=exc.code, error=str(exc))
        return WebhookOutcome(422, "rejected_invalid", f"refused delivery: {exc}")
    except OrderBridgeError as exc:
        log.warning("webhook.failed", code=exc.code, error=str(exc))
        return WebhookOutcome(503, "error", str(exc))
    except DataError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
        log.warning("webhook.refused", code="database_refused_value", error=reason)
        return WebhookOutcome(422, "rejected_invalid", f"the ledger refused a value in this delivery: {reason}")
    except Exception as exc:
        log.exception("webhook.internal_error", error=f"{type(exc).__name__}: {exc}")
        return WebhookOutcome(503, "error", f"internal error ({type(exc).__name__}); the delivery was not recorded")


# --- subscriptions ---------------------------------------------------------------------------------


def webhook_address(scope: Scope, row: ConnectionRow) -> str:
    """Where the hub's web server receives this channel's webhooks: the web entrypoint's route, so
    its presentation says (``web/links.py``)."""
    return scope.present.receiver_address(scope.settings.public_url, row.kind, row.id)


def _webhook_channel(scope: Scope, channel_id: int) -> tuple[ConnectionRow, WebhookChannel]:
    row = scope.load(channel_id)
    if row.role is not Role.CHANNEL or not row.can(Capability.WEBHOOKS):
        raise InvalidInput(f"{row.name!r} ({row.kind}) does not send webhooks; it is polled and audited instead")
    return row, cast(WebhookChannel, scope.channel(row))


def register_webhooks(scope: Scope, channel_id: int) -> list[WebhookSubscription]:
    """Subscribe the hub's receiver to the channel's order topics (idempotent) and remember the
    address; subscriptions to an address it had before (a legacy name address) are removed once
    the new ones are in place."""
    row, connector = _webhook_channel(scope, channel_id)
    name = row.name
    adapter = row.declaration.webhooks
    assert adapter is not None  # declared with WEBHOOKS (checked by _webhook_channel)
    credentials = scope.box.open(row.credentials_token, what=f"credentials of {name!r}")
    if not credentials.get(adapter.secret_credential):
        field = next(c for c in row.declaration.credentials if c.name == adapter.secret_credential)
        raise SettingsError(
            f"{name!r} has no {field.name}: its webhooks could not be verified, so none are registered",
            hint=f"Set the connection's {field.name} credential ({field.description}).",
            fix=update_credentials(
                f"Set the connection's {field.name} credential ({field.description}).",
                connection=name,
                credential=field.name,
                example=field.placeholder,
            ),
        )
    address = webhook_address(scope, row)
    try:
        subs = connector.register_webhooks(address)
    except OrderBridgeError as exc:
        record_failure(scope, row, exc, job="webhooks")
        raise
    record_success(scope, row, job="webhooks")
    before = str(row.settings.get("webhook_address") or "")
    if before != address:
        if before:
            connector.remove_webhooks(before)
        update_connection(scope, row.id, settings={"webhook_address": address})
    log.info("webhooks.registered", **scope.log_fields(row), address=address, topics=[s.topic for s in subs])
    return subs


def remove_webhooks(scope: Scope, channel_id: int) -> int:
    row, connector = _webhook_channel(scope, channel_id)
    removed = connector.remove_webhooks(row.settings.get("webhook_address") or webhook_address(scope, row))
    update_connection(scope, row.id, settings={"webhook_address": ""})
    return removed


def list_webhooks(scope: Scope, channel_id: int) -> list[WebhookSubscription]:
    _row, connector = _webhook_channel(scope, channel_id)
    return connector.list_webhooks()


def check_subscriptions(scope: Scope) -> list[str]:
    """Re-check every subscribed channel's webhooks; re-subscribe what vanished, and say so.

    A webhook subscription can disappear without a word (the channel deletes it after failed
    deliveries, an app reinstall drops it), or stay listed but stop delivering (WooCommerce disables
    a webhook after 5 failed deliveries: ``WebhookSubscription.active`` is false, and it counts as
    missing; registering again re-enables it). Polls and audits would still bring the orders in, so
    nothing looks wrong — except that latency silently grows from milliseconds to the poll
    interval. So each pass compares the channel's own list with the expected topics, re-registers,
    and raises one ``webhooks_missing`` alert per episode (resolved once they are all back).
    Returns the names of the connections that had lost subscriptions.
    """
    lost: list[str] = []
    with scope.db.read() as conn:
        rows = [
            r
            for r in scope.connections(conn, Role.CHANNEL)
            if r.settings.get("webhook_address") and r.can(Capability.WEBHOOKS)
        ]
    for row in rows:
        _row, connector = _webhook_channel(scope, row.id)
        address = str(row.settings["webhook_address"])
        try:
            listed = [s for s in connector.list_webhooks() if s.address == address]
        except OrderBridgeError as exc:  # this channel's check failed: say so on it, check the others
            record_failure(scope, row, exc, job="webhooks")
            continue
        present = {s.topic for s in listed if s.active}
        missing = sorted(set(connector.webhook_topics) - present)
        disabled = sorted({s.topic for s in listed if not s.active} & set(missing))
        key = f"webhooks_missing:{row.id}"
        now = scope.now()
        with scope.db.transaction() as conn:
            if not missing:
                notify.resolve_alert(conn, scope.tenant_id, key, now)
                record_success(scope, row, conn, job="webhooks")
                continue
            notify.raise_alert(
                conn,
                scope.tenant_id,
                key=key,
                kind="webhooks_missing",
                subject=f"{row.name} stopped sending webhooks for {', '.join(missing)}",
                body=(
                    f"The subscriptions of {row.name} to {address} for {', '.join(missing)} are gone from the "
                    "channel or disabled there (channels remove or disable subscriptions whose deliveries keep "
                    "failing, and reinstalling an app drops them). Orders still arrive by polling and audits, "
                    "but up to a poll interval late; what was never delivered meanwhile is recovered by them. "
                    "OrderBridge has subscribed again; if this repeats, check that the channel can reach "
                    f"{address}."
                ),
                fixes=(fixes.register_webhooks(row.name),),
                now=now,
                connection_id=row.id,
                data={"missing": missing, "disabled": disabled},
            )
        log.warning("webhooks.missing", **scope.log_fields(row), topics=missing, disabled=disabled)
        try:
            connector.register_webhooks(address)
        except OrderBridgeError as exc:
            record_failure(scope, row, exc, job="webhooks")
        else:
            record_success(scope, row, job="webhooks")
        lost.append(row.name)
    return lost
