"""``/orders/import`` in the portal over real HTTP: the form, the preview with each bad row's error
(escaped), the confirmation (CSRF, operator role), the report and its download, the template."""

from __future__ import annotations

import csv
import io
import re

from sqlalchemy import select

from orderbridge.storage.tables import orders
from tests.web.portal.conftest import Portal, csrf_in

FILE = (
    "order_number;currency;sku;quantity;unit_price\nW-1;EUR;MUG;2;12,50\nW-2;EUR;<b>PLATE</b>;1;1\nW-3;EUR;MUG;<b>deux</b>;1\n"
)


def test_an_operator_previews_confirms_and_downloads_the_report(portal: Portal) -> None:
    client = portal.signed_in("operator")
    inbox = client.get("/orders")
    assert 'href="/orders/import"' in inbox.text
    form = client.get("/orders/import")
    assert form.status_code == 200 and 'name="encoding"' in form.text and 'name="delimiter"' in form.text
    preview = client.post(
        "/orders/import",
        data={"csrf_token": csrf_in(form.text), "encoding": "auto", "delimiter": "auto"},
        files={"file": ("week.csv", FILE.encode(), "text/csv")},
    )
    assert preview.status_code == 200, preview.text
    row = re.search(r'<tr class="problem" data-row="4">(.*?)</tr>', preview.text, re.S)
    assert row is not None and "quantity" in row.group(1) and "&lt;b&gt;deux&lt;/b&gt;" in row.group(1)
    assert "is not a whole number of units" in row.group(1)
    assert "<b>deux</b>" not in preview.text  # the file's text is data: escaped
    with portal.hub.db.read() as conn:
        assert conn.execute(select(orders.c.id)).first() is None  # nothing before the confirmation
    action = re.search(r'action="(/orders/import/[^"]+/confirm)"', preview.text)
    assert action is not None
    refused = client.post(action.group(1), data={"csrf_token": "wrong"})
    assert refused.status_code == 403
    report = client.post(action.group(1), data={"csrf_token": csrf_in(preview.text)})
    assert report.status_code == 200, report.text
    assert "2 new, 0 updated, 0 skipped as duplicates, 1 rejected" in report.text
    with portal.hub.db.read() as conn:
        assert sorted(conn.execute(select(orders.c.number)).scalars()) == ["W-1", "W-2"]
    download = re.search(r'href="(/orders/import/[^"]+/report\.csv)"', report.text)
    assert download is not None
    csv_text = client.get(download.group(1))
    assert csv_text.status_code == 200
    assert [r[3] for r in csv.reader(io.StringIO(csv_text.text))][1:] == ["imported", "imported", "rejected"]


def test_a_viewer_cannot_upload_and_the_template_downloads(portal: Portal) -> None:
    viewer = portal.signed_in("viewer")
    account = viewer.get("/account")
    refused = viewer.post(
        "/orders/import", data={"csrf_token": csrf_in(account.text)}, files={"file": ("a.csv", FILE.encode())}
    )
    assert refused.status_code == 403
    template = viewer.get("/orders/import/template.csv")
    assert template.status_code == 200 and template.text.startswith("order_number,currency,sku,quantity,unit_price")
