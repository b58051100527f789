"""The only code that speaks HTTP to Mirakl's seller API: the shop key, retries, exact numbers.

Every request carries ``Authorization: <shop key>`` — the key itself, no ``Bearer`` — as Mirakl
asks. Each call is one :func:`~orderbridge.connectors.http.call_with_retries` unit of *send +
parse*. Reads (OR11, A01) are retried through 429 (after ``Retry-After``), 5xx, timeouts and
truncated bodies. Writes (OR21, OR23, OR24, OR28, OR29) have no idempotency key at Mirakl, so a
write is retried only when it certainly did not run (a 429, a connection never made); a lost
answer — timeout, reset, 5xx, a truncated body — is :class:`OutcomeUnknown`, which the hub settles
by reading the order again before anything is re-sent.

Bodies are parsed with :mod:`orderbridge.exactjson`, so a price is a ``Decimal`` from Mirakl's
bytes on (``orjson`` would make it a float). 401/403/429/5xx are translated by
:func:`~orderbridge.connectors.http.send`; any other status is returned with its parsed body for
the connector to judge (a 400 is Mirakl refusing the call: the order is held with its words).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from orderbridge import exactjson
from orderbridge.connectors.http import RetryPolicy, call_with_retries, reached_remote, send
from orderbridge.errors import OutcomeUnknown, RemoteUnavailable, RetryLater

SYSTEM = "Mirakl"


class MiraklClient:
    def __init__(
        self,
        base_url: str,
        shop_key: str,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        policy: RetryPolicy = RetryPolicy(),
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": shop_key, "Accept": "application/json"}
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._sleep = sleep
        self._policy = policy
        self.requests = 0
        self.waited = 0.0

    def get(self, path: str, params: Mapping[str, str] | None = None) -> tuple[int, Any]:
        return self._call("GET", path, params=params, write=False)

    def put(self, path: str, body: Any = None) -> tuple[int, Any]:
        return self._call("PUT", path, content=None if body is None else exactjson.dumps(body), write=True)

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        write: bool,
    ) -> tuple[int, Any]:
        headers = dict(self._headers)
        if content is not None:
            headers["Content-Type"] = "application/json"

        def attempt() -> tuple[int, Any]:
            request = self._http.build_request(
                method, f"{self.base_url}{path}", params=params, content=content, headers=headers
            )
            self.requests += 1
            try:
                response = send(self._http, request, system=SYSTEM)
                if response.is_success and not response.content.strip():
                    if write:
                        return response.status_code, None  # OR21/OR23/OR24/OR29 answer 204
                    raise RemoteUnavailable(f"{SYSTEM} sent an empty body for {method} {path}")
                try:
                    return response.status_code, exactjson.loads(response.content)
                except ValueError as exc:
                    if response.is_success:
                        raise RemoteUnavailable(
                            f"{SYSTEM} sent a body that is not complete JSON ({len(response.content)} bytes)"
                        ) from exc
                    return response.status_code, response.text
            except RetryLater as exc:
                if write and not isinstance(exc, OutcomeUnknown) and reached_remote(exc):
                    raise OutcomeUnknown(
                        f"{SYSTEM} may or may not have applied {method} {path}: {exc.message}",
                        hint="OrderBridge reads the order at Mirakl again before anything is sent again.",
                    ) from exc
                raise

        return call_with_retries(attempt, self._policy, sleep=self._slept)

    def _slept(self, seconds: float) -> None:
        self.waited += seconds
        self._sleep(seconds)
