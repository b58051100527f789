"""``orderbridge bench import``: a CSV file of N rows imported (preview, then confirmation) on SQLite.

One process, a fresh SQLite ledger in a temporary directory, a ShipStation destination with every
SKU but one in twenty mapped (so the preview really judges mappings and some orders are held — the
destination is never called: importing posts nothing). The file has every documented column filled,
one to three lines per order. Phases, each timed once on a 2-core VM (read ratios, not single runs):

1. ``csv_floor``: the bare standard-library floor — ``csv.reader`` over the decoded file, nothing
   else: what reading these bytes as CSV costs this machine.
2. ``parse``: the import's streaming reader (every cell typed: amounts, dates, codes; orders grouped).
3. ``validate``: the same, each order made a draft and validated by the manual channel's rules.
4. ``preview``: what the portal and the CLI show — every order judged against the ledger and the
   pipeline (new / unchanged / changed / held / rejected), in read transactions, nothing written.
5. ``confirm``: the import itself — a validating pass, then the writing pass through ``submit`` in
   transactions of 500 orders.
6. ``reimport``: the same file confirmed again — every order skipped as a duplicate.

The target (issue #14): preview + confirm of 50,000 rows in under 30 s, in bounded memory. Memory is
reported as the process's peak RSS (``ru_maxrss``) and its RSS before the import, so the import's own
growth is the difference; and the reader's own peak (``tracemalloc``) over the whole file.
"""

from __future__ import annotations

import csv
import random
import resource
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from orderbridge.crypto import generate_key
from orderbridge.domain import manual
from orderbridge.domain.csv_import import COLUMNS, CsvOrders
from orderbridge.domain.csv_import.drafts import to_draft
from orderbridge.services import order_imports
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import import_mappings, set_mapping
from orderbridge.services.principals import Actor
from orderbridge.services.scope import Scope
from orderbridge.settings import Settings

TARGET_S = 30.0
SKUS = [f"SKU-{i:04d}" for i in range(200)]
CITIES = [("Lyon", "69003", "FR"), ("Berlin", "10115", "DE"), ("Springfield", "62701", "US"), ("Leeds", "LS1", "GB")]


def _rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def generate(path: Path, rows: int, seed: int = 14) -> int:
    """Write a file of ``rows`` rows (every column filled; 1–3 lines per order); the number of orders."""
    rnd = random.Random(seed)
    header = [c.name for c in COLUMNS]
    n_orders = 0
    written = 0
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(header)
        while written < rows:
            n_orders += 1
            city, postal, country = CITIES[n_orders % len(CITIES)]
            order = {
                "order_number": f"B-{n_orders:07d}",
                "currency": "EUR" if country in ("FR", "DE") else ("USD" if country == "US" else "GBP"),
                "placed_at": f"2026-11-{1 + n_orders % 28:02d}T{n_orders % 24:02d}:15:00+01:00",
                "customer_email": f"customer{n_orders}@example.com",
                "customer_name": f"Customer {n_orders}",
                "ship_name": f"Customer {n_orders}",
                "ship_company": "",
                "ship_address1": f"{n_orders % 200 + 1} Long Street",
                "ship_address2": "",
                "ship_city": city,
                "ship_province": "IL" if country == "US" else "",
                "ship_postal_code": postal,
                "ship_country": country,
                "ship_phone": "+33 1 23 45 67 89",
                "shipping_method": "standard",
                "shipping_price": "4.90",
                "tax": "1.20",
                "discount": "0",
                "discount_code": "",
                "payment_status": "paid",
                "note": "Leave at the door, please",
                "tags": "wholesale, csv",
            }
            for _ in range(min(1 + n_orders % 3, rows - written)):
                line = {
                    "sku": rnd.choice(SKUS),
                    "title": "A product, with a comma",
                    "quantity": str(rnd.randint(1, 5)),
                    "unit_price": f"{rnd.randint(1, 9999) / 100:.2f}",
                }
                writer.writerow([{**order, **line}.get(name, "") for name in header])
                written += 1
    return n_orders


def _timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def _csv_floor(path: Path) -> int:
    with open(path, encoding="utf-8", newline="") as f:
        return sum(1 for _ in csv.reader(f)) - 1


def _parse(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in CsvOrders(f, key=manual.order_key))


def _validate(path: Path) -> int:
    bad = 0
    with open(path, "rb") as f:
        for order in CsvOrders(f, key=manual.order_key):
            bad += bool(order.errors or manual.validate(to_draft(order), number_required=True))
    return bad


def _reader_peak_mb(path: Path) -> float:
    tracemalloc.start()
    try:
        _parse(path)
        return round(tracemalloc.get_traced_memory()[1] / 1024 / 1024, 1)
    finally:
        tracemalloc.stop()


