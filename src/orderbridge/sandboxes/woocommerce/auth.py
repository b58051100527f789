"""How the sandbox authenticates a REST request, as WooCommerce's ``WC_REST_Authentication`` does.

- The request is "over HTTPS" when the ASGI scope's scheme is ``https`` — the sandbox served with
  its self-signed certificate (:mod:`.tls`), or an in-process client whose base URL is
  ``https://…``. There, HTTP Basic (``consumer_key:consumer_secret``) or the ``consumer_key`` /
  ``consumer_secret`` query parameters authenticate.
- Over plain HTTP, Basic credentials are ignored (WooCommerce only reads them when ``is_ssl()``)
  and OAuth 1.0a one-legged is required, from the query string or an ``Authorization: OAuth``
  header. Checked in WooCommerce's order: the parameters are all there, the consumer key is known,
  the signature method is HMAC-SHA1 or HMAC-SHA256, the signature matches, the timestamp is within
  15 minutes of the sandbox's clock, and the nonce was not used before.

The signature check is a re-statement of WooCommerce's PHP (``check_oauth_signature``), quirks
included, written from its documented algorithm rather than with oauthlib: the connector signs with
oauthlib, and a sandbox that verified with the same library would prove nothing about it. The base
string is ``METHOD&rawurlencode(url)&`` + the parameters sorted by key (``strcmp``), each key and
value ``rawurlencode(rawurldecode(…))`` with ``%`` encoded again, joined by ``%3D`` and ``%26``;
the key is ``consumer_secret&``; the comparison is constant-time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote, unquote

from orderbridge.sandboxes.woocommerce.state import Refused, WooState

WINDOW_S = 15 * 60
_REQUIRED = ("oauth_consumer_key", "oauth_nonce", "oauth_signature", "oauth_signature_method", "oauth_timestamp")


def _error(message: str) -> Refused:
    return Refused(401, "woocommerce_rest_authentication_error", message)


def _raw(value: str) -> str:
    """PHP's ``rawurlencode``: every byte but ``A-Za-z0-9-_.~`` percent-encoded."""
    return quote(value, safe="~")


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _oauth_header(header: str | None) -> dict[str, str]:
    if not header or header[:6].lower() != "oauth ":
        return {}
    out: dict[str, str] = {}
    for part in header[6:].split(","):
        key, _, value = part.strip().partition("=")
        if key.startswith("oauth_"):
            out[key] = unquote(value.strip().strip('"'))
    return out


def base_string(method: str, url: str, params: Mapping[str, str]) -> str:
    normalized = []
    for key in sorted(params):  # PHP's uksort with strcmp: byte order
        k = _raw(unquote(key)).replace("%", "%25")
        v = _raw(unquote(params[key])).replace("%", "%25")
        normalized.append(f"{k}%3D{v}")
    return f"{method.upper()}&{_raw(url)}&{'%26'.join(normalized)}"


def authenticate(
    state: WooState, *, scheme: str, method: str, url: str, query: str, headers: Mapping[str, str]
) -> tuple[str, str]:
    """``(consumer key, "basic" | "oauth1")`` of an authentic request, else :class:`Refused` (401)."""
    params = dict(parse_qsl(query, keep_blank_values=True))  # PHP's $_GET: decoded once, last one wins
    if scheme == "https":
        basic = _basic(headers.get("authorization"))
        if basic is None and "consumer_key" in params:
            basic = (params["consumer_key"], params.get("consumer_secret", ""))
        if basic is not None:
            key, secret = basic
            if key != state.consumer_key or not state.credentials_ok(key):
                raise _error("Consumer key is invalid.")
            if not hmac.compare_digest(secret.encode(), state.consumer_secret.encode()):
                raise _error("Consumer secret is invalid.")
            return key, "basic"
    params.update(_oauth_header(headers.get("authorization")))
    if not any(k.startswith("oauth_") for k in params):
        raise Refused(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
    for name in _REQUIRED:
        if not params.get(name):
            raise _error(f"Missing OAuth parameter {name}")
    key = params["oauth_consumer_key"]
    if key != state.consumer_key or not state.credentials_ok(key):
        raise _error("Consumer key is invalid.")
    given = unquote(params.pop("oauth_signature").replace(" ", "+"))
    method_name = params["oauth_signature_method"]
    if method_name not in ("HMAC-SHA1", "HMAC-SHA256"):
        raise _error("Invalid signature - signature method is invalid.")
    digest = hashlib.sha1 if method_name == "HMAC-SHA1" else hashlib.sha256
    text = base_string(method, url, params)
    expected = base64.b64encode(hmac.new(f"{state.consumer_secret}&".encode(), text.encode(), digest).digest())
    if not hmac.compare_digest(expected, given.encode()):
        state.record("oauth_refused", key, why="signature", base_string=text)
        raise _error("Invalid signature - provided signature does not match.")
    try:
        timestamp = int(params["oauth_timestamp"])
    except ValueError:
        raise _error("Invalid timestamp.") from None
    now = int(state.clock().timestamp())
    if not now - WINDOW_S <= timestamp <= now + WINDOW_S:
        raise _error("Invalid timestamp.")
    if not state.use_nonce(key, params["oauth_nonce"], timestamp, WINDOW_S):
        raise _error("Invalid nonce - nonce has already been used.")
    return key, "oauth1"
