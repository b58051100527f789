"""The error tree, typed by what the caller should do next.

Every error carries a stable ``code`` (for metrics, holds and tests), a human ``hint`` that
names the fix in plain words, and — where OrderBridge can do it — the ``fix`` as data
(:class:`orderbridge.fixes.Fix`), which the CLI renders as the command to run and an alert as a
link; a hint never spells a command. Third-party exceptions (httpx, SQLAlchemy, JSON) are translated into these at the
boundary with ``raise ... from exc`` so callers never branch on library types::

    OrderBridgeError
    ├── RetryLater              transient: try again after ``retry_after`` seconds (or backoff)
    │   ├── RateLimited         the remote said 429 / THROTTLED
    │   └── RemoteUnavailable   5xx, timeout, connection refused, truncated body
    │       └── OutcomeUnknown  a write was sent and its answer lost: read the remote before any resend
    ├── FixConfiguration        the connection cannot work until a person changes something
    │   ├── AuthFailed          credentials rejected or revoked
    │   └── SettingsError       missing or unsafe settings (e.g. default secret key)
    ├── HoldOrder               this order cannot go; hold it with the remote's own message
    │   └── DestinationRejected
    └── InvalidInput            bad input from a user or a file; nothing accepted is lost
        ├── NotFound            no such object for this tenant (another tenant's looks the same)
        ├── Conflict            the object's state does not allow it now (already revoked, in use)
        ├── Forbidden           the signed-in user's or token's role does not allow it
        └── NotSignedIn         no valid session or token
"""

from __future__ import annotations

from orderbridge.fixes import Fix


class OrderBridgeError(Exception):
    """Base of every error OrderBridge raises on purpose."""

    code: str = "error"

    def __init__(self, message: str, *, hint: str = "", code: str | None = None, fix: Fix | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        #: what to do, as data (the CLI renders it as a command, an alert as a link); None when the
        #: hint is all there is to say (a retry OrderBridge makes itself, a setting to change)
        self.fix = fix
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return f"{self.message} — {self.hint}" if self.hint else self.message


class RetryLater(OrderBridgeError):
    code = "retry_later"

    def __init__(
        self,
        message: str,
        *,
        hint: str = "",
        code: str | None = None,
        retry_after: float | None = None,
        fix: Fix | None = None,
    ) -> None:
        super().__init__(message, hint=hint or "OrderBridge retries automatically.", code=code, fix=fix)
        self.retry_after = retry_after


class RateLimited(RetryLater):
    code = "rate_limited"


class RemoteUnavailable(RetryLater):
    code = "remote_unavailable"


class OutcomeUnknown(RemoteUnavailable):
    """A non-idempotent write reached the remote and its answer was lost (timeout, truncated body,
    connection reset, 5xx): it may or may not have been applied. Never resent blindly — the caller
    first reads what the remote now holds (``call_with_retries`` does not retry it)."""

    code = "outcome_unknown"


class FixConfiguration(OrderBridgeError):
    code = "fix_configuration"


class AuthFailed(FixConfiguration):
    """The remote refused the credentials themselves (HTTP 401): every job of the connection fails alike."""

    code = "connection_auth_failed"


class PermissionDenied(FixConfiguration):
    """The credentials are valid but not allowed this operation (HTTP 403: a missing scope or role)."""

    code = "connection_permission_denied"


class SettingsError(FixConfiguration):
    code = "settings_invalid"


class HoldOrder(OrderBridgeError):
    code = "hold_order"


class DestinationRejected(HoldOrder):
    code = "destination_rejected"

    def __init__(self, message: str, *, hint: str = "", status: int | None = None) -> None:
        super().__init__(
            message,
            hint=hint or "Correct the order or the destination's settings, then retry the order.",
        )
        self.status = status


class InvalidInput(OrderBridgeError):
    code = "invalid_input"


class NotFound(InvalidInput):
    code = "not_found"


class Conflict(InvalidInput):
    code = "conflict"


class NoSuchVersion(InvalidInput):
    """A version of an order that the ledger does not have (issue #15: versions and their diffs):
    names the version asked for and the ones there are; ``field`` the parameter that asked."""

    code = "no_such_version"

    def __init__(self, message: str, *, hint: str = "", field: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.field = field


class Forbidden(InvalidInput):
    """A portal user's or an API token's role does not allow the action (not a remote permission:
    that is :class:`PermissionDenied`, which a person fixes in the remote system)."""

    code = "forbidden"


class NotSignedIn(InvalidInput):
    code = "not_signed_in"


class UnusableId(InvalidInput):
    """A record from a channel has no id the hub can key it by (missing, empty, of the wrong kind, too
    long): it cannot be stored without being merged into another order, so nothing is stored."""

    code = "order_id_unusable"
