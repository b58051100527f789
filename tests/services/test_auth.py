"""Users, sign-in, sessions and API tokens (services/auth.py), on SQLite and PostgreSQL.

Time is the hub's clock (``hub.now``), moved by the tests; what is stored is read back from the
tables themselves, not through the code under test.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import Table, select

from orderbridge.errors import Conflict, Forbidden, InvalidInput, NotFound
from orderbridge.services import auth
from orderbridge.services.audit_trail import actions_on
from orderbridge.services.auth import (
    Actor,
    LoginRefused,
    LoginThrottled,
    Principal,
    Role,
    authenticate,
    create_token,
    create_user,
    end_session,
    list_tokens,
    list_users,
    resolve_session,
    resolve_token,
    revoke_token,
    set_locale,
    set_password,
    start_session,
    update_user,
    user_id_of,
)
from orderbridge.services.hub import Hub
from orderbridge.services.scope import Scope
from orderbridge.services.tenants import add_tenant
from orderbridge.settings import Settings
from orderbridge.storage.repos import users as user_repo
from orderbridge.storage.tables import api_tokens, users, web_sessions
from tests.conftest import at
from tests.scoped import tenant

T0 = at("2026-12-10 09:00:00")
PASSWORD = "correct horse battery"
ADDRESS = "203.0.113.7"
CHEAP = (1, 64, 1)


class Clock:
    def __init__(self, hub: Hub) -> None:
        self.now = T0
        hub.now = lambda: self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock(hub: Hub) -> Clock:
    return Clock(hub)


@pytest.fixture(autouse=True)
def cheap_hashes(settings: Settings) -> None:
    """argon2id at its cheapest (~1 ms a hash) but where a test is about the real parameters."""
    settings.password_time_cost, settings.password_memory_kib, settings.password_parallelism = CHEAP


def real_hashes(settings: Settings) -> None:
    defaults = Settings()
    settings.password_time_cost = defaults.password_time_cost
    settings.password_memory_kib = defaults.password_memory_kib
    settings.password_parallelism = defaults.password_parallelism


@pytest.fixture
def scope(hub: Hub, clock: Clock) -> Scope:
    return tenant(hub)


def admin_of(scope: Scope, email: str = "ana@example.com") -> Actor:
    """A signed-in admin of the scope's tenant (added by the CLI, as the first admin is)."""
    create_user(scope, email, "Ana Lima", PASSWORD, Role.ADMIN, by=Actor.cli(scope))
    return Actor.of(scope.hub, authenticate(scope.hub, email, PASSWORD, ADDRESS), ADDRESS)


def stored(hub: Hub, table: Table) -> list[Any]:
    """The table's rows, read directly."""
    with hub.db.read() as conn:
        return list(conn.execute(select(table).order_by(*table.primary_key.columns)).all())


# --- passwords ---------------------------------------------------------------------------------


def test_a_password_is_stored_as_an_argon2id_hash_and_never_as_itself(
    hub: Hub, scope: Scope, settings: Settings
) -> None:
    real_hashes(settings)
    made = create_user(scope, " Ana@Example.COM ", "Ana Lima", PASSWORD, "admin", by=None)
    (row,) = stored(hub, users)
    assert made.email == row.email == "ana@example.com"
    assert row.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert all(PASSWORD not in str(value) for value in row)
    assert PasswordHasher().verify(row.password_hash, PASSWORD)
    assert authenticate(hub, "ANA@example.com", PASSWORD, ADDRESS).id == made.id


