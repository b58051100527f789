"""Users, sign-in, sessions and API tokens: who may act in a tenant, and as whom.

Every secret is kept only as something that cannot be turned back into it (decisions 90–94):

- **Passwords** are argon2id hashes (argon2-cffi's :class:`PasswordHasher`, RFC 9106's low-memory
  parameters by default; the ``password_*`` settings, which tests lower); a hash made with other
  parameters is replaced on the next successful sign-in. The
  policy (:func:`check_password`): 12 to 1024 characters, not the e-mail address or its local part,
  at least 4 different characters.
- **Sign-in** (:func:`authenticate`) answers a wrong password, an unknown e-mail and a disabled user
  with the same :class:`LoginRefused`, and costs one hash verification in each case (an unknown
  e-mail is checked against a dummy hash), so neither the answer nor its time tells whether an
  account exists. Failures are rows (``login_attempts``): 5 failures of one e-mail since its last
  success within 15 minutes, or 20 from one address, pause sign-in (:class:`LoginThrottled`, with
  the seconds until the oldest counted failure leaves the window); a paused attempt verifies
  nothing and is not counted, so waiting is always enough.
- **Sessions** (:func:`start_session`): a random 32-byte URL-safe token for the cookie, of which
  only the SHA-256 is stored, and a CSRF token; a session lasts ``session_max_age_s`` (12 h) from
  sign-in and ``session_idle_s`` (2 h) from its last request — ``last_seen_at`` is written at most
  once a minute, so a busy page costs no write per request. A session resolves to its user's
  *current* role, name and locale; a disabled user's sessions end at once.
- **API tokens** (:func:`create_token`): ``obt_`` + 32 random bytes (URL-safe), shown once; the
  SHA-256 is stored, and the first 12 characters (``prefix``) so lists can tell tokens apart.
  A token has a role no higher than its creator's, belongs to the tenant (it outlives its
  creator's account: an admin revokes it), and records ``last_used_at`` at most once a minute.

Everything that creates, changes or revokes is recorded in the audit trail (:mod:`.audit_trail`)
in the same transaction. Managing users and tokens needs the admin role: the routes check it, and
so does every function here (:func:`_require_admin`), so no caller can forget.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from orderbridge.domain.roles import Role
from orderbridge.errors import Conflict, Forbidden, InvalidInput, NotFound
from orderbridge.services.audit_trail import record_action
from orderbridge.services.hub import Hub
from orderbridge.services.principals import Actor, Principal
from orderbridge.services.scope import Scope
from orderbridge.settings import Settings
from orderbridge.storage.repos import api_tokens as token_repo
from orderbridge.storage.repos import login_attempts as attempt_repo
from orderbridge.storage.repos import users as user_repo
from orderbridge.storage.repos import web_sessions as session_repo

__all__ = [
    "LOCALES",
    "Actor",
    "LoginRefused",
    "LoginThrottled",
    "NewSession",
    "NewToken",
    "Principal",
    "Role",
    "SessionInfo",
    "TokenInfo",
    "UserInfo",
    "authenticate",
    "check_password",
    "create_token",
    "create_user",
    "end_session",
    "get_token",
    "get_user",
    "list_tokens",
    "list_users",
    "normalise_email",
    "resolve_session",
    "resolve_token",
    "revoke_token",
    "set_locale",
    "set_password",
    "start_session",
    "update_user",
    "user_id_of",
]

#: the languages a user may pick (the portal ships these catalogues)
LOCALES = ("en", "fr")

#: the password policy (decision 90)
MIN_PASSWORD_CHARS = 12
MAX_PASSWORD_CHARS = 1024
MIN_DISTINCT_CHARS = 4

#: sign-in throttling (decision 92): failures counted within the window …
THROTTLE_WINDOW = timedelta(minutes=15)
#: … of one e-mail since its last success
ACCOUNT_FAILURES = 5
#: … from one address (many accounts tried from one place)
ADDRESS_FAILURES = 20

#: ``last_seen_at`` of a session and ``last_used_at`` of a token are written at most this often
TOUCH_EVERY = timedelta(minutes=1)

#: API tokens (decision 93)
TOKEN_MARK = "obt_"
TOKEN_BYTES = 32
PREFIX_CHARS = 12
#: a session token is ``token_urlsafe(32)`` (43 characters); anything far longer is not one
_MAX_SECRET_CHARS = 200

_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_EMAIL_CHARS, _NAME_CHARS, _LABEL_CHARS, _ADDRESS_CHARS, _AGENT_CHARS = 254, 200, 100, 100, 300


class LoginRefused(InvalidInput):
    """The e-mail and password do not sign anyone in — the same words whether the account is
    unknown, the password wrong or the user disabled."""

    code = "login_refused"

    def __init__(self) -> None:
        super().__init__(
            "the e-mail address or the password is not right",
            hint="Check both and try again; an admin of your account can reset the password.",
        )


class LoginThrottled(InvalidInput):
    """Too many failed sign-ins for this e-mail or from this address: wait ``retry_after_s``."""

    code = "login_throttled"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            f"too many failed sign-ins: try again in {retry_after_s} seconds",
            hint="Wait, then sign in with the right password; an admin can reset it.",
        )
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class UserInfo:
    id: int
    tenant_id: int
    email: str
    name: str
    role: Role
    locale: str
    created_at: datetime
    disabled_at: datetime | None
    password_changed_at: datetime

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    @classmethod
    def from_row(cls, row: Any) -> UserInfo:
        return cls(
            int(row.id),
            int(row.tenant_id),
            str(row.email),
            str(row.name),
            Role(row.role),
            str(row.locale),
            row.created_at,
            row.disabled_at,
            row.password_changed_at,
        )


@dataclass(frozen=True)
class NewSession:
    #: the cookie's value (shown to the browser only; the ledger keeps its SHA-256)
    token: str
    csrf: str
    expires_at: datetime


@dataclass(frozen=True)
class SessionInfo:
    principal: Principal
    csrf: str
    #: the absolute expiry (the idle one moves with every request)
    expires_at: datetime
    session_id: int = 0


@dataclass(frozen=True)
class NewToken:
    id: int
    #: the token itself: shown once, never stored
    token: str
    prefix: str


@dataclass(frozen=True)
class TokenInfo:
    id: int
    label: str
    prefix: str
    role: Role
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @classmethod
    def from_row(cls, row: Any) -> TokenInfo:
        return cls(
            int(row.id),
            str(row.label),
            str(row.prefix),
            Role(row.role),
            str(row.created_by),
            row.created_at,
            row.last_used_at,
            row.revoked_at,
        )


# --- passwords ---------------------------------------------------------------------------------


def _hasher(settings: Settings) -> PasswordHasher:
    """argon2id with the hub's parameters (default RFC 9106's low-memory ones: t=3, m=64 MiB, p=4)."""
    return _hasher_of(settings.password_time_cost, settings.password_memory_kib, settings.password_parallelism)


@cache
def _hasher_of(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)


@cache
def _dummy_hash(hasher: PasswordHasher) -> str:
    """What an unknown e-mail's password is checked against, so it costs one verification too."""
    return hasher.hash(secrets.token_urlsafe(16))


