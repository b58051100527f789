"""The sandbox framework: state with a ledger, fault injection, control routes and runners.

A sandbox is an ASGI app (Starlette) built over a :class:`SandboxState`. It runs

- on a real port (``orderbridge sandbox shopify --port N``, or :func:`run_in_thread` in tests and
  benchmarks), or
- in-process under a real ``httpx.Client`` through :class:`ASGIThreadTransport`.

Faults are queued on the state (directly, or over ``POST /_sandbox/faults`` when the sandbox runs
in another process) and applied by :class:`FaultMiddleware` to matching requests:
``429`` (with ``Retry-After``), ``500``/``502``/``503``, ``timeout`` (the response is delayed past
the client's timeout, then the request runs — on a real port; in-process the client's give-up
cancels it), ``truncate`` (the request runs, its answer is cut mid-JSON) and ``revoke`` (the
credentials stop working until restored). A fault may match on the request body
(``body_contains``), to hit one GraphQL operation on the one GraphQL path. Control routes live
under ``/_sandbox`` and need no credentials; they exist only in sandboxes.

Why hand-written: the fault model and ledger are the point of a sandbox; no library offers them.
``ASGIThreadTransport`` exists because httpx's ``ASGITransport`` is async-only and the hub's
connectors use a synchronous ``httpx.Client``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FAULT_KINDS = ("429", "403", "access_denied", "500", "502", "503", "timeout", "truncate", "revoke")


@dataclass
class Fault:
    kind: str
    path: str = ""  # prefix of the request path; "" matches every non-control path
    count: int = 1  # how many requests it affects; -1 = until cleared
    retry_after: float = 1.0
    delay: float = 30.0  # for "timeout"
    method: str = ""  # "" = any
    #: only requests whose body contains this text ("fulfillmentCreate": that GraphQL mutation alone)
    body_contains: str = ""
    #: matching requests let through before the fault starts (a read before a write passes; the next fails)
    after: int = 0
    #: the chance that a matching request meets the fault (1.0: every one); with ``count=-1`` a
    #: standing share of failures, as a chaos run wants (drawn from the state's seeded generator)
    probability: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(FAULT_KINDS)}")
        if not 0.0 < self.probability <= 1.0:
            raise ValueError(f"probability must be in (0, 1], not {self.probability!r}")


@dataclass
class LedgerEntry:
    at: str
    kind: str
    key: str
    data: dict[str, Any] = field(default_factory=dict)


class SandboxState:
    """Shared state of one sandbox: credentials, ledger, faults. Thread-safe."""

    def __init__(self, *, credentials: set[str] | None = None) -> None:
        self.lock = threading.RLock()
        self.valid_credentials: set[str] = set(credentials or ())
        self.revoked: set[str] = set()
        self.ledger: list[LedgerEntry] = []
        self.faults: list[Fault] = []
        self.requests_seen = 0
        #: faults applied so far, by kind (``GET /_sandbox/state``: what a chaos run injected)
        self.faults_applied: Counter[str] = Counter()
        self._fault_rng = random.Random(0)

    # --- credentials ---------------------------------------------------------------------------
    def credentials_ok(self, presented: str | None) -> bool:
        with self.lock:
            return presented is not None and presented in self.valid_credentials and presented not in self.revoked

    def revoke(self, credential: str | None = None) -> None:
        with self.lock:
            self.revoked |= {credential} if credential else set(self.valid_credentials)

    def restore(self) -> None:
        with self.lock:
            self.revoked.clear()

    # --- ledger --------------------------------------------------------------------------------
    def record(self, kind: str, key: str, **data: Any) -> None:
        with self.lock:
            self.ledger.append(LedgerEntry(datetime.now(UTC).isoformat(), kind, key, data))

    def entries(self, kind: str | None = None) -> list[LedgerEntry]:
        with self.lock:
            return [e for e in self.ledger if kind is None or e.kind == kind]

    # --- faults --------------------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults.clear()

    def wants_body(self) -> bool:
        """Whether a queued fault matches on the request body (which must then be read first)."""
        with self.lock:
            return any(f.body_contains for f in self.faults)

    def take_fault(self, method: str, path: str, body: bytes | None = None) -> Fault | None:
        with self.lock:
            self.requests_seen += 1
            for fault in self.faults:
                if fault.body_contains and (body is None or fault.body_contains.encode() not in body):
                    continue
                if path.startswith(fault.path) and (not fault.method or fault.method == method):
                    if fault.after > 0:
                        fault.after -= 1
                        continue
                    if fault.probability < 1.0 and self._fault_rng.random() >= fault.probability:
                        continue
                    self.faults_applied[fault.kind] += 1
                    if fault.count > 0:
                        fault.count -= 1
                        if fault.count == 0:
                            self.faults.remove(fault)
                    return fault
            return None

    def control_extra(self) -> dict[str, Any]:
        """Sandbox-specific facts for ``GET /_sandbox/state`` (overridden by subclasses)."""
        return {}


class FaultMiddleware:
    """Applies queued faults to non-control requests before (or after) the app answers."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        body: bytes | None = None
        if self.state.wants_body():
            body, receive = await _buffered(receive)
        fault = self.state.take_fault(scope["method"], scope["path"], body)
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.kind == "429":
            body = b'{"errors":"Exceeded rate limit. Please retry later."}'
            await _respond(send, 429, body, [(b"retry-after", str(fault.retry_after).encode())])
        elif fault.kind == "403":  # valid credentials without the permission this request needs
            body = b'{"errors":"[API] This action requires merchant approval for the scope it uses."}'
            await _respond(send, 403, body, [])
        elif fault.kind == "access_denied":  # GraphQL's form of a missing scope: HTTP 200, code ACCESS_DENIED
            body = (
                b'{"errors":[{"message":"Access denied for this field. Required access: an access scope the app '
                b'was not granted.","extensions":{"code":"ACCESS_DENIED"}}],"data":null}'
            )
            await _respond(send, 200, body, [])
        elif fault.kind in ("500", "502", "503"):
            await _respond(send, int(fault.kind), b'{"errors":"Internal Server Error (injected)"}', [])
        elif fault.kind == "timeout":
            await asyncio.sleep(fault.delay)
            await self.app(scope, receive, send)
        elif fault.kind == "revoke":
            self.state.revoke()
            await self.app(scope, receive, send)
        elif fault.kind == "truncate":
            await self._truncated(scope, receive, send)

    async def _truncated(self, scope: Scope, receive: Receive, send: Send) -> None:
        start: Message = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        cut = body[: max(1, len(body) // 2)]
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(cut)).encode()))
        await send({"type": "http.response.start", "status": start.get("status", 200), "headers": headers})
        await send({"type": "http.response.body", "body": cut})


