"""``/api/v1/connections``: the tenant's connections — list, get, health, Sync now and its
progress, test — the Connections screen's operations for programs.

Credentials are never in an answer: a connection says which of its kind's credentials are set
(decision 116). Sync now answers 202 with the run it queued, or the run already in progress
(``already_running``); ``GET …/sync`` reads that run's figures (decision 115).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from orderbridge.connectors.base import PreflightCheck
from orderbridge.services import connection_view, connections, download_switches, preflight, sync_now
from orderbridge.services.health import job_health
from orderbridge.web.api.common import api_router
from orderbridge.web.api.holds import FixOut
from orderbridge.web.deps import ApiAdmin, ApiOperator, ApiViewer
from orderbridge.web.ids import ObjectId

#: a database id in a path: a number the ledger's ids can be (a larger one is bad input, not a 500)

router = api_router("connections")


class Credential(BaseModel):
    name: str
    description: str
    required: bool
    is_set: bool = Field(description="whether a value is stored (the value itself is never returned)")


class Job(BaseModel):
    job: str
    health: str
    message: str
    since: datetime | None
    last_success_at: datetime | None
    last_error_at: datetime | None
    consecutive_failures: int


class SyncRun(BaseModel):
    run_id: int = Field(description="the sync_runs row (0: a sync holding the lease has not written its row yet)")
    outcome: str = Field(description="queued | running | ok | failed | interrupted | skipped")
    started_at: datetime
    finished_at: datetime | None
    fetched: int
    inserted: int
    changed: int
    unchanged: int
    batches: int
    error: str | None

    @classmethod
    def of(cls, run: sync_now.SyncProgress) -> SyncRun:
        return cls(
            run_id=run.run_id,
            outcome=run.outcome,
            started_at=run.started_at,
            finished_at=run.finished_at,
            fetched=run.count("fetched"),
            inserted=run.count("inserted"),
            changed=run.count("changed"),
            unchanged=run.count("unchanged"),
            batches=run.count("batches"),
            error=run.error,
        )


class ConnectionSummary(BaseModel):
    id: int
    name: str
    kind: str
    role: str
    health: str
    health_message: str
    last_success_at: datetime | None
    sync_lag_s: float | None
    last_sync: SyncRun | None


class DownloadRules(BaseModel):
    payment_statuses: list[str] | None = Field(description="taken payment statuses; null: any")
    fulfillment_statuses: list[str] | None = Field(description="taken fulfilment statuses; null: any")
    channel_states: list[str] | None = Field(
        default=None, description="taken statuses in the channel's own words (WooCommerce: processing); null: any"
    )
    include_closed: bool
    include_test: bool
    earliest: datetime | None
    customised: bool = Field(description="the connection's own rules differ from its kind's defaults")


class Webhooks(BaseModel):
    supported: bool
    registered: bool
    address: str
    expected_address: str
    last_delivery_at: datetime | None
    last_delivery_topic: str | None
    last_delivery_outcome: str | None
    deliveries_24h: int


class ConnectionDetail(BaseModel):
    id: int
    name: str
    kind: str
    title: str
    role: str
    base_url: str
    health: str
    health_message: str
    health_since: datetime | None
    last_success_at: datetime | None
    last_order_at: datetime | None
    cursor: datetime | None
    capabilities: list[str]
    credentials: list[Credential]
    jobs: list[Job]
    last_syncs: list[SyncRun]
    download_rules: DownloadRules | None
    poll_interval_s: float | None = Field(description="the connection's own; null: the hub's")
    effective_poll_interval_s: float
    webhooks: Webhooks | None
    mappings: int


class Health(BaseModel):
    id: int
    name: str
    health: str
    message: str
    jobs: list[dict[str, Any]]


class SyncRequested(BaseModel):
    already_running: bool = Field(description="a sync was queued or running: this request started nothing")
    run: SyncRun


class CheckOut(BaseModel):
    """One pre-flight check of a POS destination (issue #17)."""

    name: str = Field(description="stable: `employee`, `helper_items`, `location` …")
    ok: bool
    detail: str = Field(description="what was checked, in one sentence (the POS's names are data)")
    code: str | None = Field(description="the hold code a failure puts on the orders (`pos_employee_inactive` …)")
    value: str | None = Field(description="the hold's value: the cause, naming the destination")
    message: str | None
    fix: FixOut | None
    action: str = Field(description="a fix the hub can make itself (`create_helper_items`), else empty")

    @classmethod
    def of(cls, check: PreflightCheck) -> CheckOut:
        r = check.reason
        return cls(
            name=check.name,
            ok=check.ok,
            detail=check.detail,
            code=None if r is None else r.code,
            value=None if r is None else r.value,
            message=None if r is None else r.message,
            fix=None if r is None else FixOut.of(r.fix),
            action=check.action,
        )


class TestResult(BaseModel):
    ok: bool
    description: str = Field(description="what the remote said when it worked (the shop's name …)")
    code: str = Field(description="the error code when it failed (connection_auth_failed …)")
    message: str = Field(description="the remote's reason when it failed")
    hint: str
    checks: list[CheckOut] = Field(
        default_factory=list,
        description="a POS destination's pre-flight checks (employee, helper items, location), read with the test",
    )


class HelperItemsOut(BaseModel):
    created: list[str] = Field(description="the SKUs of the helper items created (none: every one existed)")
    checks: list[CheckOut] = Field(description="the connection's pre-flight checks, read again after")
    released: int = Field(description="held orders released by the checks passing now")


def _job(j: connection_view.JobState) -> Job:
    return Job(
        job=j.job,
        health=j.health,
        message=j.message,
        since=j.since,
        last_success_at=j.last_success_at,
        last_error_at=j.last_error_at,
        consecutive_failures=j.consecutive_failures,
    )


@router.get("/connections", response_model=list[ConnectionSummary], summary="List connections")
def list_connections(actor: ApiViewer) -> list[ConnectionSummary]:
    return [
        ConnectionSummary(
            id=c.id,
            name=c.name,
            kind=c.kind,
            role=c.role,
            health=c.health,
            health_message=c.health_message,
            last_success_at=c.last_success_at,
            sync_lag_s=c.sync_lag_s,
            last_sync=None if c.last_run is None else SyncRun.of(c.last_run),
        )
        for c in connection_view.list_connection_summaries(actor.scope)
    ]


@router.get("/connections/{connection_id}", response_model=ConnectionDetail, summary="Get a connection")
def get_connection(connection_id: ObjectId, actor: ApiViewer) -> ConnectionDetail:
    c = connection_view.connection_detail(actor.scope, connection_id)
    r, w = c.rules, c.webhooks
    return ConnectionDetail(
        id=c.id,
        name=c.name,
        kind=c.kind,
        title=c.title,
        role=c.role,
        base_url=c.base_url,
        health=c.health,
        health_message=c.health_message,
        health_since=c.health_since,
        last_success_at=c.last_success_at,
        last_order_at=c.last_order_at,
        cursor=c.cursor,
        capabilities=list(c.capabilities),
        credentials=[
            Credential(name=f.name, description=f.description, required=f.required, is_set=f.is_set)
            for f in c.credentials
        ],
        jobs=[_job(j) for j in c.jobs],
        last_syncs=[SyncRun.of(run) for run in c.runs],
        download_rules=None
        if r is None
        else DownloadRules(
            payment_statuses=None if r.payment_taken is None else list(r.payment_taken),
            fulfillment_statuses=None if r.fulfilment_taken is None else list(r.fulfilment_taken),
            channel_states=None if r.channel_states_taken is None else list(r.channel_states_taken),
            include_closed=r.include_closed,
            include_test=r.include_test,
            earliest=r.earliest,
            customised=r.customised,
        ),
        poll_interval_s=c.poll_interval_s,
        effective_poll_interval_s=c.effective_poll_interval_s,
        webhooks=None
        if w is None
        else Webhooks(
            supported=w.supported,
            registered=w.registered,
            address=w.address,
            expected_address=w.expected_address,
            last_delivery_at=w.last_delivery_at,
            last_delivery_topic=w.last_delivery_topic,
            last_delivery_outcome=w.last_delivery_outcome,
            deliveries_24h=w.deliveries_24h,
        ),
        mappings=c.mappings,
    )


@router.get("/connections/{connection_id}/health", response_model=Health, summary="A connection's health and jobs")
def connection_health(connection_id: ObjectId, actor: ApiViewer) -> Health:
    row = actor.scope.load(connection_id)
    return Health(
        id=row.id,
        name=row.name,
        health=row.health,
        message=row.health_message,
        jobs=job_health(actor.scope, row.id),
    )


@router.post(
    "/connections/{connection_id}/sync",
    response_model=SyncRequested,
    status_code=202,
    summary="Sync now (channels)",
)
async def sync_connection(connection_id: ObjectId, request: Request, actor: ApiOperator) -> JSONResponse:
    runner = getattr(request.app.state, "sync_runner", None)
    asked = await run_in_threadpool(lambda: sync_now.request_sync(actor.scope, connection_id, runner, by=actor))
    body = SyncRequested(already_running=asked.already_running, run=SyncRun.of(asked.run))
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=202,
        headers={"Location": f"/api/v1/connections/{connection_id}/sync"},
    )