def _verify(hasher: PasswordHasher, password_hash: str, password: str) -> bool:
    try:
        return hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _invalid(message: str, *, hint: str = "", field: str | None = None) -> InvalidInput:
    exc = InvalidInput(message, hint=hint)
    exc.field = field  # type: ignore[attr-defined]  # the API's error shape names the field
    return exc


def normalise_email(email: str) -> str:
    """The e-mail as stored and signed in with: trimmed, lower-cased; :class:`InvalidInput` when it
    is not an address."""
    value = email.strip().lower()
    if len(value) > _EMAIL_CHARS or not _EMAIL.fullmatch(value):
        raise _invalid(
            f"{email[:80]!r} is not an e-mail address", hint="Enter an address such as ana@example.com.", field="email"
        )
    return value


def check_password(password: str, email: str | None = None) -> None:
    """The password policy (decision 90): :class:`InvalidInput` naming what is wrong with it."""
    hint = "Use a passphrase of three or four words, or a password manager's."
    if len(password) < MIN_PASSWORD_CHARS:
        raise _invalid(
            f"the password has {len(password)} characters; it needs at least {MIN_PASSWORD_CHARS}",
            hint=hint,
            field="password",
        )
    if len(password) > MAX_PASSWORD_CHARS:
        raise _invalid(f"the password is longer than {MAX_PASSWORD_CHARS} characters", hint=hint, field="password")
    low = password.strip().lower()
    if email and low in (email.lower(), email.lower().split("@", 1)[0]):
        raise _invalid("the password must not be the e-mail address", hint=hint, field="password")
    if len(set(password)) < MIN_DISTINCT_CHARS:
        raise _invalid(
            f"the password uses fewer than {MIN_DISTINCT_CHARS} different characters", hint=hint, field="password"
        )


