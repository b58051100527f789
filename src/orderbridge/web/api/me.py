"""``GET /api/v1/me``: who the token is — its account, role and name (a client's first call)."""

from __future__ import annotations

from pydantic import BaseModel

from orderbridge.web.api.common import api_router
from orderbridge.web.deps import ApiViewer

router = api_router("account")


class Me(BaseModel):
    kind: str
    name: str
    role: str
    tenant: str


@router.get("/me", response_model=Me, summary="The token's identity")
def me(actor: ApiViewer) -> Me:
    p = actor.principal
    return Me(kind=p.kind, name=p.name, role=p.role.value, tenant=actor.scope.slug)