@router.get(
    "/connections/{connection_id}/sync",
    response_model=SyncRun | None,
    summary="The latest sync run and its figures",
)
def sync_status(connection_id: ObjectId, actor: ApiViewer) -> SyncRun | None:
    run = sync_now.sync_progress(actor.scope, connection_id)
    return None if run is None else SyncRun.of(run)


@router.post("/connections/{connection_id}/test", response_model=TestResult, summary="Test a connection now")
def test_connection(connection_id: ObjectId, actor: ApiOperator) -> TestResult:
    """Asks the remote now; a refusal is an answer (``ok`` false, with the remote's reason), not an error."""
    check = connections.check_now(actor.scope, connection_id, by=actor)
    return TestResult(
        ok=check.ok,
        description=check.description,
        code=check.code,
        message=check.message,
        hint=check.hint,
        checks=[CheckOut.of(c) for c in check.preflight],
    )


@router.post(
    "/connections/{connection_id}/helper-items",
    response_model=HelperItemsOut,
    summary="Create the helper items a POS destination lacks, then check again",
)
def create_helper_items(connection_id: ObjectId, actor: ApiAdmin) -> HelperItemsOut:
    """The fix ``create_helper_items``: the connector creates the missing helper items in the POS
    (idempotently: one that exists is left as it is); the connection's checks run again and the orders
    they held are released (posted at the next post run)."""
    result = preflight.create_helper_items(actor.scope, connection_id, by=actor)
    return HelperItemsOut(
        created=result.created, checks=[CheckOut.of(c) for c in result.checks], released=result.released
    )


