"""Tenants: one per merchant account. Migration 0001 creates the first, ``default``.

Adding a tenant is what issue #13's ``orderbridge tenants add`` (and the portal's sign-up) will
call; everything a tenant owns is then reached through its :class:`~orderbridge.services.scope.Scope`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError

from orderbridge.errors import InvalidInput
from orderbridge.services.hub import Hub
from orderbridge.services.scope import Scope
from orderbridge.storage.repos import tenants as tenant_repo

#: a slug is what ``--tenant`` takes and logs and metrics show: lower-case letters, digits, dashes
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?")


@dataclass(frozen=True)
class TenantInfo:
    id: int
    slug: str
    name: str
    created_at: datetime


def add_tenant(hub: Hub, slug: str, name: str) -> Scope:
    """Create a tenant and return its scope; a slug already taken is refused."""
    if not SLUG.fullmatch(slug):
        raise InvalidInput(
            f"{slug!r} is not a tenant slug",
            hint="Use 1-64 lower-case letters, digits and dashes (not at either end), e.g. acme-eu.",
        )
    if not name.strip() or len(name) > 200:
        raise InvalidInput(f"the tenant name {name[:40]!r} must be 1-200 characters")
    try:
        with hub.db.transaction() as conn:
            tenant_id = tenant_repo.add(conn, slug, name.strip(), hub.now())
    except IntegrityError:
        raise InvalidInput(f"a tenant {slug!r} already exists", hint="Pick another slug.") from None
    return Scope(hub, tenant_id, slug)


def list_tenants(hub: Hub) -> list[TenantInfo]:
    """Every tenant, in creation order."""
    with hub.db.read() as conn:
        return [TenantInfo(int(t.id), str(t.slug), str(t.name), t.created_at) for t in tenant_repo.every(conn)]
