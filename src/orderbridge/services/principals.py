"""Who is acting: a :class:`Principal` (a signed-in user, an API token, the CLI) and the
:class:`Actor` a service is told about — the principal, the scope of its tenant, the address it
came from.

These are their own module so that both :mod:`.auth` (which makes principals) and
:mod:`.audit_trail` (which records what actors did) can import them without importing each other;
:mod:`.auth` re-exports both, which is where callers find them.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Literal

from orderbridge.domain.roles import Role
from orderbridge.services.hub import Hub
from orderbridge.services.scope import Scope

PrincipalKind = Literal["user", "token", "cli"]


@dataclass(frozen=True)
class Principal:
    """A signed-in user (``id`` = users.id), an API token (``id`` = api_tokens.id) or the CLI
    (``id`` None, role admin: whoever runs it has the database and the secret key already)."""

    kind: PrincipalKind
    id: int | None
    tenant_id: int
    role: Role
    #: how the audit trail names it: the user's name, the label for a token, ``cli:<OS user>``
    name: str
    #: the language its pages are rendered in (always ``en`` for a token or the CLI)
    locale: str

    def allows(self, needed: Role) -> bool:
        return self.role.allows(needed)


@dataclass(frozen=True)
class Actor:
    """A principal acting in its tenant's scope, from an address (None for the CLI)."""

    principal: Principal
    scope: Scope
    address: str | None

    @classmethod
    def cli(cls, scope: Scope) -> Actor:
        """The operator at the command line: kind ``cli``, named after the OS user running it."""
        return cls(Principal("cli", None, scope.tenant_id, Role.ADMIN, f"cli:{_os_user()}", "en"), scope, None)

    @classmethod
    def of(cls, hub: Hub, principal: Principal, address: str | None) -> Actor:
        """The actor of a principal a request resolved (the scope of its tenant is built here)."""
        return cls(principal, Scope.of(hub, principal.tenant_id), address)

    @property
    def role(self) -> Role:
        return self.principal.role


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no USER/LOGNAME and no passwd entry (a bare container)
        return "unknown"
