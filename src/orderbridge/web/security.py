"""What every response carries and how the portal's cookies are signed.

- :class:`SecurityHeaders` is a plain ASGI middleware (no ``BaseHTTPMiddleware``: it adds headers to
  ``http.response.start`` and never buffers a body, so webhook and streaming answers are untouched).
  The Content-Security-Policy allows scripts and styles from the hub itself only — no inline script,
  no inline style, no ``eval`` — which is why the templates carry htmx attributes and no ``<script>``
  of their own, and why htmx's own indicator styles are switched off (``htmx-config`` meta tag).
  Frames are refused (``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``); HSTS is sent only
  when the hub's public URL is https (it would pin a plain-http laptop install otherwise).
- Cookies are signed with :mod:`itsdangerous` under a key derived from the hub's secret key, one
  salt per purpose, so a session cookie cannot be replayed as a CSRF cookie. The session cookie
  holds a random token whose sha256 is the only thing the database keeps (``services/auth.py``):
  signing keeps forged values from reaching the database at all.
- CSRF: every state-changing portal request must carry the session's CSRF token (form field
  ``csrf_token`` or header ``X-CSRF-Token``), compared in constant time. Before sign-in the login
  form is protected the same way by a token in a signed ``ob_csrf`` cookie (double submit).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from itsdangerous import BadSignature, Signer

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SESSION_COOKIE = "ob_session"
CSRF_COOKIE = "ob_csrf"
LANG_COOKIE = "ob_lang"
FLASH_COOKIE = "ob_flash"

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def security_headers(*, https: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-security-policy", CSP.encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
        (b"cross-origin-opener-policy", b"same-origin"),
        (b"cross-origin-resource-policy", b"same-origin"),
    ]
    if https:
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    return headers


class SecurityHeaders:
    """Adds :func:`security_headers` to every HTTP response; pages of the portal and answers of
    the API (anything but ``/static``) are also ``Cache-Control: no-store`` unless they say
    otherwise, so a shared machine's back button shows no order after sign-out."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = security_headers(https=https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                present = {name.lower() for name, _ in raw}
                raw.extend(h for h in self.headers if h[0] not in present)
                if not static and b"cache-control" not in present:
                    raw.append((b"cache-control", b"no-store"))
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, sending)


class CookieSigner:
    """Signs and reads the portal's cookies; one salt per cookie purpose."""

    def __init__(self, secret_key: str) -> None:
        # a key of its own, derived from the hub's secret (which encrypts credentials): the two
        # uses never share key material
        self._key = hashlib.sha256(b"orderbridge/cookies/v1\x00" + secret_key.encode()).digest()

    def sign(self, purpose: str, value: str) -> str:
        # base64url inside the signature: a cookie's value is ASCII, a message may not be (French)
        payload = base64.urlsafe_b64encode(value.encode()).rstrip(b"=")
        return Signer(self._key, salt=purpose).sign(payload).decode()

    def unsign(self, purpose: str, signed: str | None) -> str | None:
        """The value, or None for a missing, forged or malformed cookie."""
        if not signed or len(signed) > 2048:
            return None
        try:
            payload = Signer(self._key, salt=purpose).unsign(signed.encode())
            return base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)).decode()
        except (BadSignature, UnicodeDecodeError, binascii.Error, ValueError):
            return None


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def same_token(expected: str | None, given: str | None) -> bool:
    """Constant-time comparison; a missing token on either side is never a match."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def local_path(target: str | None, default: str = "/") -> str:
    """``target`` when it is a path on this site (the ``next`` after sign-in), else ``default``:
    an absolute URL, a scheme-relative ``//host`` or a backslash trick is an open redirect."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    if any(ord(c) < 32 for c in target):
        return default
    return target
