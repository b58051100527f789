"""``/api/v1/imports``: orders imported from a CSV file — upload and preview, confirm, the report.

``POST /api/v1/imports`` (multipart: ``file``, optional ``encoding`` and ``delimiter``, ``auto`` by
default) keeps the upload and answers its preview — what will happen to each order, every row
error — with the ``token`` that names it; nothing is imported. ``POST /api/v1/imports/{import_token}/confirm``
imports it and answers the per-row report; confirming again answers the same report and imports
nothing. ``GET /api/v1/imports/{import_token}/report.csv`` is the report as CSV (formula-looking
cells neutralised). Uploading and confirming need the operator role; the token is the tenant's
own (another tenant's reads as unknown). An upload over the limit is refused with 413, naming it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from orderbridge.domain.csv_import import MAX_FILE_BYTES, FileTooLarge, parse_delimiter, parse_encoding
from orderbridge.domain.csv_import.spec import describe_bytes
from orderbridge.errors import InvalidInput
from orderbridge.services import order_imports
from orderbridge.web.api.common import ErrorBody, api_router
from orderbridge.web.deps import ApiOperator, ApiViewer

router = api_router("imports")

_TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorBody, "description": f"The file is over the import limit ({describe_bytes(MAX_FILE_BYTES)})"}
}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "Expired, or being imported right now"}
}


class PreviewOut(BaseModel):
    token: str = Field(description="names the upload: confirm it with `POST /api/v1/imports/{token}/confirm`")
    file: dict[str, Any] = Field(description="encoding and separator (detected or chosen), columns, rows, warnings")
    counts: dict[str, int] = Field(description="orders new, updated, unchanged, rejected, held; rows")
    orders: list[dict[str, Any]] = Field(
        description="per order: number, rows, outcome (new|unchanged|updated|rejected), state, what_happens, "
        "reasons, errors (row, column, value, code, problem, fix)"
    )
    orders_shown: int


class ReportOut(BaseModel):
    filename: str
    counts: dict[str, int] = Field(description="imported, updated, skipped (duplicates), rejected; orders; rows")
    columns: list[str]
    rows: list[dict[str, Any]] = Field(description="per row: row, order_number, sku, outcome, order_id, state, message")
    rows_shown: int


def _choices(encoding: str, delimiter: str) -> order_imports.Choices:
    try:
        return order_imports.Choices(parse_encoding(encoding), parse_delimiter(delimiter))
    except ValueError as exc:
        raise InvalidInput(str(exc), hint="Leave it out (auto), or give one of the values named.") from exc


def _refuse_declared_size(request: Request) -> None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FILE_BYTES + 64 * 1024:  # the multipart envelope's few bytes
        limit = describe_bytes(MAX_FILE_BYTES)
        raise FileTooLarge(
            f"The file is larger than the import limit of {limit} ({MAX_FILE_BYTES:,} bytes).",
            hint=f"Split it into files of at most {limit}, keeping each order's rows in one file.",
            limit=MAX_FILE_BYTES,
        )


@router.post(
    "/imports",
    response_model=PreviewOut,
    status_code=201,
    summary="Upload a CSV file of orders: its preview (nothing imported)",
    responses=_TOO_LARGE,
)
def upload_import(
    request: Request,
    actor: ApiOperator,
    file: Annotated[UploadFile, File(description="the CSV file, one row per line item")],
    encoding: Annotated[str, Form(max_length=20, description="auto, utf-8 or windows-1252")] = "auto",
    delimiter: Annotated[str, Form(max_length=10, description="auto, comma or semicolon")] = "auto",
) -> PreviewOut:
    _refuse_declared_size(request)
    choices = _choices(encoding, delimiter)
    token = order_imports.store_upload(actor, file.file, filename=file.filename or "upload.csv", choices=choices)
    preview = order_imports.preview_upload(actor.scope, token)
    return PreviewOut(**preview.as_dict(max_orders=1000))


@router.post(
    "/imports/{import_token}/confirm",
    response_model=ReportOut,
    summary="Import a previewed upload: the per-row report (again: the same report, nothing imported)",
    responses=_CONFLICT,
)
async def confirm_import(actor: ApiOperator, import_token: str) -> ReportOut:
    report = await run_in_threadpool(lambda: order_imports.confirm_upload(actor, import_token))
    return ReportOut(**report.as_dict(max_rows=5000))


@router.get(
    "/imports/{import_token}",
    response_model=ReportOut,
    summary="The report of an import (409 until it was confirmed)",
    responses=_CONFLICT,
)
async def import_report(actor: ApiViewer, import_token: str) -> ReportOut:
    report = await run_in_threadpool(lambda: order_imports.upload_report(actor.scope, import_token))
    return ReportOut(**report.as_dict(max_rows=5000))


@router.get(
    "/imports/{import_token}/report.csv",
    summary="The report of an import as CSV (formula-looking cells neutralised)",
    responses={
        200: {"content": {"text/csv": {}}, "description": "row,order_number,sku,outcome,order_id,state,message"}
    },
)
async def import_report_csv(actor: ApiViewer, import_token: str) -> StreamingResponse:
    report = await run_in_threadpool(lambda: order_imports.upload_report(actor.scope, import_token))
    return StreamingResponse(
        (chunk.encode("utf-8") for chunk in order_imports.report_csv(report)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="import-report.csv"', "Cache-Control": "no-store"},
    )
