"""``orderbridge orders import FILE`` in-process over the test hub (SQLite and PostgreSQL): the
preview first, nothing written until yes, then the report; typed errors with their fix; exit codes."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
from sqlalchemy import func, select
from typer.testing import CliRunner

from orderbridge.cli import common, main
from orderbridge.services.hub import Hub
from orderbridge.storage.tables import orders

HEADER = "order_number,currency,sku,quantity,unit_price,ship_country\n"


@dataclass
class Result:
    code: int
    out: str
    err: str


Cli = Callable[..., Result]


@pytest.fixture
def cli(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    monkeypatch.setattr(common, "make_hub", lambda: hub)
    monkeypatch.setattr(hub, "close", lambda: None)
    saved_logging = structlog.get_config()
    main.console.width = main.err.width = 2000

    def invoke(*args: str, input: str | None = None) -> Result:
        result = CliRunner().invoke(main.app, list(args), input=input)
        return Result(result.exit_code, result.stdout, result.stderr)

    yield invoke
    structlog.configure(**saved_logging)


def stored(hub: Hub) -> list[str]:
    with hub.db.read() as conn:
        return list(conn.execute(select(orders.c.number).order_by(orders.c.id)).scalars())


def test_the_preview_is_printed_and_nothing_is_written_without_yes(cli: Cli, hub: Hub, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + "W-1,EUR,MUG,2,12.50,FR\nW-2,EUR,MUG,two,1,FR\n")
    result = cli("orders", "import", str(path), input="n\n")
    assert result.code == 3
    assert "orders: 2 — 1 new, 0 changed (updates), 0 already imported (skipped), 1 rejected" in result.out
    assert "│ 3   │ quantity │ two   │ is not a whole number of units" in result.out
    assert stored(hub) == []


def test_with_yes_the_valid_orders_are_imported_and_the_report_written_neutralised(
    cli: Cli, hub: Hub, tmp_path: Path
) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(HEADER + "W-1,EUR,=HYPERLINK(1),2,12.50,FR\nW-2,EUR,MUG,0,1,FR\n")
    out = tmp_path / "report.csv"
    result = cli("orders", "import", str(path), "--yes", "--report", str(out))
    assert result.code == 1  # one order rejected, the other imported
    assert "imported: 1 new orders, 0 updated, 0 skipped as duplicates, 1 rejected" in result.out
    assert stored(hub) == ["W-1"]
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows[0] == ["row", "order_number", "sku", "outcome", "order_id", "state", "message"]
    assert rows[1][:4] == ["2", "W-1", "'=HYPERLINK(1)", "imported"]
    assert rows[2][3] == "rejected"
    again = cli("orders", "import", str(path), "--yes")  # the same file: nothing new, nothing twice
    assert "0 new, 0 changed (updates), 1 already imported (skipped), 1 rejected" in again.out
    assert stored(hub) == ["W-1"]


def test_a_file_error_prints_the_message_and_fix_and_exits_2(cli: Cli, hub: Hub, tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes((HEADER + "W-1,EUR,Caf\u00e9,1,1,FR\n").encode("cp1252"))
    result = cli("orders", "import", str(path), "--encoding", "utf-8", "--yes")
    assert result.code == 2
    assert "error [import_wrong_encoding] Row 2 cannot be read as utf-8 (the encoding chosen)" in result.err
    assert "fix: The file is probably windows-1252: choose the encoding windows-1252" in result.err
    assert stored(hub) == []
    ok = cli("orders", "import", str(path), "--encoding", "windows-1252", "--yes")
    assert ok.code == 0 and stored(hub) == ["W-1"]


def test_an_unknown_choice_is_a_typed_error(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(HEADER)
    result = cli("orders", "import", str(path), "--delimiter", "tab")
    assert result.code == 2 and "unknown separator 'tab': choose auto, comma or semicolon" in result.err


def test_json_prints_the_preview_and_the_report(cli: Cli, hub: Hub, tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("order_number;currency;sku;quantity;unit_price\nW-1;EUR;MUG;1;3,50\n")
    result = cli("orders", "import", str(path), "--yes", "--json")
    data = json.loads(result.out)
    assert data["preview"]["file"]["delimiter"] == ";" and data["preview"]["counts"]["new"] == 1
    assert data["report"]["counts"]["imported"] == 1
    assert data["report"]["rows"][0]["outcome"] == "imported"


def test_the_template_has_every_documented_column_and_the_example_imports(cli: Cli, hub: Hub, tmp_path: Path) -> None:
    from orderbridge.domain.csv_import import COLUMNS

    template = cli("orders", "import-template")
    assert template.out.strip() == ",".join(c.name for c in COLUMNS)
    example = tmp_path / "example.csv"
    cli("orders", "import-template", "--example", "--output", str(example))
    result = cli("orders", "import", str(example), "--yes")
    assert result.code == 0, result.out + result.err
    with hub.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 2
