"""The only code that speaks HTTP to a WooCommerce store's REST API v3 (``/wp-json/wc/v3``).

Authentication, as WooCommerce decides it (``WC_REST_Authentication``):

- over **HTTPS**: HTTP Basic with the consumer key and secret (``ck_…``/``cs_…``). A store with a
  self-signed certificate (the sandbox's) is trusted through the ``ca_file`` setting — never by
  turning verification off;
- over plain **HTTP**: OAuth 1.0a "one-legged" — the request is signed with HMAC-SHA256 (or
  -SHA1, the ``signature_method`` setting) under the key ``consumer_secret&`` and the oauth
  parameters travel in the query string (WooCommerce also reads an ``Authorization: OAuth``
  header, but servers in front of WordPress often drop that header, which is why its own client
  uses the query string). WooCommerce refuses a timestamp more than 15 minutes from its clock and
  a nonce it has seen. Basic credentials over plain HTTP are ignored by WooCommerce, so the
  client never sends them there.

The OAuth signature is made by **oauthlib** (``oauthlib.oauth1.Client``), a well-kept, spec-complete
implementation of RFC 5849 — signing is exactly the kind of code not to write by hand. WooCommerce's
server builds the same base string (its parameter normalisation is RFC 5849's, written out in PHP),
which the sandbox reproduces independently, and the ``woocommerce`` PyPI client signs alike.

Errors: WooCommerce answers ``{"code", "message", "data": {"status"}}``. 401/403/429/5xx and
transport failures are translated by :func:`orderbridge.connectors.http.send`; a 401 is re-raised
with a hint chosen by WooCommerce's code (a bad signature, a clock off by more than 15 minutes, a
reused nonce, unknown keys). Other 4xx are returned for the connector to judge
(:class:`WooError`). Reads are retried on transient failures; writes (``idempotent=False``) are
resent only when they certainly did not reach the store (a 429, a refused connection) — otherwise
:class:`OutcomeUnknown`, and the caller reads the store first.
"""

from __future__ import annotations

import base64
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx
import orjson
from oauthlib import oauth1

from orderbridge.connectors.http import RetryPolicy, call_with_retries, json_body, reached_remote, send
from orderbridge.errors import AuthFailed, OutcomeUnknown, RetryLater, SettingsError
from orderbridge.fixes import update_credentials

SYSTEM = "WooCommerce"
API_PATH = "/wp-json/wc/v3"
SIGNATURE_METHODS = {"HMAC-SHA256": oauth1.SIGNATURE_HMAC_SHA256, "HMAC-SHA1": oauth1.SIGNATURE_HMAC_SHA1}

