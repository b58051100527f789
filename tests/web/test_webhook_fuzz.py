"""Fuzz the webhook receiver over real HTTP: no input gets a 5xx, logs an error, or half-stores.

Hypothesis draws signed deliveries and posts each one to the real receiver (uvicorn on 127.0.0.1,
one keep-alive ``httpx.Client``) in front of a real hub: SQLite always, PostgreSQL when reachable
(fewer examples there). The bodies are

- REST orders as the Shopify sandbox makes them, then mutated: a value anywhere replaced by one of
  the wrong type, a huge or unicode or control-character or HTML string, an extreme number, an
  unknown enum value or a deep nest; fields and ids removed, ids of every shape;
- the same orders mangled as text: ``NaN``/``Infinity``, a repeated key, invalid UTF-8, a byte
  order mark, a truncation, trailing garbage, nesting thousands deep;
- arbitrary JSON, and arbitrary bytes;

sent with a Content-Length or chunked, under order and other topics, with headers missing or
hostile now and then, a few unsigned or forged, and some replaying an earlier delivery's id. The
receiver's body limit is set to 256 KiB for the run, so the 413 path (both framings) is reached by
cheap bodies as well as the others.

For every input: the status is below 500; no error-level log record is written (structlog's or
uvicorn's — an exception escaping the app is one); a 4xx, a replay and an ignored topic stored
nothing (``orders``, ``events``, ``webhook_deliveries`` unchanged); a 2xx that says an order was
stored names an order the ledger has. The run prints how many inputs it tried, by status — also in
pytest's terminal summary.

``ORDERBRIDGE_FUZZ_EXAMPLES`` sets the number of examples on SQLite (default 2,000, CI's run);
PostgreSQL gets an eighth of it, at least 150.
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shopify import create_sandbox
from orderbridge.services.connections import add_connection
from tests.scoped import tenant
from tests.summaries import STORED, fuzz_line
from tests.web.conftest import SECRET, Server, sign
from tests.web.hostile import captured_logs, ledger_counts, stored_order

EXAMPLES = int(os.environ.get("ORDERBRIDGE_FUZZ_EXAMPLES", "2000"))
PG_EXAMPLES = max(150, EXAMPLES // 8)
BODY_LIMIT = 256 * 1024

ORDER_TOPICS = ("orders/create", "orders/updated", "orders/paid", "orders/cancelled", "orders/fulfilled")

# --- what a hostile store sends ----------------------------------------------------------------


@cache
def templates() -> tuple[dict[str, Any], ...]:
    """Three sandbox orders (1, 3 and 12 lines) to mutate; made once per session."""
    made = []
    for lines in (1, 3, 12):
        state, _app = create_sandbox(orders=0, seed=11, limits=False)
        state.lines_per_order = lines
        made.append(state.add_order())
    return tuple(made)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value`` (keys and list indexes)."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, member in value.items():
            found += paths(member, (*prefix, key))
    elif isinstance(value, list):
        for index, member in enumerate(value):
            found += paths(member, (*prefix, index))
    return found


@cache
def template_paths() -> tuple[tuple[tuple[Any, ...], ...], ...]:
    return tuple(tuple(p for p in paths(t) if p != ("id",)) for t in templates())  # ids: their own action


HOSTILE_TEXT = [
    "",
    " ",
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "[link=https://evil.example]click[/link]",
    "\x1b[2J\x1b]0;pwned\x07",
    "\r\n\t\x0b\x0c\x7f\x85\u2028\u2029",
    "\u202eRTL override",
    "Ω≈ç√∫˜µ≤≥÷ 日本語 🦄🏳️‍🌈 Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o̙̔ͮ̇͐̇",
    "\ufeffbom inside",
    "gid://shopify/Order/820982911946154508",
    "-1",
    "1e999999",
    "NaN",
    "0x10",
    "unknown_enum_value",
    "PAID",
    "\\u0000",
    "%00%0d%0a",
    "'; DROP TABLE orders; --",
]
EXTREME_NUMBERS: list[Any] = [
    0,
    -1,
    -0.0,
    2**31,
    2**53 + 1,
    2**63 - 1,
    -(2**63),
    2**63,
    -(2**63) - 1,
    10**30,
    1e308,
    -1e308,
    5e-324,
    0.1 + 0.2,
    True,
    False,
]

huge_text = st.tuples(st.sampled_from(["x", "é", "日", "🦄", "<b>", "\x1b"]), st.integers(1_000, 300_000)).map(
    lambda t: t[0] * (t[1] // len(t[0].encode()))
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(HOSTILE_TEXT),
    st.sampled_from(EXTREME_NUMBERS),
)
values = st.one_of(
    scalars,
    huge_text,
    st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=8,
    ),
    st.integers(2, 2_000).map(lambda n: _Deep(n)),
)
ids = st.one_of(
    st.integers(),
    st.sampled_from(
        [None, "", "820982911946154508", "gid://shopify/Order/820982911946154508", -5, 0, 1.5, True, [1], {"id": 1}]
    ),
    st.text(max_size=200),
)


class _Deep:
    """A nest too deep for the standard encoder: written as text when the body is encoded."""

    def __init__(self, levels: int) -> None:
        self.levels = levels


def encode(payload: Any) -> bytes:
    deep: list[_Deep] = []

    def default(value: Any) -> str:
        if isinstance(value, _Deep):
            deep.append(value)
            return f"__deep_{len(deep) - 1}__"
        raise TypeError(type(value).__name__)

    body = json.dumps(payload, default=default, ensure_ascii=False).encode("utf-8", "surrogatepass")
    for i, nest in enumerate(deep):
        body = body.replace(f'"__deep_{i}__"'.encode(), b"[" * nest.levels + b"]" * nest.levels)
    return body


def put(order: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    *parents, last = path
    target: Any = order
    for step in parents:
        target = target[step]
    target[last] = value


def drop(order: dict[str, Any], path: tuple[Any, ...]) -> None:
    *parents, last = path
    target: Any = order
    for step in parents:
        target = target[step]
    del target[last]


@st.composite
def mutated_orders(draw: st.DrawFn) -> bytes:
    """A sandbox order with a few of its values replaced, removed or added, as JSON bytes."""
    which = draw(st.integers(0, len(templates()) - 1))
    order = copy.deepcopy(templates()[which])
    order["id"] = draw(st.integers(1, 2**40))  # its own order, unless its id is mutated below
    known = template_paths()[which]
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["replace", "replace", "remove", "add", "id", "enum", "line"]))
        path = draw(st.sampled_from(known))
        try:
            if action == "replace":
                put(order, path, draw(values))
            elif action == "remove":
                drop(order, path)
            elif action == "add":
                order[draw(st.text(max_size=30))] = draw(values)
            elif action == "id":
                if draw(st.booleans()):
                    order.pop("id", None)
                else:
                    order["id"] = draw(ids)
            elif action == "enum":
                field = draw(st.sampled_from(["financial_status", "fulfillment_status", "currency", "cancel_reason"]))
                order[field] = draw(st.one_of(st.sampled_from(HOSTILE_TEXT), st.text(max_size=20), scalars))
            else:
                line = draw(st.sampled_from(order.get("line_items") or [{}]))
                if isinstance(line, dict):
                    field = draw(st.sampled_from(["quantity", "price", "sku", "id", "fulfillable_quantity"]))
                    line[field] = draw(st.one_of(st.sampled_from(EXTREME_NUMBERS), st.sampled_from(HOSTILE_TEXT)))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced the path: mutate elsewhere
    return encode(order)


@st.composite
def mangled_text(draw: st.DrawFn) -> bytes:
    """A valid order's bytes, broken as text."""
    order = copy.deepcopy(draw(st.sampled_from(templates())))
    order["id"] = draw(st.integers(1, 2**40))
    body = json.dumps(order).encode()
    how = draw(st.sampled_from(["nan", "dup", "utf8", "bom", "truncate", "garbage", "deep", "dupid"]))
    if how == "nan":
        literal = draw(st.sampled_from([b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e99999"]))
        return body.replace(b'"total_price": "', b'"total_price": ' + literal + b', "x": "', 1)
    if how in ("dup", "dupid"):
        key = b'"id"' if how == "dupid" else b'"' + draw(st.sampled_from(sorted(order))).encode() + b'"'
        return body[:-1] + b", " + key + b": " + json.dumps(draw(scalars)).encode() + b"}"
    if how == "utf8":
        at = draw(st.integers(0, len(body)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80\x80", b"\x00"]))
        return body[:at] + junk + body[at:]
    if how == "bom":
        return b"\xef\xbb\xbf" + body
    if how == "truncate":
        return body[: draw(st.integers(0, len(body) - 1))]
    if how == "garbage":
        return body + draw(st.sampled_from([b"x", b" {}", b"]", b"\x00", b",", b"\n{}\n"]))
    levels = draw(st.integers(30, 3_000))
    return body[:-1] + b', "note_attributes": ' + b"[" * levels + b"]" * levels + b"}"


@st.composite
def near_the_limit(draw: st.DrawFn) -> bytes:
    """A valid order padded to within a few bytes of the body limit, on either side of it."""
    order = copy.deepcopy(draw(st.sampled_from(templates())))
    order["id"] = draw(st.integers(1, 2**40))
    bare = len(json.dumps({**order, "note": ""}).encode())
    order["note"] = "n" * max(0, BODY_LIMIT - bare + draw(st.integers(-3, 3)))
    return json.dumps(order).encode()


#: how often each kind of body is drawn: mostly orders (mutated, then mangled), and the rest
BODY_KINDS = {"mutated order": 10, "mangled text": 4, "near the limit": 1, "arbitrary JSON": 2, "arbitrary bytes": 1}
_BODIES = {
    "mutated order": mutated_orders(),
    "mangled text": mangled_text(),
    "near the limit": near_the_limit(),
    "arbitrary JSON": values.map(encode),
    "arbitrary bytes": st.binary(max_size=2_000),
}


@st.composite
def bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from([k for k, weight in BODY_KINDS.items() for _ in range(weight)]))
    return draw(_BODIES[kind])


HEADER_CHARS = [chr(c) for c in range(0x21, 0x7F)] + [chr(c) for c in range(0xA0, 0x100)]
header_values = st.text(alphabet=st.sampled_from(HEADER_CHARS), max_size=300).map(lambda s: s.encode("latin-1"))


@st.composite
def deliveries(draw: st.DrawFn) -> tuple[bytes, dict[str, bytes], bool]:
    """A body, its headers (signed over the body, mostly intact) and whether to send it chunked."""
    body = draw(bodies())
    headers: dict[str, bytes] = {
        "Content-Type": b"application/json",
        "X-Shopify-Topic": draw(st.sampled_from(ORDER_TOPICS)).encode(),
        "X-Shopify-Webhook-Id": str(uuid.uuid4()).encode(),
        "X-Shopify-Shop-Domain": b"sandbox.myshopify.com",
        "X-Shopify-Triggered-At": datetime.now(UTC).isoformat().encode(),
        "X-Shopify-Hmac-Sha256": sign(SECRET, body).encode(),
    }
    if draw(st.integers(0, 9)) == 0:  # one in ten: a replay of one of a few delivery ids
        headers["X-Shopify-Webhook-Id"] = f"fuzz-replay-{draw(st.integers(0, 3))}".encode()
    if draw(st.integers(0, 5)) == 0:  # one in six: something wrong with the headers as well
        name = draw(st.sampled_from(sorted(headers)))
        if draw(st.booleans()):
            del headers[name]
        elif name == "X-Shopify-Topic":
            headers[name] = draw(st.sampled_from([b"orders/delete", b"products/update", b"", b"ORDERS_CREATE"]))
        else:
            headers[name] = draw(header_values)
    return body, headers, draw(st.integers(0, 3)) == 0


# --- the run -------------------------------------------------------------------------------------

TRIED: dict[str, Counter[str]] = {}


@pytest.fixture
def store_url(server: Server) -> Iterator[str]:
    """The receiver's address for a channel whose store is a running Shopify sandbox.

    Real, and needed: two deliveries of one order with the same ``updated_at`` and other content
    make the receiver ask the store which is current, and that answer must come back at once.
    """
    _state, app = create_sandbox(orders=0, seed=13, limits=False, api_secret=SECRET)
    with run_in_thread(app) as running:
        credentials = {"access_token": "shpat_sandbox", "api_secret": SECRET}
        add_connection(tenant(server.hub), "fuzz", "shopify", running.base_url, credentials)
        yield f"{server.url}/webhooks/shopify/fuzz"


def test_the_receiver_answers_every_fuzzed_delivery_below_500_and_stores_only_what_it_accepts(
    server: Server, store_url: str
) -> None:
    backend = server.hub.db.engine.dialect.name
    examples = EXAMPLES if backend == "sqlite" else PG_EXAMPLES
    server.hub.settings = server.hub.settings.model_copy(update={"webhook_max_body_bytes": BODY_LIMIT})
    counts: Counter[str] = Counter()
    TRIED[backend] = counts
    url = store_url

    with captured_logs() as logs:

        @settings(
            max_examples=examples,
            deadline=None,
            suppress_health_check=[
                HealthCheck.function_scoped_fixture,
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
            ],
        )
        @given(deliveries())
        def one(delivery: tuple[bytes, dict[str, bytes], bool]) -> None:
            body, headers, chunked = delivery
            before = ledger_counts(server)
            mark = logs.mark()
            content: Any = iter([body[i : i + 8192] for i in range(0, len(body), 8192)]) if chunked else body
            response = server.client.post(url, content=content, headers=headers)
            counts[str(response.status_code)] += 1
            assert response.status_code < 500, (response.status_code, response.text, body[:300])
            assert logs.errors(mark) == [], (logs.errors(mark), body[:300])
            assert response.headers["content-type"] == "application/json", response.text  # the app answered
            answer = response.json()
            counts[answer["outcome"]] += 1
            if response.status_code >= 400:
                assert ledger_counts(server) == before, (response.text, body[:300])
            elif answer["outcome"] in STORED:
                assert stored_order(server, answer["external_id"]), answer
            elif answer["outcome"] == "duplicate" or (
                answer["outcome"] == "ignored" and headers.get("X-Shopify-Topic") != b"orders/delete"
            ):
                assert ledger_counts(server) == before, answer

        one()

    line = fuzz_line(backend, counts)
    print(line)
    # hypothesis may skip a draw it has already run; with many examples that is a few percent
    assert sum(n for k, n in counts.items() if k.isdigit()) >= min(examples, 2_000) * 0.9, line
    if examples >= 1_000:  # enough draws to reach every kind of answer
        assert all(counts[s] for s in ("200", "400", "401", "413", "422")), line
