"""Bulk operations as Shopify runs them: one query per app and shop, on the sandbox's clock.

An operation belongs to the store, not to the request that started it: its status is a function
of the sandbox's clock (``bulk_seconds`` to complete, ``bulk_cancel_seconds`` in CANCELING, a week
until EXPIRED). Whoever looks next (``currentBulkOperation``, ``bulkOperation(id:)``, a new run, a
cancel) brings it up to date, and a timer started with the operation does the same when it is due,
so an operation completes — and ``bulk_operations/finish`` subscribers hear of it — whether or not
anyone polls and whether or not its requester is still alive.

``bulkOperationRunQuery`` validates the query as Shopify does before it accepts it: against the
version's schema, against what the sandbox models (a field it does not model is refused, naming
it), and against the bulk rules (one top-level connection, at most five connections in all,
connections nested at most two deep). Refusals are ``userErrors`` with code ``INVALID``; a run while
one is CREATED, RUNNING or CANCELING is refused with ``OPERATION_IN_PROGRESS``; ``bulkOperationCancel``
refuses an operation in any other state with a userError naming it (Shopify documents the
mutation, not its messages: the wording is the sandbox's). The ledger records each start
(``bulk_operation``) and each accepted cancel (``bulk_operation_cancel``).

The result is JSONL: one line per node of the top-level connection and one per node of a nested
connection, the latter with ``__parentId`` (the id of the node it belongs to), children right
after their parent. It is served at ``/bulk-results/{id}.jsonl`` without credentials (Shopify
hands out a signed storage URL).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from orderbridge.sandboxes.shopify.executor import (
    ExecutionError,
    Executor,
    PlanField,
    ValidationFailed,
    compile_projector,
)
from orderbridge.sandboxes.shopify.webhooks import WebhookDispatcher

#: statuses in which a bulk query holds the shop's one slot (a new run is refused)
BULK_BUSY = frozenset({"CREATED", "RUNNING", "CANCELING"})
MAX_CONNECTIONS = 5
MAX_NESTING = 2
FINISH_TOPIC = "bulk_operations/finish"


@dataclass
class BulkOperation:
    """One bulk query (see the module docstring)."""

    id: int
    query: str
    created_at: str
    status: str = "CREATED"
    completed_at: str | None = None
    object_count: int = 0
    root_object_count: int = 0
    url: str | None = None
    file_size: int | None = None
    error_code: str | None = None
    #: the sandbox's address as the starting request saw it (the result URL is served there)
    base_url: str = ""
    #: the API version of the request that started it (its query is run against that schema)
    api_version: str = ""
    #: ``state.monotonic()`` when it was created, when cancelling began, when it completed
    started: float = 0.0
    canceling_since: float | None = None
    finished: float | None = None

    @property
    def gid(self) -> str:
        return f"gid://shopify/BulkOperation/{self.id}"

    def node(self) -> dict[str, Any]:
        return {
            "id": self.gid,
            "status": self.status,
            "errorCode": self.error_code,
            "objectCount": str(self.object_count),
            "rootObjectCount": str(self.root_object_count),
            "fileSize": None if self.file_size is None else str(self.file_size),
            "url": self.url,
            "partialDataUrl": None,
            "createdAt": self.created_at,
            "completedAt": self.completed_at,
            "query": self.query,
            "type": "QUERY",
        }

    def finish_payload(self) -> dict[str, Any]:
        """The ``bulk_operations/finish`` webhook body."""
        return {
            "admin_graphql_api_id": self.gid,
            "completed_at": self.completed_at,
            "created_at": self.created_at,
            "error_code": None if self.error_code is None else self.error_code.lower(),
            "status": self.status.lower(),
            "type": "query",
        }


class BulkSlot:
    """The shop's bulk operations and its one slot (mixed into :class:`~.state.ShopifyState`)."""

    lock: threading.RLock
    monotonic: Callable[[], float]
    clock: Callable[[], datetime]
    bulk_seconds: float
    bulk_cancel_seconds: float
    bulk_expire_seconds: float
    bulk: BulkOperation | None
    bulk_operations: dict[int, BulkOperation]
    bulk_results: dict[int, bytes]
    _next_bulk: int
    webhook_dispatcher: WebhookDispatcher

    if TYPE_CHECKING:  # provided by SandboxState and ShopifyState

        def record(self, kind: str, key: str, **data: Any) -> None: ...
        def bulk_block(self, query: str, order_id: int, build: Callable[[dict[str, Any]], bytes]) -> bytes: ...

    # --- bulk ------------------------------------------------------------------------------------
    # One bulk query per app and shop at a time. An operation's status moves with the sandbox's
    # clock, not with requests: whoever looks next (``currentBulkOperation``, a new run, a cancel)
    # first brings it up to date — :meth:`bulk_due` says what is due, the app builds the result
    # file when completion is due (it needs the GraphQL executor). Nobody looking changes nothing
    # that anyone could see.
    def bulk_due(self, op: BulkOperation) -> str:
        """The status ``op`` has reached by now on the sandbox's clock (caller holds the lock)."""
        now = self.monotonic()
        if op.status in ("CREATED", "RUNNING"):
            return "COMPLETED" if now - op.started >= self.bulk_seconds else "RUNNING"
        if op.status == "CANCELING" and op.canceling_since is not None:
            return "CANCELED" if now - op.canceling_since >= self.bulk_cancel_seconds else "CANCELING"
        if op.status == "COMPLETED" and op.finished is not None and now - op.finished >= self.bulk_expire_seconds:
            return "EXPIRED"
        return op.status

    def settle_bulk(self, op: BulkOperation, status: str) -> None:
        """Move ``op`` to CANCELED or EXPIRED (COMPLETED is the app's: it builds the result)."""
        with self.lock:
            if status == "CANCELED":
                op.completed_at = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
                op.finished = self.monotonic()
            elif status == "EXPIRED":  # the signed URL stops working: the file is gone
                op.url = None
                self.bulk_results.pop(op.id, None)
            op.status = status

    def start_bulk(
        self, query: str, base_url: str = "", api_version: str = ""
    ) -> tuple[BulkOperation | None, list[dict[str, Any]]]:
        with self.lock:
            if self.bulk is not None and self.bulk.status in BULK_BUSY:
                message = f"A bulk query operation for this app and shop is already in progress: {self.bulk.gid}."
                return None, [{**_user_error(None, message), "code": "OPERATION_IN_PROGRESS"}]
            op = BulkOperation(
                self._next_bulk,
                query,
                self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
                base_url=base_url,
                api_version=api_version,
                started=self.monotonic(),
            )
            self._next_bulk += 1
            self.bulk = op
            self.bulk_operations[op.id] = op
            self.record("bulk_operation", op.gid, query=query)
            return op, []

    def cancel_bulk(self, gid: str) -> tuple[BulkOperation | None, list[dict[str, Any]]]:
        """``bulkOperationCancel``: a CREATED or RUNNING operation turns CANCELING (then CANCELED
        after ``bulk_cancel_seconds``); any other is refused with a userError naming its status."""
        with self.lock:
            number = _gid_number(gid) if str(gid).startswith("gid://shopify/BulkOperation/") else None
            op = self.bulk_operations.get(number) if number is not None else None
            if op is None:
                return None, [_user_error(["id"], "Bulk operation does not exist.")]
            if op.status not in ("CREATED", "RUNNING"):
                return op, [_user_error(None, f"A bulk operation cannot be canceled when it is {op.status.lower()}.")]
            op.status, op.canceling_since = "CANCELING", self.monotonic()
            self.record("bulk_operation_cancel", op.gid, query=op.query)
            return op, []