def run(*, rows: int = 50_000, quiet: bool = False, say: Any = print) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ob-bench-import-") as tmp:
        data_dir = Path(tmp)
        path = data_dir / "orders.csv"
        n_orders = generate(path, rows)
        size = path.stat().st_size
        if not quiet:
            say(f"generated {rows:,} rows ({n_orders:,} orders, {size / 1024 / 1024:.1f} MiB) in {path}")
        hub = Hub.from_settings(Settings(data_dir=data_dir, secret_key=generate_key()))
        try:
            scope = Scope.named(hub, "default")
            add_connection(
                scope, "warehouse", "shipstation", "http://warehouse.invalid", {"api_key": "k", "api_secret": "s"}
            )
            warehouse = scope.connection_id("warehouse")
            mapped = [sku for i, sku in enumerate(SKUS) if i % 20]
            import_mappings(scope, "sku", "\n".join(f"{s},{s}" for s in mapped), warehouse)
            set_mapping(scope, "shipping", "standard", "ups:ups_ground", warehouse)
            rss_before = _rss_mb()

            floor_s, floor_rows = _timed(lambda: _csv_floor(path))
            parse_s, parsed = _timed(lambda: _parse(path))
            validate_s, invalid = _timed(lambda: _validate(path))
            if not quiet:
                say(f"floor {floor_s:.2f} s, parse {parse_s:.2f} s, validate {validate_s:.2f} s; previewing…")

            def preview() -> order_imports.Preview:
                with open(path, "rb") as f:
                    return order_imports.plan(scope, f, filename=path.name)

            preview_s, planned = _timed(preview)
            if not quiet:
                say(f"preview {preview_s:.2f} s: {planned.counts}; importing…")
            actor = Actor.cli(scope)
            opener = order_imports.path_opener(str(path), order_imports.file_digest(str(path)))
            confirm_s, report = _timed(lambda: order_imports.confirm(actor, opener, filename=path.name))
            if not quiet:
                say(f"confirm {confirm_s:.2f} s: {report.counts}; importing again…")
            reimport_s, again = _timed(lambda: order_imports.confirm(actor, opener, filename=path.name))
            peak_rss = _rss_mb()
            reader_peak = _reader_peak_mb(path)
        finally:
            hub.close()
    total_s = preview_s + confirm_s
    return {
        "rows": rows,
        "orders": n_orders,
        "file_mib": round(size / 1024 / 1024, 2),
        "database": "sqlite",
        "csv_floor_s": round(floor_s, 3),
        "parse_s": round(parse_s, 3),
        "validate_s": round(validate_s, 3),
        "preview_s": round(preview_s, 3),
        "confirm_s": round(confirm_s, 3),
        "preview_plus_confirm_s": round(total_s, 3),
        "reimport_s": round(reimport_s, 3),
        "csv_floor_rows_per_s": round(floor_rows / floor_s),
        "parse_rows_per_s": round(rows / parse_s),
        "rows_per_s": round(rows / total_s),
        "import_to_floor": round(total_s / floor_s, 1),
        "target_s": TARGET_S,
        "within_target": total_s < TARGET_S,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_rss,
        "reader_peak_mib": reader_peak,
        "parsed_orders": parsed,
        "invalid_orders": invalid,
        "preview_counts": planned.counts,
        "import_counts": report.counts,
        "reimport_counts": again.counts,
    }


def render(result: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"import benchmark — {result['rows']:,} rows, {result['orders']:,} orders, {result['file_mib']} MiB "
        f"({result['database']})"
    )
    table.add_column("phase")
    table.add_column("seconds", justify="right")
    table.add_column("rows/s", justify="right")
    rows = result["rows"]
    for name, key in (
        ("floor: csv.reader over the file", "csv_floor_s"),
        ("parse: the streaming reader, cells typed", "parse_s"),
        ("parse + drafts validated", "validate_s"),
        ("preview (judged against the ledger, nothing written)", "preview_s"),
        ("confirm (validating pass + writing pass)", "confirm_s"),
        ("preview + confirm", "preview_plus_confirm_s"),
        ("the same file again (all skipped as duplicates)", "reimport_s"),
    ):
        table.add_row(name, f"{result[key]:.2f}", f"{round(rows / result[key]):,}")
    console.print(table)
    verdict = "within" if result["within_target"] else "OVER"
    console.print(
        f"preview + confirm: {result['preview_plus_confirm_s']:.1f} s "
        f"({verdict} the {result['target_s']:.0f} s target), "
        f"{result['import_to_floor']}× the csv floor; peak RSS {result['peak_rss_mb']} MB "
        f"(before the import {result['rss_before_mb']} MB); the reader's own peak {result['reader_peak_mib']} MiB"
    )
    console.print(f"imported: {result['import_counts']}; again: {result['reimport_counts']}")