# --- users -------------------------------------------------------------------------------------


def _require_admin(scope: Scope, by: Actor, what: str) -> None:
    if by.principal.tenant_id != scope.tenant_id or by.scope.tenant_id != scope.tenant_id:
        raise Forbidden(f"{by.principal.name} does not belong to tenant {scope.slug!r}")
    if not by.principal.allows(Role.ADMIN):
        raise Forbidden(f"{what} needs the admin role; {by.principal.name} is {by.principal.role}")


def _role(value: Role | str) -> Role:
    role = Role.parse(str(value))
    if role is None:
        raise _invalid(f"{str(value)[:40]!r} is not a role", hint="Pick admin, operator or viewer.", field="role")
    return role


def _locale(value: str) -> str:
    if value not in LOCALES:
        raise _invalid(f"{value[:20]!r} is not a language OrderBridge speaks", hint="Pick en or fr.", field="locale")
    return value


def create_user(
    scope: Scope,
    email: str,
    name: str,
    password: str,
    role: Role | str,
    locale: str = "en",
    *,
    by: Actor | None,
) -> UserInfo:
    """Add a user to the tenant. ``by`` None is the operator at the command line (``Actor.cli``)."""
    actor = by or Actor.cli(scope)
    _require_admin(scope, actor, "adding a user")
    address = normalise_email(email)
    wanted = _role(role)
    locale = _locale(locale)
    shown = name.strip() or address
    if len(shown) > _NAME_CHARS:
        raise _invalid(f"the name {shown[:40]!r}… is longer than {_NAME_CHARS} characters", field="name")
    check_password(password, address)
    password_hash = _hasher(scope.settings).hash(password)  # outside the transaction: it takes ~0.1 s
    try:
        with scope.transaction() as conn:
            user_id = user_repo.add(
                conn,
                tenant_id=scope.tenant_id,
                email=address,
                name=shown,
                password_hash=password_hash,
                role=wanted.value,
                locale=locale,
                now=scope.now(),
            )
            record_action(
                actor,
                "user.add",
                "user",
                user_id,
                f"added {address} as {wanted}",
                {"email": address, "name": shown, "role": wanted.value, "locale": locale},
                conn=conn,
            )
            row = user_repo.of_tenant_by_id(conn, scope.tenant_id, user_id)
    except IntegrityError:
        raise Conflict(
            f"{address} already has an account",
            hint="Sign-in is by e-mail, so an address belongs to one user: use another one.",
        ) from None
    return UserInfo.from_row(row)


def list_users(scope: Scope) -> list[UserInfo]:
    """The tenant's users (disabled ones too), in creation order."""
    with scope.read() as conn:
        return [UserInfo.from_row(r) for r in user_repo.of_tenant(conn, scope.tenant_id)]


def get_user(scope: Scope, user_id: int) -> UserInfo:
    """One of the tenant's users; :class:`NotFound` for another tenant's alike."""
    with scope.read() as conn:
        return UserInfo.from_row(_user(conn, scope, user_id))


def user_id_of(scope: Scope, email: str) -> int:
    """The id of the tenant's user with this e-mail (the CLI resolves it once); :class:`NotFound`
    for an unknown address and for another tenant's alike."""
    address = email.strip().lower()
    with scope.read() as conn:
        row = user_repo.of_tenant_by_email(conn, scope.tenant_id, address)
    if row is None:
        raise NotFound(f"no user {email[:80]!r} in tenant {scope.slug!r}", hint="List the tenant's users.")
    return int(row.id)


def _user(conn: Connection, scope: Scope, user_id: int) -> Any:
    row = user_repo.of_tenant_by_id(conn, scope.tenant_id, user_id)
    if row is None:
        raise NotFound(f"no user {user_id} in tenant {scope.slug!r}")
    return row


