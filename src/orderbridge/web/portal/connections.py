"""The Connections screens: the list, adding one (test before saving), a connection's page with
its health, jobs, last syncs, Sync now, credentials, download rules, poll interval and webhooks.

Each route parses its input, calls one service and renders (``services/connections.py`` for
changes, ``services/connection_view.py`` for what the pages show, ``services/sync_now.py`` for
Sync now). Credentials typed in a form are never written back into a page: a failed test
re-renders the form with the other fields kept and the credential fields empty (decision 116).
With htmx the "Test connection" button swaps only its result in, so the typed values stay in the
browser's form.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from orderbridge.domain.switches import Switch
from orderbridge.errors import InvalidInput, NotFound, OrderBridgeError
from orderbridge.services import connection_view, connections, download_switches, preflight, sync_now
from orderbridge.services.connections import ConnectionCheck, ConnectionTestFailed
from orderbridge.web.deps import Admin, Operator, Viewer
from orderbridge.web.i18n import N_, gettext, ngettext
from orderbridge.web.ids import ObjectId
from orderbridge.web.templating import templates_of

#: a database id in a path: a number the ledger's ids can be (a larger one is bad input, not a 500)

router = APIRouter(include_in_schema=False)

#: a connection's and a job's health, as the pages say it
HEALTH: dict[str, str] = {
    "healthy": N_("Healthy"),
    "degraded": N_("Degraded"),
    "failing": N_("Failing"),
    "silent": N_("Silent"),
    "unknown": N_("Not checked yet"),
}
#: the jobs of a connection (``services.health.JOBS``)
JOB_TITLES: dict[str, str] = {
    "sync": N_("Order sync"),
    "post": N_("Posting"),
    "shipments": N_("Shipment download"),
    "push": N_("Fulfilment push"),
    "audit": N_("Audit"),
    "check": N_("Connection test"),
    "webhooks": N_("Webhook registration"),
    "api_version": N_("API version"),
    "deliveries": N_("File pickup watch"),
}
#: a sync run's outcome
RUN_OUTCOMES: dict[str, str] = {
    "queued": N_("Starting"),
    "running": N_("Running"),
    "ok": N_("Finished"),
    "failed": N_("Failed"),
    "interrupted": N_("Interrupted"),
    "skipped": N_("Skipped: another sync was running"),
}
#: the statuses download rules name
STATUSES: dict[str, str] = {
    "pending": N_("pending"),
    "authorized": N_("authorized"),
    "partially_paid": N_("partially paid"),
    "paid": N_("paid"),
    "partially_refunded": N_("partially refunded"),
    "refunded": N_("refunded"),
    "voided": N_("voided"),
    "expired": N_("expired"),
    "unfulfilled": N_("unfulfilled"),
    "partial": N_("partially fulfilled"),
    "fulfilled": N_("fulfilled"),
    "restocked": N_("restocked"),
}
ROLES: dict[str, str] = {"channel": N_("Channel"), "destination": N_("Destination")}
#: a channel's download switches, in seed 001's words (issue #17)
SWITCHES: dict[str, str] = {
    Switch.ARCHIVED: N_("Download archived orders (closed in the channel)"),
    Switch.PROCESSED: N_("Download processed orders (already fulfilled)"),
    Switch.UNPROCESSED: N_("Download unprocessed orders (not yet fulfilled, or partially)"),
    Switch.CANCELLED: N_("Download cancelled orders"),
    Switch.TEST: N_("Download test orders"),
}
#: a POS destination's pre-flight checks, by their stable names (issue #17)
CHECKS: dict[str, str] = {
    "employee": N_("Acting employee"),
    "helper_items": N_("Helper items"),
    "location": N_("Location / station"),
    "required_fields": N_("Required custom fields"),
    "skus": N_("SKUs"),
    "totals": N_("Totals"),
}


def _label(table: dict[str, str], code: str | None) -> str:
    if code is None:
        return ""
    found = table.get(code)
    return gettext(found) if found else code


def _helpers() -> dict[str, Any]:
    return {
        "health_label": lambda c: _label(HEALTH, c),
        "job_label": lambda c: _label(JOB_TITLES, c),
        "run_label": lambda c: _label(RUN_OUTCOMES, c),
        "status_label": lambda c: _label(STATUSES, c),
        "statuses": lambda codes: ", ".join(_label(STATUSES, c) for c in codes),
        "role_name": lambda c: _label(ROLES, c),
        "check_name": lambda c: _label(CHECKS, c),
        "switch_words": lambda c: _label(SWITCHES, c),
    }


def _render(request: Request, template: str, values: dict[str, Any], **kw: Any) -> Response:
    return templates_of(request).render(request, template, {**_helpers(), **values}, **kw)


# --- the list --------------------------------------------------------------------------------------


@router.get("/connections")
async def connections_list(request: Request, actor: Viewer) -> Response:
    rows = await run_in_threadpool(connection_view.list_connection_summaries, actor.scope)
    return _render(request, "connections.html", {"connections": rows})


@router.get("/connections/by-name/{connection_name}")
async def connection_by_name(connection_name: str, request: Request, actor: Viewer) -> Response:
    """Alerts link to a connection by name (``web/links.py``): its page, in the reader's tenant."""
    connection_id = await run_in_threadpool(connection_view.connection_id_named, actor.scope, connection_name)
    return templates_of(request).see_other(f"/connections/{connection_id}")


