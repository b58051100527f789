"""``/api/v1/mappings``: SKU and shipping-method mappings per destination, and the unmapped values
seen — the Mappings screen's operations for programs (``services/mappings.py``).

Reading needs a viewer token; every change an operator token, and is recorded in the audit trail
under the token's label. A mapping of another account is 404, as a missing one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Body, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from orderbridge.errors import InvalidInput
from orderbridge.services import mappings
from orderbridge.web.api.common import ErrorBody, api_router
from orderbridge.web.deps import ApiOperator, ApiViewer
from orderbridge.web.ids import ObjectId

#: a database id in a path: a number the ledger's ids can be (a larger one is bad input, not a 500)

router = api_router("mappings")

Kind = Literal["sku", "shipping"]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The value is mapped already (editing)"}
}
#: the largest CSV body the import reads
MAX_IMPORT_BYTES = 4 * 1024 * 1024


class Mapping(BaseModel):
    id: int
    destination_id: int
    destination: str = Field(description="the destination connection's name")
    kind: Kind
    source: str = Field(description="the channel's value (a SKU, a shipping method; `*` = default shipping)")
    target: str = Field(description="the destination's value (a SKU, or `carrier:service`)")
    created_at: datetime
    updated_at: datetime
    changed_by: str | None = Field(description="who changed it last (audit trail); null if not recorded")
    changed_at: datetime | None

    @classmethod
    def of(cls, m: mappings.MappingInfo) -> Mapping:
        return cls(
            id=m.id,
            destination_id=m.destination_id,
            destination=m.destination,
            kind=m.kind,
            source=m.source,
            target=m.target,
            created_at=m.created_at,
            updated_at=m.updated_at,
            changed_by=m.changed_by,
            changed_at=m.changed_at,
        )


class MappingList(BaseModel):
    mappings: list[Mapping]
    total: int
    page: int
    per_page: int


class MappingIn(BaseModel):
    kind: Kind
    source: str = Field(min_length=1, max_length=300)
    target: str = Field(min_length=1, max_length=300)
    destination_id: int | None = Field(
        default=None, ge=1, le=2**62, description="the destination; may be left out when the account has one"
    )


class MappingEdit(BaseModel):
    target: str = Field(min_length=1, max_length=300)
    source: str | None = Field(default=None, min_length=1, max_length=300, description="a new channel value")


class Saved(BaseModel):
    mapping: Mapping
    released: int = Field(description="held orders this released (posted by the next run)")
    still_held: int = Field(description="of those re-evaluated, held for another reason")


class ExampleOrder(BaseModel):
    id: int
    number: str


class UnmappedValue(BaseModel):
    kind: Kind
    value: str
    orders: int = Field(description="held orders it blocks")
    examples: list[ExampleOrder]
    destinations: list[str]


class ImportRow(BaseModel):
    line: int
    status: Literal["added", "updated", "unchanged", "error", "not_applied"]
    destination: str
    kind: str
    source: str
    target: str
    message: str
    released: int


class ImportReport(BaseModel):
    applied: bool = Field(description="false: a row had an error and nothing was applied")
    rows: list[ImportRow]
    released: int


def _saved(scope: object, result: mappings.MappingResult) -> Saved:
    assert result.mapping_id is not None
    return Saved(
        mapping=Mapping.of(mappings.get_mapping(scope, result.mapping_id)),  # type: ignore[arg-type]
        released=result.released,
        still_held=result.still_held,
    )


@router.get("/mappings", response_model=MappingList, summary="List mappings")
def list_mappings(
    actor: ApiViewer,
    destination_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    kind: Kind | None = None,
    q: Annotated[str | None, Query(max_length=300, description="text in the channel's or destination's value")] = None,
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MappingList:
    found = mappings.list_mappings(
        actor.scope, destination_id=destination_id, kind=kind, search=q, page=page, per_page=per_page
    )
    return MappingList(
        mappings=[Mapping.of(m) for m in found.mappings], total=found.total, page=found.page, per_page=found.per_page
    )


@router.get("/mappings/unmapped", response_model=list[UnmappedValue], summary="Unmapped values holding orders")
def unmapped_values(actor: ApiViewer) -> list[UnmappedValue]:
    return [
        UnmappedValue(
            kind=u.kind,
            value=u.value,
            orders=u.orders,
            examples=[ExampleOrder(id=o.id, number=o.number) for o in u.examples],
            destinations=u.destinations,
        )
        for u in mappings.unmapped_seen(actor.scope)
    ]


@router.get(
    "/mappings/export.csv",
    summary="Export mappings as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "destination,kind,source,target"}},
)
def export_mappings(
    actor: ApiViewer,
    destination_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    kind: Kind | None = None,
) -> Response:
    text = mappings.export_csv(actor.scope, destination_id=destination_id, kind=kind)
    return Response(text.encode("utf-8"), media_type="text/csv; charset=utf-8")


@router.post(
    "/mappings/import",
    response_model=ImportReport,
    summary="Import mappings from CSV (all or nothing)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string", "description": "destination,kind,source,target"}}},
        }
    },
    responses={422: {"model": ErrorBody, "description": "Unreadable file, or no row applied (see the rows)"}},
)
async def import_mappings(
    request: Request,
    actor: ApiOperator,
    kind: Kind | None = None,
    destination_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
) -> Response:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_IMPORT_BYTES:
            raise InvalidInput(f"the body is over {MAX_IMPORT_BYTES:,} bytes", hint="Split the file.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the body is not UTF-8 (byte {exc.start})", hint="Send the CSV as UTF-8.") from exc
    report = await run_in_threadpool(
        lambda: mappings.import_csv(actor.scope, text, kind=kind, destination_id=destination_id, by=actor)
    )
    body = ImportReport(
        applied=report.applied,
        rows=[ImportRow(**r.__dict__) for r in report.rows],
        released=report.released,
    )
    return Response(body.model_dump_json(), media_type="application/json", status_code=200 if report.applied else 422)


@router.get("/mappings/{mapping_id}", response_model=Mapping, summary="Get a mapping")
def get_mapping(mapping_id: ObjectId, actor: ApiViewer) -> Mapping:
    return Mapping.of(mappings.get_mapping(actor.scope, mapping_id))


@router.post("/mappings", response_model=Saved, status_code=201, summary="Add a mapping (or change its target)")
def add_mapping(actor: ApiOperator, body: Annotated[MappingIn, Body()]) -> Saved:
    result = mappings.save_mapping(actor.scope, body.kind, body.source, body.target, body.destination_id, by=actor)
    return _saved(actor.scope, result)


@router.put("/mappings/{mapping_id}", response_model=Saved, summary="Edit a mapping", responses=CONFLICT)
def edit_mapping(mapping_id: ObjectId, actor: ApiOperator, body: Annotated[MappingEdit, Body()]) -> Saved:
    result = mappings.edit_mapping(actor.scope, mapping_id, body.target, source=body.source, by=actor)
    return _saved(actor.scope, result)


@router.delete("/mappings/{mapping_id}", response_model=Mapping, summary="Delete a mapping")
def delete_mapping(mapping_id: ObjectId, actor: ApiOperator) -> Mapping:
    """Nothing already posted changes; an order not yet posted that needs it is held when the
    poster reaches it (decision 117). Answers the mapping as it was."""
    return Mapping.of(mappings.delete_mapping(actor.scope, mapping_id, by=actor))
