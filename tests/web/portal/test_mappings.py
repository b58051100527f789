"""The Mappings screen and API over a real port: the unmapped values seen, map one and watch its
orders released, edit, delete, CSV import (all or nothing) and export, tenants, roles, CSRF."""

from __future__ import annotations

import pytest
from sqlalchemy import Table, func, select

from orderbridge.sandboxes.shopify import generator
from orderbridge.services.audit_trail import actions_on
from orderbridge.services.mappings import list_mappings, set_mapping
from orderbridge.services.sync import sync_channel
from orderbridge.storage.tables import mappings, order_reasons
from tests.web.portal.conftest import Portal
from tests.web.portal.conn_world import Connected, connected


def _count(portal: Portal, table: Table) -> int:
    with portal.hub.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _open_holds(portal: Portal, value: str) -> int:
    with portal.hub.db.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(order_reasons)
                .where(
                    order_reasons.c.tenant_id == portal.default.tenant_id,
                    order_reasons.c.code == "sku_unmapped",
                    order_reasons.c.value == value,
                    order_reasons.c.released_at.is_(None),
                )
            ).scalar_one()
        )


def _mine(portal: Portal) -> list[tuple[str, str, str]]:
    return [(m.kind, m.source, m.target) for m in list_mappings(portal.default).mappings]


def _shipping_mapped(portal: Portal, w: Connected) -> None:
    for method in (*generator.SHIPPING_METHODS, *generator.UNKNOWN_SHIPPING_METHODS):
        set_mapping(portal.default, "shipping", method, "ups:ups_ground", w.warehouse_id)


def test_the_unmapped_values_seen_are_listed_and_mapping_one_releases_its_orders(portal: Portal) -> None:
    with connected(portal, orders=30, realistic=True) as w:
        _shipping_mapped(portal, w)
        sync_channel(portal.default, w.shop_id)
        operator = portal.signed_in("operator")
        page = operator.get("/mappings")
        assert page.status_code == 200 and "Unmapped values seen" in page.text
        api = portal.api("viewer")
        seen = api.get("/api/v1/mappings/unmapped").json()
        sku = next(u for u in seen if u["kind"] == "sku")
        assert sku["orders"] >= 1 and sku["examples"] and sku["destinations"] == ["warehouse"]
        assert sku["value"] in page.text and f'href="/orders/{sku["examples"][0]["id"]}"' in page.text
        assert _open_holds(portal, sku["value"]) == sku["orders"]
        answer = operator.post_form(
            "/mappings",
            {"kind": "sku", "source": sku["value"], "target": "W-1", "destination_id": str(w.warehouse_id)},
        )
        assert answer.status_code == 303
        after = operator.get("/mappings").text
        assert "released" in after and "Operator default" in after
        assert sku["value"] not in [u["value"] for u in api.get("/api/v1/mappings/unmapped").json()]
        assert _open_holds(portal, sku["value"]) == 0, "the mapping released every hold it was the cause of"


def test_adding_editing_and_deleting_over_the_api_is_recorded_and_answers_the_mapping(portal: Portal) -> None:
    with connected(portal):
        api = portal.api("operator")
        made = api.post("/api/v1/mappings", json={"kind": "sku", "source": "A", "target": "WA"})
        assert made.status_code == 201, made.text
        mapping = made.json()["mapping"]
        assert mapping["destination"] == "warehouse" and mapping["changed_by"] == "test operator"
        mid = mapping["id"]
        assert api.get(f"/api/v1/mappings/{mid}").json()["target"] == "WA"
        edited = api.put(f"/api/v1/mappings/{mid}", json={"target": "WA2"})
        assert edited.status_code == 200 and edited.json()["mapping"]["target"] == "WA2"
        api.post("/api/v1/mappings", json={"kind": "sku", "source": "B", "target": "WB"})
        clash = api.put(f"/api/v1/mappings/{mid}", json={"target": "X", "source": "B"})
        assert clash.status_code == 409 and clash.json()["error"]["code"] == "conflict"
        bad = api.post("/api/v1/mappings", json={"kind": "shipping", "source": "Express", "target": "fast"})
        assert bad.status_code == 422 and "carrier:service" in bad.json()["error"]["message"]
        listed = api.get("/api/v1/mappings", params={"kind": "sku"}).json()
        assert listed["total"] == 2 and [m["source"] for m in listed["mappings"]] == ["A", "B"]
        gone = api.delete(f"/api/v1/mappings/{mid}")
        assert gone.status_code == 200 and gone.json()["source"] == "A"
        assert api.get(f"/api/v1/mappings/{mid}").status_code == 404
        assert [a.action for a in actions_on(portal.default, "mapping", mid)] == [
            "mapping.delete",
            "mapping.edit",
            "mapping.add",
        ]