def update_user(
    scope: Scope,
    user_id: int,
    *,
    role: Role | str | None = None,
    locale: str | None = None,
    disabled: bool | None = None,
    name: str | None = None,
    by: Actor,
) -> UserInfo:
    """Change a user's role, language, name or whether they may sign in. The tenant always keeps
    an enabled admin: demoting or disabling the last one is a :class:`Conflict`. Disabling ends
    the user's sessions at once."""
    _require_admin(scope, by, "changing a user")
    new_role = None if role is None else _role(role)
    new_locale = None if locale is None else _locale(locale)
    new_name = None if name is None else name.strip()
    if new_name is not None and not 1 <= len(new_name) <= _NAME_CHARS:
        raise _invalid(f"a name has 1-{_NAME_CHARS} characters", field="name")
    now = scope.now()
    with scope.transaction() as conn:
        row = _user(conn, scope, user_id)
        was_admin = row.role == Role.ADMIN and row.disabled_at is None
        stays_admin = (new_role or Role(row.role)) == Role.ADMIN and not (
            disabled if disabled is not None else row.disabled_at is not None
        )
        if was_admin and not stays_admin and user_repo.admins_for_update(conn, scope.tenant_id) == [row.id]:
            raise Conflict(
                f"{row.email} is the last admin of tenant {scope.slug!r}",
                hint="Make another user admin first, so someone can still manage the account.",
            )
        changes: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
        if new_role is not None and new_role != row.role:
            changes.append(
                (
                    "user.role",
                    f"changed the role of {row.email} from {row.role} to {new_role}",
                    {"role": new_role.value},
                    {"from": row.role, "to": new_role.value},
                )
            )
        if new_locale is not None and new_locale != row.locale:
            changes.append(
                (
                    "user.locale",
                    f"set the language of {row.email} to {new_locale}",
                    {"locale": new_locale},
                    {"from": row.locale, "to": new_locale},
                )
            )
        if new_name is not None and new_name != row.name:
            changes.append(
                (
                    "user.rename",
                    f"renamed {row.email} to {new_name}",
                    {"name": new_name},
                    {"from": row.name, "to": new_name},
                )
            )
        if disabled is True and row.disabled_at is None:
            changes.append(("user.disable", f"disabled {row.email}", {"disabled_at": now}, {}))
            session_repo.end_of_user(conn, row.id, now)
        if disabled is False and row.disabled_at is not None:
            changes.append(("user.enable", f"enabled {row.email}", {"disabled_at": None}, {}))
        for action, summary, values, detail in changes:
            user_repo.change(conn, scope.tenant_id, row.id, **values)
            record_action(by, action, "user", row.id, summary, detail or None, conn=conn)
        return UserInfo.from_row(_user(conn, scope, user_id))


def set_password(scope: Scope, user_id: int, password: str, *, by: Actor, keep_session: int | None = None) -> None:
    """Give a user a new password: an admin for anyone of the tenant, a user for themselves. The
    user's sessions end (a stolen cookie stops working with the old password) but ``keep_session``,
    the one a user changing their own password is using."""
    own = by.principal.kind == "user" and by.principal.id == user_id and by.principal.tenant_id == scope.tenant_id
    if not own:
        _require_admin(scope, by, "setting another user's password")
    with scope.read() as conn:
        row = _user(conn, scope, user_id)
    check_password(password, row.email)
    password_hash = _hasher(scope.settings).hash(password)
    now = scope.now()
    with scope.transaction() as conn:
        _user(conn, scope, user_id)
        user_repo.set_password_hash(conn, row.id, password_hash, changed_at=now)
        session_repo.end_of_user(conn, row.id, now, keep=keep_session if own else None)
        record_action(by, "user.password", "user", row.id, f"set a new password for {row.email}", conn=conn)


# --- signing in --------------------------------------------------------------------------------


def _throttle(conn: Connection, email: str, address: str | None, now: datetime) -> None:
    since = now - THROTTLE_WINDOW
    waits: list[timedelta] = []
    failed = attempt_repo.failures_of_email(conn, email, since, ACCOUNT_FAILURES)
    if len(failed) >= ACCOUNT_FAILURES:
        waits.append(failed[ACCOUNT_FAILURES - 1] + THROTTLE_WINDOW - now)
    if address is not None:
        failed = attempt_repo.failures_from(conn, address, since, ADDRESS_FAILURES)
        if len(failed) >= ADDRESS_FAILURES:
            waits.append(failed[ADDRESS_FAILURES - 1] + THROTTLE_WINDOW - now)
    if waits:
        raise LoginThrottled(max(1, math.ceil(max(waits).total_seconds())))


