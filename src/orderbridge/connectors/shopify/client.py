"""The Shopify Admin GraphQL client: the only code in the connector that performs I/O.

Every call goes through :func:`orderbridge.connectors.http.send`/``json_body`` (error translation)
inside :func:`call_with_retries`, so 429, 5xx, timeouts and truncated bodies are retried —
except for a call made with ``idempotent=False`` (a mutation whose lost answer may hide that it
was applied): only a request that certainly did not run (throttled, never connected) is sent
again; any other failure is :class:`OutcomeUnknown`, and the caller reads what Shopify holds. Cost
throttling is handled here, where the numbers are: a ``THROTTLED`` answer becomes
:class:`RateLimited` with ``retry_after = (requested − available) / restoreRate`` (the exact time
the bucket needs), and before each call the client waits proactively when the last
``throttleStatus`` (projected forward at the restore rate) says the bucket is short of the
query's cost. ``MAX_COST_EXCEEDED`` is a configuration problem (the page size is too big for the
shop's limit), not something a retry fixes.

:func:`estimate_cost` computes a query's requested cost the way Shopify documents it (scalars 0,
objects 1, connections ``2 + first × per-item``), so page sizes can be chosen to fit the cap
before asking.

Every response's ``X-Shopify-API-Version`` (the version that answered) and
``X-Shopify-API-Deprecated-Reason`` are read (:meth:`ShopifyClient.note_version`): a request for a
retired version is answered by Shopify's oldest supported one, and a version near its end of
support is flagged, so :attr:`ShopifyClient.deprecation` says what the connection should change
(its ``api_version`` setting) and by when (:func:`support_ends`) — the hub's health and one alert
carry it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
from graphql import FieldNode, OperationDefinitionNode, SelectionSetNode, parse

from orderbridge.connectors.http import RetryPolicy, call_with_retries, json_body, reached_remote, send
from orderbridge.errors import (
    FixConfiguration,
    OutcomeUnknown,
    PermissionDenied,
    RateLimited,
    RemoteUnavailable,
    RetryLater,
)
from orderbridge.fixes import update_credentials

SYSTEM = "Shopify"
#: the newest stable Admin API version the connector is written and tested against (its default);
#: ``tests/connectors/test_shopify_api_version.py`` holds it to the newest version the sandbox serves
API_VERSION = "2026-07"
_STABLE = re.compile(r"^(\d{4})-(01|04|07|10)$")


def support_ends(version: str) -> date | None:
    """When Shopify stops supporting a stable version: twelve months after its release (the minimum
    Shopify promises); None for a name that is no stable version (``unstable``)."""
    match = _STABLE.match(version)
    return None if match is None else date(int(match.group(1)) + 1, int(match.group(2)), 1)


@dataclass(frozen=True, slots=True)
class ApiDeprecation:
    """Shopify said the connection's API version is deprecated or no longer served as asked."""

    requested: str
    #: the version that answered (``X-Shopify-API-Version``)
    served: str
    #: ``X-Shopify-API-Deprecated-Reason`` as sent (outside text: data, shown as such)
    reason: str
    #: when support for the requested version ends (or ended)
    ends: date | None

    @property
    def retired(self) -> bool:
        return self.served != self.requested

    def message(self) -> str:
        when = f" (support ends {self.ends.isoformat()})" if self.ends and not self.retired else ""
        if self.retired:
            when = f" (support ended {self.ends.isoformat()})" if self.ends else ""
            return (
                f"{SYSTEM} no longer serves API version {self.requested}{when}: it answered with {self.served}, "
                "which the connector was not written against"
            )
        return f"{SYSTEM} API version {self.requested} is deprecated{when}"


@dataclass(slots=True)
class GraphQLResult:
    data: dict[str, Any]
    requested_cost: int
    actual_cost: int
    throttle: dict[str, float] | None


def estimate_cost(query: str, variables: Mapping[str, Any] | None = None) -> int:
    """Requested cost of ``query`` by Shopify's documented rules (connections = fields with first/last)."""
    doc = parse(query)
    variables = variables or {}
    total = 0
    for op in doc.definitions:
        if isinstance(op, OperationDefinitionNode):
            if op.operation.value == "mutation":
                total += 10 * len(op.selection_set.selections)
            else:
                total += _selection_cost(op.selection_set, variables)
    return total