#: hints for WooCommerce's 401 answers, by the words of its message
_AUTH_HINTS: tuple[tuple[str, str], ...] = (
    ("timestamp", "WooCommerce refuses OAuth timestamps more than 15 minutes from its own clock: check the clock "
     "of this machine (and of the store's server)."),
    ("nonce", "WooCommerce saw this request's nonce before: something replayed a signed request (every request "
     "OrderBridge makes carries a fresh nonce); if it repeats, check what sits between this machine and the store."),
    ("signature", "The OAuth signature did not match: check the consumer secret, and that the connection's URL is "
     "the store's own address (the signature covers the scheme, host, port and path)."),
    ("consumer key", "WooCommerce does not know this consumer key: create a REST API key (WooCommerce › Settings › "
     "Advanced › REST API) and update the connection's credentials."),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class WooError:
    """A 4xx WooCommerce answered with its error body (outside text: data)."""

    status: int
    code: str
    message: str

    def describe(self) -> str:
        return f"{self.message} ({self.code}, HTTP {self.status})"


@dataclass(slots=True)
class WooResponse:
    status: int
    body: Any
    headers: httpx.Headers

    @property
    def error(self) -> WooError | None:
        if self.status < 400:
            return None
        body = self.body if isinstance(self.body, dict) else {}
        return WooError(self.status, str(body.get("code") or "unknown"), str(body.get("message") or ""))


def trusted_client(ca_file: str, timeout: float) -> httpx.Client:
    """An ``httpx.Client`` that trusts the certificate(s) in ``ca_file`` (a store with a private or
    self-signed certificate) on top of nothing else."""
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise SettingsError(
            f"the WooCommerce connection's ca_file {ca_file!r} cannot be read as certificates: {exc}",
            hint="Set ca_file to the PEM file of the store's certificate (or its CA), or leave it empty.",
        ) from exc
    return httpx.Client(verify=context, timeout=timeout)


class WooClient:
    def __init__(
        self,
        base_url: str,
        consumer_key: str,
        consumer_secret: str,
        *,
        http: httpx.Client,
        sleep: Callable[[float], None] = time.sleep,
        signature_method: str = "HMAC-SHA256",
        policy: RetryPolicy = RetryPolicy(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.site = base_url.rstrip("/")
        self.https = urlsplit(self.site).scheme == "https"
        if signature_method not in SIGNATURE_METHODS:
            raise SettingsError(
                f"unknown signature_method {signature_method!r}",
                hint=f"Use one of {', '.join(SIGNATURE_METHODS)}.",
            )
        self._key = consumer_key
        self._secret = consumer_secret
        self._method = SIGNATURE_METHODS[signature_method]
        self._basic = "Basic " + base64.b64encode(f"{consumer_key}:{consumer_secret}".encode()).decode()
        self._http = http
        self._sleep = sleep
        self._policy = policy
        self._clock = clock
        self.requests = 0

    @property
    def auth_scheme(self) -> str:
        return "basic" if self.https else "oauth1"

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> WooResponse:
        return call_with_retries(lambda: self._once("GET", path, params, None), self._policy, sleep=self._sleep)

    def write(self, method: str, path: str, body: Any) -> WooResponse:
        """A write: resent only when it certainly did not reach the store, else ``OutcomeUnknown``."""

        def attempt() -> WooResponse:
            try:
                return self._once(method, path, None, body)
            except OutcomeUnknown:
                raise
            except RetryLater as exc:
                if reached_remote(exc):
                    raise OutcomeUnknown(
                        f"{method} {path}: the answer was lost ({exc.message}); the store may have applied it",
                        hint="OrderBridge reads the order again before sending anything more.",
                    ) from exc
                raise

        return call_with_retries(attempt, self._policy, sleep=self._sleep)

    def signed_url(self, method: str, url: str, *, timestamp: str | None = None, nonce: str | None = None) -> str:
        """``url`` with its OAuth 1.0a query parameters (for plain-HTTP stores)."""
        signer = oauth1.Client(
            self._key,
            client_secret=self._secret,
            signature_method=self._method,
            signature_type=oauth1.SIGNATURE_TYPE_QUERY,
            timestamp=timestamp or str(int(self._clock())),
            nonce=nonce,
        )
        signed, _headers, _body = signer.sign(url, http_method=method)
        return str(signed)

    def _once(self, method: str, path: str, params: Mapping[str, Any] | None, body: Any) -> WooResponse:
        url = f"{self.site}{API_PATH}{path}"
        if params:
            url += "?" + urlencode([(k, v) for k, v in params.items() if v is not None], quote_via=quote, safe="")
        headers = {"Accept": "application/json", "User-Agent": "OrderBridge"}
        if self.https:
            headers["Authorization"] = self._basic
        else:
            url = self.signed_url(method, url)
        content = None
        if body is not None:
            content = orjson.dumps(body)
            headers["Content-Type"] = "application/json; charset=utf-8"
        request = self._http.build_request(method, httpx.URL(url), headers=headers, content=content)
        self.requests += 1
        try:
            response = send(self._http, request, system=SYSTEM)
        except AuthFailed as exc:
            raise _auth_failed(exc) from exc
        parsed: Any = json_body(response, system=SYSTEM) if response.content else None
        return WooResponse(response.status_code, parsed, response.headers)


def _auth_failed(exc: AuthFailed) -> AuthFailed:
    text = exc.message.lower()
    hint = next((h for words, h in _AUTH_HINTS if words in text), exc.hint)
    return AuthFailed(
        exc.message,
        hint=hint,
        fix=update_credentials("Check the connection's WooCommerce consumer key and secret."),
    )