def authenticate(hub: Hub, email: str, password: str, address: str | None) -> Principal:
    """The principal these credentials sign in, or :class:`LoginRefused` /
    :class:`LoginThrottled` (see the module docstring for what each costs and reveals)."""
    key = email.strip().lower()[:_EMAIL_CHARS]
    where = None if address is None else address[:_ADDRESS_CHARS]
    now = hub.now()
    with hub.db.read() as conn:
        _throttle(conn, key, where, now)
        row = user_repo.by_email(conn, key)
    if len(password) > MAX_PASSWORD_CHARS:
        password = password[: MAX_PASSWORD_CHARS + 1]  # refused below; never hash megabytes
    hasher = _hasher(hub.settings)
    verified = _verify(hasher, row.password_hash if row is not None else _dummy_hash(hasher), password)
    ok = row is not None and verified and row.disabled_at is None and len(password) <= MAX_PASSWORD_CHARS
    with hub.db.transaction() as conn:
        attempt_repo.add(conn, key, where, now, ok=ok)
        attempt_repo.forget_before(conn, key, where, now - THROTTLE_WINDOW)
        if ok and row is not None and hasher.check_needs_rehash(row.password_hash):
            user_repo.set_password_hash(conn, row.id, hasher.hash(password), changed_at=None)
    if not ok or row is None:
        raise LoginRefused()
    return _user_principal(row)


def _user_principal(row: Any) -> Principal:
    return Principal("user", int(row.id), int(row.tenant_id), Role(row.role), str(row.name), str(row.locale))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def start_session(hub: Hub, principal: Principal, address: str | None, user_agent: str | None) -> NewSession:
    """A new session for a user :func:`authenticate` signed in: the cookie token and CSRF token."""
    if principal.kind != "user" or principal.id is None:
        raise InvalidInput(f"only a user signs in to the portal, not a {principal.kind}")
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = hub.now()
    expires_at = now + timedelta(seconds=hub.settings.session_max_age_s)
    where = None if address is None else address[:_ADDRESS_CHARS]
    actor = Actor.of(hub, principal, where)
    with hub.db.transaction() as conn:
        session_repo.add(
            conn,
            tenant_id=principal.tenant_id,
            user_id=principal.id,
            token_hash=_digest(token),
            csrf_token=csrf,
            now=now,
            expires_at=expires_at,
            address=where,
            user_agent=None if user_agent is None else user_agent[:_AGENT_CHARS],
        )
        record_action(actor, "user.sign_in", "user", principal.id, f"{principal.name} signed in", conn=conn)
    return NewSession(token, csrf, expires_at)


def resolve_session(hub: Hub, token: str) -> SessionInfo | None:
    """The session a cookie token names, with its user as they are now; None when there is no such
    session, or it ended, expired (absolute or idle), or its user is disabled."""
    if not token or len(token) > _MAX_SECRET_CHARS:
        return None
    now = hub.now()
    with hub.db.read() as conn:
        session = session_repo.by_token_hash(conn, _digest(token))
        if session is None or session.ended_at is not None or session.expires_at <= now:
            return None
        if session.last_seen_at + timedelta(seconds=hub.settings.session_idle_s) <= now:
            return None
        user = user_repo.by_id(conn, int(session.user_id))
    if user is None or user.disabled_at is not None or user.tenant_id != session.tenant_id:
        return None
    if now - session.last_seen_at >= TOUCH_EVERY:
        with hub.db.transaction() as conn:
            session_repo.seen(conn, int(session.id), now)
    return SessionInfo(_user_principal(user), str(session.csrf_token), session.expires_at, int(session.id))


def end_session(hub: Hub, token: str) -> None:
    """Sign out: the session ends (a session already ended or unknown is left as it is)."""
    if not token or len(token) > _MAX_SECRET_CHARS:
        return
    now = hub.now()
    with hub.db.transaction() as conn:
        user_id = session_repo.end(conn, _digest(token), now)
        user = None if user_id is None else user_repo.by_id(conn, user_id)
    if user is not None:
        actor = Actor.of(hub, _user_principal(user), None)
        record_action(actor, "user.sign_out", "user", user.id, f"{user.name} signed out")