@pytest.mark.parametrize(
    ("password", "refused_because"),
    [
        ("short-pass1", "the password has 11 characters; it needs at least 12"),
        ("ana@example.com", "the password must not be the e-mail address"),
        ("ANA@EXAMPLE.COM", "the password must not be the e-mail address"),
        ("ana", "the password has 3 characters"),
        ("abababababababab", "fewer than 4 different characters"),
        ("x" * 1025, "longer than 1024 characters"),
    ],
)
def test_the_password_policy_refuses_with_the_reason_and_a_hint(
    hub: Hub, scope: Scope, password: str, refused_because: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        create_user(scope, "ana@example.com", "Ana", password, "viewer", by=None)
    assert refused_because in refused.value.message and refused.value.hint
    assert getattr(refused.value, "field", None) == "password"
    assert stored(hub, users) == []


def test_a_long_enough_passphrase_local_part_aside_is_accepted() -> None:
    auth.check_password("ana-loves-tea", "ana@example.com")  # contains the local part; is not it
    with pytest.raises(InvalidInput, match="must not be the e-mail"):
        auth.check_password("anapaulalima", "anapaulalima@example.com")


def test_a_hash_made_with_older_parameters_is_replaced_on_the_next_sign_in(hub: Hub, scope: Scope) -> None:
    user = create_user(scope, "ana@example.com", "Ana", PASSWORD, "viewer", by=None)
    weak = PasswordHasher(time_cost=1, memory_cost=32, parallelism=1).hash(PASSWORD)
    with hub.db.transaction() as conn:
        user_repo.set_password_hash(conn, user.id, weak, changed_at=None)
    authenticate(hub, "ana@example.com", PASSWORD, ADDRESS)
    (row,) = stored(hub, users)
    assert row.password_hash != weak and "m=64,t=1,p=1" in row.password_hash
    assert row.password_changed_at == user.password_changed_at  # same password


# --- signing in --------------------------------------------------------------------------------


def test_a_wrong_password_an_unknown_email_and_a_disabled_user_are_refused_in_the_same_words(
    hub: Hub, scope: Scope
) -> None:
    by = admin_of(scope)
    create_user(scope, "bo@example.com", "Bo", PASSWORD, "viewer", by=by)
    update_user(scope, user_id_of(scope, "bo@example.com"), disabled=True, by=by)
    refusals = []
    for email, password in (
        ("ana@example.com", "not the password"),
        ("nobody@example.com", PASSWORD),
        ("bo@example.com", PASSWORD),  # right password, disabled user
        ("not an address", PASSWORD),
    ):
        with pytest.raises(LoginRefused) as refused:
            authenticate(hub, email, password, ADDRESS)
        refusals.append((refused.value.code, refused.value.message, refused.value.hint))
    assert len(set(refusals)) == 1 and refusals[0][0] == "login_refused"


def test_an_unknown_email_costs_one_hash_verification_like_a_wrong_password(
    hub: Hub, scope: Scope, settings: Settings
) -> None:
    real_hashes(settings)
    create_user(scope, "ana@example.com", "Ana", PASSWORD, "viewer", by=None)
    authenticate(hub, "ana@example.com", PASSWORD, None)  # warm (the dummy hash is made once)
    with pytest.raises(LoginRefused):
        authenticate(hub, "nobody@example.com", PASSWORD, None)

    def median(email: str) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            with pytest.raises(LoginRefused):
                authenticate(hub, email, "wrong password!", None)
            times.append(time.perf_counter() - started)
        return sorted(times)[1]

    known, unknown = median("ana@example.com"), median("nobody@example.com")
    hash_cost = min(known, unknown)
    assert hash_cost > 0.01  # an argon2 verification, not a dictionary look-up
    assert 0.5 < unknown / known < 2


def test_five_failures_of_one_account_pause_its_sign_in_until_the_oldest_leaves_the_window(
    hub: Hub, scope: Scope, clock: Clock
) -> None:
    create_user(scope, "ana@example.com", "Ana", PASSWORD, "viewer", by=None)
    for minute in range(5):  # 09:00 … 09:04, from five addresses
        clock.now = T0 + timedelta(minutes=minute)
        with pytest.raises(LoginRefused):
            authenticate(hub, "ana@example.com", "wrong password!", f"198.51.100.{minute}")
    clock.now = T0 + timedelta(minutes=5)
    with pytest.raises(LoginThrottled) as paused:
        authenticate(hub, "ana@example.com", PASSWORD, "192.0.2.1")  # even the right password, elsewhere
    assert paused.value.code == "login_throttled" and isinstance(paused.value, InvalidInput)
    assert paused.value.retry_after_s == 10 * 60  # 09:00's failure leaves the 15 minutes at 09:15
    clock.now = T0 + timedelta(minutes=15)
    assert authenticate(hub, "ana@example.com", PASSWORD, "192.0.2.1").kind == "user"
    with pytest.raises(LoginRefused):  # the success counts from zero again
        authenticate(hub, "ana@example.com", "wrong password!", "192.0.2.1")


def test_a_paused_attempt_is_not_counted_so_waiting_is_always_enough(hub: Hub, scope: Scope, clock: Clock) -> None:
    create_user(scope, "ana@example.com", "Ana", PASSWORD, "viewer", by=None)
    for _ in range(5):
        with pytest.raises(LoginRefused):
            authenticate(hub, "ana@example.com", "wrong password!", ADDRESS)
    waits = []
    for _ in range(3):
        clock.advance(minutes=1)
        with pytest.raises(LoginThrottled) as paused:
            authenticate(hub, "ana@example.com", PASSWORD, ADDRESS)
        waits.append(paused.value.retry_after_s)
    assert waits == [14 * 60, 13 * 60, 12 * 60]


def test_twenty_failures_from_one_address_pause_every_account_from_it_and_no_other_address(
    hub: Hub, scope: Scope, clock: Clock
) -> None:
    create_user(scope, "ana@example.com", "Ana", PASSWORD, "viewer", by=None)
    for n in range(20):  # four tries each at five addresses: no account reaches its own limit
        clock.now = T0 + timedelta(seconds=30 * n)
        with pytest.raises(LoginRefused):
            authenticate(hub, f"guess{n % 5}@example.com", "wrong password!", ADDRESS)
    clock.now = T0 + timedelta(minutes=10)
    with pytest.raises(LoginThrottled) as paused:
        authenticate(hub, "ana@example.com", PASSWORD, ADDRESS)
    assert paused.value.retry_after_s == 5 * 60  # the first failure, at 09:00, leaves at 09:15
    assert authenticate(hub, "ana@example.com", PASSWORD, "192.0.2.1").kind == "user"


# --- sessions ----------------------------------------------------------------------------------


def signed_in(scope: Scope, role: Role = Role.OPERATOR, email: str = "bo@example.com") -> tuple[int, str]:
    user = create_user(scope, email, "Bo Silva", PASSWORD, role, "fr", by=None)
    principal = authenticate(scope.hub, email, PASSWORD, ADDRESS)
    return user.id, start_session(scope.hub, principal, ADDRESS, "Firefox/140").token


def test_a_session_token_is_random_and_stored_only_as_its_sha256(hub: Hub, scope: Scope) -> None:
    _, token = signed_in(scope)
    (row,) = stored(hub, web_sessions)
    assert len(token) >= 43 and row.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert all(token not in str(value) for value in row)
    assert (row.address, row.user_agent) == (ADDRESS, "Firefox/140")


def test_a_session_resolves_to_its_user_as_they_are_now(hub: Hub, scope: Scope) -> None:
    user_id, token = signed_in(scope)
    found = resolve_session(hub, token)
    assert found is not None and found.expires_at == T0 + timedelta(hours=12)
    assert found.principal == Principal("user", user_id, scope.tenant_id, Role.OPERATOR, "Bo Silva", "fr")
    update_user(scope, user_id, role="viewer", by=Actor.cli(scope))
    set_locale(hub, found.principal, "en")
    again = resolve_session(hub, token)
    assert again is not None and (again.principal.role, again.principal.locale) == (Role.VIEWER, "en")
    assert again.csrf == found.csrf


@pytest.mark.parametrize(
    ("what", "then"),
    [
        ("signed out", lambda t: end_session(t.hub, t.token)),
        ("idle for 2 hours", lambda t: t.clock.advance(hours=2)),
        ("12 hours after sign-in, however busy", lambda t: t.busy(hours=12)),
        ("its user disabled", lambda t: update_user(t.scope, t.user_id, disabled=True, by=Actor.cli(t.scope))),
    ],
)
def test_a_session_resolves_to_nothing_once(
    hub: Hub, scope: Scope, clock: Clock, what: str, then: Callable[[Situation], object]
) -> None:
    user_id, token = signed_in(scope)
    then(Situation(hub, scope, clock, user_id, token))
    assert resolve_session(hub, token) is None, what
    assert resolve_session(hub, token + "x") is None and resolve_session(hub, "") is None


class Situation:
    def __init__(self, hub: Hub, scope: Scope, clock: Clock, user_id: int, token: str) -> None:
        self.hub, self.scope, self.clock, self.user_id, self.token = hub, scope, clock, user_id, token

    def busy(self, hours: int) -> None:
        for _ in range(hours * 2):  # a request every 30 minutes: never idle
            self.clock.advance(minutes=30)
            if self.clock.now < T0 + timedelta(hours=hours):
                assert resolve_session(self.hub, self.token) is not None


def test_a_session_in_use_stays_alive_and_writes_last_seen_at_most_once_a_minute(
    hub: Hub, scope: Scope, clock: Clock
) -> None:
    _, token = signed_in(scope)
    seen = []
    for seconds in (20, 40, 59, 61, 90, 125):
        clock.now = T0 + timedelta(seconds=seconds)
        assert resolve_session(hub, token) is not None
        seen.append(stored(hub, web_sessions)[0].last_seen_at)
    assert seen == [T0, T0, T0, *[T0 + timedelta(seconds=s) for s in (61, 61, 125)]]
    clock.now = T0 + timedelta(seconds=125, hours=1, minutes=59)
    assert resolve_session(hub, token) is not None  # idle measured from the last write


def test_disabling_a_user_or_setting_their_password_ends_their_sessions(hub: Hub, scope: Scope) -> None:
    user_id, token = signed_in(scope)
    set_password(scope, user_id, "a brand new passphrase", by=Actor.cli(scope))
    assert resolve_session(hub, token) is None
    with pytest.raises(LoginRefused):
        authenticate(hub, "bo@example.com", PASSWORD, ADDRESS)
    principal = authenticate(hub, "bo@example.com", "a brand new passphrase", ADDRESS)
    mine, other = (start_session(hub, principal, ADDRESS, None) for _ in range(2))
    keep = resolve_session(hub, mine.token)
    assert keep is not None
    set_password(
        scope, user_id, "yet another passphrase", by=Actor.of(hub, principal, ADDRESS), keep_session=keep.session_id
    )
    assert resolve_session(hub, mine.token) is not None and resolve_session(hub, other.token) is None


# --- users -------------------------------------------------------------------------------------


def test_an_email_is_one_account_across_every_tenant(hub: Hub, scope: Scope) -> None:
    create_user(scope, "ana@example.com", "Ana", PASSWORD, "admin", by=None)
    acme = add_tenant(hub, "acme", "Acme")
    with pytest.raises(Conflict, match=r"ana@example\.com already has an account"):
        create_user(acme, "ANA@example.com", "Ana again", PASSWORD, "admin", by=None)
    assert [u.email for u in list_users(acme)] == []


def test_the_last_enabled_admin_can_be_neither_demoted_nor_disabled(hub: Hub, scope: Scope) -> None:
    ana = admin_of(scope)
    ana_id = ana.principal.id
    assert ana_id is not None
    for change in ({"role": "operator"}, {"disabled": True}):
        with pytest.raises(Conflict, match="last admin"):
            update_user(scope, ana_id, by=ana, **change)  # type: ignore[arg-type]
    bo = create_user(scope, "bo@example.com", "Bo", PASSWORD, "admin", by=ana)
    update_user(scope, bo.id, disabled=True, by=ana)
    with pytest.raises(Conflict):  # a disabled admin does not count
        update_user(scope, ana_id, role="viewer", by=ana)
    update_user(scope, bo.id, disabled=False, by=ana)
    assert update_user(scope, ana_id, role="viewer", by=ana).role == Role.VIEWER
    assert [(u.email, u.role, u.disabled) for u in list_users(scope)] == [
        ("ana@example.com", Role.VIEWER, False),
        ("bo@example.com", Role.ADMIN, False),
    ]


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.VIEWER])
def test_only_an_admin_manages_users_and_tokens(hub: Hub, scope: Scope, role: Role) -> None:
    user_id, _ = signed_in(scope, role)
    actor = Actor.of(hub, authenticate(hub, "bo@example.com", PASSWORD, ADDRESS), ADDRESS)
    token = create_token(scope, "ci", "viewer", by=Actor.cli(scope))
    for attempt in (
        lambda: create_user(scope, "cy@example.com", "Cy", PASSWORD, "viewer", by=actor),
        lambda: update_user(scope, user_id, role="admin", by=actor),
        lambda: set_password(scope, user_id + 1, "a brand new passphrase", by=actor),
        lambda: create_token(scope, "mine", "viewer", by=actor),
        lambda: revoke_token(scope, token.id, by=actor),
    ):
        with pytest.raises(Forbidden):
            attempt()
    assert [u.email for u in list_users(scope)] == ["bo@example.com"]


