"""Watching a file-export destination's files (seed 002's blind spot): the package takes a file,
refuses it with an error file, or leaves it past the pickup limit — and the order page, the hold
groups and the alerts say so, from a real drop directory (the test acts as the package)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from orderbridge.runtime.worker import run_cycle
from orderbridge.services.connections import add_connection
from orderbridge.services.deliveries import status, watch_deliveries
from orderbridge.services.hub import Hub, utcnow
from orderbridge.services.inbox import InboxQuery, inbox
from orderbridge.services.mappings import set_mapping
from orderbridge.services.notify import sync_hold_alerts
from orderbridge.services.notify.listing import list_alerts
from orderbridge.services.queries import holds, retry_order, show_order
from orderbridge.storage.tables import postings
from tests.builders import order
from tests.connectors.file_export.env import delivered, read_csv
from tests.fakes import FakeChannel, FakeDestination, install
from tests.scoped import cid, tenant

HOSTILE_MESSAGE = "<script>alert(1)</script> Account 4000 & item 'TEE' unknown"


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    path = tmp_path / "drop"
    path.mkdir()
    return path


def world(hub: Hub, drop: Path, n: int = 2, **settings: Any) -> FakeChannel:
    channel = FakeChannel()
    for i in range(1, n + 1):
        channel.put(order(i))
    install(hub, channel)
    add_connection(
        tenant(hub),
        "books",
        "file_export",
        "",
        {},
        {
            "directory": str(drop),
            "pickup_limit_hours": 2,
            "template": {"columns": ["order_key", "order_number", "sku"]},
            **settings,
        },
    )
    return channel


def cycle(hub: Hub) -> dict[str, Any]:
    report = run_cycle(tenant(hub))
    assert not report.crashed, report.crashed
    return report.deliveries[0] if report.deliveries else {}


def later(hub: Hub, hours: float) -> None:
    base = utcnow()
    hub.now = lambda: base + timedelta(hours=hours)


def test_orders_are_written_once_and_imported_when_the_package_takes_the_file(hub: Hub, drop: Path) -> None:
    world(hub, drop)
    cycle(hub)
    (file,) = delivered(drop)
    assert [r["order_number"] for r in read_csv(file)] == ["#1001", "#1002"]
    assert show_order(tenant(hub), "#1001").state == "posted"
    assert cycle(hub)["waiting"] == 1 and len(delivered(drop)) == 1  # a second cycle writes nothing
    file.unlink()  # the package picked it up
    report = cycle(hub)
    assert report["imported"] == 1
    timeline = show_order(tenant(hub), "#1001").timeline
    imported = [e for e in timeline if e["kind"] == "export_imported"]
    assert len(imported) == 1 and file.name in imported[0]["message"]
    cycle(hub)  # read again: told once
    assert len([e for e in show_order(tenant(hub), "#1001").timeline if e["kind"] == "export_imported"]) == 1


def test_a_file_left_unpicked_past_its_limit_holds_its_orders_and_is_released_once_picked_up(
    hub: Hub, drop: Path
) -> None:
    world(hub, drop)
    cycle(hub)
    later(hub, 1)
    assert cycle(hub)["overdue"] == 0 and show_order(tenant(hub), "#1001").state == "posted"
    later(hub, 3)
    assert cycle(hub)["overdue"] == 1
    detail = show_order(tenant(hub), "#1001")
    assert detail.state == "held"
    (reason,) = detail.reasons
    assert (reason["code"], reason["value"]) == ("export_not_picked_up", "books")
    assert "not picked up by the package after 2 hours" in reason["message"]
    assert "import job is running" in reason["fix"].text and reason["fix"].param("connection") == "books"
    page = inbox(tenant(hub), InboxQuery(reason="export_not_picked_up", reason_value="books"), choices=True)
    assert sorted(r.number for r in page.rows) == ["#1001", "#1002"] and "export_not_picked_up" in page.open_codes
    (group,) = [g for g in holds(tenant(hub)) if g.code == "export_not_picked_up"]
    assert (group.value, group.orders) == ("books", 2)
    sync_hold_alerts(tenant(hub))
    alerts = [a for a in list_alerts(tenant(hub)) if "export_not_picked_up" in a.key]
    assert len(alerts) == 1 and alerts[0].state == "open"
    cycle(hub)  # read again: one hold each, not two
    assert len(show_order(tenant(hub), "#1001").reasons) == 1

    (file,) = delivered(drop)
    (drop / "processed").mkdir()
    file.rename(drop / "processed" / file.name)  # the package's job ran at last
    report = cycle(hub)
    assert report["imported"] == 1 and report["released"] == 2
    detail = show_order(tenant(hub), "#1001")
    assert detail.state == "posted" and detail.reasons == []
    kinds = [e["kind"] for e in detail.timeline]
    assert "export_imported" in kinds and kinds.index("held") < kinds.index("export_imported")
    assert not [g for g in holds(tenant(hub)) if g.code == "export_not_picked_up"]
    sync_hold_alerts(tenant(hub))
    assert all(a.state != "open" for a in list_alerts(tenant(hub)) if "export_not_picked_up" in a.key)


def test_an_error_file_holds_the_orders_with_the_packages_message_and_a_retry_writes_a_new_file(
    hub: Hub, drop: Path
) -> None:
    world(hub, drop)
    cycle(hub)
    (file,) = delivered(drop)
    (drop / f"{file.name}.err").write_text(HOSTILE_MESSAGE + "\n", encoding="utf-8")
    report = cycle(hub)
    assert report["rejected"] == 1
    detail = show_order(tenant(hub), "#1002")
    assert detail.state == "held"
    (reason,) = detail.reasons
    assert reason["code"] == "destination_rejected" and reason["value"] == "books"
    assert HOSTILE_MESSAGE in reason["message"] and file.name in reason["message"]
    assert "reset the order to pending" in reason["fix"].text
    with hub.db.read() as conn:
        assert set(conn.execute(select(postings.c.status)).scalars()) == {"rejected"}
    cycle(hub)  # read again: nothing more
    assert len(show_order(tenant(hub), "#1002").reasons) == 1

    # the accountant corrected it in the package; reset to pending: written again, to a new file
    assert retry_order(tenant(hub), "#1002") == "ready"
    cycle(hub)
    (again,) = [f for f in delivered(drop) if f.suffix == ".csv" and f.name != file.name]
    assert [r["order_number"] for r in read_csv(again)] == ["#1002"]
    assert show_order(tenant(hub), "#1002").state == "posted"
    again.unlink()
    cycle(hub)
    assert show_order(tenant(hub), "#1002").state == "posted"
    assert any(
        e["kind"] == "export_imported" and again.name in e["message"] for e in show_order(tenant(hub), "#1002").timeline
    )


def test_an_acknowledgement_file_is_an_import_and_status_lists_each_files_fate(hub: Hub, drop: Path) -> None:
    world(hub, drop, n=3, per="order", file_name="order-{number}.csv")
    cycle(hub)
    names = sorted(f.name for f in delivered(drop))
    assert names == ["order-1001.csv", "order-1002.csv", "order-1003.csv"]
    (drop / "order-1001.csv.ok").write_text("")
    (drop / "order-1002.csv.err").write_text("Customer 'Ada' is on hold")
    cycle(hub)
    fates = {f["file"]: (f["fate"], f["orders"], f["message"]) for f in status(tenant(hub), cid(hub, "books"))}
    assert fates["order-1001.csv"][:2] == ("imported", ["#1001"])
    assert fates["order-1002.csv"] == ("rejected", [], "Customer 'Ada' is on hold")  # its order left the file
    assert fates["order-1003.csv"][:2] == ("waiting", ["#1003"])
    assert show_order(tenant(hub), "#1001").state == "posted"
    assert show_order(tenant(hub), "#1002").state == "held"


def test_a_missing_drop_directory_marks_the_job_failing_with_the_fix(hub: Hub, drop: Path) -> None:
    world(hub, drop)
    cycle(hub)
    for f in drop.iterdir():
        if f.is_file():
            f.unlink()
    for f in (drop / ".orderbridge").iterdir():
        f.unlink()
    (drop / ".orderbridge").rmdir()
    drop.rmdir()
    report = watch_deliveries(tenant(hub), cid(hub, "books"))
    assert report.error is not None and report.error.code == "settings_invalid"
    with hub.db.read() as conn:
        assert tenant(hub).connection_named(conn, "books").health == "failing"


def test_a_retry_of_a_late_order_never_leaves_it_ready_with_nothing_to_post(hub: Hub, drop: Path) -> None:
    """Someone retries an order held "not picked up": the pipeline makes it ready, its version is
    already in the file, so nothing is written again; the next watch holds it again (the file is
    still there), and once the file is taken it is posted."""
    world(hub, drop, n=1)
    cycle(hub)
    later(hub, 3)
    cycle(hub)
    assert show_order(tenant(hub), "#1001").state == "held"
    assert retry_order(tenant(hub), "#1001") == "ready"
    cycle(hub)
    assert len(delivered(drop)) == 1  # not written twice
    # the file is still not taken: held again for it, once
    detail = show_order(tenant(hub), "#1001")
    assert detail.state == "held" and [r["code"] for r in detail.reasons] == ["export_not_picked_up"]
    delivered(drop)[0].unlink()
    cycle(hub)
    assert show_order(tenant(hub), "#1001").state == "posted"


def test_a_retried_late_order_whose_file_is_then_taken_is_posted(hub: Hub, drop: Path) -> None:
    world(hub, drop, n=1)
    cycle(hub)
    later(hub, 3)
    cycle(hub)
    assert retry_order(tenant(hub), "#1001") == "ready"
    delivered(drop)[0].unlink()
    cycle(hub)
    assert show_order(tenant(hub), "#1001").state == "posted" and delivered(drop) == []


def test_the_deliveries_job_runs_only_on_kinds_that_declare_watch_deliveries(hub: Hub, drop: Path) -> None:
    channel = FakeChannel()
    channel.put(order(1))
    install(hub, channel, FakeDestination())
    add_connection(tenant(hub), "books", "file_export", f"file://{drop}", {}, {})
    set_mapping(tenant(hub), "sku", "SKU-1", "W-1", cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    report = run_cycle(tenant(hub))
    assert not report.crashed
    assert [d["connection"] for d in report.deliveries] == ["books"]
    assert {p["destination"] for p in report.posts} == {"wh", "books"}
    assert len(delivered(drop)) == 1  # the base URL names the directory when the setting is empty


def test_a_refusal_stays_a_refusal_when_the_package_cleans_up_its_error_file(hub: Hub, drop: Path) -> None:
    """The package refused a file, then deleted it and its error file (a clean-up job): the order
    is still held with the message, and a retry writes it again instead of calling it delivered."""
    world(hub, drop, n=1)
    cycle(hub)
    (file,) = delivered(drop)
    error = drop / f"{file.name}.err"
    error.write_text("Unknown tax code 'EXEMPT'", encoding="utf-8")
    cycle(hub)
    error.unlink()
    file.unlink()
    cycle(hub)
    detail = show_order(tenant(hub), "#1001")
    assert detail.state == "held" and "Unknown tax code 'EXEMPT'" in detail.reasons[0]["message"]
    (fate,) = status(tenant(hub), cid(hub, "books"))
    assert (fate["fate"], fate["message"]) == ("rejected", "Unknown tax code 'EXEMPT'")
    assert retry_order(tenant(hub), "#1001") == "ready"
    cycle(hub)
    (again,) = delivered(drop)
    assert again.name != file.name and [r["order_number"] for r in read_csv(again)] == ["#1001"]
    assert show_order(tenant(hub), "#1001").state == "posted"
