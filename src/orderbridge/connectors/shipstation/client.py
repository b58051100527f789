"""The only code that speaks HTTP to ShipStation V1: Basic auth, retries, rate-limit pacing.

Each call is one :func:`~orderbridge.connectors.http.call_with_retries` unit of *send + parse*,
so a 5xx, a timeout or a truncated body is retried as a whole. Retrying a POST is safe here only
because every order carries its ``orderKey``: ShipStation updates the existing order instead of
creating a second one.

Rate limit (40 requests/minute per key pair): after every response the client reads
``X-Rate-Limit-Remaining``; when it reaches 0 the *next* request first sleeps
``X-Rate-Limit-Reset`` seconds plus a one-second margin, less the time already passed (through
the injected ``sleep``, so tests do not wait). A 429 is
retried after ``Retry-After``; if the remote sent none (the real API documents only the
``X-Rate-Limit-*`` headers), the last known reset is used instead of blind backoff.

Status handling: 401, 403, 429 and 5xx are translated by :func:`~orderbridge.connectors.http.send`;
other statuses are returned with the parsed body for the connector to judge (a 400 is
ShipStation refusing the content, which holds orders rather than failing the connection).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from orderbridge import exactjson
from orderbridge.connectors.http import RetryPolicy, call_with_retries, json_body, parse_retry_after, send
from orderbridge.errors import RateLimited, RemoteUnavailable

SYSTEM = "ShipStation"
#: the reset header is whole seconds (possibly rounded down): wait this much longer to land in the new window
RESET_MARGIN = 1.0


class ShipStationClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        api_secret: str,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        policy: RetryPolicy = RetryPolicy(),
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        token = base64.b64encode(f"{api_key}:{api_secret}".encode()).decode()
        self._headers = {"Authorization": f"Basic {token}", "Accept": "application/json"}
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._sleep = sleep
        self._policy = policy
        #: monotonic instant before which the rate window is exhausted (None: not exhausted)
        self._resume_at: float | None = None
        #: (monotonic receipt time, seconds to reset) from the last response, for 429s without Retry-After
        self._last_reset: tuple[float, float] | None = None
        #: total seconds slept for pacing / retries, for reports and tests
        self.waited = 0.0
        self.requests = 0

    def get(self, path: str, params: Mapping[str, str] | None = None) -> tuple[int, Any]:
        return self._call("GET", path, params=params)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self._call("POST", path, content=exactjson.dumps(body))

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # -------------------------------------------------------------------------------------------
    def _call(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, content: bytes | None = None
    ) -> tuple[int, Any]:
        headers = dict(self._headers)
        if content is not None:
            headers["Content-Type"] = "application/json"

        def attempt() -> tuple[int, Any]:
            self._pace()
            request = self._http.build_request(
                method, f"{self.base_url}{path}", params=params, content=content, headers=headers
            )
            self.requests += 1
            try:
                response = send(self._http, request, system=SYSTEM)
            except RateLimited as exc:
                if exc.retry_after is None:
                    exc.retry_after = self._reset_hint()
                raise
            self._note_rate_headers(response)
            if response.is_success:
                if not response.content.strip():
                    raise RemoteUnavailable(f"{SYSTEM} sent an empty body for {method} {path}")
                return response.status_code, json_body(response, system=SYSTEM)
            try:  # an error answer is judged by the connector, whatever its body looks like
                return response.status_code, exactjson.loads(response.content)
            except ValueError:
                return response.status_code, response.text

        return call_with_retries(attempt, self._policy, sleep=self._slept)

    def _slept(self, seconds: float) -> None:
        self.waited += seconds
        self._sleep(seconds)

    def _pace(self) -> None:
        if self._resume_at is None:
            return
        delay = self._resume_at - time.monotonic()
        self._resume_at = None
        if delay > 0:
            self._slept(delay)

    def _note_rate_headers(self, response: httpx.Response) -> None:
        reset = parse_retry_after(response.headers.get("X-Rate-Limit-Reset"))
        if reset is None:
            return
        now = time.monotonic()
        self._last_reset = (now, reset)
        if response.headers.get("X-Rate-Limit-Remaining", "").strip() == "0":
            self._resume_at = now + reset + RESET_MARGIN

    def _reset_hint(self) -> float | None:
        if self._last_reset is None:
            return None
        seen, reset = self._last_reset
        return max(1.0, reset - (time.monotonic() - seen))