def test_tenant_a_cannot_see_change_or_revoke_tenant_bs_users_and_tokens(hub: Hub, scope: Scope) -> None:
    acme = add_tenant(hub, "acme", "Acme")
    theirs_admin = admin_of(acme, "boss@acme.example")
    theirs_user = create_user(acme, "cy@acme.example", "Cy", PASSWORD, "viewer", by=theirs_admin)
    theirs_token = create_token(acme, "their ci", "viewer", by=theirs_admin)
    ours = admin_of(scope)
    assert [u.email for u in list_users(scope)] == ["ana@example.com"]
    assert list_tokens(scope) == []
    for attempt in (
        lambda: update_user(scope, theirs_user.id, role="admin", by=ours),
        lambda: update_user(scope, theirs_user.id, disabled=True, by=ours),
        lambda: set_password(scope, theirs_user.id, "a brand new passphrase", by=ours),
        lambda: revoke_token(scope, theirs_token.id, by=ours),
        lambda: user_id_of(scope, "cy@acme.example"),
        lambda: auth.get_user(scope, theirs_user.id),
        lambda: auth.get_token(scope, theirs_token.id),
    ):
        with pytest.raises(NotFound):
            attempt()
    with pytest.raises(Forbidden):  # an actor of one tenant acting in another's scope
        revoke_token(acme, theirs_token.id, by=ours)
    assert resolve_token(hub, theirs_token.token) is not None
    assert [u.role for u in list_users(acme)] == [Role.ADMIN, Role.VIEWER]


