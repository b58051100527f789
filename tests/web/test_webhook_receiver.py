"""Webhooks into the hub over real HTTP: forged, replayed and out-of-order deliveries."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from orderbridge.connectors.shopify.mapper import parse_time
from orderbridge.sandboxes.base import run_in_thread
from orderbridge.sandboxes.shopify import create_sandbox
from orderbridge.sandboxes.shopify.state import ShopifyState, local_iso
from orderbridge.services.connections import add_connection
from orderbridge.services.queries import show_order
from orderbridge.storage.tables import events, orders, webhook_deliveries
from tests.scoped import cid, tenant
from tests.web.conftest import SECRET, Server


def count(server: Server, table: object, *where: object) -> int:
    with server.hub.db.read() as conn:
        q = select(func.count()).select_from(table)  # type: ignore[arg-type]
        return int(conn.execute(q.where(*where) if where else q).scalar_one())


def new_order() -> dict[str, object]:
    state, _app = create_sandbox(orders=0, seed=5, limits=False)
    order: dict[str, object] = state.add_order()
    return order


def test_a_signed_delivery_is_ingested_ready_and_wakes_the_poster(server: Server) -> None:
    payload = new_order()
    response = server.deliver(payload, topic="orders/create")
    assert response.status_code == 200, response.text
    assert response.json()["outcome"] == "inserted"
    with server.hub.db.read() as conn:
        row = conn.execute(select(orders).where(orders.c.external_id == str(payload["id"]))).one()
    assert row.state == "ready" and row.number == payload["name"]
    assert server.wakes, "the poster was not woken"
    assert count(server, webhook_deliveries) == 1


def test_forged_unsigned_and_tampered_deliveries_are_refused_and_store_nothing(server: Server) -> None:
    payload = new_order()
    forged = server.deliver(payload, secret="not-the-secret")
    unsigned = server.deliver(payload, secret=None)
    tampered_body = json.dumps({**payload, "note": "changed after signing"}).encode()
    tampered = server.deliver(payload, body=tampered_body)
    assert [r.status_code for r in (forged, unsigned, tampered)] == [401, 401, 401]
    assert "forged" in forged.json()["message"] and "unsigned" in unsigned.json()["message"]
    assert count(server, orders) == 0
    assert count(server, webhook_deliveries) == 0
    assert count(server, events) == 0
    text = server.client.get(f"{server.url}/metrics").text
    assert (
        'orderbridge_webhook_deliveries_total{connection="shop",outcome="rejected_signature",tenant="default"} 3.0'
        in text
    )


def test_a_replayed_delivery_is_processed_once(server: Server) -> None:
    payload = new_order()
    first = server.deliver(payload, webhook_id="wh-1", topic="orders/create")
    again = server.deliver(payload, webhook_id="wh-1", topic="orders/create")
    changed = {**payload, "note": "gift wrap"}
    replay_of_other = server.deliver(changed, webhook_id="wh-1", topic="orders/create")
    assert [r.json()["outcome"] for r in (first, again, replay_of_other)] == ["inserted", "duplicate", "duplicate"]
    assert count(server, orders) == 1
    assert count(server, events, events.c.kind == "received") == 1
    assert count(server, webhook_deliveries) == 1
    with server.hub.db.read() as conn:
        assert conn.execute(select(orders.c.version)).scalar_one() == 1


def test_out_of_order_deliveries_leave_the_newest_version(server: Server) -> None:
    v1 = new_order()
    t1 = parse_time(v1["updated_at"], "updated_at")
    v2 = {**v1, "note": "second version", "updated_at": local_iso(int((t1 + timedelta(minutes=5)).timestamp()))}
    v3 = {**v1, "note": "third version", "updated_at": local_iso(int((t1 + timedelta(minutes=9)).timestamp()))}
    outcomes = [server.deliver(v, topic="orders/updated").json()["outcome"] for v in (v3, v1, v2)]
    assert outcomes == ["inserted", "stale", "stale"]
    with server.hub.db.read() as conn:
        row = conn.execute(select(orders)).one()
    assert row.raw["note"] == "third version"
    assert row.channel_updated_at == parse_time(v3["updated_at"], "updated_at")
    # in order, each newer version is a change
    v4 = {**v1, "note": "fourth", "updated_at": local_iso(int((t1 + timedelta(minutes=20)).timestamp()))}
    assert server.deliver(v4).json()["outcome"] == "changed"
    with server.hub.db.read() as conn:
        assert conn.execute(select(orders.c.version, orders.c.raw)).one()[0] == 2


@pytest.fixture
def live(server: Server) -> Iterator[tuple[Server, ShopifyState]]:
    """The server, with a channel ``live`` whose store is a Shopify sandbox the hub can read back."""
    state, app = create_sandbox(orders=0, seed=7, limits=False, api_secret=SECRET, webhook_retry_scale=0.001)
    with run_in_thread(app) as running:
        credentials = {"access_token": "shpat_sandbox", "api_secret": SECRET}
        add_connection(tenant(server.hub), "live", "shopify", running.base_url, credentials)
        yield server, state


def stored(server: Server, external_id: object) -> tuple[int, str]:
    with server.hub.db.read() as conn:
        row = conn.execute(
            select(orders.c.version, orders.c.canonical).where(orders.c.external_id == str(external_id))
        ).one()
    return row.version, row.canonical["note"]


def test_deliveries_with_the_same_updated_at_are_settled_by_the_store_not_by_arrival(
    live: tuple[Server, ShopifyState],
) -> None:
    server, state = live
    # two edits within one second carry the same updated_at; their deliveries arrive newest first
    original = copy.deepcopy(state.add_order(note="as placed"))
    oid = original["id"]
    edited = copy.deepcopy(state.update_order(oid, note="edited", updated_at=original["updated_at"]))
    assert edited["updated_at"] == original["updated_at"]
    assert server.deliver(edited, connection="live").json()["outcome"] == "inserted"
    late = server.deliver(original, connection="live")
    assert late.status_code == 200 and late.json()["outcome"] == "unchanged"  # the store says: edited
    assert stored(server, oid) == (1, "edited")
    # in arrival order the same question gets the same answer: the store's current version wins
    other = copy.deepcopy(state.add_order(note="as placed"))
    assert server.deliver(other, connection="live").json()["outcome"] == "inserted"
    again = copy.deepcopy(state.update_order(other["id"], note="edited", updated_at=other["updated_at"]))
    assert server.deliver(again, connection="live").json()["outcome"] == "changed"
    assert stored(server, other["id"]) == (2, "edited")
    timeline = show_order(tenant(server.hub), str(other["id"])).timeline
    assert any("re-read from live" in e["message"] for e in timeline if e["kind"] == "version_changed")


def test_a_tie_the_store_cannot_settle_now_is_pending_on_healthz_and_metrics_until_a_sync_settles_it(
    live: tuple[Server, ShopifyState],
) -> None:
    from orderbridge.services.sync import sync_channel

    server, state = live
    original = copy.deepcopy(state.add_order(note="as placed"))
    oid = original["id"]
    assert server.deliver(original, connection="live").json()["outcome"] == "inserted"
    edited = copy.deepcopy(state.update_order(oid, note="edited", updated_at=original["updated_at"]))
    state.revoke()  # the token stops working between the two deliveries: the re-read is refused
    tied = server.deliver(edited, connection="live")
    assert tied.status_code == 200 and tied.json()["outcome"] == "unchanged"
    assert "re-read from live: unsettled" in tied.json()["message"]
    assert stored(server, oid) == (1, "as placed")
    live_health = {c["name"]: c for c in server.client.get(f"{server.url}/healthz").json()["connections"]}["live"]
    assert live_health["pending_rereads"] == 1
    assert (
        'orderbridge_pending_rereads{connection="live",tenant="default"} 1.0'
        in server.client.get(f"{server.url}/metrics").text
    )
    timeline = show_order(tenant(server.hub), str(oid)).timeline
    assert [e["kind"] for e in timeline].count("tie_unsettled") == 1
    state.restore()
    report = sync_channel(tenant(server.hub), cid(server.hub, "live"))
    assert report.ok and report.counts.changed == 1
    assert stored(server, oid) == (2, "edited")
    live_health = {c["name"]: c for c in server.client.get(f"{server.url}/healthz").json()["connections"]}["live"]
    assert live_health["pending_rereads"] == 0
    assert (
        'orderbridge_pending_rereads{connection="live",tenant="default"}'
        not in server.client.get(f"{server.url}/metrics").text
    )


def test_deletions_are_noted_on_the_timeline_and_unknown_connections_get_404(server: Server) -> None:
    payload = new_order()
    server.deliver(payload, topic="orders/create")
    deleted = server.deliver({"id": payload["id"]}, topic="orders/delete")
    assert deleted.status_code == 200 and deleted.json()["outcome"] == "ignored"
    assert count(server, events, events.c.kind == "deleted_in_channel") == 1
    assert count(server, orders) == 1  # the ledger keeps it
    assert server.deliver(payload, connection="nope").status_code == 404
    garbage = server.deliver({}, body=b"not json")
    assert garbage.status_code == 401  # signed over other bytes: refused before parsing


def test_a_signed_delivery_from_another_shop_is_refused(server: Server) -> None:
    from orderbridge.services.connections import add_connection

    add_connection(
        tenant(server.hub),
        "victim",
        "shopify",
        "https://victim.myshopify.com",
        {"access_token": "x", "api_secret": SECRET},
    )
    payload = new_order()
    other = server.deliver(payload, connection="victim", domain="attacker.myshopify.com")
    assert other.status_code == 401 and "from another shop" in other.json()["message"]
    assert count(server, orders) == 0 and count(server, webhook_deliveries) == 0
    own = server.deliver(payload, connection="victim", domain="victim.myshopify.com")
    assert own.status_code == 200 and own.json()["outcome"] == "inserted"


def test_topics_without_an_order_store_nothing_and_unknown_names_share_one_metric_label(server: Server) -> None:
    product = server.deliver({"id": 424242, "title": "A product"}, topic="products/update")
    assert product.status_code == 200 and product.json()["outcome"] == "ignored"
    assert count(server, orders) == 0
    for i in range(5):
        assert server.deliver(new_order(), connection=f"nobody{i}").status_code == 404
    text = server.client.get(f"{server.url}/metrics").text
    assert 'connection="_unknown",outcome="rejected_unknown",tenant="_unknown"} 5.0' in text and "nobody" not in text


def test_healthz_answers_503_when_a_connection_is_failing(server: Server) -> None:
    from orderbridge.errors import AuthFailed
    from orderbridge.services.health import record_failure

    assert server.client.get(f"{server.url}/healthz").status_code == 200
    with server.hub.db.read() as conn:
        row = tenant(server.hub).connection_named(conn, "shop")
    record_failure(
        tenant(server.hub), row, AuthFailed("Shopify refused the credentials (HTTP 401)", hint="Renew it."), job="sync"
    )
    response = server.client.get(f"{server.url}/healthz")
    assert response.status_code == 503
    shop = {c["name"]: c for c in response.json()["connections"]}["shop"]
    assert shop["health"] == "failing" and "refused the credentials" in shop["message"]
    assert [(j["job"], j["health"], j["code"]) for j in shop["jobs"]] == [("sync", "failing", "connection_auth_failed")]
    text = server.client.get(f"{server.url}/metrics").text
    assert 'orderbridge_connection_health{connection="shop",state="failing",tenant="default"} 1.0' in text
    assert (
        'orderbridge_connection_job_health{connection="shop",job="sync",state="failing",tenant="default"} 1.0' in text
    )
    assert (
        'orderbridge_connection_job_health{connection="shop",job="sync",state="healthy",tenant="default"} 0.0' in text
    )


def test_an_order_deleted_in_the_store_arrives_as_a_signed_delivery_and_is_kept_with_a_note(
    live: tuple[Server, ShopifyState],
) -> None:
    from orderbridge.services.webhooks import register_webhooks

    server, state = live
    server.hub.settings = server.hub.settings.model_copy(update={"public_url": server.url})
    assert "orders/delete" in {s.topic for s in register_webhooks(tenant(server.hub), cid(server.hub, "live"))}
    created = state.add_order()
    state.webhook_dispatcher.wait_idle(10)
    assert stored(server, created["id"])[0] == 1
    state.delete_order(created["id"])
    state.webhook_dispatcher.wait_idle(10)
    sent = [e for e in state.entries("webhook_sent") if e.data.get("topic") == "orders/delete"]
    assert [e.key for e in sent] == [str(created["id"])]
    timeline = show_order(tenant(server.hub), str(created["id"])).timeline
    assert [e["kind"] for e in timeline][-1] == "deleted_in_channel"
    assert "the ledger keeps it" in timeline[-1]["message"]
    assert stored(server, created["id"])[0] == 1  # kept, unchanged: what was posted stays proven
