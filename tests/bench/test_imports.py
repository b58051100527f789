"""``orderbridge bench import``: it generates a file, imports it (preview + confirm) and prints the
figures as one JSON object — smoke-tested at a small size (the figures of record are at 50,000 rows)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from orderbridge.bench.imports import generate
from orderbridge.domain.csv_import import COLUMNS, CsvOrders
from tests.e2e.helpers import cli


def test_the_generated_file_has_every_column_and_reads_without_an_error(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    orders = generate(path, 300)
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == [c.name for c in COLUMNS] and len(rows) == 301
    with open(path, "rb") as f:
        read = list(CsvOrders(f))
    assert len(read) == orders and not any(o.errors for o in read)


def test_the_import_benchmark_prints_rows_per_second_and_peak_memory(tmp_path: Path) -> None:
    result = cli({"ORDERBRIDGE_DATA_DIR": str(tmp_path)}, "bench", "import", "--rows", "600", "--json", timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert data["rows"] == 600 and data["rows_per_s"] > 0 and data["peak_rss_mb"] > 0
    assert data["csv_floor_s"] > 0 and 0 < data["parse_s"] <= data["preview_plus_confirm_s"]
    assert data["import_counts"]["imported"] == data["orders"]
    assert data["reimport_counts"]["skipped"] == data["orders"] and data["reimport_counts"]["imported"] == 0
    assert data["preview_counts"]["held"] > 0  # one SKU in twenty is unmapped at the destination