def set_locale(hub: Hub, principal: Principal, locale: str) -> None:
    """A user picks their language (a token or the CLI has none to keep: nothing is stored)."""
    _locale(locale)
    if principal.kind != "user" or principal.id is None:
        return
    actor = Actor.of(hub, principal, None)
    with hub.db.transaction() as conn:
        row = user_repo.of_tenant_by_id(conn, principal.tenant_id, principal.id)
        if row is None or row.locale == locale:
            return
        user_repo.change(conn, principal.tenant_id, principal.id, locale=locale)
        summary = f"{principal.name} set their language to {locale}"
        record_action(
            actor, "user.locale", "user", principal.id, summary, {"from": row.locale, "to": locale}, conn=conn
        )


# --- API tokens --------------------------------------------------------------------------------


def create_token(scope: Scope, label: str, role: Role | str, *, by: Actor) -> NewToken:
    """A new API token of the tenant, with a role no higher than its creator's. The token is in the
    answer and nowhere else: show it once."""
    _require_admin(scope, by, "creating an API token")
    wanted = _role(role)
    if not by.principal.allows(wanted):
        raise Forbidden(f"{by.principal.name} is {by.principal.role} and cannot create a {wanted} token")
    shown = label.strip()
    if not 1 <= len(shown) <= _LABEL_CHARS:
        raise _invalid(
            f"a token's label has 1-{_LABEL_CHARS} characters",
            hint="Name what will use it, e.g. 'ERP export'.",
            field="label",
        )
    token = TOKEN_MARK + secrets.token_urlsafe(TOKEN_BYTES)
    prefix = token[:PREFIX_CHARS]
    with scope.transaction() as conn:
        token_id = token_repo.add(
            conn,
            tenant_id=scope.tenant_id,
            label=shown,
            prefix=prefix,
            token_hash=_digest(token),
            role=wanted.value,
            created_by=by.principal.name,
            now=scope.now(),
        )
        record_action(
            by,
            "token.create",
            "token",
            token_id,
            f"created the {wanted} API token {shown!r} ({prefix}…)",
            {"label": shown, "role": wanted.value, "prefix": prefix},
            conn=conn,
        )
    return NewToken(token_id, token, prefix)


def list_tokens(scope: Scope, *, include_revoked: bool = True) -> list[TokenInfo]:
    """The tenant's API tokens, newest first (revoked ones too, unless asked not to)."""
    with scope.read() as conn:
        rows = token_repo.of_tenant(conn, scope.tenant_id, include_revoked=include_revoked)
    return [TokenInfo.from_row(r) for r in rows]


def get_token(scope: Scope, token_id: int) -> TokenInfo:
    """One of the tenant's API tokens (what a revoke confirmation shows); :class:`NotFound` for
    another tenant's alike."""
    with scope.read() as conn:
        row = token_repo.of_tenant_by_id(conn, scope.tenant_id, token_id)
    if row is None:
        raise NotFound(f"no API token {token_id} in tenant {scope.slug!r}")
    return TokenInfo.from_row(row)


def revoke_token(scope: Scope, token_id: int, *, by: Actor) -> None:
    """Revoke one of the tenant's tokens: it stops working at once. Another tenant's token is
    :class:`NotFound`; one revoked already is a :class:`Conflict`."""
    _require_admin(scope, by, "revoking an API token")
    with scope.transaction() as conn:
        row = token_repo.of_tenant_by_id(conn, scope.tenant_id, token_id)
        if row is None:
            raise NotFound(f"no API token {token_id} in tenant {scope.slug!r}")
        if not token_repo.revoke(conn, scope.tenant_id, token_id, scope.now()):
            raise Conflict(f"the API token {row.label!r} ({row.prefix}…) is revoked already")
        record_action(
            by, "token.revoke", "token", token_id, f"revoked the API token {row.label!r} ({row.prefix}…)", conn=conn
        )


def resolve_token(hub: Hub, token: str) -> Principal | None:
    """The principal a Bearer token acts as; None for anything but a live token of this hub."""
    if not token.startswith(TOKEN_MARK) or len(token) > _MAX_SECRET_CHARS:
        return None
    now = hub.now()
    with hub.db.read() as conn:
        row = token_repo.by_token_hash(conn, _digest(token))
    if row is None or row.revoked_at is not None:
        return None
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        with hub.db.transaction() as conn:
            token_repo.used(conn, int(row.id), now)
    return Principal("token", int(row.id), int(row.tenant_id), Role(row.role), str(row.label), "en")
