"""Manual orders through the service: one channel per tenant, the same ingest as any channel, the
number as identity, the source on the timeline, idempotent placing — proven in the ShipStation
sandbox's own ledger."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from orderbridge.domain.manual import Draft, DraftAddress, DraftLine, InvalidDraft, Source
from orderbridge.domain.roles import Role
from orderbridge.sandboxes.base import in_process_client
from orderbridge.sandboxes.shipstation.app import create_sandbox as shipstation_sandbox
from orderbridge.sandboxes.shipstation.state import ShipStationState
from orderbridge.services.auth import Actor, Principal
from orderbridge.services.connections import add_connection
from orderbridge.services.hub import Hub
from orderbridge.services.manual_orders import (
    IdempotencyKeyReused,
    Submission,
    ensure_manual_channel,
    place,
    preview,
    submit,
)
from orderbridge.services.mappings import set_mapping
from orderbridge.services.posting import post_ready
from orderbridge.services.queries import show_order
from orderbridge.storage.tables import connections, events, idempotency_keys, orders, user_actions
from tests.scoped import cid, tenant

SS_CREDENTIALS = {"api_key": "ss_key", "api_secret": "ss_secret"}


@dataclass
class World:
    hub: Hub
    ss: ShipStationState

    def received(self) -> list[tuple[str, str]]:
        return [(e.kind, e.key) for e in self.ss.ledger if e.kind in ("order_created", "order_updated")]


@pytest.fixture
def world(hub: Hub) -> Iterator[World]:
    state, app = shipstation_sandbox(limits=False, ship_after_seconds=3600.0)
    hub.http_factory = lambda row: in_process_client(app, row.base_url)
    hub.sleep = lambda _seconds: None
    add_connection(tenant(hub), "wh", "shipstation", "http://wh.local", SS_CREDENTIALS)
    set_mapping(tenant(hub), "sku", "TEE-BLK-S", "TEE-BLK-S", cid(hub, "wh"))
    set_mapping(tenant(hub), "shipping", "Standard", "ups:ups_ground", cid(hub, "wh"))
    yield World(hub, state)


def draft(number: str = "WH-1001", sku: str = "TEE-BLK-S", qty: str = "2", **changes: Any) -> Draft:
    values: dict[str, Any] = {
        "number": number,
        "currency": "EUR",
        "email": "ada@example.com",
        "customer_name": "Ada Lovelace",
        "shipping_address": DraftAddress(name="Ada", address1="1 rue de Rivoli", city="Paris", country_code="FR"),
        "shipping_method": "Standard",
        "shipping_price": "4.90",
        "lines": (DraftLine(sku, "T-shirt", qty, "12.50"),),
        **changes,
    }
    return Draft(**values)


def operator(hub: Hub) -> Actor:
    scope = tenant(hub)
    return Actor(Principal("user", 3, scope.tenant_id, Role.OPERATOR, "Olu", "en"), scope, "198.51.100.4")


def run(hub: Hub, *drafts: Draft, source: Source | None = None, number_required: bool = False) -> list[Any]:
    scope = tenant(hub)
    items = [Submission(d, source or Source.placed_by("Olu")) for d in drafts]
    with scope.db.transaction() as conn:
        return submit(conn, scope.tenant_id, items, scope.now(), box=scope.box, number_required=number_required)


def count(hub: Hub, table: Any, *where: Any) -> int:
    with hub.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_each_tenant_has_one_manual_channel_made_on_first_use(world: World) -> None:
    scope = tenant(world.hub)
    with scope.db.transaction() as conn:
        first = ensure_manual_channel(conn, scope.tenant_id, box=scope.box, now=scope.now())
        again = ensure_manual_channel(conn, scope.tenant_id, box=scope.box, now=scope.now())
    assert first.id == again.id and first.kind == "manual" and first.declaration.capabilities == frozenset()
    run(world.hub, draft())
    assert count(world.hub, connections, connections.c.kind == "manual") == 1


def test_a_manual_order_is_ingested_posted_once_and_its_source_is_on_the_timeline(world: World) -> None:
    hub = world.hub
    [done] = run(hub, draft(), source=Source.imported("wholesale.csv", 4))
    assert (done.outcome, done.state, done.number) == ("new", "ready", "WH-1001")
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 1
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 0
    assert world.received() == [("order_created", f"ob-{cid(hub, 'manual')}-WH-1001")]
    detail = show_order(tenant(hub), "WH-1001")
    assert detail.state == "posted"
    submitted = [e for e in detail.timeline if e["kind"] == "submitted"]
    assert [e["message"] for e in submitted] == ["imported from file wholesale.csv row 4"]


def test_the_same_number_again_is_unchanged_and_with_other_content_an_update_of_the_same_order(world: World) -> None:
    hub = world.hub
    assert run(hub, draft())[0].outcome == "new"
    assert run(hub, draft(number=" #WH-1001"))[0].outcome == "unchanged"  # the same key, the same content
    [changed] = run(hub, draft(qty="3"))
    assert changed.outcome == "updated"
    assert count(hub, orders) == 1
    with hub.db.read() as conn:
        assert conn.execute(select(orders.c.version, orders.c.external_id)).one() == (2, "WH-1001")
    assert count(hub, events, events.c.kind == "submitted") == 2  # the unchanged one adds nothing


def test_an_unmapped_sku_holds_the_order_with_the_reason_and_an_unpaid_one_is_not_skipped(world: World) -> None:
    [held, unpaid] = run(hub := world.hub, draft("A-1", sku="GHOST-9"), draft("A-2", payment_status="pending"))
    assert (held.outcome, held.state) == ("new", "held")
    assert [(r.code, r.value) for r in held.reasons] == [("sku_unmapped", "GHOST-9")]
    assert (unpaid.state, unpaid.reasons) == ("ready", ())
    assert count(hub, orders) == 2


def test_drafts_without_a_number_are_numbered_in_turn_skipping_numbers_taken(world: World) -> None:
    hub = world.hub
    run(hub, draft("M-2"))
    done = run(hub, draft(""), draft(""), draft(""))
    assert [d.number for d in done] == ["M-1", "M-3", "M-4"]
    [refused] = run(hub, draft(""), number_required=True)
    assert refused.outcome == "invalid" and refused.problems[0].field == "number"


def test_a_bad_draft_is_refused_by_name_and_never_stops_the_others(world: World) -> None:
    hub = world.hub
    done = run(hub, draft("B-1", qty="zero"), draft("B-2"), draft("b-2"))
    assert [d.outcome for d in done] == ["invalid", "new", "invalid"]
    assert [(p.field, p.value, p.code) for p in done[0].problems] == [
        ("lines[0].quantity", "zero", "not_a_whole_number")
    ]
    assert done[2].problems[0].code == "duplicate_number"
    assert count(hub, orders) == 1


def test_placing_twice_with_one_key_makes_one_order_posted_once_and_another_draft_is_refused(world: World) -> None:
    hub = world.hub
    first = place(operator(hub), draft(""), via="api", idempotency_key="key-1")
    again = place(operator(hub), draft(""), via="api", idempotency_key="key-1")
    assert (first.number, first.replayed, again.replayed) == ("M-1", False, True)
    assert again.as_dict() == first.as_dict()
    with pytest.raises(IdempotencyKeyReused):
        place(operator(hub), draft("", qty="5"), via="api", idempotency_key="key-1")
    assert count(hub, orders) == 1 and count(hub, idempotency_keys) == 1
    assert post_ready(tenant(hub), cid(hub, "wh")).posted == 1
    assert world.received() == [("order_created", f"ob-{cid(hub, 'manual')}-M-1")]
    assert count(hub, user_actions, user_actions.c.action == "order.place") == 1
    detail = show_order(tenant(hub), "M-1")
    assert [e["message"] for e in detail.timeline if e["kind"] == "submitted"] == ["placed by Olu through the API"]


def test_an_invalid_draft_claims_no_key_so_the_corrected_one_can_use_it(world: World) -> None:
    hub = world.hub
    with pytest.raises(InvalidDraft) as caught:
        place(operator(hub), draft(currency="euro"), via="api", idempotency_key="k")
    assert [p.field for p in caught.value.problems] == ["currency"]
    assert count(hub, idempotency_keys) == 0 and count(hub, orders) == 0
    assert place(operator(hub), draft(), via="api", idempotency_key="k").outcome == "new"


def test_a_preview_says_what_would_happen_and_writes_nothing(world: World) -> None:
    hub = world.hub
    scope = tenant(hub)
    items = [
        Submission(draft("P-1", sku="GHOST-9"), Source.placed_by("Olu")),
        Submission(draft("P-2", qty="x"), Source.placed_by("Olu")),
    ]
    with scope.db.read() as conn:
        planned = preview(conn, scope.tenant_id, items, scope.now())
    assert [(p.outcome, p.state) for p in planned] == [("new", "held"), ("invalid", None)]
    assert [(r.code, r.value) for r in planned[0].reasons] == [("sku_unmapped", "GHOST-9")]
    assert count(hub, orders) == 0 and count(hub, connections, connections.c.kind == "manual") == 0
    run(hub, draft("P-1"))
    with scope.db.read() as conn:
        again = preview(
            conn,
            scope.tenant_id,
            [
                Submission(draft("P-1"), Source.placed_by("Olu")),
                Submission(draft("P-1", qty="9"), Source.placed_by("Olu")),
            ],
            scope.now(),
        )
    assert [p.outcome for p in again] == ["unchanged", "invalid"]  # the second repeats the number
    with scope.db.read() as conn:
        changed = preview(
            conn, scope.tenant_id, [Submission(draft("P-1", qty="9"), Source.placed_by("Olu"))], scope.now()
        )
    assert [(p.outcome, p.state) for p in changed] == [("updated", "ready")]
