"""Order updates for programs (issue #15): the updates awaiting review, with their diffs and what
accepting does at each destination, and the decisions on them.

- ``GET /api/v1/order-updates`` (viewer): pending reviews (``?status=`` for others), oldest first —
  each with its field changes, its classes and their policies, and the downstream plan, one step
  per destination (``kind``, the postings it makes, its sentence);
- ``GET /api/v1/order-updates/{id}``;
- ``POST /api/v1/order-updates/{id}/accept|ignore|cancel`` (operator) and ``POST
  /api/v1/order-updates/accept|ignore|cancel`` with ``{"ids": [...]}`` (the bulk form): each update is
  decided in its own transaction with its audit-trail row; one already decided answers
  ``changed: false``;
- ``GET|PUT /api/v1/order-updates/policies`` (viewer | admin): the tenant's policy per change class.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from orderbridge.errors import InvalidInput
from orderbridge.services import order_updates
from orderbridge.storage.repos import order_updates as update_repo
from orderbridge.web.api.common import api_router
from orderbridge.web.deps import ApiAdmin, ApiOperator, ApiViewer

router = api_router("order updates")

UpdateId = Annotated[int, Path(ge=1, le=2**62)]
#: the most ids one bulk decision takes
MAX_BULK = 500


class FieldChangeOut(BaseModel):
    path: str = Field(description="dotted: `lines[L2].quantity`, `shipping_address.city`")
    before: str | None
    after: str | None
    change: str = Field(description="its change class")


class ClassPolicyOut(BaseModel):
    change: str
    policy: str = Field(description="`apply`, `review` or `ignore`")
    overridden: bool = Field(description="the tenant's own policy (else the default)")
    why: str


class StepOut(BaseModel):
    destination_id: int
    destination: str
    kind: str = Field(description="`update_in_place`, `void_and_repost`, `adjust`, `void`, `nothing_to_do` or `cannot`")
    actions: list[str] = Field(description="the postings it makes, in order: `update`, `void`, `post`, `adjust`")
    sentence: str = Field(description="what accepting does there, e.g. `ShipStation: update order 98765`")
    reason: str = Field(description="for `cannot`: why a person must do it")
    document_id: str | None = Field(description="the destination's document it amends")
    amount: str | None = Field(description="an adjustment's amount and currency, e.g. `12.50 EUR`")


class UpdateOut(BaseModel):
    id: int
    order_id: int
    number: str
    status: str = Field(description="`review`, `applying`, `applied`, `ignored`, `cancelled` or `superseded`")
    policy: str = Field(description="what the policies decided: `apply`, `review` or `ignore`")
    from_version: int = Field(description="the version the destinations hold")
    to_version: int
    classes: list[str]
    changes: list[FieldChangeOut]
    policies: list[ClassPolicyOut]
    plan: list[StepOut]
    created_at: datetime
    decided_by: str | None


class UpdateList(BaseModel):
    updates: list[UpdateOut]


class DecisionOut(BaseModel):
    update_id: int
    order_id: int
    number: str
    action: str
    changed: bool
    status: str
    message: str


class DecisionsOut(BaseModel):
    results: list[DecisionOut]


class BulkIn(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=2**62)]] = Field(min_length=1, max_length=MAX_BULK)


class PolicyOut(BaseModel):
    change: str
    policy: str = Field(description="`apply`, `review`, `ignore`, or `default`")
    default_before_posting: str
    default_after_posting: str
    why: str


class PoliciesOut(BaseModel):
    policies: list[PolicyOut]


class PoliciesIn(BaseModel):
    policies: dict[str, str] = Field(description="change class → `apply`, `review`, `ignore` or `default`")


def update_out(v: order_updates.UpdateView) -> UpdateOut:
    return UpdateOut(
        id=v.id,
        order_id=v.order_id,
        number=v.number,
        status=v.status,
        policy=v.policy,
        from_version=v.from_version,
        to_version=v.to_version,
        classes=v.classes,
        changes=[FieldChangeOut(**c) for c in v.changes],
        policies=[ClassPolicyOut(**p) for p in v.policies],
        plan=[StepOut(**s) for s in v.steps],
        created_at=v.created_at,
        decided_by=v.decided_by,
    )


def _decisions(results: list[order_updates.UpdateResult]) -> DecisionsOut:
    return DecisionsOut(results=[DecisionOut(**r.__dict__) for r in results])


_STATUSES = (*update_repo.OPEN, update_repo.APPLIED, update_repo.IGNORED, update_repo.CANCELLED, update_repo.SUPERSEDED)


@router.get("/order-updates", response_model=UpdateList, summary="Order updates awaiting review, with their plans")
async def list_updates(
    actor: ApiViewer,
    status: Annotated[str, Query(max_length=20, description="`review` (default) or another status")] = "review",
) -> UpdateList:
    if status not in _STATUSES:
        raise InvalidInput(f"{status[:20]!r} is not an update status; one of: {', '.join(_STATUSES)}")
    views = await run_in_threadpool(order_updates.pending_reviews, actor.scope, statuses=(status,))
    return UpdateList(updates=[update_out(v) for v in views])


@router.get("/order-updates/policies", response_model=PoliciesOut, summary="The policy per change class")
async def get_policies(actor: ApiViewer) -> PoliciesOut:
    def read() -> list[dict[str, Any]]:
        with actor.scope.read() as conn:
            return order_updates.policy_table(conn, actor.scope.tenant_id)

    return PoliciesOut(policies=[PolicyOut(**p) for p in await run_in_threadpool(read)])


@router.put("/order-updates/policies", response_model=PoliciesOut, summary="Set policies per change class (admin)")
async def put_policies(body: PoliciesIn, actor: ApiAdmin) -> PoliciesOut:
    await run_in_threadpool(order_updates.set_policies, actor, body.policies)
    return await get_policies(actor)


@router.get("/order-updates/{update_id}", response_model=UpdateOut, summary="One order update with its plan")
async def get_update(update_id: UpdateId, actor: ApiViewer) -> UpdateOut:
    return update_out(await run_in_threadpool(order_updates.update_view, actor.scope, update_id))


def _decide_route(action: str) -> None:
    async def one(update_id: UpdateId, actor: ApiOperator) -> DecisionOut:
        [result] = await run_in_threadpool(order_updates.decide, actor, [update_id], action)
        return DecisionOut(**result.__dict__)

    async def bulk(body: BulkIn, actor: ApiOperator) -> DecisionsOut:
        return _decisions(await run_in_threadpool(order_updates.decide, actor, body.ids, action))

    router.add_api_route(
        f"/order-updates/{{update_id}}/{action}",
        one,
        methods=["POST"],
        response_model=DecisionOut,
        summary=f"{action.capitalize()} one order update",
        name=f"update_{action}",
    )
    router.add_api_route(
        f"/order-updates/{action}",
        bulk,
        methods=["POST"],
        response_model=DecisionsOut,
        summary=f"{action.capitalize()} several order updates (`ids`)",
        name=f"updates_{action}",
    )


for _action in order_updates.DECISIONS:
    _decide_route(_action)
