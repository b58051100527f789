"""Hand-written hostile webhook bodies and headers through the hub's real receiver (uvicorn on a real
port, one keep-alive client), on SQLite and PostgreSQL, with the ShipStation sandbox as destination.

These are what no store's API would hand the sync but a sender can put on the wire: bodies that are
not JSON, or JSON no parser should trust (``NaN``, a repeated key, a lone surrogate, nesting
thousands deep), a body of 20 MB, ids of every shape, values of the wrong type, headers no column
holds. Each body is signed with the channel's secret (so the receiver judges its content, not its
signature) unless the case is about the signature. Plain orders are delivered between them, on
the same connection, and must be stored and posted once.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from orderbridge.runtime.worker import run_cycle
from orderbridge.services.hub import Hub
from orderbridge.services.sync import sync_channel
from tests.adversarial.cases import LINE
from tests.adversarial.harness import (
    Expect,
    World,
    assert_quiet,
    assert_terminal_safe,
    held,
    judge,
    posted,
    refused,
)
from tests.adversarial.harness import world as make_world
from tests.scoped import cid, tenant

Json = dict[str, Any]


@dataclass(frozen=True)
class BodyCase:
    name: str
    #: the sandbox order's REST JSON → the body to send (bytes as they go on the wire, or JSON)
    make: Callable[[Json], bytes | Json]
    expect: Expect
    headers: dict[str, str] = field(default_factory=dict)
    #: sign the body with a wrong secret, or not at all
    signature: str | None = "good"


def _text(order: Json) -> bytes:
    return json.dumps(order).encode()


def _set(**changes: Any) -> Callable[[Json], Json]:
    return lambda o: {**o, **changes}


def _without(key: str) -> Callable[[Json], Json]:
    return lambda o: {k: v for k, v in o.items() if k != key}


def _line(**changes: Any) -> Callable[[Json], Json]:
    def make(o: Json) -> Json:
        o = copy.deepcopy(o)
        o["line_items"][0].update(changes)
        return o

    return make


def _raw(edit: Callable[[bytes], bytes]) -> Callable[[Json], bytes]:
    return lambda o: edit(_text(o))


def _nested(depth: int) -> Callable[[Json], bytes]:
    return _raw(lambda b: b[:-1] + b', "x_extra": ' + b"[" * depth + b"]" * depth + b"}")


def _gid(o: Json) -> Json:
    return {**o, "id": f"gid://shopify/Order/{o['id']}"}


def _duplicate_line_id(o: Json) -> Json:
    o = copy.deepcopy(o)
    o["line_items"] = [o["line_items"][0], {**o["line_items"][0], "sku": "CAP-NVY", "quantity": 1}]
    return o


def _gid_lines(o: Json) -> Json:
    o = copy.deepcopy(o)
    for li in o["line_items"]:
        li["id"] = f"gid://shopify/LineItem/{li['id']}"
    return o


BAD_ID = "no usable Shopify id"
HUGE = 20 * 1024 * 1024

BODY_CASES: tuple[BodyCase, ...] = (
    # --- ids: a payload without a usable id is refused, nothing stored ---
    BodyCase("id missing", _without("id"), refused(400, BAD_ID)),
    BodyCase("id null", _set(id=None), refused(400, BAD_ID)),
    BodyCase("id empty", _set(id=""), refused(400, BAD_ID)),
    BodyCase("id of another resource", _set(id="gid://shopify/Product/5"), refused(400, BAD_ID)),
    BodyCase("id that looks like SQL", _set(id="12; DROP TABLE orders"), refused(400, BAD_ID)),
    BodyCase("id of 101 digits", _set(id="9" * 101), refused(400, BAD_ID)),
    BodyCase("negative id", _set(id=-4), refused(400, BAD_ID)),
    BodyCase("id true", _set(id=True), refused(400, BAD_ID)),
    BodyCase("id a list", _set(id=[1]), refused(400, BAD_ID)),
    BodyCase("id an object", _set(id={"id": 1}), refused(400, BAD_ID)),
    BodyCase("id a fraction", _set(id=1.5), refused(400, BAD_ID)),
    BodyCase("id a whole float", lambda o: {**o, "id": float(o["id"])}, refused(400, BAD_ID)),
    BodyCase("id of 2^63", _set(id=2**63), refused(422, "64 bits")),
    # --- ids in the other forms Shopify uses are the same order ---
    BodyCase("id as a gid", _gid, posted()),
    BodyCase("id as a numeric string", lambda o: {**o, "id": str(o["id"])}, posted()),
    # --- sizes and nesting ---
    BodyCase("body of 20 MB", lambda o: {**o, "note": "n" * HUGE}, refused(413)),
    BodyCase("nesting 5,000 deep", _nested(5000), refused()),
    BodyCase("nesting 40 deep", _nested(40), refused()),
    BodyCase("nesting 20 deep in an unknown field", _nested(20), posted()),
    BodyCase("1,000 unknown keys", lambda o: {**o, **{f"x_{i}": i for i in range(1000)}}, posted()),
    BodyCase("note of 1 MB", lambda o: {**o, "note": "n" * 1_000_000}, held("value_too_long", "note")),
    # --- text no parser should trust ---
    BodyCase("NaN literal", _raw(lambda b: b[:-1] + b', "x_nan": NaN}'), refused()),
    BodyCase("Infinity literal", _raw(lambda b: b[:-1] + b', "x_inf": -Infinity}'), refused()),
    BodyCase("number of 1e400", _raw(lambda b: b[:-1] + b', "x_big": 1e400}'), refused()),
    BodyCase("quantity of 1e308", _line(quantity=1e308), refused()),
    BodyCase("quantity of 2^64", _line(quantity=2**64), refused()),
    BodyCase("invalid UTF-8", _raw(lambda b: b.replace(b'"name": "', b'"name": "\xff\xfe', 1)), refused()),
    BodyCase("overlong UTF-8 for a slash", _raw(lambda b: b.replace(b'"name": "', b'"name": "\xc0\xaf', 1)), refused()),
    BodyCase("byte order mark", _raw(lambda b: b"\xef\xbb\xbf" + b), refused()),
    BodyCase("lone surrogate", _raw(lambda b: b.replace(b'"name": "', b'"name": "\\ud800', 1)), refused()),
    BodyCase("repeated id key", _raw(lambda b: b[:-1] + b', "id": 1}'), refused()),
    BodyCase("truncated", _raw(lambda b: b[: len(b) // 2]), refused()),
    BodyCase("trailing garbage", _raw(lambda b: b + b" {}"), refused()),
    BodyCase("top-level array", lambda o: [o], refused()),  # type: ignore[arg-type, return-value]
    BodyCase("top-level string", _raw(lambda _b: b'"order"'), refused()),
    BodyCase("empty body", _raw(lambda _b: b""), refused()),
    BodyCase("raw NUL byte", _raw(lambda b: b.replace(b'"name": "', b'"name": "\x00', 1)), refused()),
    BodyCase(
        "body in Latin-1", _raw(lambda b: b.replace(b'"name": "', '"name": "Café '.encode("latin-1"), 1)), refused()
    ),
    BodyCase("body in UTF-16", _raw(lambda b: b.decode().encode("utf-16")), refused()),
    BodyCase("raw control byte in a string", _raw(lambda b: b.replace(b'"name": "', b'"name": "\x1b', 1)), refused()),
    # --- signatures and headers ---
    BodyCase("forged signature", _text, refused(401), signature="forged"),
    BodyCase("unsigned", _text, refused(401), signature=None),
    BodyCase("webhook id of 121 characters", _text, refused(400), headers={"X-Shopify-Webhook-Id": "w" * 121}),
    BodyCase("topic of 70 characters", _text, refused(400), headers={"X-Shopify-Topic": "orders/" + "x" * 63}),
    # --- readable JSON, hostile values: stored and held by name, or posted ---
    BodyCase("name with escapes written as JSON escapes", _set(name="#1\u001b]0;owned\u0007\u001b[2J"), posted()),
    BodyCase("NUL written as a JSON escape", _set(name="#10\x0001"), held("invalid_text", "number")),
    BodyCase("SKU with a NUL written as a JSON escape", _line(sku="TEE\x00BLK"), held("invalid_text", "lines.sku")),
    BodyCase("currency that is no ISO code", _set(currency="\u202eDSU"), held("invalid_order", "currency")),
    BodyCase("name with Rich markup and HTML", _set(name="#[link=https://e.example]<b>x</b>[/link]"), posted()),
    BodyCase("line items an object", _set(line_items={"0": LINE}), held("invalid_order")),
    BodyCase("line items null", _set(line_items=None), held("invalid_order")),
    BodyCase("quantity in words", _line(quantity="three"), held("invalid_order")),
    BodyCase("price a list", _line(price=[]), held("invalid_order")),
    BodyCase("sku a number", _line(sku=12345), held("invalid_order")),
    BodyCase("shipping address a list", _set(shipping_address=["1 Main St"]), held("invalid_order")),
    BodyCase("update time in words", _set(updated_at="yesterday"), held("invalid_order")),
    BodyCase("financial status a number", _set(financial_status=42), held("unknown_status", "financial_status=42")),
    BodyCase("unknown financial status", _set(financial_status="PAID_IN_GOLD"), held("unknown_status", "PAID_IN_GOLD")),
    BodyCase("negative total", _set(total_price="-1.00"), held("invalid_amount", "total")),
    BodyCase("quantity 0", _line(quantity=0), held("invalid_quantity")),
    BodyCase("quantity of 2^63 - 1", _line(quantity=2**63 - 1), held("invalid_quantity")),
    BodyCase("two lines with one id", _duplicate_line_id, held("invalid_order", "lines.external_id")),
    BodyCase("fulfillable quantity above the quantity", _line(fulfillable_quantity=5), posted()),
    BodyCase("negative fulfillable quantity", _line(fulfillable_quantity=-1), held("invalid_order")),
    BodyCase(
        "negative shipping price",
        lambda o: {**o, "shipping_lines": [{**o["shipping_lines"][0], "price": "-5.00"}]},
        held("invalid_amount", "shipping price"),
    ),
    BodyCase("line without an id", _line(id=None), held("invalid_order", "a line item has no id")),
    BodyCase("line ids as gids", _gid_lines, posted()),
    BodyCase("quantity as a numeric string", _line(quantity="2"), posted()),
    BodyCase("quantity of 2.5", _line(quantity=2.5), held("invalid_order", "not a whole number")),
    BodyCase("quantity true", _line(quantity=True), held("invalid_order", "not a whole number")),
    BodyCase("quantity of 1.0", _line(quantity=1.0), held("invalid_order", "not a whole number")),
    BodyCase(
        "fulfillable quantity of 0.5", _line(fulfillable_quantity=0.5), held("invalid_order", "not a whole number")
    ),
    BodyCase("price as a JSON number", _line(price=24.0), held("invalid_order", "price is a float")),
    BodyCase("price of 0.1 + 0.2 as a float", _line(price=0.1 + 0.2), held("invalid_order", "price is a float")),
    BodyCase("NUL in an unknown field", _set(x_extra="a\x00b"), posted()),
    BodyCase("NUL in an unknown key", lambda o: {**o, "x\x00key": 1}, posted()),
    BodyCase(
        "NUL in a custom field name",
        _set(note_attributes=[{"name": "k\x00", "value": "v"}]),
        held("invalid_text", "custom_fields"),
    ),
    BodyCase(
        "NUL in a line property",
        _line(properties=[{"name": "gift\x00", "value": "x"}]),
        held("invalid_text", "lines.properties"),
    ),
)
PLAIN_EVERY = 6


def _send(w: World, case: BodyCase, order: Json) -> tuple[int, str]:
    made = case.make(order)
    body = made if isinstance(made, bytes) else json.dumps(made).encode()
    headers = dict(case.headers)
    if case.signature is None:  # no signature header at all
        response = w.client.post(
            f"{w.receiver}/webhooks/shopify/shop",
            content=body,
            headers={"Content-Type": "application/json", "X-Shopify-Topic": "orders/create"},
        )
        w.statuses[response.status_code] += 1
        assert response.status_code < 500, response.text
    else:
        if case.signature == "forged":
            headers["X-Shopify-Hmac-Sha256"] = "Zm9yZ2VkIHNpZ25hdHVyZQ=="
        response = w.deliver(body=body, topic="orders/create", headers=headers)
    return response.status_code, response.text


@pytest.mark.parametrize("polled_first", [False, True], ids=["webhooks only", "polled first"])
def test_every_hostile_webhook_body_is_refused_with_a_4xx_or_judged_by_its_content_and_the_plain_ones_are_posted(
    hub: Hub, polled_first: bool
) -> None:
    with make_world(hub, bulk=False) as w:
        orders: list[tuple[str, BodyCase | None, Json]] = []
        for k, case in enumerate(BODY_CASES):
            if k % PLAIN_EVERY == 0:
                orders.append((str((o := w.shop.add_order(line_items=[LINE]))["id"]), None, o))
            o = w.shop.add_order(line_items=[LINE])
            orders.append((str(o["id"]), case, o))
        if polled_first:  # the same orders, already polled: a webhook must not make a second order of any
            assert sync_channel(tenant(hub), cid(hub, "shop")).ok
        deliveries_before = w.deliveries()
        refused_deliveries = 0
        for _ext, case, o in orders:
            if case is None:
                status, text = w.deliver(o, topic="orders/create").status_code, ""
                assert status == 200
                continue
            status, text = _send(w, case, o)
            if case.expect.kind == "refused":
                refused_deliveries += 1
                assert 400 <= status < 500, (case.name, status, text[:300])
                if case.expect.status is not None:
                    assert status == case.expect.status, (case.name, status, text[:300])
                assert case.expect.value in text, (case.name, text[:300])
            else:
                assert status == 200, (case.name, status, text[:300])
        run_cycle(tenant(hub), sync=False, shipments=False, push=False)

        labels = {ext: c.name for ext, c, _o in orders if c is not None}
        plain = {ext: posted() for ext, c, _o in orders if c is None}
        judge(w, plain, source="plain")
        if not polled_first:
            cases = {ext: c.expect for ext, c, _o in orders if c is not None}
            judge(w, cases, source="hand-written", labels=labels)
            assert w.deliveries() - deliveries_before == len(orders) - refused_deliveries
            stored = {ext for ext, e in cases.items() if e.kind != "refused"} | set(plain)
            assert set(w.rows()) == stored  # a refused body stored nothing

        # a later sync still succeeds, and settles every order with the store's own copy: whatever a
        # delivery said, each order of the store ends posted exactly once (gid, numeric and string ids
        # included), none twice
        again = sync_channel(tenant(hub), cid(hub, "shop"))
        assert again.ok, again.error
        run_cycle(tenant(hub), sync=False, shipments=False, push=False)
        judge(w, {ext: posted() for ext, _c, _o in orders}, source="again", labels=labels)
        assert max(w.posted().values()) == 1
        assert_terminal_safe(w, list(labels))
        assert_quiet(w)
