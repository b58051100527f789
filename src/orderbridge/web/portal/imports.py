"""``/orders/import``: import orders from a CSV file — upload, preview, confirm, report.

The upload form (encoding and separator: detected unless chosen) posts the file; the answer is the
preview — each order and what will happen to it, each rejected row with its column, value, problem
and fix — with a confirm button (CSRF, operator role). Confirming imports it (the page shows the
progress, polled from the upload's row) and shows the per-row report with its CSV download. The
template and the documented example are downloadable. Every value from the file is data: Jinja
escapes it. The work is the service's (``services/order_imports.py``); this module only parses the
form and renders.
"""

from __future__ import annotations

import csv
import io
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from orderbridge.domain.csv_import import MAX_FILE_BYTES, parse_delimiter, parse_encoding
from orderbridge.domain.csv_import.spec import COLUMNS, describe_bytes, template_rows
from orderbridge.errors import InvalidInput
from orderbridge.services import order_imports
from orderbridge.web.deps import Operator, Viewer
from orderbridge.web.i18n import N_, gettext
from orderbridge.web.templating import templates_of

router = APIRouter(include_in_schema=False)

OUTCOMES: dict[str, str] = {
    "new": N_("New"),
    "unchanged": N_("Already imported — unchanged"),
    "updated": N_("Already imported — changed (an update)"),
    "rejected": N_("Rejected"),
    "imported": N_("Imported"),
    "skipped": N_("Skipped as a duplicate"),
}


def _outcome(code: str) -> str:
    label = OUTCOMES.get(code)
    return gettext(label) if label else code


def _choices(encoding: str, delimiter: str) -> order_imports.Choices:
    try:
        return order_imports.Choices(parse_encoding(encoding), parse_delimiter(delimiter))
    except ValueError as exc:
        raise InvalidInput(str(exc), hint=gettext("Choose one of the values the form offers.")) from exc


@router.get("/orders/import")
async def import_form(request: Request, actor: Operator) -> Response:
    return templates_of(request).render(
        request,
        "orders_import.html",
        {"columns": COLUMNS, "limit": describe_bytes(MAX_FILE_BYTES)},
    )


def _csv(rows: list[list[str]], name: str) -> Response:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return Response(
        out.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


@router.get("/orders/import/template.csv")
async def import_template(request: Request, actor: Viewer) -> Response:
    return _csv(template_rows(example=False), "orders-template.csv")


@router.get("/orders/import/example.csv")
async def import_example(request: Request, actor: Viewer) -> Response:
    return _csv(template_rows(example=True), "orders-example.csv")


@router.post("/orders/import")
def import_preview(
    request: Request,
    actor: Operator,
    file: Annotated[UploadFile, File()],
    encoding: Annotated[str, Form(max_length=20)] = "auto",
    delimiter: Annotated[str, Form(max_length=10)] = "auto",
) -> Response:
    choices = _choices(encoding, delimiter)
    token = order_imports.store_upload(actor, file.file, filename=file.filename or "upload.csv", choices=choices)
    preview = order_imports.preview_upload(actor.scope, token)
    shown = sorted(preview.orders, key=lambda o: (o.outcome != "rejected", o.state != "held", o.first_row))[:500]
    return templates_of(request).render(
        request,
        "orders_import_preview.html",
        {"preview": preview, "shown": shown, "errors": preview.errors[:500], "outcome": _outcome},
    )


@router.post("/orders/import/{import_token}/confirm")
async def import_confirm(request: Request, actor: Operator, import_token: str) -> Response:
    report = await run_in_threadpool(lambda: order_imports.confirm_upload(actor, import_token))
    return templates_of(request).render(
        request,
        "orders_import_report.html",
        {"report": report, "token": import_token, "rows": report.rows[:2000], "outcome": _outcome},
    )


@router.get("/orders/import/{import_token}/progress")
async def import_progress(request: Request, actor: Viewer, import_token: str) -> Response:
    upload = await run_in_threadpool(lambda: order_imports.upload_status(actor.scope, import_token))
    return templates_of(request).render(request, "_import_progress.html", {"upload": upload})


@router.get("/orders/import/{import_token}/report.csv")
async def import_report_csv(request: Request, actor: Viewer, import_token: str) -> Response:
    report = await run_in_threadpool(lambda: order_imports.upload_report(actor.scope, import_token))
    return StreamingResponse(
        (chunk.encode("utf-8") for chunk in order_imports.report_csv(report)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="import-report.csv"', "Cache-Control": "no-store"},
    )