# --- API tokens --------------------------------------------------------------------------------


def test_an_api_token_is_shown_once_and_stored_only_as_its_sha256(hub: Hub, scope: Scope) -> None:
    made = create_token(scope, "ERP export", "operator", by=admin_of(scope))
    assert made.token.startswith("obt_") and len(made.token) == 4 + 43 and made.prefix == made.token[:12]
    (row,) = stored(hub, api_tokens)
    assert row.token_hash == hashlib.sha256(made.token.encode()).hexdigest()
    assert all(made.token not in str(value) for value in row)
    (listed,) = list_tokens(scope)
    assert (listed.id, listed.label, listed.prefix, listed.role, listed.created_by) == (
        made.id,
        "ERP export",
        made.prefix,
        Role.OPERATOR,
        "Ana Lima",
    )
    assert not hasattr(listed, "token")
    principal = resolve_token(hub, made.token)
    assert principal == Principal("token", made.id, scope.tenant_id, Role.OPERATOR, "ERP export", "en")


@pytest.mark.parametrize("bad", ["", "obt_", "obt_nosuchtoken", "Bearer obt_x", "x" * 10_000, "obt_" + "a" * 300])
def test_anything_but_a_live_token_resolves_to_nothing(hub: Hub, scope: Scope, bad: str) -> None:
    create_token(scope, "ci", "viewer", by=Actor.cli(scope))
    assert resolve_token(hub, bad) is None


