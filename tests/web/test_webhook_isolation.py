"""A webhook whose order the database refuses is answered 2xx, recorded, and held — over real HTTP,
on SQLite and PostgreSQL (issue #10, poison-pill isolation)."""

from __future__ import annotations

from sqlalchemy import func, select

from orderbridge.sandboxes.shopify import create_sandbox
from orderbridge.services.queries import show_order
from orderbridge.storage.tables import ingest_failures, orders, webhook_deliveries
from tests.dbfaults import refusing
from tests.scoped import tenant
from tests.web.conftest import Server


def new_orders(n: int) -> list[dict[str, object]]:
    state, _app = create_sandbox(orders=0, seed=5, limits=False)
    return [state.add_order() for _ in range(n)]


def delivery_outcomes(server: Server) -> dict[str, str]:
    with server.hub.db.read() as conn:
        return dict(conn.execute(select(webhook_deliveries.c.webhook_id, webhook_deliveries.c.outcome)).all())


def test_a_delivery_the_database_refuses_is_answered_200_recorded_and_held_and_the_next_ones_are_stored(
    server: Server,
) -> None:
    first, bad, last = new_orders(3)
    with refusing(server.hub, str(bad["id"])):
        responses = [
            server.deliver(payload, topic="orders/create", webhook_id=f"wh-{i}")
            for i, payload in enumerate((first, bad, last))
        ]
        assert [r.status_code for r in responses] == [200, 200, 200], [r.text for r in responses]
        assert [r.json()["outcome"] for r in responses] == ["inserted", "refused", "inserted"]
        assert "held (storage_refused)" in responses[1].json()["message"]
        # the channel retries a delivery only after a 5xx: a replay of the refused one is a duplicate
        replay = server.deliver(bad, topic="orders/create", webhook_id="wh-1")
        assert (replay.status_code, replay.json()["outcome"]) == (200, "duplicate")
    assert delivery_outcomes(server) == {"wh-0": "inserted", "wh-1": "refused", "wh-2": "inserted"}
    with server.hub.db.read() as conn:
        states = dict(conn.execute(select(orders.c.external_id, orders.c.state)).all())
    assert states == {str(first["id"]): "ready", str(bad["id"]): "held", str(last["id"]): "ready"}
    detail = show_order(tenant(server.hub), str(bad["id"]))
    assert [r["code"] for r in detail.reasons] == ["storage_refused"]
    assert "refused by the test trigger" in detail.reasons[0]["message"]
    assert detail.raw["id"] == bad["id"] and detail.number == bad["name"]
    healthz = server.client.get(f"{server.url}/healthz").json()
    shop = next(c for c in healthz["connections"] if c["name"] == "shop")
    assert shop["health"] == "degraded" and shop["ingest_failures"] == 1
    assert "could not be stored as sent" in shop["message"]
    assert {j["job"]: j["health"] for j in shop["jobs"]}["sync"] == "degraded"


def test_a_delivery_refused_even_in_a_minimal_form_is_answered_200_and_quarantined(server: Server) -> None:
    (bad,) = new_orders(1)
    with refusing(server.hub, str(bad["id"]), minimal_too=True):
        response = server.deliver(bad, topic="orders/create", webhook_id="wh-q")
    assert (response.status_code, response.json()["outcome"]) == (200, "quarantined")
    assert delivery_outcomes(server) == {"wh-q": "quarantined"}
    with server.hub.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 0
        row = conn.execute(select(ingest_failures)).one()
    assert (row.external_id, row.stage) == (str(bad["id"]), "quarantined")
    assert f'"id": {bad["id"]}'.encode() in row.raw


def test_a_nul_character_in_a_delivered_order_is_held_by_name_and_the_delivery_answered_200(
    server: Server,
) -> None:
    """PostgreSQL's text cannot hold NUL: the validation layer keeps the order storable and holds it
    by name (decision 40) on both databases, so the database never has to refuse it."""
    good, bad = new_orders(2)
    bad = {**bad, "name": "#1002\u0000x", "note": "gift\u0000wrap"}
    responses = [server.deliver(p, topic="orders/create") for p in (bad, good)]
    assert [r.status_code for r in responses] == [200, 200]
    assert [r.json()["outcome"] for r in responses] == ["inserted", "inserted"]
    detail = show_order(tenant(server.hub), str(bad["id"]))
    assert detail.state == "held" and "\x00" not in detail.number
    assert {r["code"] for r in detail.reasons} == {"invalid_text"}
    assert show_order(tenant(server.hub), str(good["id"])).state == "ready"