def test_editing_and_deleting_in_the_portal(portal: Portal) -> None:
    with connected(portal) as w:
        made = set_mapping(portal.default, "sku", "A", "WA", w.warehouse_id)
        operator = portal.signed_in("operator")
        edited = operator.post_form("/mappings", {"mapping_id": str(made.mapping_id), "source": "A", "target": "WA9"})
        assert edited.status_code == 303 and _mine(portal) == [("sku", "A", "WA9")]
        refused = operator.post_form("/mappings", {"mapping_id": str(made.mapping_id), "source": "A", "target": ""})
        assert refused.status_code == 422 and _mine(portal) == [("sku", "A", "WA9")]
        deleted = operator.post_form(f"/mappings/{made.mapping_id}/delete", headers={"HX-Request": "true"})
        assert deleted.status_code == 204 and deleted.headers["hx-redirect"] == "/mappings"
        assert _mine(portal) == []
        page = operator.get("/mappings").text
        assert "Orders already posted are unchanged" in page, "the flash says what a delete does"
        assert "deleted SKU mapping" in page, "the recent changes list keeps deleted mappings"


def test_a_csv_import_with_a_bad_row_applies_nothing_and_reports_every_row(portal: Portal) -> None:
    with connected(portal) as w:
        operator = portal.signed_in("operator")
        text = "destination,kind,source,target\nwarehouse,sku,A,WA\nwarehouse,sku,B,\nnowhere,sku,C,WC\n"
        answer = operator.post(
            "/mappings/import",
            data={"csrf_token": operator.csrf},
            files={"file": ("skus.csv", text.encode(), "text/csv")},
        )
        assert answer.status_code == 422
        assert "Nothing was imported." in answer.text and "nowhere" in answer.text and "Not applied" in answer.text
        assert _count(portal, mappings) == 1, "only the other tenant's"
        good = operator.post(
            "/mappings/import",
            data={"csrf_token": operator.csrf, "kind": "sku", "destination_id": str(w.warehouse_id)},
            files={"file": ("skus.csv", b"\xef\xbb\xbfsource,target\nA,WA\nB,WB\n", "text/csv")},
        )
        assert good.status_code == 200 and "2 added" in good.text
        assert sorted(_mine(portal)) == [("sku", "A", "WA"), ("sku", "B", "WB")]
        latin = operator.post(
            "/mappings/import",
            data={"csrf_token": operator.csrf, "kind": "sku"},
            files={"file": ("skus.csv", "source,target\nCAFÉ,W\n".encode("latin-1"), "text/csv")},
        )
        assert latin.status_code == 422 and "UTF-8" in latin.text


def test_the_export_is_a_csv_the_import_reads_back(portal: Portal) -> None:
    with connected(portal) as w:
        set_mapping(portal.default, "sku", "=cmd|' /C calc'!A0", "W1", w.warehouse_id)
        set_mapping(portal.default, "shipping", "*", "ups:ups_ground", w.warehouse_id)
        operator = portal.signed_in("operator")
        exported = operator.get("/mappings/export.csv")
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        assert "attachment" in exported.headers["content-disposition"]
        assert "THEIR-SKU" not in exported.text, "another tenant's mappings are not exported"
        assert "'=cmd" in exported.text, "a formula is defused for spreadsheets"
        before = sorted(_mine(portal))
        with portal.hub.db.transaction() as conn:
            conn.execute(mappings.delete().where(mappings.c.tenant_id == portal.default.tenant_id))
        api = portal.api("operator")
        imported = api.post("/api/v1/mappings/import", content=exported.content, headers={"Content-Type": "text/csv"})
        assert imported.status_code == 200 and imported.json()["applied"] is True
        assert sorted(_mine(portal)) == before
        assert portal.api("viewer").get("/api/v1/mappings/export.csv").text == exported.text


def test_another_tenants_mapping_is_404_on_every_route(portal: Portal) -> None:
    with connected(portal) as w:
        theirs = w.their_mapping_id
        operator = portal.signed_in("operator")
        assert operator.post_form(f"/mappings/{theirs}/delete").status_code == 404
        assert operator.post_form("/mappings", {"mapping_id": str(theirs), "target": "X"}).status_code == 404
        assert (
            operator.post_form(
                "/mappings", {"kind": "sku", "source": "A", "target": "X", "destination_id": str(w.their_warehouse_id)}
            ).status_code
            == 404
        )
        assert operator.get(f"/mappings?destination_id={w.their_warehouse_id}").status_code == 404
        assert operator.get(f"/mappings/export.csv?destination_id={w.their_warehouse_id}").status_code == 404
        api = portal.api("operator")
        for call in (
            lambda: api.get(f"/api/v1/mappings/{theirs}"),
            lambda: api.put(f"/api/v1/mappings/{theirs}", json={"target": "X"}),
            lambda: api.delete(f"/api/v1/mappings/{theirs}"),
            lambda: api.get("/api/v1/mappings", params={"destination_id": w.their_warehouse_id}),
        ):
            answer = call()
            assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
        assert "THEIR-SKU" not in operator.get("/mappings").text
        assert api.get("/api/v1/mappings").json()["total"] == 0
        their = list_mappings(portal.other).mappings
        assert [(m.source, m.target) for m in their] == [("THEIR-SKU", "THEIR-TARGET")]


