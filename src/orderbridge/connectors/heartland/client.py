"""The only code that speaks HTTP to Heartland Retail: bearer token, paging, retries — and no blind resend.

**Reads** (``GET``) are retried as a whole (send + parse) through
:func:`~orderbridge.connectors.http.call_with_retries`: a 5xx, a timeout, a 429 or a cut body is
asked again. Lists are read page by page (``page``, ``per_page``; ``{results, total, pages}``),
refusing a listing that would never end (a page count that grows, more pages than
:data:`MAX_PAGES`).

**Writes** (``POST``/``PUT``) are *not* idempotent at Heartland — it offers no idempotency key
(api-facts). A write is therefore retried only when it certainly did not reach Heartland (a 429, a
connection never made: :func:`~orderbridge.connectors.http.reached_remote`); any other lost answer
(timeout, reset, 5xx, a cut body) raises :class:`OutcomeUnknown`, and the connector reads what
Heartland holds for the sale's ``public_id`` before anything is sent again. A create answers ``201``
with ``Location``; :func:`created_id` reads the new record's id from it (or from the body, when
Heartland sends the record too), so a create needs no body to be complete.

Status handling: 401, 403, 429 and 5xx are translated by :func:`~orderbridge.connectors.http.send`;
the other statuses come back with the parsed body for the connector to judge (a validation error
holds an order, a 404 on a collection is a wrong base URL).

Why hand-written: no Python client for Heartland Retail exists on PyPI (the vendor's own client
is Ruby), and the connector needs exactly this split of reads and writes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from orderbridge import exactjson
from orderbridge.connectors.http import RetryPolicy, call_with_retries, json_body, reached_remote, send
from orderbridge.errors import OutcomeUnknown, RemoteUnavailable, RetryLater

SYSTEM = "Heartland Retail"
PER_PAGE = 100
#: a listing longer than this many pages is refused rather than read forever
MAX_PAGES = 1000


class HeartlandClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        policy: RetryPolicy = RetryPolicy(),
        timeout: float = 30.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        self._owns_http = http is None
        self._http = http if http is not None else httpx.Client(timeout=timeout)
        self._sleep = sleep
        self._policy = policy
        self.requests = 0
        self.writes = 0

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    # --- reads ---------------------------------------------------------------------------------
    def get(self, path: str, params: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        def attempt() -> tuple[int, Any]:
            response = self._send("GET", path, params=params)
            if response.is_success:
                return response.status_code, json_body(response, system=SYSTEM)
            return response.status_code, _loose(response)

        return call_with_retries(attempt, self._policy, sleep=self._sleep)

    def pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[tuple[int, Any]]:
        """Each page of a listing as ``(status, body)``; a non-2xx page is yielded and ends it."""
        page = 1
        while True:
            status, body = self.get(path, {**(params or {}), "page": page, "per_page": PER_PAGE})
            yield status, body
            if status != 200 or not isinstance(body, Mapping):
                return
            pages = body.get("pages")
            if not isinstance(pages, int) or page >= pages or not body.get("results"):
                return
            if page >= MAX_PAGES:
                raise RemoteUnavailable(f"{SYSTEM} listed more than {MAX_PAGES} pages of {path}: refusing to go on")
            page += 1

    # --- writes --------------------------------------------------------------------------------
    def write(self, method: str, path: str, body: Mapping[str, Any]) -> tuple[int, Any, httpx.Headers]:
        """One ``POST``/``PUT``: resent only when it never reached Heartland, else ``OutcomeUnknown``."""
        content = exactjson.dumps(dict(body))

        def attempt() -> tuple[int, Any, httpx.Headers]:
            try:
                response = self._send(method, path, content=content)
            except RetryLater as exc:
                if reached_remote(exc):
                    raise OutcomeUnknown(
                        f"{SYSTEM} may have applied {method} {path}: {exc.message}",
                        hint="OrderBridge reads what Heartland holds for the sale before sending anything again.",
                    ) from exc
                raise
            self.writes += 1
            return response.status_code, _loose(response), response.headers

        return call_with_retries(attempt, self._policy, sleep=self._sleep)

    # -------------------------------------------------------------------------------------------
    def _send(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, content: bytes | None = None
    ) -> httpx.Response:
        headers = dict(self._headers)
        if content is not None:
            headers["Content-Type"] = "application/json"
        request = self._http.build_request(
            method, f"{self.base_url}{path}", params=_params(params), content=content, headers=headers
        )
        self.requests += 1
        return send(self._http, request, system=SYSTEM)


def created_id(status: int, body: Any, headers: httpx.Headers) -> int | None:
    """The id of the record a ``201`` made: the last segment of ``Location``, else the body's ``id``."""
    location = headers.get("location", "")
    tail = location.rstrip("/").rsplit("/", 1)[-1]
    if tail.isdigit():
        return int(tail)
    if isinstance(body, Mapping) and str(body.get("id", "")).isdigit():
        return int(body["id"])
    return None


def filter_param(condition: Mapping[str, Any]) -> str:
    """``_filter=<JSON>`` as Heartland reads it (``{"public_id": "#1001"}``, ``{"$in": [...]}``)."""
    return exactjson.dumps(dict(condition)).decode()


def _params(params: Mapping[str, Any] | None) -> list[tuple[str, str | int | float | bool | None]] | None:
    if not params:
        return None
    out: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in params.items():
        for one in value if isinstance(value, list | tuple) else [value]:
            out.append((key, str(one).lower() if isinstance(one, bool) else str(one)))
    return out


def _loose(response: httpx.Response) -> Any:
    """An answer's body, however it looks: JSON when it is, the text when not, None when empty."""
    if not response.content.strip():
        return None
    try:
        return exactjson.loads(response.content)
    except ValueError:
        return response.text
