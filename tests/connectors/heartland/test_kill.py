"""A posting process killed (SIGKILL) between any two calls to Heartland resumes on the next run at the
next step and never makes a second sale: proven from the sandbox's own ledger.

The sandbox runs in this process on a real port; the poster is a child process that builds the
connector as the hub does and posts one order, with ``ORDERBRIDGE_CRASH_AT=heartland.after_write:N``
— killed right after its N-th write was answered, for every N the flow has (counted by an
unkilled run of the same order). A fresh connector then posts the same order again, as the next run
would. Afterwards Heartland holds, for that public_id: one sales order (or ticket), each line
once, one payment, one invoice, and the stock moved once.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.connectors.heartland.env import HeartlandEnv, hl_outgoing, open_env

ROOT = Path(__file__).resolve().parents[3]
CHILD = textwrap.dedent(
    """
    import json, sys
    import httpx
    from orderbridge.connectors.heartland import HeartlandDestination
    from tests.connectors.heartland.env import TOKEN, hl_outgoing

    base_url, settings = sys.argv[1], json.loads(sys.argv[2])
    with httpx.Client(timeout=5.0) as http:
        connector = HeartlandDestination(base_url, {"api_token": TOKEN}, settings, http=http)
        print(connector.post_orders([hl_outgoing(1, lines=3)]))
    """
)


def _post_in_child(env: HeartlandEnv, crash_at: str | None) -> subprocess.CompletedProcess[str]:
    import json

    child_env = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    child_env.pop("ORDERBRIDGE_CRASH_AT", None)
    if crash_at:
        child_env["ORDERBRIDGE_CRASH_AT"] = crash_at
    return subprocess.run(
        [sys.executable, "-c", CHILD, env.base_url, json.dumps(env.settings)],
        env=child_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _writes_of_a_clean_post(mode: str) -> list[str]:
    gen = open_env(settings={"posting_mode": mode})
    env = next(gen)
    try:
        done = _post_in_child(env, None)
        assert done.returncode == 0, done.stderr[-2000:]
        return env.writes()
    finally:
        gen.close()


FLOWS: dict[str, list[str]] = {}


def flow(mode: str) -> list[str]:
    if mode not in FLOWS:
        FLOWS[mode] = _writes_of_a_clean_post(mode)
    return FLOWS[mode]


@pytest.fixture
def env(request: pytest.FixtureRequest) -> Iterator[HeartlandEnv]:
    yield from open_env(settings={"posting_mode": request.param})


def _kinds(env: HeartlandEnv, public_id: str) -> Counter[str]:
    return Counter(e.kind for e in env.state.ledger if e.kind != "call" and e.key == public_id)


def test_the_sales_order_flow_makes_every_documented_call_once() -> None:
    shape = [re.sub(r"/\d+", "/{id}", w) for w in flow("sales_order")]
    assert shape == [
        "POST /api/customers",
        "POST /api/customers/{id}/addresses",
        "POST /api/sales/orders",  # pending
        *["POST /api/sales/orders/{id}/lines"] * 3,
        "POST /api/sales/orders/{id}/taxes",  # the order has no discount: no discounts call
        "POST /api/sales/orders/{id}/payments",
        "PUT /api/sales/orders/{id}",  # → open
        "POST /api/sales/invoices",
        *["POST /api/sales/invoices/{id}/lines"] * 3,
        "PUT /api/sales/invoices/{id}",  # → complete
    ]
    assert [re.sub(r"/\d+", "/{id}", w) for w in flow("ticket")] == [
        "POST /api/customers",
        "POST /api/customers/{id}/addresses",
        "POST /api/sales/tickets",
    ]


@pytest.mark.parametrize(
    ("env", "point"),
    [("sales_order", n) for n in range(1, 15)] + [("ticket", n) for n in range(1, 4)],
    indirect=["env"],
)
def test_a_post_killed_after_any_write_resumes_at_the_next_step_and_makes_one_sale(
    env: HeartlandEnv, point: int
) -> None:
    mode = str(env.settings["posting_mode"])
    expected = flow(mode)
    assert point <= len(expected)

    killed = _post_in_child(env, f"heartland.after_write:{point}")
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert env.writes() == expected[:point]  # killed right after the point-th write, nothing after it

    order = hl_outgoing(1, lines=3)
    (result,) = env.build().post_orders([order])  # the next run
    assert result.ok, result.error
    public_id = order.resolved.order.number

    kinds = _kinds(env, public_id)
    if mode == "sales_order":
        [sale] = env.orders_for(public_id)
        assert result.document_id == f"order:{sale['id']}"
        assert [line["qty"] for line in sale["lines"]] == [1, 2, 3]
        assert len(sale["payments"]) == 1 and sale["payments"][0]["amount"] == env.state.order_total(sale)
        assert len(sale["taxes"]) == 1 and sale["status"] == "closed"
        assert kinds["order_created"] == 1 and kinds["order_line_added"] == 3 and kinds["order_payment_added"] == 1
        assert kinds["order_opened"] == 1 and kinds["invoice_created"] == 1 and kinds["invoice_completed"] == 1
        assert len(env.state.invoices) == 1
        if point >= 3:  # the order existed before the kill: the next run says it went on from there
            assert any("already held sales order" in note for note in result.notes), result.notes
    else:
        [ticket] = [t for t in env.state.tickets.values() if t["public_id"] == public_id]
        assert result.document_id == f"ticket:{ticket['id']}" and ticket["status"] == "complete"
        assert kinds["ticket_created"] == 1 and kinds["ticket_completed"] == 1
    assert len(env.state.customers) == 1 and len(env.state.addresses) == 1
    # stock moved once: 1, 2 and 3 units of the three items, from 100 each
    assert [env.state.stock(sku)["on_hand"] for sku in ("WH-TEE-001", "SKU-1", "SKU-2")] == [
        Decimal(99),
        Decimal(98),
        Decimal(97),
    ]
    assert all(env.state.stock(sku)["committed"] == 0 for sku in ("WH-TEE-001", "SKU-1", "SKU-2"))
    # and a third run changes nothing
    before = env.writes()
    (again,) = env.build().post_orders([order])
    assert again.document_id == result.document_id and env.writes() == before