@pytest.mark.parametrize("surface", ["portal", "api"])
def test_a_viewer_reads_mappings_but_cannot_change_them(portal: Portal, surface: str) -> None:
    with connected(portal) as w:
        made = set_mapping(portal.default, "sku", "A", "WA", w.warehouse_id)
        if surface == "portal":
            viewer = portal.signed_in("viewer")
            page = viewer.get("/mappings")
            assert page.status_code == 200 and "WA" in page.text and "Add a mapping" not in page.text
            assert viewer.post_form("/mappings", {"kind": "sku", "source": "B", "target": "WB"}).status_code == 403
            assert viewer.post_form(f"/mappings/{made.mapping_id}/delete").status_code == 403
            answer = viewer.post(
                "/mappings/import", data={"csrf_token": viewer.csrf}, files={"file": ("a.csv", b"source,target\n")}
            )
            assert answer.status_code == 403
        else:
            api = portal.api("viewer")
            assert api.get("/api/v1/mappings").status_code == 200
            assert api.post("/api/v1/mappings", json={"kind": "sku", "source": "B", "target": "WB"}).status_code == 403
            assert api.put(f"/api/v1/mappings/{made.mapping_id}", json={"target": "X"}).status_code == 403
            assert api.delete(f"/api/v1/mappings/{made.mapping_id}").status_code == 403
            assert api.post("/api/v1/mappings/import", content=b"source,target\n").status_code == 403
        assert _mine(portal) == [("sku", "A", "WA")]


def test_every_mapping_change_needs_the_sessions_csrf_token(portal: Portal) -> None:
    with connected(portal) as w:
        made = set_mapping(portal.default, "sku", "A", "WA", w.warehouse_id)
        operator = portal.signed_in("operator")
        for url, data in (
            ("/mappings", {"kind": "sku", "source": "B", "target": "WB"}),
            (f"/mappings/{made.mapping_id}/delete", {}),
        ):
            assert operator.post(url, data=data).status_code == 403, url
            assert operator.post(url, data={**data, "csrf_token": "forged"}).status_code == 403, url
        answer = operator.post("/mappings/import", files={"file": ("a.csv", b"source,target\nC,WC\n")})
        assert answer.status_code == 403
        assert _mine(portal) == [("sku", "A", "WA")]


def test_values_from_the_channel_are_escaped_on_the_mappings_screen(portal: Portal) -> None:
    with connected(portal) as w:
        set_mapping(
            portal.default, "sku", "<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', w.warehouse_id
        )
        page = portal.signed_in("operator").get("/mappings").text
        assert "<script>alert(1)</script>" not in page and "<img src=x" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_hostile_input_is_answered_4xx_never_5xx(portal: Portal) -> None:
    with connected(portal):
        api = portal.api("operator")
        operator = portal.signed_in("operator")
        answers = [
            api.get("/api/v1/mappings", params={"q": "a\x00b"}),
            api.get("/api/v1/mappings", params={"page": "0"}),
            api.get("/api/v1/mappings/9223372036854775808"),
            api.post("/api/v1/mappings", json={"kind": "sku", "source": "a\x00", "target": "b"}),
            api.post("/api/v1/mappings", json={"kind": "colour", "source": "a", "target": "b"}),
            api.put("/api/v1/mappings/1", json={"target": "x" * 301}),
            api.post("/api/v1/mappings/import", content=b"\xff\xfe\x00", headers={"Content-Type": "text/csv"}),
            api.post("/api/v1/mappings/import", content=b'source,target\n"unterminated', params={"kind": "sku"}),
            api.post("/api/v1/mappings/import", content=b"source,target\na\x00,b\n", params={"kind": "sku"}),
            operator.get("/mappings", params={"q": "\x00"}),
            operator.get("/mappings", params={"destination_id": "x"}),
            operator.get("/connections/by-name/a%00b"),
            operator.post_form("/mappings", {"kind": "sku", "source": "a", "target": "b", "destination_id": "-1"}),
        ]
        assert all(400 <= a.status_code < 500 for a in answers), [(a.request.url, a.status_code) for a in answers]