# --- download switches (issue #17: seed 001's plain words over the download rules) ------------------


class SwitchOut(BaseModel):
    switch: str = Field(description="archived, processed, unprocessed, cancelled or test")
    on: bool
    words: str = Field(description="what it does, in plain words")
    skipped: int = Field(description="the channel's orders skipped now by this switch being off")


class SwitchesOut(BaseModel):
    switches: list[SwitchOut]
    changed: list[str] = Field(default_factory=list)
    released: int = Field(default=0, description="skipped orders re-evaluated to ready by the change")


def _switches(states: list[download_switches.SwitchState]) -> list[SwitchOut]:
    return [SwitchOut(switch=s.switch.value, on=s.on, words=s.words, skipped=s.skipped) for s in states]


@router.get(
    "/connections/{connection_id}/switches", response_model=SwitchesOut, summary="A channel's download switches"
)
def get_switches(connection_id: ObjectId, actor: ApiViewer) -> SwitchesOut:
    return SwitchesOut(switches=_switches(download_switches.switches(actor.scope, connection_id)))


@router.put(
    "/connections/{connection_id}/switches",
    response_model=SwitchesOut,
    summary="Set download switches; turning one on re-evaluates what it had skipped",
)
def put_switches(connection_id: ObjectId, body: dict[str, bool], actor: ApiAdmin) -> SwitchesOut:
    """The body names the switches to set: ``{"archived": true, "test": false}``; one left out stays."""
    done = download_switches.set_switches(actor.scope, connection_id, body, by=actor)
    return SwitchesOut(switches=_switches(done.switches), changed=done.changed, released=done.released)
