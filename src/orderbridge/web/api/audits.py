"""``/api/v1/audits``: reconciliation reports (list, one with its findings) and "run an audit now".

A run is queued (decision 120): ``POST /api/v1/audits/run`` answers ``202`` with the report in
state ``queued`` and its address in ``Location``; poll ``GET /api/v1/audits/{run_id}`` until
``outcome`` is ``ok`` or ``failed``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import Path, Query, Response
from pydantic import BaseModel, Field

from orderbridge.services import audits
from orderbridge.web.api.common import PREFIX, api_router
from orderbridge.web.deps import ApiOperator, ApiViewer

router = api_router("audits")

#: database ids are 64-bit: a larger number is refused as input (422), never sent to the database
MAX_ID = 2**63 - 1
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="the report's id")]


class AuditOut(BaseModel):
    id: int
    connection_id: int
    connection: str
    kind: str = Field(description="hourly | daily | manual")
    window_start: datetime
    window_end: datetime
    started_at: datetime = Field(description="when it started (while queued: when it was asked for)")
    finished_at: datetime | None
    outcome: str = Field(description="queued | running | ok | failed")
    channel_count: int = Field(description="orders the channel listed for the window (so far, while running)")
    ledger_count: int = Field(description="of those, how many the ledger has at the channel's version")
    recovered: int = Field(description="orders the ledger lacked, now fetched and ingested")
    refreshed: int = Field(description="orders the ledger had an older version of, now updated")
    missing: int = Field(description="orders still missing (the channel could not give them)")
    api_requests: int
    api_cost: int
    error: str | None

    @classmethod
    def of(cls, a: audits.AuditSummary) -> AuditOut:
        return cls(**a.as_dict())


class FindingOut(BaseModel):
    external_id: str
    number: str | None
    updated_at: datetime | None
    was: str = Field(description="missing | stale")
    cause: str = Field(description="no_webhook | sync_error | cursor_gap | not_polled_yet | never_synced")
    action: str = Field(description="recovered | refreshed | gone")
    error: str | None
    order_id: int | None = Field(description="the order in the ledger (GET /api/v1/orders/{order_id})")


class CauseCount(BaseModel):
    cause: str
    orders: int


class AuditReportOut(AuditOut):
    findings: list[FindingOut]
    by_cause: list[CauseCount]


class AuditPageOut(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


class RunAuditIn(BaseModel):
    connection_id: int = Field(ge=1, le=MAX_ID, description="the channel to audit")
    window: Literal["recent", "full"] = Field(
        "recent", description="recent: the hourly audit's window (72 h); full: the daily one's (60 days)"
    )


def _cursor(value: str | None) -> int | None:
    from orderbridge.errors import InvalidInput

    if value is None or value == "":
        return None
    if not value.isdigit() or int(value) > MAX_ID:
        raise InvalidInput(f"cursor {value[:40]!r} is not one this API gave", hint="Pass next_cursor as it was.")
    return int(value)


@router.get("/audits", response_model=AuditPageOut, summary="Audit reports, newest first")
def list_audits(
    actor: ApiViewer,
    connection_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="only this channel's")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=audits.PAGE_MAX)] = 50,
) -> AuditPageOut:
    page = audits.list_audits(actor.scope, connection_id=connection_id, before_id=_cursor(cursor), limit=limit)
    return AuditPageOut(
        items=[AuditOut.of(a) for a in page.items],
        next_cursor=None if page.next_before is None else str(page.next_before),
    )


@router.get("/audits/{run_id}", response_model=AuditReportOut, summary="One audit report with its findings")
def get_audit(actor: ApiViewer, run_id: RunId) -> AuditReportOut:
    report = audits.get_audit(actor.scope, run_id)
    return AuditReportOut(
        **report.audit.as_dict(),
        findings=[FindingOut(**f.as_dict()) for f in report.findings],
        by_cause=[CauseCount(cause=c, orders=n) for c, n in report.by_cause],
    )


@router.post(
    "/audits/run",
    response_model=AuditOut,
    status_code=202,
    summary="Queue an audit of a channel now (operator)",
    description="The runtime starts it within seconds; poll the report until its outcome is ok or failed. "
    "While one is still queued for the channel, that one is answered.",
)
def run_audit(actor: ApiOperator, body: RunAuditIn, response: Response) -> AuditOut:
    queued = audits.request_audit(actor, body.connection_id, window=body.window)
    response.headers["Location"] = f"{PREFIX}/audits/{queued.id}"
    return AuditOut.of(queued)