def test_a_revoked_token_resolves_to_nothing_and_cannot_be_revoked_twice(hub: Hub, scope: Scope) -> None:
    by = admin_of(scope)
    made, kept = create_token(scope, "old", "admin", by=by), create_token(scope, "new", "viewer", by=by)
    revoke_token(scope, made.id, by=by)
    assert resolve_token(hub, made.token) is None and resolve_token(hub, kept.token) is not None
    with pytest.raises(Conflict, match="revoked already"):
        revoke_token(scope, made.id, by=by)
    with pytest.raises(NotFound):
        revoke_token(scope, 999_999, by=by)
    assert [(t.label, t.revoked) for t in list_tokens(scope)] == [("new", False), ("old", True)]
    assert [t.label for t in list_tokens(scope, include_revoked=False)] == ["new"]


def test_a_token_acts_with_its_own_role_which_is_no_higher_than_its_creators(hub: Hub, scope: Scope) -> None:
    admin_token = create_token(scope, "automation", "admin", by=admin_of(scope))
    acting = Actor.of(hub, resolve_token(hub, admin_token.token), "192.0.2.9")  # type: ignore[arg-type]
    viewer = create_token(scope, "dashboards", "viewer", by=acting)
    viewer_actor = Actor.of(hub, resolve_token(hub, viewer.token), None)  # type: ignore[arg-type]
    with pytest.raises(Forbidden):
        create_token(scope, "escalate", "admin", by=viewer_actor)
    with pytest.raises(InvalidInput, match="not a role"):
        create_token(scope, "x", "owner", by=acting)
    (made,) = [t for t in list_tokens(scope) if t.id == viewer.id]
    assert made.created_by == "automation"