def _arg(field: FieldNode, name: str, variables: Mapping[str, Any]) -> int | None:
    for arg in field.arguments or ():
        if arg.name.value == name:
            value: Any = arg.value
            kind = value.kind
            if kind == "int_value":
                return int(value.value)
            if kind == "variable":
                found = variables.get(value.name.value)
                return int(found) if found is not None else None
    return None


def _selection_cost(selection_set: SelectionSetNode | None, variables: Mapping[str, Any]) -> int:
    if selection_set is None:
        return 0
    total = 0
    for sel in selection_set.selections:
        if not isinstance(sel, FieldNode) or sel.selection_set is None:
            continue
        count = _arg(sel, "first", variables) or _arg(sel, "last", variables)
        if count is not None and sel.name.value not in ("fulfillments", "trackingInfo"):
            per_item = 0
            for inner in sel.selection_set.selections:
                if not isinstance(inner, FieldNode) or inner.selection_set is None:
                    continue
                if inner.name.value == "nodes":
                    per_item = max(per_item, 1 + _selection_cost(inner.selection_set, variables))
                elif inner.name.value == "edges":
                    for node in inner.selection_set.selections:
                        if isinstance(node, FieldNode) and node.name.value == "node":
                            per_item = max(per_item, 1 + _selection_cost(node.selection_set, variables))
            total += 2 + count * per_item
        else:
            total += 1 + _selection_cost(sel.selection_set, variables)
    return total


