"""CSV imports: the preview writes nothing and says what will happen; the confirmation imports each
valid order once (never half of one), and a re-import never makes a duplicate — proven from the
ledger and from the ShipStation sandbox's own ledger over real HTTP."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from orderbridge.domain.csv_import import FileTooLarge, ImportFileError, WrongEncoding
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.services import order_imports as oi
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import set_mapping
from orderbridge.services.order_actions import reset_to_pending
from orderbridge.services.order_story import order_story
from orderbridge.services.posting import post_ready
from orderbridge.services.principals import Actor
from orderbridge.services.queries import find_order_id
from orderbridge.storage.tables import connections, events, import_chunks, import_uploads, orders
from tests.scoped import cid, tenant

HEADER = [
    "order_number",
    "currency",
    "sku",
    "title",
    "quantity",
    "unit_price",
    "shipping_method",
    "ship_name",
    "ship_address1",
    "ship_city",
    "ship_postal_code",
    "ship_country",
    "customer_email",
]


def row(number: str, sku: str, quantity: int = 1, price: str = "10.00") -> list[str]:
    return [
        number,
        "EUR",
        sku,
        f"Product {sku}",
        str(quantity),
        price,
        "Standard",
        "Ana Lima",
        "12 rue des Lilas",
        "Lyon",
        "69003",
        "FR",
        "ana@example.com",
    ]


def csv_bytes(rows: list[list[str]], delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(HEADER)
    writer.writerows(rows)
    return out.getvalue().encode()


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def import_path(hub: Hub, path: str) -> oi.Report:
    scope = tenant(hub)
    return oi.confirm(Actor.cli(scope), oi.path_opener(path, oi.file_digest(path)), filename=Path(path).name)


def ledger_counts(hub: Hub) -> tuple[int, int, int]:
    with hub.db.read() as conn:
        return (
            conn.execute(select(func.count()).select_from(orders)).scalar_one(),
            conn.execute(select(func.count()).select_from(events)).scalar_one(),
            conn.execute(select(func.count()).select_from(connections)).scalar_one(),
        )


@dataclass
class Warehouse:
    base_url: str

    def received(self) -> list[tuple[str, str]]:
        """What the ShipStation sandbox itself recorded, read over its HTTP control API."""
        entries = httpx.get(f"{self.base_url}/_sandbox/ledger", timeout=30).json()
        return [(e["kind"], e["key"]) for e in entries if e["kind"] in ("order_created", "order_updated")]


@pytest.fixture
def warehouse(hub: Hub) -> Iterator[Warehouse]:
    _state, app = shipstation_sandbox(limits=False, ship_after_seconds=3600.0)
    with run_in_thread(app) as running:
        scope = tenant(hub)
        add_connection(scope, "wh", "shipstation", running.base_url, {"api_key": "ss_key", "api_secret": "ss_secret"})
        for sku in ("MUG", "PLATE", "BOWL"):
            set_mapping(scope, "sku", sku, f"WH-{sku}", cid(hub, "wh"))
        set_mapping(scope, "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
        yield Warehouse(running.base_url)


def operator(hub: Hub) -> Actor:
    from orderbridge.domain.roles import Role
    from orderbridge.services.auth import Principal

    scope = tenant(hub)
    return Actor(Principal("user", 3, scope.tenant_id, Role.OPERATOR, "Olu", "en"), scope, "198.51.100.4")


# --- the preview ----------------------------------------------------------------------------------


def test_a_preview_says_what_happens_to_each_order_and_writes_nothing(hub: Hub) -> None:
    scope = tenant(hub)
    add_connection(scope, "wh", "shipstation", "http://wh.invalid", {"api_key": "k", "api_secret": "s"})
    set_mapping(scope, "sku", "MUG", "WH-MUG", cid(hub, "wh"))
    set_mapping(scope, "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    before = ledger_counts(hub)
    data = csv_bytes([row("W-1", "MUG", 2), row("W-2", "MUG"), row("W-2", "LAMP"), row("W-3", "MUG", 0)])
    preview = oi.plan(scope, io.BytesIO(data), filename="orders.csv")
    assert ledger_counts(hub) == before  # not even the manual channel is created
    got = {o.number: (o.outcome, o.state) for o in preview.orders}
    assert got == {"W-1": ("new", "ready"), "W-2": ("new", "held"), "W-3": ("rejected", None)}
    w2 = preview.orders[1]
    assert w2.describe().startswith("new; will be held: ") and "LAMP" in w2.describe() and "wh" in w2.describe()
    [error] = preview.orders[2].errors
    assert (error.row, error.column, error.value, error.code) == (5, "quantity", "0", "quantity_invalid")
    assert preview.counts == {"new": 2, "updated": 0, "unchanged": 0, "rejected": 1, "held": 1, "orders": 3, "rows": 4}
    assert preview.orders[0].total == "20.00 EUR"


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"", "import_file_empty"),
        (b"PK\x03\x04 a workbook", "import_file_not_csv"),
        (b"order_number,sku\nA,B\n", "import_columns_missing"),
    ],
)
def test_a_bad_file_is_refused_whole_and_the_ledger_is_unchanged(
    hub: Hub, tmp_path: Path, data: bytes, error: str
) -> None:
    before = ledger_counts(hub)
    path = write(tmp_path, "bad.csv", data)
    with pytest.raises(ImportFileError) as caught:
        import_path(hub, path)
    assert caught.value.code == error
    assert ledger_counts(hub) == before


def test_undecodable_bytes_refuse_the_file_before_any_order_is_written(hub: Hub, tmp_path: Path) -> None:
    good = csv_bytes([row(f"W-{i}", "MUG") for i in range(1200)])  # more than two batches
    path = write(tmp_path, "mixed.csv", good + "W-X,EUR,MUG,Caf\u00e9,1,1,,,,,,,\r\n".encode("cp1252"))
    before = ledger_counts(hub)
    with pytest.raises(WrongEncoding, match=r"Row 1202 cannot be read as utf-8"):
        import_path(hub, path)
    assert ledger_counts(hub) == before  # the first pass reads the whole file before any batch is written


def test_a_rejected_row_rejects_its_whole_order_and_never_the_others(hub: Hub, tmp_path: Path) -> None:
    rows = [row("W-1", "MUG"), row("W-1", "PLATE", price="abc"), row("W-1", "BOWL"), row("W-2", "MUG")]
    report = import_path(hub, write(tmp_path, "orders.csv", csv_bytes(rows)))
    assert [(r.row, r.outcome) for r in report.rows] == [
        (2, "rejected"),
        (3, "rejected"),
        (4, "rejected"),
        (5, "imported"),
    ]
    assert report.rows[1].message.startswith("unit_price 'abc': is not an amount.")
    assert report.rows[0].message.startswith("not imported: row 3 of the same order has an error")
    with hub.db.read() as conn:
        assert conn.execute(select(orders.c.number)).scalars().all() == ["W-2"]  # nothing of W-1


def test_a_draft_problem_is_pointed_at_its_row_and_column(hub: Hub) -> None:
    data = csv_bytes([row("N" * 65, "MUG"), row("W-2", "MUG"), row("W-2", "PLATE", price="1.1234567")])
    preview = oi.plan(tenant(hub), io.BytesIO(data), filename="orders.csv")
    first, second = preview.orders
    assert [(e.row, e.column, e.code) for e in first.errors] == [(2, "order_number", "too_long")]
    assert first.errors[0].fix == "Use a number of at most 64 characters."
    assert [(e.row, e.column, e.code) for e in second.errors] == [(4, "unit_price", "amount_too_precise")]


def test_an_order_whose_rows_are_apart_is_rejected_in_every_part(hub: Hub, tmp_path: Path) -> None:
    rows = [row("W-1", "MUG"), row("W-2", "MUG"), row("w-1", "PLATE")]  # w-1 is W-1: the number's key
    report = import_path(hub, write(tmp_path, "apart.csv", csv_bytes(rows)))
    assert [(r.row, r.order_number, r.outcome) for r in report.rows] == [
        (2, "W-1", "rejected"),
        (3, "W-2", "imported"),
        (4, "w-1", "rejected"),
    ]
    with hub.db.read() as conn:
        assert conn.execute(select(orders.c.number)).scalars().all() == ["W-2"]


def test_formula_cells_are_imported_as_text_and_neutralised_in_the_report_csv(hub: Hub, tmp_path: Path) -> None:
    rows = [row("=1+2", "MUG"), row("W-2", "@SUM(A1)")]
    report = import_path(hub, write(tmp_path, "formulas.csv", csv_bytes(rows)))
    assert [r.outcome for r in report.rows] == ["rejected", "imported"]  # '=' is not allowed in an order number
    with hub.db.read() as conn:
        assert conn.execute(select(orders.c.number)).scalars().all() == ["W-2"]
    text = "".join(oi.report_csv(report))
    cells = [c for line in csv.reader(io.StringIO(text)) for c in line]
    assert "'=1+2" in cells and "'@SUM(A1)" in cells
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)


# --- uploads ------------------------------------------------------------------------------------------


def test_an_upload_is_previewed_confirmed_once_and_its_report_kept(hub: Hub) -> None:
    actor = Actor.cli(tenant(hub))
    data = csv_bytes([row("W-1", "MUG"), row("W-2", "MUG", 0)], delimiter=";")
    token = oi.store_upload(actor, io.BytesIO(data), filename="orders.csv")
    preview = oi.preview_upload(tenant(hub), token)
    assert preview.token == token and preview.file.delimiter == ";" and preview.file.delimiter_detected
    assert ledger_counts(hub)[0] == 0
    report = oi.confirm_upload(actor, token)
    assert report.counts["imported"] == 1 and report.counts["rejected"] == 1
    again = oi.confirm_upload(actor, token)  # a double click: the same report, nothing imported
    assert again.rows == report.rows and ledger_counts(hub)[0] == 1
    assert oi.upload_report(tenant(hub), token).counts == report.counts
    with hub.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(import_chunks)).scalar_one() == 0  # bytes dropped
        assert conn.execute(select(import_uploads.c.rows_done)).scalar_one() == 2  # data rows read


def test_an_upload_over_the_limit_keeps_nothing(hub: Hub) -> None:
    actor = Actor.cli(tenant(hub))
    with pytest.raises(FileTooLarge, match=r"larger than the import limit of 2 MiB \(2,097,152 bytes\)"):
        oi.store_upload(actor, io.BytesIO(b"x" * (3 * 1024 * 1024)), filename="big.csv", max_bytes=2 * 1024 * 1024)
    with hub.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(import_uploads)).scalar_one() == 0


def test_another_tenants_token_reads_as_no_upload(hub: Hub) -> None:
    from orderbridge.errors import NotFound
    from orderbridge.services.tenants import add_tenant

    token = oi.store_upload(Actor.cli(tenant(hub)), io.BytesIO(csv_bytes([row("W-1", "MUG")])), filename="a.csv")
    other = add_tenant(hub, "other", "Other")
    with pytest.raises(NotFound):
        oi.preview_upload(other, token)


# --- identity: no duplicate, ever -------------------------------------------------------------------------


def test_reimporting_the_same_file_then_an_overlapping_one_posts_each_order_once_and_the_change_as_an_update(
    hub: Hub, warehouse: Warehouse, tmp_path: Path
) -> None:
    scope = tenant(hub)
    first = [row("W-1", "MUG"), row("W-2", "PLATE", 2), row("W-2", "BOWL"), row("W-3", "MUG", 3)]
    path = write(tmp_path, "week-48.csv", csv_bytes(first))
    report = import_path(hub, path)
    assert report.counts["imported"] == 3
    assert post_ready(scope, cid(hub, "wh")).posted == 3

    again = import_path(hub, path)  # the same file again
    assert again.counts == {"imported": 0, "updated": 0, "skipped": 3, "rejected": 0, "orders": 3, "rows": 4}
    assert all(r.message.startswith("skipped as a duplicate") for r in again.rows)
    assert post_ready(scope, cid(hub, "wh")).posted == 0

    overlapping = [row("W-2", "PLATE", 2), row("W-2", "BOWL"), row("W-3", "MUG", 5), row("W-4", "BOWL")]
    path2 = write(tmp_path, "week-49.csv", csv_bytes(overlapping))
    preview = oi.plan(scope, io.BytesIO(Path(path2).read_bytes()), filename="week-49.csv")
    assert [(o.number, o.outcome) for o in preview.orders] == [("W-2", "unchanged"), ("W-3", "updated"), ("W-4", "new")]
    report2 = import_path(hub, path2)
    assert (report2.counts["skipped"], report2.counts["updated"], report2.counts["imported"]) == (1, 1, 1)
    assert post_ready(scope, cid(hub, "wh")).posted == 1  # W-4; W-3's new version waits, as any channel's does
    w3 = find_order_id(scope, "W-3")
    story = order_story(scope, w3)
    # a posted order's lines changed: an order update held for review (issue #15, update_needs_review)
    assert (story.version, story.state, story.waiting_for) == (2, "held", ("wh",))
    assert any("imported from file week-49.csv row 4" in e.message for e in story.timeline)
    reset_to_pending(operator(hub), w3)  # the operator accepts the update: the 3PL's document is amended
    assert post_ready(scope, cid(hub, "wh")).amended == 1  # an amendment (issue #15), not a first post

    with hub.db.read() as conn:
        ledger = sorted(tuple(r) for r in conn.execute(select(orders.c.number, orders.c.version)).all())
    assert ledger == [("W-1", 1), ("W-2", 1), ("W-3", 2), ("W-4", 1)]  # each once; W-3 as a second version
    received = warehouse.received()
    created = [key for kind, key in received if kind == "order_created"]
    assert len(created) == len(set(created)) == 4  # the 3PL's own ledger: every order created once
    keys = {key.rsplit("-", 2)[-2] + "-" + key.rsplit("-", 1)[-1]: key for key in created}
    assert sorted(keys) == ["W-1", "W-2", "W-3", "W-4"]
    assert [(kind, key) for kind, key in received if kind == "order_updated"] == [("order_updated", keys["W-3"])]
