"""Alerts as people read them: open and past in keyset pages, one alert with every episode's
deliveries, acknowledging an open episode; another tenant's alert is not found."""

from __future__ import annotations

from datetime import timedelta

import pytest

from orderbridge.domain.roles import Role
from orderbridge.errors import Conflict, InvalidInput, NotFound
from orderbridge.services import notify
from orderbridge.services.audit_trail import actions_on
from orderbridge.services.hub import Hub
from orderbridge.services.principals import Actor, Principal
from orderbridge.services.scope import Scope
from orderbridge.services.tenants import add_tenant
from orderbridge.storage.tables import alert_deliveries
from tests.builders import T0
from tests.scoped import tenant


def operator(scope: Scope, name: str = "Olga Operator") -> Actor:
    return Actor(Principal("user", 7, scope.tenant_id, Role.OPERATOR, name, "en"), scope, "198.51.100.4")


def raise_(scope: Scope, key: str) -> None:
    with scope.transaction() as conn:
        notify.raise_alert(
            conn, scope.tenant_id, key=key, kind="connection_failing", subject=key, body=key, now=scope.now()
        )


def resolve(scope: Scope, key: str) -> None:
    with scope.transaction() as conn:
        notify.resolve_alert(conn, scope.tenant_id, key, scope.now())


@pytest.fixture
def scope(hub: Hub) -> Scope:
    hub.now = lambda: T0  # type: ignore[method-assign]
    return tenant(hub)


def test_open_and_past_alerts_are_paged_newest_cause_first(scope: Scope) -> None:
    for i in range(5):
        raise_(scope, f"cause:{i}")
    for i in (1, 3):
        resolve(scope, f"cause:{i}")
    first = notify.alert_page(scope, state="open", limit=2)
    assert [a.key for a in first.items] == ["cause:4", "cause:2"] and first.next_before is not None
    rest = notify.alert_page(scope, state="open", limit=2, before_id=first.next_before)
    assert [a.key for a in rest.items] == ["cause:0"] and rest.next_before is None
    assert [a.key for a in notify.alert_page(scope, state="resolved").items] == ["cause:3", "cause:1"]
    assert len(notify.alert_page(scope).items) == 5
    with pytest.raises(InvalidInput, match="alert state 'closed'"):
        notify.alert_page(scope, state="closed")


def test_one_alert_shows_the_deliveries_of_every_episode_current_first(scope: Scope) -> None:
    raise_(scope, "cause:a")
    resolve(scope, "cause:a")
    raise_(scope, "cause:a")  # the cause came back: episode 2
    (alert,) = notify.list_alerts(scope)
    with scope.transaction() as conn:
        for generation, target in ((1, "email:ops@acme.example"), (2, "email:ops@acme.example"), (2, "webhook:x")):
            conn.execute(
                alert_deliveries.insert().values(
                    tenant_id=scope.tenant_id,
                    alert_id=alert.id,
                    generation=generation,
                    target=target,
                    status="sent",
                    attempts=1,
                    at=scope.now(),
                )
            )
    detail = notify.get_alert(scope, alert.id)
    assert detail.alert.generation == 2 and [d.target for d in detail.alert.deliveries] == [
        "email:ops@acme.example",
        "webhook:x",
    ]
    assert [(e.generation, len(e.deliveries)) for e in detail.episodes] == [(2, 2), (1, 1)]


def test_acknowledging_an_open_alert_says_who_took_it_in_hand_once(scope: Scope) -> None:
    raise_(scope, "cause:a")
    (alert,) = notify.list_alerts(scope)
    scope.hub.now = lambda: T0 + timedelta(minutes=3)  # type: ignore[method-assign]
    acked = notify.acknowledge_alert(operator(scope), alert.id, generation=1)
    assert (acked.acknowledged_by, acked.acknowledged_at) == ("Olga Operator", T0 + timedelta(minutes=3))
    assert acked.state == "open"  # still open: only its cause going away resolves it
    again = notify.acknowledge_alert(operator(scope, "Bo"), alert.id)
    assert again.acknowledged_by == "Olga Operator"
    trail = actions_on(scope, "alert", alert.id)
    assert [(a.who, a.action) for a in trail] == [("Olga Operator", "alert.acknowledge")]
    assert [a.action for a in notify.get_alert(scope, alert.id).actions] == ["alert.acknowledge"]


def test_a_new_episode_is_nobodys_and_an_acknowledgement_of_the_old_one_is_refused(scope: Scope) -> None:
    raise_(scope, "cause:a")
    (alert,) = notify.list_alerts(scope)
    notify.acknowledge_alert(operator(scope), alert.id)
    resolve(scope, "cause:a")
    with pytest.raises(Conflict, match="is resolved"):
        notify.acknowledge_alert(operator(scope), alert.id)
    raise_(scope, "cause:a")
    (back,) = notify.list_alerts(scope)
    assert back.generation == 2 and back.acknowledged_at is None and back.acknowledged_by is None
    with pytest.raises(Conflict, match="came back as episode 2"):
        notify.acknowledge_alert(operator(scope), alert.id, generation=1)


def test_another_tenants_alert_is_not_found_to_read_or_acknowledge(scope: Scope) -> None:
    raise_(scope, "cause:a")
    (alert,) = notify.list_alerts(scope)
    other = add_tenant(scope.hub, "globex", "Globex")
    with pytest.raises(NotFound):
        notify.get_alert(other, alert.id)
    with pytest.raises(NotFound):
        notify.acknowledge_alert(operator(other), alert.id)
    assert notify.alert_page(other).items == [] and notify.list_alerts(other) == []
    assert notify.list_alerts(scope)[0].acknowledged_at is None
