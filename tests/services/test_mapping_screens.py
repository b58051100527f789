"""The services behind the Mappings screen: list with who changed what, add, edit, delete, the
unmapped values seen, CSV import (all or nothing) and export."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from orderbridge.domain.roles import Role
from orderbridge.errors import Conflict, InvalidInput, NotFound
from orderbridge.sandboxes.shopify import generator
from orderbridge.services.audit_trail import actions_on
from orderbridge.services.hub import Hub
from orderbridge.services.mappings import (
    delete_mapping,
    edit_mapping,
    export_csv,
    get_mapping,
    import_csv,
    list_mappings,
    save_mapping,
    unmapped_seen,
)
from orderbridge.services.posting import post_ready
from orderbridge.services.sync import sync_channel
from orderbridge.services.tenants import add_tenant
from orderbridge.storage.tables import mappings, orders
from tests.services.portal_world import person, portal_world


def _states(hub: Hub) -> dict[str, int]:
    with hub.db.read() as conn:
        return {s: int(n) for s, n in conn.execute(select(orders.c.state, func.count()).group_by(orders.c.state))}


def _mapping_rows(hub: Hub) -> int:
    with hub.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(mappings)).scalar_one())


def test_the_unmapped_values_seen_come_with_counts_example_orders_and_the_destination(hub: Hub) -> None:
    with portal_world(hub, orders=30, realistic=True) as w:
        sync_channel(w.scope, w.shop_id)
        seen = unmapped_seen(w.scope)
        assert seen and [u.orders for u in seen] == sorted((u.orders for u in seen), reverse=True)
        top = seen[0]
        assert top.orders >= 1 and 1 <= len(top.examples) <= 3 and top.destinations == ["warehouse"]
        assert {u.kind for u in seen} <= {"sku", "shipping"}


def test_mapping_a_seen_value_releases_its_orders_and_the_list_says_who_did_it(hub: Hub) -> None:
    with portal_world(hub, orders=30, realistic=True) as w:
        sync_channel(w.scope, w.shop_id)
        for method in generator.SHIPPING_METHODS:
            save_mapping(w.scope, "shipping", method, "ups:ups_ground", w.warehouse_id, by=w.actor())
        sku = next(u for u in unmapped_seen(w.scope) if u.kind == "sku")
        result = save_mapping(w.scope, "sku", sku.value, "W-" + sku.value, w.warehouse_id, by=w.actor())
        assert result.mapping_id is not None
        page = list_mappings(w.scope, kind="sku")
        assert [(m.source, m.target, m.changed_by) for m in page.mappings] == [
            (sku.value, "W-" + sku.value, "Ana Lima")
        ]
        assert page.total == 1 and page.mappings[0].changed_at is not None
        again = save_mapping(w.scope, "sku", sku.value, "W2", w.warehouse_id, by=w.actor(Role.OPERATOR, "Bo"))
        assert again.mapping_id == result.mapping_id, "one mapping per destination, kind and value"
        trail = actions_on(w.scope, "mapping", result.mapping_id)
        assert [(a.action, a.who) for a in trail] == [("mapping.edit", "Bo"), ("mapping.add", "Ana Lima")]
        assert list_mappings(w.scope, search="w2").total == 1


def test_deleting_a_mapping_changes_nothing_posted_and_holds_the_next_order_that_needs_it(hub: Hub) -> None:
    with portal_world(hub, orders=20, realistic=False) as w:
        for method in generator.SHIPPING_METHODS:
            save_mapping(w.scope, "shipping", method, "ups:ups_ground", w.warehouse_id, by=w.actor())
        ids = [
            save_mapping(w.scope, "sku", sku, sku, w.warehouse_id, by=w.actor()).mapping_id
            for sku, _t, _p in generator.CATALOG
        ]
        sync_channel(w.scope, w.shop_id)
        post_ready(w.scope, w.warehouse_id)
        posted_before = _states(hub).get("posted", 0)
        documents_before = dict(w.warehouse.orders_by_key())
        assert posted_before > 0
        for mapping_id in ids:
            assert mapping_id is not None
            gone = delete_mapping(w.scope, mapping_id, by=w.actor())
            assert gone.id == mapping_id
        assert _states(hub).get("posted", 0) == posted_before, "posted orders stay posted"
        assert w.warehouse.orders_by_key() == documents_before, "the destination's documents are untouched"
        with pytest.raises(NotFound):
            get_mapping(w.scope, ids[0])  # type: ignore[arg-type]
        assert actions_on(w.scope, "mapping", ids[0])[0].action == "mapping.delete"


def test_a_ready_order_whose_mapping_was_deleted_is_held_by_the_poster_not_posted(hub: Hub) -> None:
    with portal_world(hub, orders=5, realistic=False) as w:
        for method in generator.SHIPPING_METHODS:
            save_mapping(w.scope, "shipping", method, "ups:ups_ground", w.warehouse_id, by=w.actor())
        ids = [
            save_mapping(w.scope, "sku", sku, sku, w.warehouse_id, by=w.actor()).mapping_id
            for sku, _t, _p in generator.CATALOG
        ]
        sync_channel(w.scope, w.shop_id)
        assert _states(hub).get("ready", 0) == 5
        for mapping_id in ids:
            delete_mapping(w.scope, mapping_id, by=w.actor())  # type: ignore[arg-type]
        post_ready(w.scope, w.warehouse_id)
        assert _states(hub) == {"held": 5} and w.warehouse.orders_by_key() == {}


def test_editing_a_mapping_to_a_value_already_mapped_is_a_conflict(hub: Hub) -> None:
    with portal_world(hub) as w:
        a = save_mapping(w.scope, "sku", "A", "WA", w.warehouse_id, by=w.actor()).mapping_id
        save_mapping(w.scope, "sku", "B", "WB", w.warehouse_id, by=w.actor())
        assert a is not None
        with pytest.raises(Conflict):
            edit_mapping(w.scope, a, "WA", source="B", by=w.actor())
        edited = edit_mapping(w.scope, a, "WA2", source="A2", by=w.actor())
        assert (edited.source, edited.target) == ("A2", "WA2")
        with pytest.raises(InvalidInput):
            edit_mapping(w.scope, a, "", by=w.actor())
        with pytest.raises(InvalidInput, match="carrier:service"):
            save_mapping(w.scope, "shipping", "Express", "fast", w.warehouse_id, by=w.actor())


def test_a_csv_import_with_one_bad_row_applies_nothing_and_reports_every_row(hub: Hub) -> None:
    with portal_world(hub) as w:
        text = (
            "destination,kind,source,target\n"
            "warehouse,sku,A,WA\n"
            "warehouse,colour,B,WB\n"
            "nowhere,sku,C,WC\n"
            "warehouse,shipping,Express,not-a-service\n"
            "warehouse,sku,A,WA-again\n"
            "shop,sku,D,WD\n"
        )
        report = import_csv(w.scope, text, by=w.actor())
        assert not report.applied and _mapping_rows(hub) == 0
        assert [(r.line, r.status) for r in report.rows] == [
            (2, "not_applied"),
            (3, "error"),
            (4, "error"),
            (5, "error"),
            (6, "error"),
            (7, "error"),
        ]
        messages = {r.line: r.message for r in report.rows}
        assert "colour" in messages[3] and "nowhere" in messages[4] and "carrier:service" in messages[5]
        assert "line 2" in messages[6]
        good = import_csv(w.scope, "source,target\nA,WA\nB,WB\n", kind="sku", by=w.actor())
        assert good.applied and good.count("added") == 2 and _mapping_rows(hub) == 2
        again = import_csv(w.scope, "kind,source,target\nsku,A,WA\nsku,B,WB2\n", by=w.actor())
        assert [r.status for r in again.rows] == ["unchanged", "updated"]


def test_the_export_imports_back_unchanged_even_with_formula_like_values(hub: Hub) -> None:
    with portal_world(hub) as w:
        save_mapping(w.scope, "sku", "=HYPERLINK(1)", "-5", w.warehouse_id, by=w.actor())
        save_mapping(w.scope, "sku", 'quote"comma,', "plain", w.warehouse_id, by=w.actor())
        save_mapping(w.scope, "shipping", "*", "ups:ups_ground", w.warehouse_id, by=w.actor())
        text = export_csv(w.scope)
        assert text.splitlines()[0] == "destination,kind,source,target"
        assert "'=HYPERLINK(1)" in text and "\n=" not in text and ",=" not in text
        with hub.db.transaction() as conn:
            conn.execute(mappings.delete())
        report = import_csv(w.scope, text, by=w.actor())
        assert report.applied and report.count("added") == 3
        assert {(m.kind, m.source, m.target) for m in list_mappings(w.scope).mappings} == {
            ("sku", "=HYPERLINK(1)", "-5"),
            ("sku", 'quote"comma,', "plain"),
            ("shipping", "*", "ups:ups_ground"),
        }


def test_an_unreadable_file_is_refused_as_a_whole(hub: Hub) -> None:
    with portal_world(hub) as w:
        for text, code in [
            ("", "csv_empty"),
            ("a,b\n1,2\n", "csv_header_missing"),
            ("source,target,colour\n", "csv_header_invalid"),
            ("source,target\nA,B\n", "csv_kind_missing"),
        ]:
            with pytest.raises(InvalidInput) as bad:
                import_csv(w.scope, text, by=w.actor())
            assert bad.value.code == code


def test_another_tenants_mapping_is_not_found(hub: Hub) -> None:
    with portal_world(hub) as w:
        mine = save_mapping(w.scope, "sku", "A", "WA", w.warehouse_id, by=w.actor()).mapping_id
        assert mine is not None
        other = add_tenant(hub, "other", "Other Ltd")
        eve = person(other, Role.ADMIN, "Eve")
        for call in (
            lambda: get_mapping(other, mine),
            lambda: edit_mapping(other, mine, "X", by=eve),
            lambda: delete_mapping(other, mine, by=eve),
            lambda: save_mapping(other, "sku", "A", "X", w.warehouse_id, by=eve),
            lambda: list_mappings(other, destination_id=w.warehouse_id),
            lambda: export_csv(other, destination_id=w.warehouse_id),
        ):
            with pytest.raises(NotFound):
                call()
        assert list_mappings(other).total == 0 and export_csv(other).count("\n") == 1
        assert get_mapping(w.scope, mine).target == "WA"