# --- adding one ------------------------------------------------------------------------------------


def _new_form(
    request: Request,
    *,
    kind: str = "",
    name: str = "",
    base_url: str = "",
    check: ConnectionCheck | None = None,
    error: str = "",
    status: int = 200,
) -> Response:
    kinds = connection_view.connection_kinds()
    chosen = next((k for k in kinds if k.kind == kind), None)
    return _render(
        request,
        "connection_new.html",
        {"kinds": kinds, "chosen": chosen, "name": name, "base_url": base_url, "check": check, "error": error},
        partial="connections/_test_result.html" if check is not None or error else None,
        status_code=status,
    )


@router.get("/connections/new")
async def connection_new(request: Request, actor: Admin, kind: str = "") -> Response:
    return await run_in_threadpool(_new_form, request, kind=kind[:40])


async def _credentials_in(request: Request) -> dict[str, str]:
    form = await request.form()
    return {
        key.removeprefix("credential_"): value
        for key, value in form.multi_items()
        if key.startswith("credential_") and isinstance(value, str) and value
    }


@router.post("/connections/test")
async def connection_try(
    request: Request,
    actor: Admin,
    kind: Annotated[str, Form(max_length=40)],
    base_url: Annotated[str, Form(max_length=500)] = "",
    name: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    credentials = await _credentials_in(request)
    try:
        check = await run_in_threadpool(connections.try_connection, actor.scope, kind, base_url, credentials)
    except InvalidInput as exc:
        failure = exc
        return await run_in_threadpool(
            lambda: _new_form(request, kind=kind, name=name, base_url=base_url, error=failure.message, status=422)
        )
    return await run_in_threadpool(
        lambda: _new_form(
            request, kind=kind, name=name, base_url=base_url, check=check, status=200 if check.ok else 422
        )
    )


@router.post("/connections")
async def connection_create(
    request: Request,
    actor: Admin,
    kind: Annotated[str, Form(max_length=40)],
    name: Annotated[str, Form(max_length=100)] = "",
    base_url: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    credentials = await _credentials_in(request)
    try:
        row, check = await run_in_threadpool(
            lambda: connections.create_connection(actor.scope, name, kind, base_url, credentials, by=actor)
        )
    except ConnectionTestFailed as exc:
        refused = exc
        return await run_in_threadpool(
            lambda: _new_form(request, kind=kind, name=name, base_url=base_url, check=refused.check, status=422)
        )
    except InvalidInput as exc:
        failure = exc
        return await run_in_threadpool(
            lambda: _new_form(request, kind=kind, name=name, base_url=base_url, error=failure.message, status=422)
        )
    return templates_of(request).see_other(
        f"/connections/{row.id}",
        flash=gettext("Connection %(name)s saved. The test said: %(said)s", name=row.name, said=check.description),
    )


# --- one connection --------------------------------------------------------------------------------


def _page(request: Request, actor: Any, connection_id: ObjectId, **extra: Any) -> Response:
    detail = connection_view.connection_detail(actor.scope, connection_id)
    status = extra.pop("status", 200)
    # a POS destination: its pre-flight checks, read now, with their fixes (issue #17)
    pos = preflight.pos_screen(actor.scope, connection_id)
    if pos is not None:  # the declaration's setting descriptions, in the reader's language where a catalog has them
        pos = dataclasses.replace(pos, settings=[(n, gettext(d), v) for n, d, v in pos.settings])
    # a channel: its download switches in plain words, with what each skips now (issue #17)
    switches = download_switches.switches(actor.scope, connection_id) if detail.role == "channel" else []
    return _render(
        request,
        "connection.html",
        {"c": detail, "check": None, "error": "", "pos": pos, "switches": switches, **extra},
        status_code=status,
    )


@router.get("/connections/{connection_id}")
async def connection_page(connection_id: ObjectId, request: Request, actor: Viewer) -> Response:
    return await run_in_threadpool(_page, request, actor, connection_id)


@router.post("/connections/{connection_id}/credentials")
async def connection_credentials(connection_id: ObjectId, request: Request, actor: Admin) -> Response:
    credentials = await _credentials_in(request)
    try:
        check = await run_in_threadpool(
            lambda: connections.set_credentials(actor.scope, connection_id, credentials, by=actor)
        )
    except ConnectionTestFailed as exc:
        refused = exc
        return await run_in_threadpool(
            lambda: _page(request, actor, connection_id, check=refused.check, status=422, credentials_refused=True)
        )
    except NotFound:
        raise
    except InvalidInput as exc:
        failure = exc
        return await run_in_threadpool(lambda: _page(request, actor, connection_id, error=failure.message, status=422))
    return templates_of(request).see_other(
        f"/connections/{connection_id}",
        flash=gettext("The new credentials work and are saved. The test said: %(said)s", said=check.description),
    )


@router.post("/connections/{connection_id}/test")
async def connection_test(connection_id: ObjectId, request: Request, actor: Operator) -> Response:
    check = await run_in_threadpool(lambda: connections.check_now(actor.scope, connection_id, by=actor))
    if request.headers.get("hx-request") == "true":
        return _render(request, "connections/_check.html", {"check": check, "connection_id": connection_id})
    return templates_of(request).see_other(
        f"/connections/{connection_id}",
        flash=gettext("Connection test passed: %(said)s", said=check.description)
        if check.ok
        else gettext("Connection test failed: %(reason)s", reason=check.message),
    )


@router.post("/connections/{connection_id}/helper-items")
async def connection_helper_items(connection_id: ObjectId, request: Request, actor: Admin) -> Response:
    """The fix ``create_helper_items``: create what the POS lacks, check again, release the orders."""
    try:
        result = await run_in_threadpool(lambda: preflight.create_helper_items(actor.scope, connection_id, by=actor))
    except NotFound:
        raise
    except OrderBridgeError as exc:
        flash = gettext("The helper items were not created: %(reason)s", reason=exc.message)
    else:
        created = ", ".join(result.created) if result.created else gettext("none (every helper item exists)")
        flash = gettext(
            "Helper items created: %(created)s. Orders released: %(released)s.",
            created=created,
            released=result.released,
        )
    return templates_of(request).see_other(f"/connections/{connection_id}#preflight", flash=flash)


@router.post("/connections/{connection_id}/pos-settings")
async def connection_pos_settings(connection_id: ObjectId, request: Request, actor: Admin) -> Response:
    """A POS destination's own settings (the employee, the location, the fields' defaults): each a
    JSON value, or a plain text one."""
    form = await request.form()
    values: dict[str, Any] = {}
    for key, raw in form.multi_items():
        if not key.startswith("setting_") or not isinstance(raw, str):
            continue
        text = raw.strip()
        try:
            values[key.removeprefix("setting_")] = json.loads(text) if text else ""
        except ValueError:
            values[key.removeprefix("setting_")] = text
    try:
        await run_in_threadpool(lambda: connections.set_settings(actor.scope, connection_id, values, by=actor))
    except NotFound:
        raise
    except InvalidInput as exc:
        failure = exc
        return await run_in_threadpool(lambda: _page(request, actor, connection_id, error=failure.message, status=422))
    return templates_of(request).see_other(
        f"/connections/{connection_id}#preflight",
        flash=gettext("The settings are saved; the held orders are checked again at the next post run."),
    )


@router.post("/connections/{connection_id}/switches")
async def connection_switches(connection_id: ObjectId, request: Request, actor: Admin) -> Response:
    """The switches form: a checkbox per switch (checked: on); every switch is set as the form says."""
    form = await request.form()
    wanted = {s.value: form.get(f"switch_{s.value}") == "on" for s in Switch}
    try:
        done = await run_in_threadpool(
            lambda: download_switches.set_switches(actor.scope, connection_id, wanted, by=actor)
        )
    except NotFound:
        raise
    except InvalidInput as exc:
        failure = exc
        return await run_in_threadpool(lambda: _page(request, actor, connection_id, error=failure.message, status=422))
    flash = (
        gettext(
            "Download switches saved. Skipped orders released: %(released)s.",
            released=done.released,
        )
        if done.changed
        else gettext("Nothing changed.")
    )
    return templates_of(request).see_other(f"/connections/{connection_id}#switches", flash=flash)


@router.post("/connections/{connection_id}/sync")
async def connection_sync_now(connection_id: ObjectId, request: Request, actor: Operator) -> Response:
    runner = getattr(request.app.state, "sync_runner", None)
    asked = await run_in_threadpool(lambda: sync_now.request_sync(actor.scope, connection_id, runner, by=actor))
    if request.headers.get("hx-request") == "true":
        return _render(
            request,
            "connections/_sync.html",
            {"run": asked.run, "already_running": asked.already_running, "connection_id": connection_id},
        )
    return templates_of(request).see_other(
        f"/connections/{connection_id}",
        flash=gettext("A sync of this connection is already running; its progress is shown below.")
        if asked.already_running
        else gettext("Sync started; its progress is shown below."),
    )


@router.get("/connections/{connection_id}/sync")
async def connection_sync_progress(connection_id: ObjectId, request: Request, actor: Viewer) -> Response:
    run = await run_in_threadpool(sync_now.sync_progress, actor.scope, connection_id)
    return _render(
        request,
        "connection_sync.html",
        {"run": run, "already_running": False, "connection_id": connection_id},
        partial="connections/_sync.html",
    )


@router.post("/connections/{connection_id}/webhooks")
async def connection_webhooks(connection_id: ObjectId, request: Request, actor: Admin) -> Response:
    try:
        subs = await run_in_threadpool(
            lambda: connection_view.reregister_webhooks(actor.scope, connection_id, by=actor)
        )
    except NotFound:
        raise
    except OrderBridgeError as exc:
        flash = gettext("Webhooks not registered: %(reason)s", reason=exc.message)
    else:
        flash = ngettext("Webhooks registered: %(num)d topic.", "Webhooks registered: %(num)d topics.", len(subs))
    return templates_of(request).see_other(f"/connections/{connection_id}", flash=flash)


@router.post("/connections/{connection_id}/settings")
async def connection_settings(
    connection_id: ObjectId,
    request: Request,
    actor: Admin,
    poll_interval_s: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    text = poll_interval_s.strip()
    seconds: float | None = None
    if text:
        try:
            seconds = float(text)
        except ValueError:
            return await run_in_threadpool(
                lambda: _page(
                    request,
                    actor,
                    connection_id,
                    error=gettext("The poll interval must be a number of seconds."),
                    status=422,
                )
            )
    try:
        await run_in_threadpool(lambda: connections.set_poll_interval(actor.scope, connection_id, seconds, by=actor))
    except NotFound:
        raise
    except InvalidInput as exc:
        failure = exc
        return await run_in_threadpool(lambda: _page(request, actor, connection_id, error=failure.message, status=422))
    return templates_of(request).see_other(
        f"/connections/{connection_id}", flash=gettext("The poll interval is saved.")
    )
