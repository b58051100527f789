"""An alert episode as dispatch reads it before sending, and the error a transport raises."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orderbridge.errors import RemoteUnavailable
from orderbridge.fixes import Fix


class DeliveryFailed(RemoteUnavailable):
    """One alert could not be delivered to one target; recorded on its delivery row and retried."""

    code = "alert_delivery_failed"


@dataclass(frozen=True)
class Delivery:
    status: str
    attempts: int
    at: datetime


@dataclass(frozen=True)
class Outgoing:
    """One episode to send, as read before sending (a reopen meanwhile makes a new generation)."""

    id: int
    key: str
    kind: str
    subject: str
    body: str
    fixes: tuple[Fix, ...]
    data: dict[str, Any] | None
    generation: int
    state: str
    first_at: datetime
    resolved_at: datetime | None
    deliveries: dict[str, Delivery]

    @property
    def ref(self) -> str:
        """Stable per episode: the same on every retry, so receivers can recognise a repeat."""
        return f"{self.id}.{self.generation}"
