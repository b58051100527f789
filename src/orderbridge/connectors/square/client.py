"""The only code that speaks HTTP to Square: bearer token, ``Square-Version``, errors, retries.

Every call carries ``Authorization: Bearer <access token>`` and ``Square-Version`` (the
connection's setting: the API version the connector was written and tested against, overriding
the app's pinned one). Square's errors come as ``{"errors": [{category, code, detail, field}]}``
with the HTTP status following the first error; they are translated here by what the caller should
do next:

- 401 (``AUTHENTICATION_ERROR``: ``UNAUTHORIZED``, ``ACCESS_TOKEN_EXPIRED``, ``ACCESS_TOKEN_REVOKED``)
  → :class:`AuthFailed`, with the fix for each (OAuth access tokens expire after 30 days);
- 403 (``INSUFFICIENT_SCOPES``) → :class:`PermissionDenied`, naming the scopes the connector needs;
- 429 (``RATE_LIMITED``; Square publishes no limits) → :class:`RateLimited`, retried with
  exponential backoff and jitter (``Retry-After`` when given);
- 5xx, timeouts, cut bodies → :class:`RemoteUnavailable`, retried.

**Writes are retried like reads.** Every write the connector makes carries an
``idempotency_key`` that Square honours (the same key with the same body answers the first result
again and makes nothing), so a resend after a lost answer, a timeout or a 5xx is safe — provided
the body is byte-for-byte the same, which the mapper guarantees (it is a pure function of the
order version and the catalog). The remaining statuses (400, 404, 409) come back with the parsed
body for the connector to judge.

Written on :mod:`orderbridge.connectors.http` rather than Square's own SDK: the SDK pins its own
httpx and pydantic, and the hub's error tree, retries and test seam (an injected ``httpx.Client``)
are the point (the SDK is used in the tests, to read back what the hub created).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
import orjson

from orderbridge.connectors.http import RetryPolicy, call_with_retries, json_body, send
from orderbridge.connectors.square.mapper import problem
from orderbridge.errors import AuthFailed, PermissionDenied, RemoteUnavailable
from orderbridge.fixes import update_credentials

SYSTEM = "Square"
#: the scopes the destination uses (Square's OAuth permission names)
SCOPES = (
    "ORDERS_WRITE",
    "ORDERS_READ",
    "PAYMENTS_WRITE",
    "PAYMENTS_WRITE_ADDITIONAL_RECIPIENTS",
    "ITEMS_READ",
    "ITEMS_WRITE",
    "EMPLOYEES_READ",
    "MERCHANT_PROFILE_READ",
)


class SquareClient:
    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        version: str,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        policy: RetryPolicy = RetryPolicy(),
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.version = version
        self._token = access_token
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._sleep = sleep
        self._policy = policy
        self.requests = 0

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def get(self, path: str) -> tuple[int, Any]:
        return self.call("GET", path)

    def post(self, path: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        return self.call("POST", path, body)

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        content = orjson.dumps(dict(body)) if body is not None else None
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Square-Version": self.version,
            "Accept": "application/json",
        }
        if content is not None:
            headers["Content-Type"] = "application/json"
        url = f"{self.base_url}/v2/{path.lstrip('/')}"

        def attempt() -> tuple[int, Any]:
            request = self._http.build_request(method, url, content=content, headers=headers)
            self.requests += 1
            try:
                response = send(self._http, request, system=SYSTEM)
            except AuthFailed as exc:
                raise _auth_failed(exc) from exc
            except PermissionDenied as exc:
                raise PermissionDenied(
                    f"{exc.message}",
                    hint=f"The Square access token lacks a permission for {method} /v2/{path}: authorise the app "
                    f"again with the scopes {', '.join(SCOPES)}, then store the new token.",
                    fix=exc.fix,
                ) from exc
            parsed = json_body(response, system=SYSTEM)  # a cut body is transient: asked again
            return response.status_code, parsed

        return call_with_retries(attempt, self._policy, sleep=self._sleep)


def _auth_failed(exc: AuthFailed) -> AuthFailed:
    text = exc.message
    code = next((c for c in ("ACCESS_TOKEN_EXPIRED", "ACCESS_TOKEN_REVOKED", "UNAUTHORIZED") if c in text), "")
    if code == "ACCESS_TOKEN_EXPIRED":
        hint = (
            "Square OAuth access tokens expire after 30 days: renew it with the refresh token (ideally every 7 days) "
            "and store the new access token in the connection."
        )
    elif code == "ACCESS_TOKEN_REVOKED":
        hint = "The seller revoked the app's access in Square: authorise the app again and store the new access token."
    else:
        hint = "Check the connection's access token (Square Developer Dashboard → Credentials, or the OAuth token)."
    return AuthFailed(
        f"{SYSTEM} refused the access token (HTTP 401 {code or 'UNAUTHORIZED'})",
        hint=hint,
        fix=update_credentials("Store a valid Square access token in the connection.", credential="access_token"),
    )


def unexpected(status: int, body: Any, what: str) -> RemoteUnavailable:
    """A status the connector has no meaning for at this call (kept transient: asked again later)."""
    return RemoteUnavailable(f"{SYSTEM} answered {what} with HTTP {status}: {problem(status, body).text()}")
