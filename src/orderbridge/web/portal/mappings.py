"""The Mappings screen: the unmapped values seen (map them in place), every mapping per destination
with who changed it last, add / edit / delete, CSV import (all or nothing) and export.

Each route parses its input, calls one function of ``services/mappings.py`` and renders. After a
change without JavaScript the browser is sent back to the list (303) with a one-line flash saying
what happened; a refused change re-renders the list with the reason (422), keeping what was typed.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from orderbridge.errors import InvalidInput, NotFound
from orderbridge.services import mappings
from orderbridge.web.deps import Operator, Viewer
from orderbridge.web.i18n import N_, gettext, ngettext
from orderbridge.web.ids import ObjectId
from orderbridge.web.templating import templates_of

#: a database id in a path: a number the ledger's ids can be (a larger one is bad input, not a 500)

router = APIRouter(include_in_schema=False)

#: the largest CSV file the import reads (about 20,000 rows of long SKUs)
MAX_UPLOAD_BYTES = 4 * 1024 * 1024

KINDS: dict[str, str] = {"sku": N_("SKU"), "shipping": N_("Shipping method")}
IMPORT_STATUSES: dict[str, str] = {
    "added": N_("New mapping"),
    "updated": N_("Target changed"),
    "unchanged": N_("Already so"),
    "error": N_("Error"),
    "not_applied": N_("Not applied"),
}


def _label(table: dict[str, str], code: str) -> str:
    found = table.get(code)
    return gettext(found) if found else code


def _optional_int(text: str | None) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 18:
        raise InvalidInput(f"{text[:20]!r} is not an id", code="invalid_input")
    return int(text)


def _list_values(scope: Any, destination_id: int | None, kind: str | None, q: str | None, page: int) -> dict[str, Any]:
    return {
        "page": mappings.list_mappings(scope, destination_id=destination_id, kind=kind, search=q, page=page),
        "unmapped": mappings.unmapped_seen(scope),
        "destinations": mappings.mapping_destinations(scope),
        "recent": mappings.recent_mapping_actions(scope, limit=20),
        "filters": {"destination_id": destination_id, "kind": kind or "", "q": q or ""},
        "query": urlencode(
            {k: v for k, v in (("destination_id", destination_id), ("kind", kind), ("q", q)) if v not in (None, "")}
        ),
        "kind_label": lambda k: _label(KINDS, k),
    }


def _list_page(
    request: Request,
    actor: Any,
    *,
    destination_id: int | None = None,
    kind: str | None = None,
    q: str | None = None,
    page: int = 1,
    error: str = "",
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    values = _list_values(actor.scope, destination_id, kind, q, page)
    return templates_of(request).render(
        request,
        "mappings.html",
        {**values, "error": error, "typed": typed or {}},
        status_code=status,
    )


@router.get("/mappings")
async def mappings_list(
    request: Request,
    actor: Viewer,
    destination_id: str = "",
    kind: str = "",
    q: str = "",
    page: int = 1,
) -> Response:
    dest = _optional_int(destination_id)
    return await run_in_threadpool(
        lambda: _list_page(request, actor, destination_id=dest, kind=kind or None, q=q[:300] or None, page=page)
    )


def _back(result: mappings.MappingResult, verb: str) -> str:
    what = _label(KINDS, result.kind)
    text = gettext(
        "%(verb)s: %(kind)s %(source)s → %(target)s.", verb=verb, kind=what, source=result.source, target=result.target
    )
    if result.released:
        text += " " + ngettext(
            "%(num)d held order released; it will be posted next.",
            "%(num)d held orders released; they will be posted next.",
            result.released,
        )
    return text


@router.post("/mappings")
async def mapping_save(
    request: Request,
    actor: Operator,
    kind: Annotated[str, Form(max_length=20)] = "",
    source: Annotated[str, Form(max_length=1000)] = "",
    target: Annotated[str, Form(max_length=1000)] = "",
    destination_id: Annotated[str, Form(max_length=20)] = "",
    mapping_id: Annotated[str, Form(max_length=20)] = "",
    back: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """Add (no ``mapping_id``: a value that has a mapping already gets the new target) or edit."""
    typed = {"kind": kind, "source": source, "target": target, "destination_id": destination_id}
    try:
        existing = _optional_int(mapping_id)
        dest = _optional_int(destination_id)
        if existing is not None:
            result = await run_in_threadpool(
                lambda: mappings.edit_mapping(actor.scope, existing, target, source=source or None, by=actor)
            )
            verb = gettext("Mapping changed")
        else:
            result = await run_in_threadpool(
                lambda: mappings.save_mapping(actor.scope, kind, source, target, dest, by=actor)
            )
            verb = gettext("Mapped")
    except NotFound:
        raise
    except InvalidInput as exc:
        failure = exc
        return await run_in_threadpool(
            lambda: _list_page(
                request,
                actor,
                error=failure.message + (f" — {failure.hint}" if failure.hint else ""),
                typed=typed,
                status=409 if failure.code == "conflict" else 422,
            )
        )
    where = "/holds" if back == "holds" else "/mappings"
    return templates_of(request).see_other(where, flash=_back(result, verb))


@router.post("/mappings/{mapping_id}/delete")
async def mapping_delete(mapping_id: ObjectId, request: Request, actor: Operator) -> Response:
    gone = await run_in_threadpool(lambda: mappings.delete_mapping(actor.scope, mapping_id, by=actor))
    response = templates_of(request).see_other(
        "/mappings",
        flash=gettext(
            "Deleted the mapping of %(kind)s %(source)s for %(destination)s. Orders already posted are unchanged; "
            "orders not yet posted that need it will be held.",
            kind=_label(KINDS, gone.kind),
            source=gone.source,
            destination=gone.destination,
        ),
    )
    if request.headers.get("hx-request") == "true":  # asked after hx-confirm: the browser goes to the list
        response.status_code = 204
        location = response.headers["location"]
        del response.headers["location"]
        response.headers["HX-Redirect"] = location
    return response


@router.post("/mappings/import")
async def mapping_import(
    request: Request,
    actor: Operator,
    file: Annotated[UploadFile, File()],
    kind: Annotated[str, Form(max_length=20)] = "",
    destination_id: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    raw = await file.read(MAX_UPLOAD_BYTES + 1)
    if len(raw) > MAX_UPLOAD_BYTES:
        raise InvalidInput(
            gettext("The file is larger than %(size)s MB.", size=MAX_UPLOAD_BYTES // (1024 * 1024)),
            hint=gettext("Split it into smaller files."),
            code="csv_too_large",
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            gettext("The file is not UTF-8 text (byte %(at)s).", at=exc.start),
            hint=gettext("Save it as “CSV UTF-8” from the spreadsheet and import it again."),
            code="csv_unreadable",
        ) from exc
    dest = _optional_int(destination_id)
    report = await run_in_threadpool(
        lambda: mappings.import_csv(actor.scope, text, kind=kind or None, destination_id=dest, by=actor)
    )
    return templates_of(request).render(
        request,
        "mappings_import.html",
        {
            "report": report,
            "filename": file.filename or "",
            "kind_label": lambda k: _label(KINDS, k) if k else "",
            "status_label": lambda s: _label(IMPORT_STATUSES, s),
        },
        status_code=200 if report.applied else 422,
    )


@router.get("/mappings/export.csv")
async def mapping_export(request: Request, actor: Viewer, destination_id: str = "", kind: str = "") -> Response:
    dest = _optional_int(destination_id)
    text = await run_in_threadpool(lambda: mappings.export_csv(actor.scope, destination_id=dest, kind=kind or None))
    return Response(
        text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="mappings.csv"', "Cache-Control": "no-store"},
    )