def invalid(message: str) -> dict[str, Any]:
    return {"field": ["query"], "message": message, "code": "INVALID"}


def bulk_rules(plan: list[PlanField]) -> list[dict[str, Any]]:
    """What Shopify refuses in a bulk query beyond the schema: the top level, counts and nesting."""
    if len(plan) != 1 or not plan[0].connection:
        return [invalid("Bulk queries must contain exactly one top-level field, and it must be a connection.")]
    connections = 0
    deepest = 0

    def walk(fields: list[PlanField], depth: int) -> None:
        nonlocal connections, deepest
        for f in fields:
            here = depth + 1 if f.connection else depth
            if f.connection:
                connections += 1
                deepest = max(deepest, here)
            for sub in [f.sub or [], *(f.variants or {}).values()]:
                walk(sub, here)

    walk(plan, 0)
    errors = []
    if connections > MAX_CONNECTIONS:
        errors.append(invalid(f"Bulk queries cannot contain more than {MAX_CONNECTIONS} connections ({connections})."))
    if deepest > MAX_NESTING:
        errors.append(invalid(f"Bulk queries cannot nest connections more than {MAX_NESTING} levels deep ({deepest})."))
    return errors


class BulkRunner:
    """Runs the store's bulk operations: validation, the clock, completion, results, the webhook.

    ``matching(args)`` lists the ids of the orders the top-level ``orders`` field selects (its
    ``query``, ``sortKey`` and ``reverse``), in order."""

    def __init__(
        self,
        state: BulkSlot,
        executors: Callable[[str], Executor],
        matching: Callable[[dict[str, Any]], list[int]],
    ) -> None:
        self.state = state
        self.executors = executors
        self.matching = matching

    def run(self, query: str, base_url: str, api_version: str) -> dict[str, Any]:
        executor = self.executors(api_version)
        try:
            doc = executor.document(query)
            op = executor.operation(doc, None)
            if op.operation.value != "query":
                return {"bulkOperation": None, "userErrors": [invalid("Bulk operations run queries, not mutations.")]}
            _, plan = executor.plan(doc, op, {})
        except ValidationFailed as exc:
            return {"bulkOperation": None, "userErrors": [invalid(str(e["message"])) for e in exc.errors]}
        except ExecutionError as exc:
            return {"bulkOperation": None, "userErrors": [invalid(exc.message)]}
        errors = bulk_rules(plan)
        if errors:
            return {"bulkOperation": None, "userErrors": errors}
        state = self.state
        with state.lock:
            self.advance(state.bulk)
            record, errors = state.start_bulk(query, base_url, api_version)
        if record is not None:
            self._schedule(record, state.bulk_seconds)
        return {"bulkOperation": record.node() if record else None, "userErrors": errors}

    def cancel(self, gid: str) -> dict[str, Any]:
        state = self.state
        with state.lock:
            for each in state.bulk_operations.values():
                self.advance(each)
            record, errors = state.cancel_bulk(gid)
        if record is not None and not errors:
            self._schedule(record, state.bulk_cancel_seconds)
        return {"bulkOperation": record.node() if record else None, "userErrors": errors}

    def current(self) -> dict[str, Any] | None:
        with self.state.lock:
            record = self.state.bulk
            self.advance(record)
            return None if record is None else record.node()

    def by_id(self, gid: str) -> dict[str, Any] | None:
        text = str(gid)
        prefix = "gid://shopify/BulkOperation/"
        if not text.startswith(prefix) or not text[len(prefix) :].isdigit():
            return None
        with self.state.lock:
            record = self.state.bulk_operations.get(int(text[len(prefix) :]))
            self.advance(record)
            return None if record is None else record.node()

    def _schedule(self, record: BulkOperation, after: float) -> None:
        """Look at ``record`` again once it is due on the real clock (a test's clock may be slower)."""
        timer = threading.Timer(max(after, 0.0) + 0.01, self._tick, args=(record,))
        timer.daemon = True
        timer.start()

    def _tick(self, record: BulkOperation) -> None:
        with self.state.lock:
            self.advance(record)

    def advance(self, op: BulkOperation | None) -> None:
        """Bring ``op`` up to the status the sandbox's clock says it has reached (caller holds the lock)."""
        if op is None:
            return
        state = self.state
        due = state.bulk_due(op)
        if due == op.status:
            return
        if due == "COMPLETED":
            self._complete(op)
            op.finished = op.started + state.bulk_seconds  # when it completed on the clock, seen or not
            self._announce(op)
            due = state.bulk_due(op)  # a long-unobserved operation may be expired already
            if due == op.status:
                return
        was = op.status
        state.settle_bulk(op, due)
        if op.status == "CANCELED" and was != "CANCELED":
            self._announce(op)

    def _announce(self, op: BulkOperation) -> None:
        dispatcher = self.state.webhook_dispatcher
        if dispatcher.has_subscribers(FINISH_TOPIC):
            dispatcher.publish(FINISH_TOPIC, 0, orjson.dumps(op.finish_payload()), self.state.clock())

    def _complete(self, op: BulkOperation) -> None:
        state = self.state
        executor = self.executors(op.api_version)
        doc = executor.document(op.query)
        _, plan = executor.plan(doc, executor.operation(doc, None), {})
        root = plan[0]
        if root.name != "orders":  # the sandbox exports orders only: any other export fails
            op.status, op.error_code = "FAILED", "INTERNAL_SERVER_ERROR"
            op.completed_at = state.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
            return
        node_plan = node_selection(unlimited(root.sub or []))
        project_node = compile_projector(node_plan)

        def block(node: dict[str, Any]) -> bytes:
            lines: list[bytes] = []
            flatten(project_node(node), None, lines)
            return b"\n".join(lines) + b"\n"

        ids = self.matching(root.args) if node_plan else []
        blocks = [state.bulk_block(f"{op.api_version}\n{op.query}", order_id, block) for order_id in ids]
        body = b"".join(blocks)
        state.bulk_results[op.id] = body
        op.status = "COMPLETED"
        op.completed_at = state.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        op.object_count = body.count(b"\n")
        op.root_object_count = len(blocks)
        op.file_size = len(body)
        op.url = f"{op.base_url.rstrip('/')}/bulk-results/{op.id}.jsonl" if blocks else None


