"""Shared HTTP plumbing for connector clients: error translation and bounded retries.

Translation happens here, at the boundary, so nothing above a client sees an httpx type:
timeouts, refused connections, 5xx and truncated bodies become :class:`RemoteUnavailable`;
429 becomes :class:`RateLimited` carrying ``Retry-After``; 401 becomes :class:`AuthFailed` (the
credentials), 403 :class:`PermissionDenied` (this operation);
other 4xx are returned to the caller, which knows whether they hold an order.

A write that is not idempotent (Shopify's ``fulfillmentCreate``) may only be resent when it
certainly did not reach the remote: :func:`reached_remote` tells a refused connection (never sent)
from a lost answer (timeout, reset, truncated body, 5xx), which the client raises as
:class:`OutcomeUnknown` — and ``call_with_retries`` never retries that: the caller reads the remote
first.

``call_with_retries`` retries only ``RetryLater`` errors (never ``OutcomeUnknown``), honouring ``retry_after`` when the
remote gave one and exponential backoff with jitter otherwise, and gives up after a bounded number
of attempts or total wait by re-raising the last error (the service layer then records it and
tries again on the next run — nothing is dropped).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import orjson

from orderbridge.errors import (
    AuthFailed,
    OutcomeUnknown,
    PermissionDenied,
    RateLimited,
    RemoteUnavailable,
    RetryLater,
)
from orderbridge.fixes import update_credentials

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_total_wait: float = 120.0


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def send(client: httpx.Client, request: httpx.Request, *, system: str) -> httpx.Response:
    """Send one request; translate transport failures and retryable/auth statuses."""
    try:
        response = client.send(request)
        response.read()
    except httpx.TimeoutException as exc:
        raise RemoteUnavailable(f"{system} did not answer in time ({type(exc).__name__})") from exc
    except (httpx.TransportError, httpx.RemoteProtocolError) as exc:
        raise RemoteUnavailable(f"{system} could not be reached: {exc}") from exc
    status = response.status_code
    if status == 429:
        raise RateLimited(
            f"{system} rate limit reached (HTTP 429)",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
    if status == 401:
        raise AuthFailed(
            f"{system} refused the credentials (HTTP 401): {_short(response)}",
            hint=f"Check or renew the {system} credentials of the connection.",
            fix=update_credentials(f"Renew the connection's {system} credentials."),
        )
    if status == 403:
        raise PermissionDenied(
            f"{system} refused this operation (HTTP 403): {_short(response)}",
            hint=f"The credentials work but lack a permission for this: grant it to the {system} app or user "
            "(a scope, a role), then renew the connection's credentials.",
            fix=update_credentials(f"Renew the connection's {system} credentials once they have the permission."),
        )
    if status >= 500:
        raise RemoteUnavailable(f"{system} failed with HTTP {status}: {_short(response)}")
    return response


#: transport failures that happen before a request is on the wire: nothing reached the remote
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def reached_remote(exc: RetryLater) -> bool:
    """Whether the request behind ``exc`` may have been applied by the remote: False only for a
    rate-limit answer (refused before it ran) or a connection that was never made."""
    if isinstance(exc, RateLimited):
        return False
    return not isinstance(exc.__cause__, _NOT_SENT)


def json_body(response: httpx.Response, *, system: str) -> Any:
    """Parse a JSON body; a truncated or garbled body is transient (retry), never half-used."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise RemoteUnavailable(
            f"{system} sent a body that is not complete JSON ({len(response.content)} bytes)"
        ) from exc


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy = RetryPolicy(),
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[RetryLater, float], None] | None = None,
) -> T:
    """``fn()``, again after each ``RetryLater`` within ``policy`` — except :class:`OutcomeUnknown`
    (a write that may have been applied: the caller reads the remote first); the last error is
    re-raised when the attempts or the total wait run out."""
    waited = 0.0
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except RetryLater as exc:
            if attempt == policy.attempts or isinstance(exc, OutcomeUnknown):
                raise
            delay = exc.retry_after
            if delay is None:
                delay = min(policy.max_delay, policy.base_delay * 2 ** (attempt - 1))
                delay *= 0.5 + random.random() / 2
            if waited + delay > policy.max_total_wait:
                raise
            if on_retry is not None:
                on_retry(exc, delay)
            sleep(delay)
            waited += delay
    raise AssertionError("unreachable")  # pragma: no cover


def _short(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:300] if text else response.reason_phrase
