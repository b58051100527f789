"""Importing orders from a CSV file in a real browser (Debian's Chromium over the running hub): a
file with one bad row is uploaded, that row's error is read in the preview, the import is
confirmed, the good orders reach the ShipStation sandbox (its own ledger) and the report downloads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from orderbridge.sandboxes.shopify import generator
from tests.browser.conftest import assert_accessible, sign_in
from tests.browser.world import World

SKU = generator.CATALOG[0][0]


def test_an_operator_imports_a_file_with_one_bad_row_and_the_good_orders_are_posted(
    world: World, page: Any, shot: Any, tmp_path: Path
) -> None:
    path = tmp_path / "wholesale.csv"
    path.write_text(
        "order_number,currency,sku,quantity,unit_price,ship_name,ship_address1,ship_city,ship_postal_code,ship_country\n"
        f"IMP-1,EUR,{SKU},2,12.50,Ana Lima,12 rue des Lilas,Lyon,69003,FR\n"
        f"IMP-2,EUR,{SKU},three,4.00,Bo Chen,1 Main St,Leeds,LS1,GB\n"
        f"IMP-3,EUR,{SKU},1,9.90,Cy Diaz,2 High St,Leeds,LS1,GB\n",
        encoding="utf-8",
    )
    sign_in(page, world, "operator", next_path="/orders")
    page.get_by_role("link", name="Import orders from CSV").click()
    page.wait_for_url(f"{world.url}/orders/import")
    assert_accessible(page, "the import form")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Preview").click()
    bad = page.locator('#import-errors tr[data-row="3"]')
    bad.wait_for()
    cells = bad.locator("td").all_inner_texts()
    assert cells[:3] == ["3", "quantity", "three"] and cells[3] == "is not a whole number of units"
    assert not {"IMP-1", "IMP-2", "IMP-3"} & set(world.states())  # nothing imported by a preview
    assert_accessible(page, "the preview")
    shot(page, "preview")

    page.get_by_role("button", name="Import 2 orders").click()
    page.get_by_text("Imported: 2 new, 0 updated, 0 skipped as duplicates, 1 rejected.").wait_for()
    assert_accessible(page, "the report")
    shot(page, "report")
    world.wait_for("both good orders posted", lambda: world.documents("IMP-1") == 1 and world.documents("IMP-3") == 1)
    assert world.documents("IMP-2") == 0 and "IMP-2" not in world.states()

    with page.expect_download() as download:
        page.get_by_role("link", name="Download the report (CSV)").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0] == "row,order_number,sku,outcome,order_id,state,message"
    assert ",IMP-2,,rejected," in text and ",IMP-1," in text
