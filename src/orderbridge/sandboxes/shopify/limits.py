"""Shopify's two rate limits on the sandbox's injectable monotonic clock (``state.monotonic``).

The REST leaky bucket (size 40, leak 2/4/20 per second by plan; ``X-Shopify-Shop-Api-Call-Limit``)
and the GraphQL cost bucket (1,000 points, restore 100/200/1,000/2,000 per second by plan; each
response's ``throttleStatus``), so tests can make time pass without sleeping.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

PLANS: dict[str, tuple[float, float]] = {
    # plan: (REST leak per second, GraphQL restore points per second)
    "standard": (2.0, 100.0),
    "advanced": (4.0, 200.0),
    "plus": (20.0, 1000.0),
    "enterprise": (20.0, 2000.0),
}
REST_BUCKET = 40
GRAPHQL_MAX_AVAILABLE = 1000.0


class RateLimits:
    """The store's buckets (mixed into :class:`~.state.ShopifyState`, whose lock guards them)."""

    lock: threading.RLock
    monotonic: Callable[[], float]
    limits: bool
    maximum_available: float
    restore_rate: float
    rest_leak_rate: float
    _points: float
    _points_at: float
    _rest_level: float
    _rest_at: float

    def take_points(self, requested: int) -> tuple[bool, dict[str, float]]:
        """Take ``requested`` GraphQL points if available; return (taken, throttleStatus)."""
        with self.lock:
            now = self.monotonic()
            self._points = min(
                self.maximum_available, self._points + max(0.0, now - self._points_at) * self.restore_rate
            )
            self._points_at = now
            ok = not self.limits or requested <= self._points
            if ok and self.limits:
                self._points -= requested
            return ok, self.throttle_status()

    def refund_points(self, points: int) -> dict[str, float]:
        with self.lock:
            if self.limits:
                self._points = min(self.maximum_available, self._points + points)
            return self.throttle_status()

    def throttle_status(self) -> dict[str, float]:
        return {
            "maximumAvailable": self.maximum_available,
            "currentlyAvailable": math.floor(self._points) if self.limits else self.maximum_available,
            "restoreRate": self.restore_rate,
        }

    def drain_points(self, points: float) -> None:
        """Spend points as another app would (tests of throttling)."""
        with self.lock:
            self.take_points(0)
            self._points = max(0.0, self._points - points)

    def take_rest_call(self) -> tuple[bool, int, float]:
        """REST leaky bucket: (allowed, used after this call, Retry-After seconds when refused)."""
        with self.lock:
            now = self.monotonic()
            self._rest_level = max(0.0, self._rest_level - max(0.0, now - self._rest_at) * self.rest_leak_rate)
            self._rest_at = now
            if not self.limits:
                return True, 1, 0.0
            if self._rest_level + 1 > REST_BUCKET:
                return False, REST_BUCKET, (self._rest_level + 1 - REST_BUCKET) / self.rest_leak_rate
            self._rest_level += 1
            return True, math.ceil(self._rest_level), 0.0
