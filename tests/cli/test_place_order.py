"""``orderbridge orders place --file order.json`` in-process over the test hub (SQLite and
PostgreSQL): what the operator types, what they read, the exit code, and what the ledger holds."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from sqlalchemy import func, select
from typer.testing import CliRunner

from orderbridge.cli import common, main
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.storage.tables import orders, user_actions
from tests.scoped import cid, tenant

ORDER: dict[str, Any] = {
    "number": "PH-77",
    "currency": "EUR",
    "shipping_address": {"name": "Ada", "address1": "1 rue de Rivoli", "city": "Paris", "country_code": "FR"},
    "shipping_method": "Standard",
    "lines": [{"sku": "TEE-BLK-S", "quantity": 2, "unit_price": 12.50}],
}


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(common, "make_hub", lambda: hub)
    monkeypatch.setattr(hub, "close", lambda: None)
    monkeypatch.setenv("LOGNAME", "ops")
    saved_logging = structlog.get_config()
    main.console.width = main.err.width = 2000
    add_connection(tenant(hub), "wh", "shipstation", "http://wh.local", {"api_key": "k", "api_secret": "s"})
    set_mapping(tenant(hub), "sku", "TEE-BLK-S", "TEE-BLK-S", cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))

    def invoke(*args: str, input: str | None = None) -> Result:
        result = CliRunner().invoke(main.app, list(args), input=input)
        return Result(result.exit_code, result.stdout, result.stderr)

    yield invoke
    structlog.configure(**saved_logging)


def write(tmp_path: Path, data: Any, name: str = "order.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def count(hub: Hub, table: Any) -> int:
    with hub.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_an_order_file_is_placed_once_and_said_so_in_plain_text(cli: Any, hub: Hub, tmp_path: Path) -> None:
    path = write(tmp_path, ORDER)
    placed = cli("orders", "place", "--file", path, "--idempotency-key", "k-1")
    assert placed.code == 0, placed.err
    assert placed.out.startswith("placed order PH-77 (#") and "new, ready" in placed.out
    again = cli("orders", "place", "--file", path, "--idempotency-key", "k-1")
    assert again.code == 0 and "(already placed with this key)" in again.out
    assert count(hub, orders) == 1
    [(who, action)] = _actions(hub)
    assert (who, action) == ("cli:ops", "order.place")


def _actions(hub: Hub) -> list[tuple[str, str]]:
    with hub.db.read() as conn:
        return [tuple(r) for r in conn.execute(select(user_actions.c.actor_name, user_actions.c.action))]  # type: ignore[misc]


def test_an_order_with_an_unmapped_sku_is_placed_held_with_the_reason_and_exit_code_1(
    cli: Any, hub: Hub, tmp_path: Path
) -> None:
    data = {**ORDER, "lines": [{"sku": "GHOST-9", "quantity": 1, "unit_price": "3"}]}
    placed = cli("orders", "place", "--file", write(tmp_path, data), "--json")
    assert placed.code == 1
    body = json.loads(placed.out)
    assert (body["state"], body["reasons"][0]["code"], body["reasons"][0]["value"]) == (
        "held",
        "sku_unmapped",
        "GHOST-9",
    )


def test_every_problem_is_printed_with_its_field_and_fix_and_nothing_is_written(
    cli: Any, hub: Hub, tmp_path: Path
) -> None:
    data = {**ORDER, "currency": "euro", "lines": [{"sku": "A", "quantity": "two", "unit_price": "1"}]}
    refused = cli("orders", "place", "--file", write(tmp_path, data))
    assert refused.code == 2
    assert "the order has 2 problem(s); nothing was written" in refused.err
    assert "currency = 'euro': 'euro' is not a currency code." in refused.err
    assert "lines[0].quantity = 'two'" in refused.err and "fix: Give a whole number of units" in refused.err
    assert count(hub, orders) == 0


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("", "the order is empty"),
        ("{not json", "the order is not JSON OrderBridge takes"),
        ("[1]", "The order must be a JSON object."),
    ],
)
def test_a_file_that_is_not_an_order_is_refused_with_the_fix(
    cli: Any, hub: Hub, tmp_path: Path, content: str, says: str
) -> None:
    refused = cli("orders", "place", "--file", write(tmp_path, content))
    assert refused.code == 2 and says in refused.err, refused.err
    assert count(hub, orders) == 0


def test_a_missing_file_is_named(cli: Any, tmp_path: Path) -> None:
    refused = cli("orders", "place", "--file", str(tmp_path / "nope.json"))
    assert refused.code == 2 and "no file" in refused.err and "fix:" in refused.err


def test_a_preview_from_stdin_writes_nothing(cli: Any, hub: Hub) -> None:
    looked = cli("orders", "place", "--file", "-", "--preview", input=json.dumps(ORDER))
    assert looked.code == 0, looked.err
    assert "would place PH-77: new, ready; total 25.0 EUR" in looked.out
    assert count(hub, orders) == 0


def test_a_key_reused_for_another_order_is_refused(cli: Any, hub: Hub, tmp_path: Path) -> None:
    assert cli("orders", "place", "-f", write(tmp_path, ORDER), "--idempotency-key", "k").code == 0
    other = cli("orders", "place", "-f", write(tmp_path, {**ORDER, "number": "PH-78"}), "--idempotency-key", "k")
    assert other.code == 2 and "[idempotency_key_reused]" in other.err
    assert count(hub, orders) == 1
