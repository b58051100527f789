"""The audit trail (services/audit_trail.py): who did what to which object, when, from where — kept
per tenant, read per object and page by page, and never changed afterwards."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from orderbridge.domain.roles import Role
from orderbridge.errors import InvalidInput
from orderbridge.services.audit_trail import actions_on, recent_actions, record_action
from orderbridge.services.auth import Actor, Principal
from orderbridge.services.hub import Hub
from orderbridge.services.scope import Scope
from orderbridge.services.tenants import add_tenant
from tests.conftest import at
from tests.scoped import tenant

T0 = at("2026-12-10 09:00:00")


def ana(scope: Scope, address: str | None = "203.0.113.7") -> Actor:
    return Actor(Principal("user", 41, scope.tenant_id, Role.OPERATOR, "Ana Lima", "fr"), scope, address)


@pytest.fixture
def scope(hub: Hub) -> Scope:
    hub.now = lambda: T0
    return tenant(hub)


def test_an_action_is_recorded_with_who_what_when_which_object_and_where(scope: Scope) -> None:
    record_action(ana(scope), "order.retry", "order", 7, "retried #1001", {"postings": [3]})
    (action,) = actions_on(scope, "order", "7")
    assert (action.at, action.who, action.actor_kind, action.actor_id, action.address) == (
        T0,
        "Ana Lima",
        "user",
        41,
        "203.0.113.7",
    )
    assert (action.action, action.object_type, action.object_id, action.summary, action.detail) == (
        "order.retry",
        "order",
        "7",
        "retried #1001",
        {"postings": [3]},
    )


def test_an_action_recorded_in_the_services_transaction_rolls_back_with_it(scope: Scope) -> None:
    with pytest.raises(RuntimeError), scope.transaction() as conn:
        record_action(ana(scope), "mapping.set", "mapping", 3, "mapped SKU A", conn=conn)
        raise RuntimeError("the change itself failed")
    assert actions_on(scope, "mapping", 3) == []
    with scope.transaction() as conn:
        record_action(ana(scope), "mapping.set", "mapping", 3, "mapped SKU A", conn=conn)
    assert [a.summary for a in actions_on(scope, "mapping", 3)] == ["mapped SKU A"]


def test_an_objects_trail_is_its_own_newest_first_and_limited(scope: Scope) -> None:
    for n in range(5):
        record_action(ana(scope), "order.retry", "order", 7, f"retry {n}")
    record_action(ana(scope), "order.retry", "order", 8, "another order")
    record_action(ana(scope), "connection.sync", "connection", 7, "same id, another kind of object")
    assert [a.summary for a in actions_on(scope, "order", 7, limit=3)] == ["retry 4", "retry 3", "retry 2"]
    assert [a.summary for a in actions_on(scope, "connection", 7)] == ["same id, another kind of object"]


def test_recent_actions_come_in_pages_keyed_by_id(scope: Scope) -> None:
    for n in range(7):
        record_action(Actor.cli(scope), "alert.acknowledge", "alert", n, f"acknowledged {n}")
    first = recent_actions(scope, limit=3)
    second = recent_actions(scope, limit=3, before_id=first[-1].id)
    third = recent_actions(scope, limit=3, before_id=second[-1].id)
    assert [[a.summary[-1] for a in page] for page in (first, second, third)] == [
        ["6", "5", "4"],
        ["3", "2", "1"],
        ["0"],
    ]
    with pytest.raises(InvalidInput):
        recent_actions(scope, limit=0)


def test_one_tenants_trail_is_invisible_to_another(hub: Hub, scope: Scope) -> None:
    acme = add_tenant(hub, "acme", "Acme")
    record_action(ana(acme), "order.retry", "order", 7, "theirs")
    record_action(ana(scope), "order.retry", "order", 7, "ours")
    assert [a.summary for a in actions_on(scope, "order", 7)] == ["ours"]
    assert [a.summary for a in recent_actions(acme)] == ["theirs"]


def test_an_actor_cannot_record_in_another_tenants_scope(hub: Hub, scope: Scope) -> None:
    acme = add_tenant(hub, "acme", "Acme")
    stray = Actor(ana(scope).principal, acme, None)
    with pytest.raises(InvalidInput):
        record_action(stray, "order.retry", "order", 7, "not ours to record")
    assert recent_actions(acme) == []


@pytest.mark.parametrize(
    ("action", "object_type", "object_id"),
    [("", "order", 1), ("x" * 61, "order", 1), ("order.retry", "", 1), ("order.retry", "order", "9" * 101)],
)
def test_an_action_that_does_not_fit_its_columns_is_refused(
    scope: Scope, action: str, object_type: str, object_id: str | int
) -> None:
    with pytest.raises(InvalidInput):
        record_action(ana(scope), action, object_type, object_id, "s")


@pytest.mark.parametrize("statement", ["UPDATE user_actions SET summary = 'rewritten'", "DELETE FROM user_actions"])
def test_the_database_refuses_to_change_or_delete_a_recorded_action(hub: Hub, scope: Scope, statement: str) -> None:
    record_action(ana(scope), "token.revoke", "token", 1, "revoked ci")
    with pytest.raises(DBAPIError, match="append-only"), hub.db.transaction() as conn:
        conn.execute(text(statement))
    assert [a.summary for a in recent_actions(scope)] == ["revoked ci"]