def test_a_tokens_last_use_is_written_at_most_once_a_minute(hub: Hub, scope: Scope, clock: Clock) -> None:
    made = create_token(scope, "ci", "viewer", by=Actor.cli(scope))
    used = []
    for seconds in (0, 30, 61, 100, 122):
        clock.now = T0 + timedelta(seconds=seconds)
        assert resolve_token(hub, made.token) is not None
        used.append(list_tokens(scope)[0].last_used_at)
    assert used == [T0, T0, *[T0 + timedelta(seconds=s) for s in (61, 61, 122)]]


# --- the audit trail of it all -----------------------------------------------------------------


def test_every_change_to_a_user_or_token_is_in_the_audit_trail_with_who_and_where(
    hub: Hub, scope: Scope, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGNAME", "deploy")
    monkeypatch.setenv("USER", "deploy")
    ana = admin_of(scope)
    bo = create_user(scope, "bo@example.com", "Bo", PASSWORD, "viewer", by=ana)
    update_user(scope, bo.id, role="operator", locale="fr", by=ana)
    update_user(scope, bo.id, disabled=True, by=ana)
    update_user(scope, bo.id, disabled=True, by=ana)  # nothing changes: nothing recorded
    token = create_token(scope, "ci", "viewer", by=ana)
    revoke_token(scope, token.id, by=Actor.cli(scope))
    trail = [(a.who, a.actor_kind, a.action, a.summary, a.address) for a in reversed(actions_on(scope, "user", bo.id))]
    assert trail == [
        ("Ana Lima", "user", "user.add", "added bo@example.com as viewer", ADDRESS),
        ("Ana Lima", "user", "user.role", "changed the role of bo@example.com from viewer to operator", ADDRESS),
        ("Ana Lima", "user", "user.locale", "set the language of bo@example.com to fr", ADDRESS),
        ("Ana Lima", "user", "user.disable", "disabled bo@example.com", ADDRESS),
    ]
    token_trail = [(a.who, a.action) for a in reversed(actions_on(scope, "token", token.id))]
    assert token_trail == [("Ana Lima", "token.create"), ("cli:deploy", "token.revoke")]
    ana_trail = [a.action for a in reversed(actions_on(scope, "user", ana.principal.id))]
    assert ana_trail == ["user.add"]  # by the CLI; signing in is a session's start, below
    principal = authenticate(hub, "ana@example.com", PASSWORD, ADDRESS)
    session = start_session(hub, principal, ADDRESS, None)
    end_session(hub, session.token)
    assert [a.action for a in actions_on(scope, "user", ana.principal.id, limit=2)] == ["user.sign_out", "user.sign_in"]


def test_the_cli_acts_as_an_admin_named_after_the_os_user(scope: Scope, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGNAME", "ops")
    actor = Actor.cli(scope)
    assert (actor.principal.kind, actor.principal.id, actor.principal.name, actor.role, actor.address) == (
        "cli",
        None,
        "cli:ops",
        Role.ADMIN,
        None,
    )
