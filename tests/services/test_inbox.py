"""The orders inbox read model on SQLite and PostgreSQL: filters, searches, sorts, keyset pages, tenants."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from orderbridge.connectors.base import UnreadableOrder
from orderbridge.domain.money import Money
from orderbridge.domain.states import OrderState
from orderbridge.errors import InvalidInput, NotFound
from orderbridge.fixes import show_holds
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.inbox import InboxPage, InboxQuery, Sort, inbox, make_cursor, parse_query
from orderbridge.services.mappings import set_mapping
from orderbridge.services.scope import Scope
from orderbridge.services.sync import sync_channel
from orderbridge.services.tenants import add_tenant
from orderbridge.storage.tables import order_reasons, order_skus, orders
from tests.builders import T0, line, order, replace
from tests.fakes import FakeChannel, FakeDestination, install
from tests.scoped import cid, tenant

N = 23


@dataclass
class World:
    hub: Hub
    scope: Scope
    shop: FakeChannel
    other: Scope
    other_shop_id: int


def _orders(shop: FakeChannel, n: int) -> None:
    for i in range(n):
        skus = ("SKU-1",) if i % 4 else ("SKU-1", "ABC-9")  # ABC-9 is unmapped: every 4th order is held
        lines = tuple(line(s, qty=1 + (i * 3) % 5, n=k + 1) for k, s in enumerate(skus))  # totals vary, some tie
        subtotal = sum((li.unit_price.amount * li.quantity for li in lines), Decimal(0))
        o = order(
            i,
            created_at=T0 + timedelta(hours=i if i % 5 else -i),  # not in id order
            updated_minutes=i,
            email=f"Buyer{i % 7}@Example.COM",
        )
        shop.put(replace(o, lines=lines, subtotal=Money(subtotal, "USD"), total=Money(subtotal + 5, "USD")))


@pytest.fixture
def world(hub: Hub) -> World:
    shop = FakeChannel()
    _orders(shop, N)
    install(hub, shop, FakeDestination())
    set_mapping(tenant(hub), "sku", "SKU-1", "W-1", cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    sync_channel(tenant(hub), cid(hub, "shop"))
    other = add_tenant(hub, "other", "Other merchant")
    row = add_connection(other, "shop", "fake_channel", "http://fake", {"token": "t"})
    their_shop = FakeChannel()
    _orders(their_shop, 5)  # the same numbers, e-mails and SKUs in another tenant
    hub.connectors[row.id] = their_shop
    sync_channel(other, row.id)
    return World(hub, tenant(hub), shop, other, row.id)


def numbers(page: InboxPage) -> list[str]:
    return [r.number for r in page.rows]


def walk(scope: Scope, query: InboxQuery) -> tuple[list[int], list[InboxPage]]:
    """Every page from the first, following next_cursor."""
    pages = [inbox(scope, query)]
    while pages[-1].next_cursor is not None:
        pages.append(inbox(scope, replace(query, cursor=pages[-1].next_cursor)))
    return [r.id for p in pages for r in p.rows], pages


def test_the_first_page_is_the_tenants_newest_orders_by_the_channels_creation_time(world: World) -> None:
    page = inbox(world.scope, InboxQuery(limit=5))
    created = [r.created_at for r in page.rows]
    assert created == sorted(created, reverse=True) and len(created) == 5
    assert page.prev_cursor is None and page.next_cursor is not None
    everything = inbox(world.scope, InboxQuery(limit=200))
    assert len(everything.rows) == N and everything.next_cursor is None
    assert {r.connection for r in everything.rows} == {"shop"}
    assert inbox(world.other, InboxQuery()).rows[0].connection_id == world.other_shop_id
    assert len(inbox(world.other, InboxQuery()).rows) == 5


@pytest.mark.parametrize("sort", list(Sort))
def test_paging_forward_then_back_visits_every_order_once_in_the_sorts_order(world: World, sort: Sort) -> None:
    ids, pages = walk(world.scope, InboxQuery(sort=sort, limit=4))
    full = inbox(world.scope, InboxQuery(sort=sort, limit=200)).rows
    assert ids == [r.id for r in full] and len(set(ids)) == N
    key = {
        Sort.NEWEST: lambda r: (r.created_at, r.id),
        Sort.OLDEST: lambda r: (r.created_at, r.id),
        Sort.UPDATED: lambda r: (r.updated_at, r.id),
        Sort.NUMBER: lambda r: (r.number, r.id),
        Sort.TOTAL: lambda r: (r.total, r.id),
    }[sort]
    assert [r.id for r in full] == [r.id for r in sorted(full, key=key, reverse=sort not in (Sort.OLDEST, Sort.NUMBER))]
    back = [pages[-1]]
    while back[-1].prev_cursor is not None:
        back.append(inbox(world.scope, InboxQuery(sort=sort, limit=4, cursor=back[-1].prev_cursor)))
    assert [numbers(p) for p in reversed(back)] == [numbers(p) for p in pages]
    assert back[-1].prev_cursor is None  # the first page again knows it is the first


def test_state_connection_and_date_range_narrow_the_list(world: World) -> None:
    held = inbox(world.scope, InboxQuery(state=OrderState.HELD))
    assert len(held.rows) == 6 and all(r.state == "held" and r.problem for r in held.rows)
    ready = inbox(world.scope, InboxQuery(state=OrderState.READY, connection_id=cid(world.hub, "shop"), limit=200))
    assert len(ready.rows) == N - 6 and not any(r.problem for r in ready.rows)
    window = inbox(world.scope, InboxQuery(created_from=T0 + timedelta(hours=2), created_to=T0 + timedelta(hours=4)))
    assert {r.created_at for r in window.rows} == {T0 + timedelta(hours=2), T0 + timedelta(hours=3)}
    days = parse_query({"created_from": "2026-11-01", "created_to": "2026-11-01"})
    assert all(r.created_at and r.created_at.date() == T0.date() for r in inbox(world.scope, days).rows)


def test_a_hold_reason_finds_the_orders_it_holds_with_the_reason_in_the_row(world: World) -> None:
    page = inbox(world.scope, parse_query({"reason": "sku_unmapped:ABC-9"}), choices=True)
    assert len(page.rows) == 6
    for row in page.rows:
        (reason,) = row.reasons
        assert (reason.kind, reason.code, reason.value) == ("hold", "sku_unmapped", "ABC-9")
        assert "ABC-9" in reason.message
    assert inbox(world.scope, parse_query({"reason": "sku_unmapped", "reason_value": "NOPE"})).rows == []
    assert page.open_codes == ["sku_unmapped"]


def test_the_reason_choices_are_every_code_open_now_in_this_tenant_only(world: World) -> None:
    def add_reason(tenant_id: int, code: str, *, released: bool) -> None:
        with world.hub.db.transaction() as conn:
            order_id = conn.execute(select(orders.c.id).where(orders.c.tenant_id == tenant_id).limit(1)).scalar_one()
            conn.execute(
                order_reasons.insert().values(
                    tenant_id=tenant_id,
                    order_id=order_id,
                    kind="hold",
                    code=code,
                    value="x",
                    message="m",
                    fix=show_holds(code),
                    created_at=T0,
                    released_at=T0 if released else None,
                )
            )

    mine, theirs = world.scope.tenant_id, world.other.tenant_id
    for code in ("zz_last", "aa_first", "mm_middle", "mm_middle"):
        add_reason(mine, code, released=False)
    add_reason(mine, "released_only", released=True)
    add_reason(theirs, "theirs_only", released=False)
    codes = inbox(world.scope, InboxQuery(), choices=True).open_codes
    assert codes == ["aa_first", "mm_middle", "sku_unmapped", "zz_last"]
    assert "theirs_only" in inbox(world.other, InboxQuery(), choices=True).open_codes


def test_number_search_is_exact_or_a_prefix_with_or_without_the_hash(world: World) -> None:
    assert numbers(inbox(world.scope, InboxQuery(number="#1007"))) == ["#1007"]
    assert sorted(numbers(inbox(world.scope, InboxQuery(number="101")))) == [f"#10{i}" for i in range(10, 20)]
    assert numbers(inbox(world.scope, InboxQuery(number="1022", sort=Sort.NUMBER))) == ["#1022"]
    assert inbox(world.scope, InboxQuery(number="#2")).rows == []


def test_email_search_is_exact_and_ignores_case(world: World) -> None:
    found = inbox(world.scope, parse_query({"q": "  BUYER3@example.com "}))
    assert {r.customer_email for r in found.rows} == {"Buyer3@Example.COM"} and len(found.rows) == 3
    assert inbox(world.scope, InboxQuery(email="buyer3@example")).rows == []


def test_sku_search_finds_the_orders_of_the_current_version_only(world: World) -> None:
    assert len(inbox(world.scope, InboxQuery(sku="ABC-9")).rows) == 6
    assert inbox(world.scope, InboxQuery(sku="abc-9")).rows == []  # exact
    o = world.shop.orders["1000"]
    assert not isinstance(o, UnreadableOrder)
    world.shop.put(replace(o, lines=(line("NEW-1"),), updated_at=o.updated_at + timedelta(days=1)))
    sync_channel(world.scope, cid(world.hub, "shop"))
    assert "#1000" not in numbers(inbox(world.scope, InboxQuery(sku="ABC-9")))
    assert numbers(inbox(world.scope, InboxQuery(sku="NEW-1"))) == ["#1000"]
    (row,) = inbox(world.scope, InboxQuery(number="#1000")).rows
    with world.hub.db.read() as conn:
        assert set(conn.execute(select(order_skus.c.sku).where(order_skus.c.order_id == row.id)).scalars()) == {"NEW-1"}


def test_an_unreadable_order_has_no_channel_date_and_is_listed_by_when_it_arrived(world: World) -> None:
    world.hub.now = lambda: T0 + timedelta(days=30)  # type: ignore[method-assign]
    world.shop.orders["bad"] = UnreadableOrder("bad", "#BAD", T0 + timedelta(days=30), "no lines", {"id": "bad"})
    sync_channel(world.scope, cid(world.hub, "shop"))
    first = inbox(world.scope, InboxQuery(limit=1)).rows[0]
    assert (first.number, first.created_at, first.state) == ("#BAD", None, "held")
    assert [r.code for r in first.reasons] == ["invalid_order"]
    assert first.received_at == T0 + timedelta(days=30) and first.problem
    assert inbox(world.scope, InboxQuery(sort=Sort.TOTAL, limit=200)).rows[-1].number == "#BAD"  # no total: last


def test_another_tenants_connection_is_not_found_and_its_orders_never_listed(world: World) -> None:
    with pytest.raises(NotFound):
        inbox(world.scope, InboxQuery(connection_id=world.other_shop_id))
    theirs = {r.id for r in inbox(world.other, InboxQuery(limit=200)).rows}
    for query in (InboxQuery(limit=200), InboxQuery(sku="ABC-9"), InboxQuery(email="buyer1@example.com")):
        assert not theirs & {r.id for r in inbox(world.scope, query).rows}
    # a cursor is a position, not a key to another tenant's rows
    edge = make_cursor(Sort.NEWEST, False, datetime(2100, 1, 1, tzinfo=UTC), max(theirs) + 1)
    assert not theirs & {r.id for r in inbox(world.scope, InboxQuery(cursor=edge, limit=200)).rows}


@pytest.mark.parametrize(
    ("params", "field", "named"),
    [
        ({"state": "lost"}, "state", "'lost'"),
        ({"sort": "price"}, "sort", "'price'"),
        ({"reason": "sku_gone"}, "reason", "'sku_gone'"),
        ({"connection_id": "shop"}, "connection_id", "'shop'"),
        ({"created_from": "30/11/2026"}, "created_from", "'30/11/2026'"),
        ({"created_from": "2026-12-02", "created_to": "2026-12-01"}, "created_to", "2026-12-02"),
        ({"limit": "0"}, "limit", "0"),
        ({"limit": "5000"}, "limit", "5000"),
        ({"q": "x", "search": "notes"}, "search", "'notes'"),
        ({"sku": "x" * 301}, "sku", "301"),
    ],
)
def test_a_bad_filter_is_refused_naming_the_value_with_a_hint(params: dict[str, str], field: str, named: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_query(params)
    assert named in refused.value.message and refused.value.hint
    assert refused.value.field == field  # type: ignore[attr-defined]


def test_empty_form_fields_are_no_filter() -> None:
    assert parse_query({"state": "", "connection_id": "", "q": " ", "sort": ""}) == InboxQuery()


@pytest.mark.parametrize("cursor", ["not-a-cursor", "W10", make_cursor(Sort.NUMBER, False, "#1", 3), "eyJ"])
def test_an_unusable_cursor_is_refused(world: World, cursor: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        inbox(world.scope, InboxQuery(sort=Sort.NEWEST, cursor=cursor))
    assert refused.value.field == "cursor"  # type: ignore[attr-defined]