class ShopifyClient:
    """GraphQL over httpx with retries and cost-aware pacing."""

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        api_version: str,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        retry: RetryPolicy = RetryPolicy(),
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self.endpoint = f"{self.base_url}/admin/api/{api_version}/graphql.json"
        #: the version that answered the last response, and the deprecation Shopify last announced
        self.served_version: str | None = None
        self.deprecation: ApiDeprecation | None = None
        self._token = access_token
        self._owns_http = http is None
        self.http = http or httpx.Client(timeout=timeout)
        self.sleep = sleep
        self.monotonic = monotonic
        self.retry = retry
        self.last_throttle: dict[str, float] | None = None
        self._throttle_at = 0.0
        self.waited = 0.0
        #: cost points of the queries Shopify answered (requestedQueryCost, as listings report it)
        self.cost_spent = 0

    def close(self) -> None:
        if self._owns_http:
            self.http.close()

    def note_version(self, response: httpx.Response) -> None:
        """Read the version headers of a response (every response: the last one decides)."""
        served = response.headers.get("X-Shopify-API-Version")
        reason = response.headers.get("X-Shopify-API-Deprecated-Reason")
        if served:
            self.served_version = served
        if served and served != self.api_version and not reason:
            reason = f"{SYSTEM} answered a request for {self.api_version} with version {served}"
        if reason:
            self.deprecation = ApiDeprecation(
                self.api_version, served or self.api_version, reason[:500], support_ends(self.api_version)
            )
        elif served:
            self.deprecation = None

    def _pace(self, cost: int) -> None:
        status = self.last_throttle
        if status is None or cost <= 0:
            return
        rate = float(status.get("restoreRate") or 0)
        if rate <= 0:
            return
        elapsed = self.monotonic() - self._throttle_at
        projected = min(float(status["maximumAvailable"]), float(status["currentlyAvailable"]) + elapsed * rate)
        if projected < cost:
            wait = (cost - projected) / rate
            self.waited += wait
            self.sleep(wait)

    def execute(
        self,
        query: str,
        variables: Mapping[str, Any] | None = None,
        *,
        cost: int | None = None,
        idempotent: bool = True,
    ) -> GraphQLResult:
        """Run one GraphQL operation; raise only :mod:`orderbridge.errors` types.

        ``idempotent=False`` (a mutation that must not be applied twice): a failure after the request
        may have reached Shopify is raised as :class:`OutcomeUnknown` and not retried — the caller
        reads what Shopify holds first. Rate limits and refused connections are still retried."""
        expected = cost if cost is not None else estimate_cost(query, variables)

        def attempt() -> GraphQLResult:
            if idempotent:
                return once()
            try:
                return once()
            except RetryLater as exc:
                if not reached_remote(exc):
                    raise
                raise OutcomeUnknown(
                    f"{SYSTEM} may have applied the request, but its answer was lost: {exc.message}",
                    hint="OrderBridge reads what Shopify holds before it sends the request again.",
                ) from exc

        def once() -> GraphQLResult:
            self._pace(expected)
            request = self.http.build_request(
                "POST",
                self.endpoint,
                json={"query": query, "variables": dict(variables or {})},
                headers={"X-Shopify-Access-Token": self._token, "Accept": "application/json"},
            )
            response = send(self.http, request, system=SYSTEM)
            self.note_version(response)
            body = json_body(response, system=SYSTEM)
            if not isinstance(body, dict):
                raise RemoteUnavailable(f"{SYSTEM} sent an unexpected GraphQL body: {str(body)[:200]}")
            cost_info = (body.get("extensions") or {}).get("cost") or {}
            throttle = cost_info.get("throttleStatus")
            if throttle:
                self.last_throttle = throttle
                self._throttle_at = self.monotonic()
            errors = body.get("errors") or []
            codes = {((e.get("extensions") or {}).get("code")) for e in errors if isinstance(e, dict)}
            requested = int(cost_info.get("requestedQueryCost") or expected)
            if "THROTTLED" in codes:
                wait = 1.0
                if throttle and throttle.get("restoreRate"):
                    wait = max(
                        0.0,
                        (requested - float(throttle["currentlyAvailable"])) / float(throttle["restoreRate"]),
                    )
                raise RateLimited(f"{SYSTEM} throttled a query of cost {requested}", retry_after=wait)
            if "ACCESS_DENIED" in codes:  # a scope the app lacks: HTTP 200, the field (or all data) null
                message = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
                raise PermissionDenied(
                    f"{SYSTEM} refused this operation (ACCESS_DENIED): {message}",
                    hint=f"Grant the {SYSTEM} app the access scope the message names (e.g. write_fulfillments), "
                    "reinstall or re-authorise it, then renew the connection's access token.",
                    fix=update_credentials(
                        "Renew the connection's access token once the app has the scope.", credential="access_token"
                    ),
                )
            if "MAX_COST_EXCEEDED" in codes:
                raise FixConfiguration(
                    f"{SYSTEM} refused a query of cost {requested}: {errors[0].get('message', '')}",
                    code="shopify_max_cost_exceeded",
                    hint="Lower the connection's max_query_cost or lines_per_order_hint setting.",
                )
            if errors and body.get("data") is None:
                message = "; ".join(str(e.get("message")) for e in errors if isinstance(e, dict))
                if "INTERNAL_SERVER_ERROR" in codes:
                    raise RemoteUnavailable(f"{SYSTEM} GraphQL failed: {message}")
                raise FixConfiguration(
                    f"{SYSTEM} refused the GraphQL request: {message}",
                    code="shopify_graphql_error",
                    hint="Check the connection's api_version setting.",
                )
            actual = cost_info.get("actualQueryCost")
            self.cost_spent += requested
            return GraphQLResult(
                body.get("data") or {}, requested, int(actual if actual is not None else requested), throttle
            )

        return call_with_retries(attempt, self.retry, sleep=self.sleep)

    def stream_lines(self, url: str) -> Iterator[bytes]:
        """The non-empty lines of a bulk result file, streamed as bytes (the URL is pre-signed: no
        credentials sent). Split on ``\n`` in the raw bytes: JSONL is UTF-8 and a newline byte never
        occurs inside a multi-byte character, so nothing is decoded to text only to be parsed again."""
        try:
            with self.http.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise RemoteUnavailable(f"{SYSTEM} bulk result download failed with HTTP {response.status_code}")
                rest = b""
                for chunk in response.iter_bytes(1 << 16):
                    lines = (rest + chunk).split(b"\n") if rest else chunk.split(b"\n")
                    rest = lines.pop()
                    for line in lines:
                        if line and not line.isspace():
                            yield line
                if rest and not rest.isspace():
                    yield rest
        except httpx.TimeoutException as exc:
            raise RemoteUnavailable(f"{SYSTEM} bulk result download timed out") from exc
        except httpx.TransportError as exc:
            raise RemoteUnavailable(f"{SYSTEM} bulk result download failed: {exc}") from exc
