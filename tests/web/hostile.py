"""Helpers for hostile deliveries: raw signed bodies, the client's connection, ledger counts, logs.

Shared by the hand-written limit tests and the fuzz test, so both assert the same things: what the
receiver answered, on which keep-alive connection, what the ledger holds afterwards, and which log
records (structlog's and the standard library's, uvicorn's included) were written meanwhile.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import structlog
from sqlalchemy import func, select

from orderbridge.storage.tables import events, orders, webhook_deliveries
from tests.web.conftest import SECRET, Server, sign


def headers_for(body: bytes, *, topic: str = "orders/updated", secret: str | None = SECRET) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Shop-Domain": "sandbox.myshopify.com",
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
    }
    if secret is not None:
        headers["X-Shopify-Hmac-Sha256"] = sign(secret, body)
    return headers


def post_signed(
    server: Server,
    body: bytes | Iterable[bytes],
    *,
    signed_over: bytes | None = None,
    headers: Mapping[str, str | bytes | None] | None = None,
    topic: str = "orders/updated",
    connection: str = "shop",
) -> httpx.Response:
    """POST ``body`` signed with the channel's secret (over ``signed_over`` when it is streamed).

    ``headers`` overrides the defaults; a ``None`` value removes that header.
    """
    raw = body if isinstance(body, bytes) else signed_over
    assert raw is not None, "a streamed body needs signed_over"
    sent: dict[str, str | bytes] = dict(headers_for(raw, topic=topic))
    for name, value in (headers or {}).items():
        sent = {k: v for k, v in sent.items() if k.lower() != name.lower()}
        if value is not None:
            sent[name] = value
    return server.client.post(f"{server.url}{server.path(connection)}", content=body, headers=sent)


def local_port(response: httpx.Response) -> int:
    """The client's own port for this exchange: equal ports mean one keep-alive connection."""
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


def ledger_counts(server: Server) -> tuple[int, int, int]:
    """Rows in ``orders``, ``events`` and ``webhook_deliveries``: what a delivery can store."""
    with server.hub.db.read() as conn:
        return tuple(  # type: ignore[return-value]
            int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (orders, events, webhook_deliveries)
        )


def stored_order(server: Server, external_id: str) -> bool:
    with server.hub.db.read() as conn:
        found = conn.execute(select(orders.c.id).where(orders.c.external_id == external_id)).first()
    return found is not None


@dataclass
class Logs:
    structured: list[dict[str, Any]] = field(default_factory=list)
    records: list[logging.LogRecord] = field(default_factory=list)

    def mark(self) -> tuple[int, int]:
        """Where the logs end now, for :meth:`errors` since then."""
        return len(self.structured), len(self.records)

    def errors(self, since: tuple[int, int] = (0, 0)) -> list[str]:
        """Every error-level line written: structlog entries and standard records (uvicorn's too)."""
        found = [
            f"{e.get('event')}: {e.get('error', '')} {e.get('exc_info', '')}".strip()
            for e in self.structured[since[0] :]
            if e.get("log_level") in ("error", "critical", "exception")
        ]
        found += [f"{r.name}: {r.getMessage()}" for r in self.records[since[1] :] if r.levelno >= logging.ERROR]
        return found


class _Collect(logging.Handler):
    def __init__(self, into: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record)


@contextmanager
def captured_logs() -> Iterator[Logs]:
    """Capture every structlog entry and every standard log record, from every thread.

    uvicorn's loggers do not propagate to the root, so the handler is put on them as well.
    """
    logs = Logs()
    handler = _Collect(logs.records)
    targets = [logging.getLogger(), logging.getLogger("uvicorn")]  # uvicorn.error propagates to uvicorn
    for logger in targets:
        logger.addHandler(handler)
    try:
        with structlog.testing.capture_logs() as entries:
            logs.structured = entries
            yield logs
    finally:
        for logger in targets:
            logger.removeHandler(handler)
