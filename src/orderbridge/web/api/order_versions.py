"""An order's versions and the diff between any two, for programs (issue #15, change detection).

- ``GET /api/v1/orders/{order_id}/versions``: every version the ledger keeps, oldest first, each
  with the channel's time, when the hub recorded it, its content hash and the classes of change
  from the version before it, with their summary;
- ``GET /api/v1/orders/{order_id}/diff?from=m&to=n``: the field-level diff between two versions
  (default: the previous and the current), each change with its dotted path, the values before
  and after as canonical text (amounts with their currency: ``"12.50 EUR"``) and its class.

A version the order does not have is 422 ``no_such_version`` naming the parameter and the versions
there are; an order of another account is 404, like a missing one (``services/order_versions.py``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from orderbridge.domain.changes import ChangeClass, OrderDiff
from orderbridge.services import order_versions
from orderbridge.web.api.common import api_router
from orderbridge.web.api.order_detail import OrderId
from orderbridge.web.deps import ApiViewer

router = api_router("orders")

_CLASSES = ", ".join(f"`{c.value}`" for c in ChangeClass)


class VersionOut(BaseModel):
    version: int
    updated_at: datetime | None = Field(description="the channel's time of this version (null: it did not say)")
    recorded_at: datetime = Field(description="when the hub recorded it")
    content_hash: str = Field(description="SHA-256 of the canonical content: equal hashes, no change")
    classes: list[str] = Field(description=f"the classes of change from the version before ({_CLASSES})")
    summary: str = Field(description="what changed from the version before, in one sentence (empty for the first)")
    readable: bool = Field(description="false: the channel's record of this version could not be read")


class VersionsOut(BaseModel):
    order_id: int
    versions: list[VersionOut]


class ChangeOut(BaseModel):
    path: str = Field(description="the field, dotted: `lines[L2].quantity`, `shipping_address.city`")
    before: str | None = Field(description="its value before, as canonical text (null: absent)")
    after: str | None = Field(description="its value after (null: absent)")
    change: str = Field(description=f"the class of change ({_CLASSES})")


class DiffOut(BaseModel):
    order_id: int
    number: str
    from_version: int = Field(alias="from")
    to_version: int = Field(alias="to")
    empty: bool = Field(description="the two versions have the same content")
    classes: list[str]
    summary: str
    changes: list[ChangeOut] = Field(description="by class (in the order of the class list), then field")

    model_config = {"populate_by_name": True}


def _changes(d: OrderDiff) -> list[ChangeOut]:
    return [ChangeOut(path=c.path, before=c.before, after=c.after, change=c.change.value) for c in d.changes]


@router.get(
    "/orders/{order_id}/versions", response_model=VersionsOut, summary="Every version of an order, and what changed"
)
async def list_versions(order_id: OrderId, actor: ApiViewer) -> VersionsOut:
    found = await run_in_threadpool(order_versions.list_versions, actor.scope, order_id)
    return VersionsOut(
        order_id=order_id,
        versions=[
            VersionOut(
                version=v.version,
                updated_at=v.updated_at,
                recorded_at=v.recorded_at,
                content_hash=v.content_hash,
                classes=[c.value for c in v.classes],
                summary=v.summary,
                readable=v.readable,
            )
            for v in found
        ],
    )


@router.get(
    "/orders/{order_id}/diff",
    response_model=DiffOut,
    response_model_by_alias=True,
    summary="The field-level diff between two versions of an order (default: the previous and the current)",
)
async def diff_versions(
    order_id: OrderId,
    actor: ApiViewer,
    from_version: Annotated[int | None, Query(alias="from", ge=1, le=2**31 - 1, description="default: to − 1")] = None,
    to_version: Annotated[int | None, Query(alias="to", ge=1, le=2**31 - 1, description="default: the current")] = None,
) -> DiffOut:
    found = await run_in_threadpool(order_versions.diff_versions, actor.scope, order_id, from_version, to_version)
    d = found.diff
    return DiffOut(
        order_id=found.order_id,
        number=found.number,
        from_version=found.from_version,
        to_version=found.to_version,
        empty=d.empty,
        classes=[c.value for c in sorted(d.classes, key=list(ChangeClass).index)],
        summary=d.summary(),
        changes=_changes(d),
    )