def node_selection(plan: list[PlanField]) -> list[PlanField]:
    """The selection on each node of a connection's plan (``nodes { … }`` or ``edges { node { … } }``)."""
    for f in plan:
        if f.name == "nodes" and f.sub is not None:
            return f.sub
        if f.name == "edges" and f.sub is not None:
            for g in f.sub:
                if g.name == "node" and g.sub is not None:
                    return g.sub
    return []


def unlimited(plan: list[PlanField]) -> list[PlanField]:
    """Bulk queries take whole nested connections: drop ``first`` everywhere."""
    out = []
    for f in plan:
        args = {k: v for k, v in f.args.items() if k not in ("first", "last")} if f.connection else f.args
        variants = {t: unlimited(p) for t, p in f.variants.items()} if f.variants else f.variants
        out.append(
            PlanField(
                f.key,
                f.name,
                args,
                unlimited(f.sub) if f.sub else f.sub,
                f.connection,
                f.is_list,
                f.typename,
                f.source,
                variants,
            )
        )
    return out


def flatten(node: dict[str, Any], parent: str | None, out: list[bytes]) -> None:
    """One JSONL line per node; nested connection nodes become later lines with ``__parentId``."""
    line: dict[str, Any] = {}
    children: list[dict[str, Any]] = []
    for key, value in node.items():
        if isinstance(value, dict) and (isinstance(value.get("edges"), list) or isinstance(value.get("nodes"), list)):
            children.extend(value.get("nodes") or [e["node"] for e in value.get("edges", [])])
        else:
            line[key] = value
    if parent is not None:
        line["__parentId"] = parent
    out.append(orjson.dumps(line))
    for child in children:
        flatten(child, node.get("id"), out)


def _user_error(field: list[str] | None, message: str) -> dict[str, Any]:
    return {"field": field, "message": message}


def _gid_number(value: Any) -> int | None:
    text = str(value).rsplit("/", 1)[-1]
    return int(text) if text.isdigit() else None