async def _buffered(receive: Receive) -> tuple[bytes, Receive]:
    """Read the whole request body, and a ``receive`` that hands it to the app as if unread."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return body, replay


async def _respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def control_routes(state: SandboxState) -> list[Route]:
    """``/_sandbox`` routes shared by every sandbox (ledger, faults, credentials)."""

    async def ledger(request: Request) -> Response:
        kind = request.query_params.get("kind")
        return JSONResponse([asdict(e) for e in state.entries(kind)])

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            state.clear_faults()
            return JSONResponse({"faults": []})
        if request.method == "POST":
            try:
                state.add_fault(Fault(**(await request.json())))
            except (TypeError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=422)
        with state.lock:
            return JSONResponse({"faults": [asdict(f) for f in state.faults]})

    async def revoke(request: Request) -> Response:
        state.revoke()
        return JSONResponse({"revoked": True})

    async def restore(request: Request) -> Response:
        state.restore()
        return JSONResponse({"revoked": False})

    async def info(request: Request) -> Response:
        with state.lock:
            applied = dict(state.faults_applied)
        return JSONResponse({"requests_seen": state.requests_seen, "faults_applied": applied, **state.control_extra()})

    return [
        Route("/_sandbox/ledger", ledger, methods=["GET"]),
        Route("/_sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_sandbox/credentials/revoke", revoke, methods=["POST"]),
        Route("/_sandbox/credentials/restore", restore, methods=["POST"]),
        Route("/_sandbox/state", info, methods=["GET"]),
    ]


def build_app(state: SandboxState, routes: list[Route]) -> ASGIApp:
    app = Starlette(routes=[*control_routes(state), *routes])
    return FaultMiddleware(app, state)


# --- runners -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningSandbox:
    base_url: str
    port: int
    stop: Callable[[], None]


@contextlib.contextmanager
def run_in_thread(app: ASGIApp, port: int | None = None) -> Iterator[RunningSandbox]:
    """Serve ``app`` over real HTTP on 127.0.0.1 in a daemon thread for the ``with`` block."""
    import uvicorn

    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"sandbox:{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"sandbox on port {port} did not start")
        time.sleep(0.01)

    def stop() -> None:
        server.should_exit = True
        thread.join(timeout=10)

    try:
        yield RunningSandbox(f"http://127.0.0.1:{port}", port, stop)
    finally:
        stop()


def serve_forever(app: ASGIApp, port: int, host: str = "127.0.0.1") -> None:
    import uvicorn

    from orderbridge import heap

    heap.settle()  # the generated store is long-lived: keep the collector from walking it

    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")


class ASGIThreadTransport(httpx.BaseTransport):
    """Synchronous httpx transport that runs an ASGI app on an event loop in a helper thread."""

    def __init__(self, app: ASGIApp) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="asgi-transport", daemon=True)
        self._thread.start()
        self._inner = httpx.ASGITransport(app=app)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        timeout = request.extensions.get("timeout", {}).get("read")

        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            async_request = httpx.Request(request.method, request.url, headers=request.headers, content=body)
            response = await self._inner.handle_async_request(async_request)
            content = await response.aread()
            return response.status_code, response.headers.raw, content

        future = asyncio.run_coroutine_threadsafe(call(), self._loop)
        try:
            status, headers, content = future.result(timeout=timeout)
        except TimeoutError as exc:
            future.cancel()
            raise httpx.ReadTimeout("sandbox did not answer in time", request=request) from exc
        return httpx.Response(status, headers=headers, content=content, request=request)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


def in_process_client(app: ASGIApp, base_url: str = "http://sandbox.local", timeout: float = 10.0) -> httpx.Client:
    return httpx.Client(transport=ASGIThreadTransport(app), base_url=base_url, timeout=timeout)
