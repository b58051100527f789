"""The only code that speaks HTTP to QuickBooks Online: OAuth 2 tokens, requestids, pacing, retries.

**Tokens.** QBO's API takes a bearer *access token* that lasts an hour; it is obtained from Intuit's
token endpoint with the app's client id and secret and a *refresh token*. Intuit may answer every
refresh with a new refresh token, and then only the newest one works: the client therefore hands
each new one to ``on_rotated`` at once (the hub stores it, encrypted, before anything else happens
— ``services/connections.store_rotated_credentials``), so a restart never starts from a dead token.
The access token is refreshed when it is missing, within a minute of its expiry, or when an API
call is answered 401 (once per call: a second 401 is the credentials' fault). A refused refresh
(``invalid_grant``: the user disconnected the app, the token expired or was superseded) raises
:class:`AuthFailed` with the fix — reconnect QuickBooks and store the new refresh token. Refreshes
are serialised by a lock: the hub shares one connector between its threads, and two concurrent
refreshes with one rotating token would lock each other out.

**Idempotency.** Every write carries ``requestid`` (the caller's idempotency key, at most 50
characters, :func:`request_id`), which QBO remembers per company and answers a repeat with the
first response. That is what makes a write safe to resend after a timeout, a 5xx or a cut answer,
so writes are retried here like reads (``call_with_retries``).

**Limits.** 500 requests per minute per company and 10 per second per company and app
(``api-facts.md``): the client keeps at most ``per_second`` requests in any second (sleeping the
rest of the second through the injected ``sleep``); a 429 waits its ``Retry-After``, else 60 s.

Status handling: 401/403/429/5xx are translated by :func:`~orderbridge.connectors.http.send`; the
other statuses come back with the parsed body (a QBO ``Fault``) for the connector to judge.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from orderbridge import exactjson
from orderbridge.connectors.http import RetryPolicy, call_with_retries, json_body, send
from orderbridge.errors import AuthFailed, RateLimited, RemoteUnavailable
from orderbridge.fixes import update_credentials

SYSTEM = "QuickBooks"
#: the default address of Intuit's OAuth 2 token endpoint (the remote's, like DEFAULT_BASE_URL)
TOKEN_ENDPOINT_BASE_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
#: refresh this long before the access token's announced expiry
EXPIRY_MARGIN_S = 60.0
#: api-facts: "429 → wait 60 s" (when QBO names no Retry-After)
THROTTLE_WAIT_S = 60.0
REQUEST_ID_MAX = 50
#: pacing slack over QBO's one-second window (clocks and network jitter)
PACE_MARGIN_S = 0.05


def request_id(key: str) -> str:
    """The ``requestid`` of an idempotency key: the key itself when it fits QBO's 50 characters,
    else a deterministic digest of it (the same key always makes the same requestid)."""
    if len(key) <= REQUEST_ID_MAX:
        return key
    return "ob-" + hashlib.sha256(key.encode()).hexdigest()[: REQUEST_ID_MAX - 3]


def reconnect_fix(what: str) -> AuthFailed:
    return AuthFailed(
        f"{SYSTEM} refused the connection's refresh token ({what}): reconnect QuickBooks",
        hint="Reconnect the app to the QuickBooks company (Intuit's OAuth consent), then store the new refresh "
        "token in the connection's refresh_token credential.",
        fix=update_credentials(
            "Reconnect QuickBooks: authorise the app again and store the new refresh token.",
            credential="refresh_token",
        ),
    )


class QuickBooksClient:
    def __init__(
        self,
        base_url: str,
        realm_id: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        token_url: str = TOKEN_ENDPOINT_BASE_URL,
        minorversion: str = "75",
        per_second: int = 10,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        policy: RetryPolicy = RetryPolicy(),
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.realm_id = realm_id
        self.token_url = token_url
        self.minorversion = minorversion
        self._client = (client_id, client_secret)
        self.refresh_token = refresh_token
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._sleep = sleep
        self._policy = policy
        self._lock = threading.Lock()
        self._access: str | None = None
        self._expires_at = 0.0
        self._per_second = max(1, per_second)
        self._recent: deque[float] = deque()
        #: called with ``{"refresh_token": new}`` when Intuit rotates the refresh token
        self.on_rotated: Callable[[Mapping[str, str]], None] | None = None
        #: a rotated refresh token not yet accepted by ``on_rotated``
        self._unsaved: dict[str, str] | None = None
        self.requests = 0
        self.refreshes = 0
        self.waited = 0.0

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # --- the API -------------------------------------------------------------------------------
    def query(self, text: str) -> tuple[int, Any]:
        return self._call("GET", "query", params={"query": text})

    def read(self, entity: str, doc_id: str) -> tuple[int, Any]:
        return self._call("GET", f"{entity.lower()}/{doc_id}")

    def write(self, entity: str, body: Mapping[str, Any], *, key: str, operation: str | None = None) -> tuple[int, Any]:
        """Create, update or (``operation="void"``) void; ``key`` becomes the ``requestid``."""
        params = {"requestid": request_id(key)}
        if operation:
            params["operation"] = operation
        return self._call("POST", entity.lower(), params=params, content=exactjson.dumps(dict(body)))

    # --- tokens --------------------------------------------------------------------------------
    def access_token(self, *, force: bool = False) -> str:
        with self._lock:
            self._hand_back()
            if force or self._access is None or time.monotonic() >= self._expires_at - EXPIRY_MARGIN_S:
                self._refresh()
            assert self._access is not None
            return self._access

    def _refresh(self) -> None:
        form = urlencode({"grant_type": "refresh_token", "refresh_token": self.refresh_token}).encode()
        basic = base64.b64encode(f"{self._client[0]}:{self._client[1]}".encode()).decode()
        request = self._http.build_request(
            "POST",
            self.token_url,
            content=form,
            headers={
                "Accept": "application/json",
                "Content-Type": "application/x-www-form-urlencoded",
                "Authorization": f"Basic {basic}",
            },
        )
        self.refreshes += 1

        def attempt() -> tuple[httpx.Response, Any]:
            response = send(self._http, request, system=SYSTEM)
            return response, json_body(response, system=SYSTEM)  # a cut answer is asked again

        try:
            response, body = call_with_retries(attempt, self._policy, sleep=self._slept)
        except AuthFailed as exc:  # 401 from the token endpoint: the app's client id or secret
            raise AuthFailed(
                f"{SYSTEM} refused the app's client id or secret at the token endpoint",
                hint="Check the connection's client_id and client_secret (the app's keys on developer.intuit.com).",
                fix=update_credentials("Store the app's QuickBooks client id and secret.", credential="client_secret"),
            ) from exc
        if response.status_code == 400 or not isinstance(body, Mapping) or "access_token" not in body:
            error = body.get("error") if isinstance(body, Mapping) else None
            raise reconnect_fix(str(error or f"HTTP {response.status_code}"))
        self._access = str(body["access_token"])
        self._expires_at = time.monotonic() + float(body.get("expires_in") or 3600)
        new = body.get("refresh_token")
        if isinstance(new, str) and new and new != self.refresh_token:
            self.refresh_token = new
            self._unsaved = {"refresh_token": new}
            self._hand_back()

    def _hand_back(self) -> None:
        """Give the rotated refresh token to ``on_rotated``; if that fails (the hub's database is
        down), it is given again before the next call, which fails until it is stored."""
        if self._unsaved is not None and self.on_rotated is not None:
            self.on_rotated(self._unsaved)
        self._unsaved = None

    # -------------------------------------------------------------------------------------------
    def _call(
        self, method: str, path: str, *, params: Mapping[str, str] | None = None, content: bytes | None = None
    ) -> tuple[int, Any]:
        url = f"{self.base_url}/v3/company/{self.realm_id}/{path}"
        query = {**(params or {}), "minorversion": self.minorversion}

        def attempt() -> tuple[int, Any]:
            for renewed in (False, True):
                token = self.access_token(force=renewed)
                headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
                if content is not None:
                    headers["Content-Type"] = "application/json"
                request = self._http.build_request(method, url, params=query, content=content, headers=headers)
                self._pace()
                self.requests += 1
                try:
                    response = send(self._http, request, system=SYSTEM)
                except AuthFailed:
                    self._answered()
                    if renewed:
                        raise
                    continue  # the access token expired early or was revoked: refresh once, then again
                except RateLimited as exc:
                    self._answered()
                    if exc.retry_after is None:
                        exc.retry_after = THROTTLE_WAIT_S
                    raise
                except RemoteUnavailable:
                    self._answered()  # a 5xx or a timeout may still have been counted by QBO
                    raise
                self._answered()
                if response.is_success:
                    if not response.content.strip():
                        raise RemoteUnavailable(f"{SYSTEM} sent an empty body for {method} {path}")
                    return response.status_code, _loads(response)
                try:
                    return response.status_code, exactjson.loads(response.content)
                except ValueError:
                    return response.status_code, response.text
            raise AssertionError("unreachable")  # pragma: no cover

        return call_with_retries(attempt, self._policy, sleep=self._slept)

    def _pace(self) -> None:
        """Wait until fewer than ``per_second`` requests were answered in the last second. Requests
        are stamped when their answer arrives (``_answered``) — never earlier than QBO counted
        them — so the client's second never ends before QBO's does."""
        now = time.monotonic()
        while self._recent and self._recent[0] <= now - 1.0:
            self._recent.popleft()
        if len(self._recent) >= self._per_second:
            delay = self._recent[0] + 1.0 + PACE_MARGIN_S - now
            if delay > 0:
                self._slept(delay)
            self._recent.popleft()

    def _answered(self) -> None:
        self._recent.append(time.monotonic())

    def _slept(self, seconds: float) -> None:
        self.waited += seconds
        self._sleep(seconds)


def _loads(response: httpx.Response) -> Any:
    try:
        return exactjson.loads(response.content)
    except ValueError:
        json_body(response, system=SYSTEM)  # raises RemoteUnavailable: a cut body is retried
        raise
