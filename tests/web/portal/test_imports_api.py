"""``/api/v1/imports`` over real HTTP: upload → preview (nothing imported), confirm → report, the
report as CSV; one JSON error shape, 4xx never 5xx, 413 naming the limit, another tenant's token unknown."""

from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from orderbridge.storage.tables import orders
from tests.web.portal.conftest import Portal

GOOD = (
    "order_number,currency,sku,quantity,unit_price\n"
    "W-1,EUR,MUG,2,12.50\nW-2,EUR,=cmd|' /C calc'!A0,1,1\nW-3,EUR,MUG,x,1\n"
)


def count(portal: Portal) -> int:
    with portal.hub.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(orders)).scalar_one())


def test_upload_previews_confirm_imports_and_the_report_is_csv_injection_safe(portal: Portal) -> None:
    api = portal.api("operator")
    answer = api.post("/api/v1/imports", files={"file": ("week.csv", GOOD.encode(), "text/csv")})
    assert answer.status_code == 201, answer.text
    preview = answer.json()
    assert preview["counts"]["new"] == 2 and preview["counts"]["rejected"] == 1
    [rejected] = [o for o in preview["orders"] if o["outcome"] == "rejected"]
    assert rejected["errors"][0] | {"fix": ""} == {
        "row": 4,
        "column": "quantity",
        "value": "x",
        "code": "quantity_invalid",
        "problem": "is not a whole number of units",
        "fix": "",
    }
    assert count(portal) == 0  # a preview imports nothing
    token = preview["token"]
    assert api.get(f"/api/v1/imports/{token}").status_code == 409  # no report before the confirmation
    report = api.post(f"/api/v1/imports/{token}/confirm")
    assert report.status_code == 200, report.text
    assert report.json()["counts"] | {"orders": 0, "rows": 0} == {
        "imported": 2,
        "updated": 0,
        "skipped": 0,
        "rejected": 1,
        "orders": 0,
        "rows": 0,
    }
    again = api.post(f"/api/v1/imports/{token}/confirm")  # a retried request
    assert again.json()["rows"] == report.json()["rows"] and count(portal) == 2
    download = api.get(f"/api/v1/imports/{token}/report.csv")
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    cells = [c for line in csv.reader(io.StringIO(download.text)) for c in line]
    assert "'=cmd|' /C calc'!A0" in cells and not any(c.startswith("=") for c in cells)


def test_a_bad_file_is_a_422_with_the_error_shape_and_its_fix(portal: Portal) -> None:
    api = portal.api("operator")
    answer = api.post("/api/v1/imports", files={"file": ("x.xlsx", b"PK\x03\x04....", "application/octet-stream")})
    assert answer.status_code == 422
    error = answer.json()["error"]
    assert error["code"] == "import_file_not_csv"
    assert error["hint"] == 'Save it from the spreadsheet as "CSV UTF-8 (comma delimited)" and import that file.'
    bad_choice = api.post("/api/v1/imports", files={"file": ("a.csv", GOOD.encode())}, data={"delimiter": "tab"})
    assert bad_choice.status_code == 422 and "unknown separator 'tab'" in bad_choice.json()["error"]["message"]


def test_an_oversized_upload_is_refused_with_413_naming_the_limit(portal: Portal) -> None:
    api = portal.api("operator")
    big = b"order_number,currency,sku,quantity,unit_price\n" + b"W-1,EUR,MUG,1,1\n" * 2_300_000  # ~37 MB
    answer = api.post("/api/v1/imports", files={"file": ("big.csv", big, "text/csv")})
    assert answer.status_code == 413
    assert answer.json()["error"]["message"] == (
        "The file is larger than the import limit of 32 MiB (33,554,432 bytes)."
    )
    assert count(portal) == 0


def test_a_viewer_cannot_import_and_another_tenant_cannot_see_the_upload(portal: Portal) -> None:
    files = {"file": ("week.csv", GOOD.encode(), "text/csv")}
    assert portal.api("viewer").post("/api/v1/imports", files=files).status_code == 403
    token = portal.api("operator").post("/api/v1/imports", files=files).json()["token"]
    assert portal.api("viewer").post(f"/api/v1/imports/{token}/confirm").status_code == 403
    other = portal.api("operator", tenant="other")
    assert other.post(f"/api/v1/imports/{token}/confirm").status_code == 404
    assert other.get(f"/api/v1/imports/{token}/report.csv").status_code == 404
    assert count(portal) == 0
